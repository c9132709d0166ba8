// Package cost prices the webhook pipeline per million webhooks: list
// prices (ListPrices, the one place they live) times the quantities one
// webhook uses, measured against the emulator (capacity units, log bytes,
// CPU time, message sizes) or stated as assumptions (Assumptions). `make
// bench` prints the result.
//
// A webhook is one event Smartcar sends; it arrives in
// Assumptions.DeliveriesPerEvent deliveries (retries), each of which goes
// through API Gateway, the receiver and the queue, and all but the first
// of which the processor finds already done (a duplicate).
package cost

import (
	"fmt"
	"math"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

// Prices are on-demand list prices in US dollars.
type Prices struct {
	Region string
	// AsOf is when the prices were checked against AWS's pricing pages.
	AsOf string
	// APIGatewayHTTPPerMillion is per million HTTP API requests (first
	// 300 million a month; a request is metered in 512 KB increments).
	APIGatewayHTTPPerMillion float64
	// LambdaRequestsPerMillion is per million invocations.
	LambdaRequestsPerMillion float64
	// LambdaGBSecond is per GB-second of duration on arm64 (first 7.5
	// billion GB-s a month).
	LambdaGBSecond float64
	// SQSPerMillion is per million standard-queue requests; each 64 KB
	// chunk of a request's payload is billed as one request.
	SQSPerMillion float64
	// DynamoDBWRUPerMillion and DynamoDBRRUPerMillion are per million
	// on-demand write and read request units (Standard table class).
	DynamoDBWRUPerMillion, DynamoDBRRUPerMillion float64
	// LogsIngestionPerGB is per GB of CloudWatch Logs ingested (Standard
	// log class).
	LogsIngestionPerGB float64
	// SecretsManagerPer10k is per 10,000 Secrets Manager API calls.
	SecretsManagerPer10k float64
	// FirehosePerGB is per GB ingested by a Direct PUT delivery stream
	// (first 500 TB a month), each record rounded up to
	// FirehoseRecordIncrement bytes.
	FirehosePerGB           float64
	FirehoseRecordIncrement float64
	// S3PutPer1000 is per 1,000 PUT requests (S3 Standard), and
	// S3TransitionPer1000 per 1,000 lifecycle transitions into
	// Intelligent-Tiering.
	S3PutPer1000, S3TransitionPer1000 float64
	// S3 Intelligent-Tiering storage per GB-month: frequent access (the
	// first 30 days), infrequent (days 30 to 90) and archive instant
	// access (after 90 days); and its monitoring, per 1,000 objects a
	// month.
	S3FrequentGBMonth, S3InfrequentGBMonth, S3ArchiveInstantGBMonth, S3MonitoringPer1000 float64
	// EventBridgePerMillion is per million custom events put on a bus,
	// each 64 KB chunk of an entry counting as one.
	EventBridgePerMillion float64
}

// ListPrices returns us-east-1's on-demand list prices, checked on
// 2026-11-30 against aws.amazon.com/api-gateway/pricing,
// /lambda/pricing, /sqs/pricing, /dynamodb/pricing/on-demand (the November
// 2024 reduction: $0.625 per million WRU, $0.125 per million RRU),
// /cloudwatch/pricing, /secrets-manager/pricing, /firehose/pricing
// (Direct PUT ingestion, 5 KB increments) and /s3/pricing (S3 Standard
// PUTs, Intelligent-Tiering). Free tiers are left out.
func ListPrices() Prices {
	return Prices{
		Region:                   "us-east-1",
		AsOf:                     "2026-11-30",
		APIGatewayHTTPPerMillion: 1.00,
		LambdaRequestsPerMillion: 0.20,
		LambdaGBSecond:           0.0000133334,
		SQSPerMillion:            0.40,
		DynamoDBWRUPerMillion:    0.625,
		DynamoDBRRUPerMillion:    0.125,
		LogsIngestionPerGB:       0.50,
		SecretsManagerPer10k:     0.05,
		FirehosePerGB:            0.029,
		FirehoseRecordIncrement:  5 << 10,
		S3PutPer1000:             0.005,
		S3TransitionPer1000:      0.01,
		S3FrequentGBMonth:        0.023,
		S3InfrequentGBMonth:      0.0125,
		S3ArchiveInstantGBMonth:  0.004,
		S3MonitoringPer1000:      0.0025,
		EventBridgePerMillion:    1.00,
	}
}

// Event is what the processor spends on one record of an SQS event,
// measured.
type Event struct {
	WCU, RCU         float64 // DynamoDB capacity units
	DynamoDBRequests float64
	// LogBytes and LogLines are what the processor writes to stdout for
	// the record: JSON log lines and EMF metric lines.
	LogBytes, LogLines float64
	// CPU is the processor's CPU time for the record.
	CPU time.Duration
}

// Delivery is what the receiver spends on one delivery, measured.
type Delivery struct {
	LogBytes, LogLines float64
	CPU                time.Duration
	// MessageBytes is the size of the queue message the receiver sends:
	// body plus attribute names, types and values.
	MessageBytes float64
}

// Measured is one kind of vehicle's measured quantities.
type Measured struct {
	// State is a steady VEHICLE_STATE event (the mean over a stream of
	// events changing 1 to 3 signals), First a vehicle's first event
	// (every signal new), Error a VEHICLE_ERROR and Duplicate a
	// redelivery the processor finds already applied.
	State, First, Error, Duplicate Event
	// Receiver is a VEHICLE_STATE delivery at the receiver.
	Receiver Delivery
	// ArchiveEntryBytes is the mean size of a delivery's archive entry
	// (archive.Encode: the body, compressed, with its labels), one
	// Firehose record; 0 prices a stack without the archive. ArchiveCPU
	// is the processor's CPU time archiving it (the other Events' CPU
	// leaves it out).
	ArchiveEntryBytes float64
	ArchiveCPU        time.Duration
	// DomainEventsPerState and DomainEventsPerError are the domain events
	// a VEHICLE_STATE and a VEHICLE_ERROR publish (duplicates publish
	// none); 0 for both leaves the bus out.
	DomainEventsPerState, DomainEventsPerError float64
}

// Assumptions are the quantities not measured.
type Assumptions struct {
	// ErrorShare is the share of VEHICLE_ERROR events, the rest being
	// VEHICLE_STATE.
	ErrorShare float64
	// DeliveriesPerEvent counts Smartcar's retries: 1.05 is one delivery
	// in twenty repeated.
	DeliveriesPerEvent float64
	// EventsPerVehicle is how many VEHICLE_STATE events a vehicle sends
	// in its life on the service: one of them is its first. 0 leaves
	// first events out.
	EventsPerVehicle float64
	// ReceiverMemoryMB and ProcessorMemoryMB are the functions' memory
	// (the stack's defaults, infra ReceiverMemoryMB and ProcessorMemoryMB).
	ReceiverMemoryMB, ProcessorMemoryMB float64
	// FullVCPUMemoryMB is the memory at which Lambda gives a function one
	// whole vCPU; below it, CPU time stretches by FullVCPUMemoryMB/memory.
	FullVCPUMemoryMB float64
	// ReceiverWait is a delivery's time waiting on the network (the
	// SendMessage round trip).
	ReceiverWait time.Duration
	// DynamoDBWait is one DynamoDB request's round trip.
	DynamoDBWait time.Duration
	// ProcessorBatch is the records per processor invocation, and
	// BatchConcurrency how many of them the processor handles at once
	// (BATCH_CONCURRENCY): their DynamoDB waits overlap.
	ProcessorBatch, BatchConcurrency float64
	// PlatformLogBytes is what Lambda itself logs per invocation: START,
	// END and REPORT lines (PlatformLogLines of them). The stack drops
	// them (system log level WARN); ≈ 270 bytes in 3 lines with INFO.
	PlatformLogBytes, PlatformLogLines float64
	// LogEventOverhead is the bytes CloudWatch Logs counts per log event
	// beyond its message (26, as PutLogEvents sizes a batch).
	LogEventOverhead float64
	// SQSChunkBytes is the payload billed as one SQS request (64 KB).
	SQSChunkBytes float64
	// WarmReceivers is how many receiver containers are warm at a time,
	// each fetching the secret once per SecretTTL, while webhooks arrive
	// at WebhooksPerSecond.
	WarmReceivers     float64
	SecretTTL         time.Duration
	WebhooksPerSecond float64
	// FirehoseWait is the processor's PutRecordBatch round trip, one per
	// invocation, before its records are processed.
	FirehoseWait time.Duration
	// ArchiveBufferInterval and ArchiveBufferBytes are Firehose's
	// buffering: an object per interval, or per that many bytes if
	// sooner. ArchiveRetentionDays is how long objects are kept.
	ArchiveBufferInterval time.Duration
	ArchiveBufferBytes    float64
	ArchiveRetentionDays  float64
	// PublisherWindow is the stream source's batching window: one
	// publisher invocation per window while webhooks arrive, each waiting
	// PutEventsWait on EventBridge, with PublisherMemoryMB.
	PublisherWindow, PutEventsWait time.Duration
	PublisherMemoryMB              float64
}

// DefaultAssumptions returns the assumptions `make bench` states.
func DefaultAssumptions() Assumptions {
	return Assumptions{
		ErrorShare:         0.10,
		DeliveriesPerEvent: 1.05,
		// Three weeks of a vehicle reporting twice an hour; a fleet keeps
		// its vehicles for months, so first events weigh less still.
		EventsPerVehicle:  1000,
		ReceiverMemoryMB:  pipeline.MemoryMB,
		ProcessorMemoryMB: pipeline.MemoryMB,
		FullVCPUMemoryMB:  1769,
		ReceiverWait:      10 * time.Millisecond,
		DynamoDBWait:      5 * time.Millisecond,
		ProcessorBatch:    10,
		BatchConcurrency:  4,
		PlatformLogBytes:  0,
		PlatformLogLines:  0,
		LogEventOverhead:  26,
		SQSChunkBytes:     64 << 10,
		WarmReceivers:     5,
		SecretTTL:         5 * time.Minute,
		WebhooksPerSecond: 10,
		FirehoseWait:      20 * time.Millisecond,
		// The stack's.
		ArchiveBufferInterval: pipeline.ArchiveBufferInterval,
		ArchiveBufferBytes:    pipeline.ArchiveBufferMiB << 20,
		ArchiveRetentionDays:  pipeline.ArchiveRetentionDays,
		PublisherWindow:       time.Second,
		PublisherMemoryMB:     pipeline.MemoryMB,
		PutEventsWait:         20 * time.Millisecond,
	}
}

// Line is one line of the bill.
type Line struct {
	Name string
	// Quantity is how much of Unit one webhook uses.
	Quantity float64
	Unit     string
	// PerMillion is the dollars per million webhooks.
	PerMillion float64
	// Part is the part of the pipeline the line belongs to (Bill.Sum).
	Part Part
}

// Part is a part of the pipeline, priced on its own lines.
type Part string

// Parts of the pipeline besides its core (receiver, queue, processor,
// tables, logs), the zero Part.
const (
	PartArchive Part = "archive" // the raw-webhook archive
	PartBus     Part = "bus"     // the domain events
)

// Bill is the cost of a million webhooks.
type Bill struct {
	Lines []Line
	Total float64
}

// Sum returns what the lines of part cost, per million webhooks.
func (b Bill) Sum(part Part) float64 {
	sum := 0.0
	for _, l := range b.Lines {
		if l.Part == part {
			sum += l.PerMillion
		}
	}
	return sum
}

// Dominant returns the most expensive line.
func (b Bill) Dominant() Line {
	var top Line
	for _, l := range b.Lines {
		if l.PerMillion > top.PerMillion {
			top = l
		}
	}
	return top
}

// Per-webhook quantities' units.
const (
	UnitRequests   = "requests"
	UnitGBSeconds  = "GB-s"
	UnitWRU        = "WRU"
	UnitRRU        = "RRU"
	UnitBytes      = "bytes"
	UnitAPICalls   = "calls"
	UnitObjects    = "objects"
	UnitGBMonths   = "GB-months"
	UnitEvents     = "events"
	bytesPerGB     = 1 << 30
	perMillion     = 1e6
	lambdaMBPerGB  = 1024
	secretCallUnit = 10_000
)

// Price returns the bill for a million webhooks of a vehicle kind.
func Price(p Prices, a Assumptions, m Measured) Bill {
	deliveries := a.DeliveriesPerEvent
	// The processor's records per webhook: the event itself, and each
	// extra delivery found already done.
	first := 0.0 // the share of VEHICLE_STATE events that are a vehicle's first
	if a.EventsPerVehicle > 0 {
		first = 1 / a.EventsPerVehicle
	}
	mix := func(f func(Event) float64) float64 {
		state := (1-first)*f(m.State) + first*f(m.First)
		return (1-a.ErrorShare)*state + a.ErrorShare*f(m.Error) + (deliveries-1)*f(m.Duplicate)
	}
	invocations := deliveries / a.ProcessorBatch // processor invocations per webhook

	recvSeconds := a.ReceiverWait.Seconds() + m.Receiver.CPU.Seconds()*stretch(a, a.ReceiverMemoryMB)
	procSeconds := mix(func(e Event) float64 {
		return e.DynamoDBRequests*a.DynamoDBWait.Seconds()/a.BatchConcurrency + e.CPU.Seconds()*stretch(a, a.ProcessorMemoryMB)
	})
	chunks := func(bytes float64) float64 { return math.Max(1, math.Ceil(bytes/a.SQSChunkBytes)) }
	sqsRequests := deliveries*chunks(m.Receiver.MessageBytes) + // SendMessage
		invocations*chunks(a.ProcessorBatch*m.Receiver.MessageBytes) + // ReceiveMessage, batched by the event source
		invocations // DeleteMessageBatch
	logBytes := deliveries*(m.Receiver.LogBytes+a.LogEventOverhead*m.Receiver.LogLines) +
		mix(func(e Event) float64 { return e.LogBytes + a.LogEventOverhead*e.LogLines }) +
		(deliveries+invocations)*(a.PlatformLogBytes+a.LogEventOverhead*a.PlatformLogLines)
	secretCalls := a.WarmReceivers / a.SecretTTL.Seconds() / a.WebhooksPerSecond

	lines := []Line{
		{"API Gateway HTTP API requests", deliveries, UnitRequests, deliveries * p.APIGatewayHTTPPerMillion, ""},
		{"Lambda requests (receiver + processor)", deliveries + invocations, UnitRequests, (deliveries + invocations) * p.LambdaRequestsPerMillion, ""},
		{"Lambda duration, receiver", deliveries * recvSeconds * a.ReceiverMemoryMB / lambdaMBPerGB, UnitGBSeconds, 0, ""},
		{"Lambda duration, processor", procSeconds * a.ProcessorMemoryMB / lambdaMBPerGB, UnitGBSeconds, 0, ""},
		{"SQS requests (send, receive, delete)", sqsRequests, UnitRequests, sqsRequests * p.SQSPerMillion, ""},
		{"DynamoDB write request units", mix(func(e Event) float64 { return e.WCU }), UnitWRU, 0, ""},
		{"DynamoDB read request units", mix(func(e Event) float64 { return e.RCU }), UnitRRU, 0, ""},
		{"CloudWatch Logs ingestion", logBytes, UnitBytes, logBytes / bytesPerGB * perMillion * p.LogsIngestionPerGB, ""},
		{"Secrets Manager calls", secretCalls, UnitAPICalls, secretCalls * perMillion / secretCallUnit * p.SecretsManagerPer10k, ""},
	}
	lines[2].PerMillion = lines[2].Quantity * perMillion * p.LambdaGBSecond
	lines[3].PerMillion = lines[3].Quantity * perMillion * p.LambdaGBSecond
	lines[5].PerMillion = lines[5].Quantity * p.DynamoDBWRUPerMillion
	lines[6].PerMillion = lines[6].Quantity * p.DynamoDBRRUPerMillion
	if m.ArchiveEntryBytes > 0 {
		lines = append(lines, archiveLines(p, a, m, deliveries, invocations)...)
	}
	if m.DomainEventsPerState > 0 || m.DomainEventsPerError > 0 {
		lines = append(lines, busLines(p, a, m)...)
	}
	b := Bill{Lines: lines}
	for _, l := range lines {
		b.Total += l.PerMillion
	}
	return b
}

// archiveLines price the archive: the processor's wait on Firehose, each
// delivery's entry ingested (one record), the objects Firehose writes and
// the entries' storage for the retention.
func archiveLines(p Prices, a Assumptions, m Measured, deliveries, invocations float64) []Line {
	wait := (invocations*a.FirehoseWait.Seconds() + deliveries*m.ArchiveCPU.Seconds()*stretch(a, a.ProcessorMemoryMB)) *
		a.ProcessorMemoryMB / lambdaMBPerGB
	billed := deliveries * math.Ceil(m.ArchiveEntryBytes/p.FirehoseRecordIncrement) * p.FirehoseRecordIncrement
	stored := deliveries * m.ArchiveEntryBytes
	// An object per buffer interval at this rate, or per buffer filled.
	objects := math.Max(1/(a.WebhooksPerSecond*a.ArchiveBufferInterval.Seconds()), stored/a.ArchiveBufferBytes)
	// Intelligent-Tiering: 30 days frequent, 60 infrequent, the rest of
	// the retention in archive instant access.
	const daysPerMonth = 365.25 / 12
	frequent := math.Min(a.ArchiveRetentionDays, 30)
	infrequent := math.Min(math.Max(a.ArchiveRetentionDays-30, 0), 60)
	instant := math.Max(a.ArchiveRetentionDays-90, 0)
	gb := stored / bytesPerGB
	months := a.ArchiveRetentionDays / daysPerMonth
	storage := gb * (frequent*p.S3FrequentGBMonth + infrequent*p.S3InfrequentGBMonth + instant*p.S3ArchiveInstantGBMonth) / daysPerMonth
	return []Line{
		{"Lambda duration, processor archiving: CPU and Firehose's answer (archive)", wait, UnitGBSeconds, wait * perMillion * p.LambdaGBSecond, PartArchive},
		{"Firehose ingestion, 5 KB increments (archive)", billed, UnitBytes, billed / bytesPerGB * perMillion * p.FirehosePerGB, PartArchive},
		{"S3 objects: PUT, transition, monitoring (archive)", objects, UnitObjects,
			objects * perMillion / 1000 * (p.S3PutPer1000 + p.S3TransitionPer1000 + months*p.S3MonitoringPer1000), PartArchive},
		{fmt.Sprintf("S3 storage for %g days, Intelligent-Tiering (archive)", a.ArchiveRetentionDays), gb * months, UnitGBMonths,
			storage * perMillion, PartArchive},
	}
}

// busLines price the domain events: the entries put on the bus (each
// under 64 KB: one event each) and the publisher's invocations.
func busLines(p Prices, a Assumptions, m Measured) []Line {
	events := (1-a.ErrorShare)*m.DomainEventsPerState + a.ErrorShare*m.DomainEventsPerError
	invocations := 1 / math.Max(1, a.WebhooksPerSecond*a.PublisherWindow.Seconds())
	gbs := invocations * a.PutEventsWait.Seconds() * a.PublisherMemoryMB / lambdaMBPerGB
	return []Line{
		{"EventBridge custom events (domain events)", events, UnitEvents, events * p.EventBridgePerMillion, PartBus},
		{"Lambda, publisher: requests and duration", invocations, UnitRequests,
			invocations*p.LambdaRequestsPerMillion + gbs*perMillion*p.LambdaGBSecond, PartBus},
	}
}

// stretch is how much longer CPU work takes at memory MB than on a whole
// vCPU.
func stretch(a Assumptions, memory float64) float64 {
	return math.Max(1, a.FullVCPUMemoryMB/memory)
}
