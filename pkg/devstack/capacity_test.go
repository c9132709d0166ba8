package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/firehosearchive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// signalCatalog returns a vehicle's subscribed signals, "Group.Name:kind",
// in Smartcar's naming; a vehicle with n signals subscribes to the first
// n. The kind picks the body's shape and unit.
func signalCatalog() []string {
	return strings.Fields(`
TractionBattery.StateOfCharge:percent Odometer.TraveledDistance:km Location.PreciseLocation:location
Charge.IsCharging:bool Closure.IsLocked:bool TractionBattery.Range:km Charge.IsChargingCableConnected:bool
Charge.ChargeLimits:limits LowVoltageBattery.StateOfCharge:percent Location.IsAtHome:bool
TractionBattery.NominalCapacity:kwh TractionBattery.MaxRange:km TractionBattery.StateOfHealth:percent
TractionBattery.Temperature:celsius TractionBattery.IsHeaterActive:bool TractionBattery.RemainingEnergy:kwh
Charge.ChargeRate:kmh Charge.TimeToComplete:minutes Charge.Voltage:volts Charge.Amperage:amperes
Charge.Wattage:kw Charge.EnergyAdded:kwh Charge.ChargerPhases:count Charge.DetailedChargingStatus:text
Charge.FastChargerType:text Charge.ChargingConnectorType:text Charge.ChargeTimers:rows Charge.ChargeRecords:rows
Charge.IsFastCharging:bool Charge.ChargePortStatusColor:text Closure.Doors:rows Closure.Windows:rows
Closure.Sunroof:text Closure.FrontTrunk:text Closure.RearTrunk:text Closure.ChargePort:text
Closure.EngineCover:text Closure.IsOpen:bool Tires.Pressures:rows Tires.Temperatures:rows
Diagnostics.ABS:status Diagnostics.ActiveSafety:status Diagnostics.Airbag:status Diagnostics.BrakeFluid:status
Diagnostics.ChargingSystem:status Diagnostics.DTCList:rows Diagnostics.ElectricMotor:status
Diagnostics.EVBatteryConditioning:status Diagnostics.EVChargingSystem:status Diagnostics.EVHVBattery:status
Diagnostics.Headlights:status Diagnostics.MIL:status Diagnostics.OilLife:percent Diagnostics.OilPressure:status
Diagnostics.OilTemperature:status Diagnostics.TirePressureMonitoring:status Diagnostics.WasherFluid:status
LowVoltageBattery.Voltage:volts LowVoltageBattery.Status:text Climate.InternalTemperature:celsius
Climate.ExternalTemperature:celsius Climate.IsCabinPreconditioning:bool Climate.TargetTemperature:celsius
Climate.IsSteeringWheelHeaterActive:bool Climate.IsDefrosterActive:bool InternalCombustionEngine.FuelLevel:percent
InternalCombustionEngine.Range:km InternalCombustionEngine.AmountRemaining:liters
InternalCombustionEngine.OilLife:percent InternalCombustionEngine.IsRunning:bool Location.Heading:degrees
Location.Altitude:meters Location.IsAtWork:bool Motion.Speed:kmh Motion.IsMoving:bool Service.Records:rows
Service.NextServiceDistance:km Service.NextServiceDate:text Connectivity.SoftwareVersion:text
Connectivity.Status:text Connectivity.IsOnline:bool VehicleIdentification.VIN:text
VehicleIdentification.Nickname:text VehicleIdentification.ExteriorColor:text VehicleUserAccount.Role:text
VehicleUserAccount.Permissions:rows Alerts.Theft:bool Alerts.Crash:bool`)
}

// fleetVehicle is one vehicle's stream of VEHICLE_STATE events: every
// event carries every subscribed signal; a changed signal has a newer
// oemUpdatedAt and value, the others repeat what they last reported.
type fleetVehicle struct {
	id, userID string
	signals    []fleetSignal
}

type fleetSignal struct {
	group, name, kind string
	value             int
	oem, retrieved    int64
}

func newFleetVehicle(n int, at int64) *fleetVehicle {
	catalog := signalCatalog()
	if n > len(catalog) {
		panic(fmt.Sprintf("the catalog has %d signals, not %d", len(catalog), n))
	}
	v := &fleetVehicle{id: delivery.NewID(), userID: delivery.NewID()}
	for i, s := range catalog[:n] {
		gn, kind, _ := strings.Cut(s, ":")
		group, name, _ := strings.Cut(gn, ".")
		v.signals = append(v.signals, fleetSignal{group: group, name: name, kind: kind, value: 40 + i, oem: at - 5000, retrieved: at - 400})
	}
	return v
}

// change makes the signals at idx newer, as reported at ms at.
func (v *fleetVehicle) change(at int64, idx ...int) {
	for _, i := range idx {
		s := &v.signals[i]
		s.value++
		s.oem, s.retrieved = at-800, at-300
	}
}

func (s fleetSignal) body() any {
	switch s.kind {
	case "bool":
		return map[string]any{"value": s.value%2 == 0}
	case "location":
		return map[string]any{"latitude": 37.7749 + float64(s.value)/1e4, "longitude": -122.4194 + float64(s.value)/1e4, "heading": s.value % 360}
	case "text":
		return map[string]any{"value": fmt.Sprintf("%s_%d", strings.ToUpper(s.name[:min(6, len(s.name))]), s.value%7)}
	case "status":
		return map[string]any{"status": "OK", "description": "No issues detected"}
	case "limits":
		return map[string]any{"values": []any{map[string]any{"type": "global", "limit": 80, "condition": nil}}, "activeLimit": 80, "unit": "percent"}
	case "rows":
		return map[string]any{"values": []any{
			map[string]any{"id": "frontLeft", "value": s.value % 3}, map[string]any{"id": "frontRight", "value": s.value % 5},
			map[string]any{"id": "rearLeft", "value": 0}, map[string]any{"id": "rearRight", "value": 1}}, "rowCount": 2, "columnCount": 2}
	default:
		return map[string]any{"value": float64(s.value) + 0.5, "unit": s.kind}
	}
}

// event returns a VEHICLE_STATE body, delivered at ms at.
func (v *fleetVehicle) event(at int64) []byte {
	type signal struct {
		Code   string         `json:"code"`
		Name   string         `json:"name"`
		Group  string         `json:"group"`
		Body   any            `json:"body"`
		Meta   map[string]any `json:"meta"`
		Status map[string]any `json:"status"`
	}
	signals := make([]signal, len(v.signals))
	for i, s := range v.signals {
		signals[i] = signal{Code: strings.ToLower(s.group + "-" + s.name), Name: s.name, Group: s.group, Body: s.body(),
			Meta: map[string]any{"oemUpdatedAt": s.oem, "retrievedAt": s.retrieved}, Status: map[string]any{"value": "SUCCESS"}}
	}
	first := v.signals[0]
	b, _ := json.Marshal(map[string]any{
		"eventId": delivery.NewID(), "eventType": "VEHICLE_STATE",
		"data": map[string]any{
			"user":    map[string]any{"id": v.userID},
			"vehicle": map[string]any{"id": v.id, "make": "VOLKSWAGEN", "model": "ID.4", "year": 2024},
			"signals": signals,
		},
		"triggers": []any{map[string]any{"type": "SIGNAL_UPDATED", "signal": map[string]any{"name": first.name, "code": strings.ToLower(first.group + "-" + first.name), "group": first.group}}},
		"meta": map[string]any{"deliveryId": delivery.NewID(), "deliveredAt": at, "version": "4.0",
			"webhookId": "c3a9e1f0-2b7d-4e65-8f14-9a0b6d2e5c31", "webhookName": "fleet-prod", "mode": "LIVE", "signalCount": len(signals)},
	})
	return b
}

// errorEvent returns the sample VEHICLE_ERROR for v, delivered at ms at,
// about v itself: its user, make, model and year, as Smartcar sends them.
func (v *fleetVehicle) errorEvent(at int64) []byte {
	body := delivery.Rewrite{EventID: delivery.NewID(), VehicleID: v.id, DeliveryID: delivery.NewID(), DeliveredAt: time.UnixMilli(at)}.
		Apply(samples.MustRead("bodies/vehicle_error.json"))
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		panic(err) // the sample is JSON
	}
	data := ev["data"].(map[string]any)
	data["user"] = map[string]any{"id": v.userID}
	data["vehicle"] = map[string]any{"id": v.id, "make": "VOLKSWAGEN", "model": "ID.4", "year": 2024}
	b, _ := json.Marshal(ev)
	return b
}

// capacityStack is the pipeline's two functions on the emulator, driven
// one delivery at a time: receiver, queue, processor. A metered stack
// archives as the deployed one does; the other, which times the
// functions' CPU, does not, so that the archive's share is timed alone
// (archiveCPU).
type capacityStack struct {
	meter      *awstest.Capacity // nil: not metered
	recv       functions.ReceiverHandler
	proc       functions.ProcessorHandler
	sqs        *sqs.Client
	queueURL   string
	recvLogs   *loggingtest.Buffer
	procLogs   *loggingtest.Buffer
	deliveries int
	// archive is the stack's archive writer, as the processor's.
	archive *firehosearchive.Writer
	// streamARN is the state table's stream, which the publisher reads.
	streamARN string
}

func newCapacityStack(b *testing.B, metered bool) *capacityStack {
	b.Helper()
	ctx := context.Background()
	cfg := awstest.Config(b)
	s := &capacityStack{recvLogs: &loggingtest.Buffer{}, procLogs: &loggingtest.Buffer{}}
	if metered {
		s.meter = awstest.NewCapacity()
		cfg = s.meter.Config(cfg)
	}
	res, err := devstack.Provision(ctx, cfg, token, devstack.Options{Prefix: awstest.Name(b, "capacity") + "-"})
	if err != nil {
		b.Fatal(err)
	}
	if s.recv, err = functions.NewReceiver(getenv(res.ReceiverEnv()), cfg, s.recvLogs); err != nil {
		b.Fatal(err)
	}
	procEnv := res.ProcessorEnv()
	if !metered {
		delete(procEnv, devstack.EnvArchiveStream)
	}
	if s.proc, err = functions.NewProcessor(getenv(procEnv), cfg, s.procLogs); err != nil {
		b.Fatal(err)
	}
	s.archive = firehosearchive.New(firehose.NewFromConfig(cfg), res.ArchiveStream)
	s.streamARN = res.StateStreamARN
	s.sqs, s.queueURL = sqs.NewFromConfig(cfg), res.QueueURL
	if s.meter != nil {
		s.meter.Take()
	}
	return s
}

// delivered is what one delivery cost, through both functions.
type delivered struct {
	wcu, rcu, requests    float64
	recvBytes, recvLines  float64
	procBytes, procLines  float64
	recvCPU, procCPU      time.Duration
	messageBytes          float64
	succeeded, duplicates int
}

// deliver signs body, hands it to the receiver as API Gateway would,
// takes the message it queued and hands it to the processor as the SQS
// event source would, and returns what that cost.
func (s *capacityStack) deliver(b *testing.B, body []byte) delivered {
	b.Helper()
	ctx := context.Background()
	s.deliveries++
	var d delivered
	req := apigw.Request{Version: "2.0", RawPath: receiver.PathWebhook, Body: string(body), Headers: map[string]string{
		"content-type": "application/json", "content-length": fmt.Sprint(len(body)), "user-agent": "Smartcar/4.0",
		"host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https",
		strings.ToLower(smartcar.SignatureHeader): smartcar.Sign(token, body),
	}}
	req.RequestContext.Stage = "$default"
	req.RequestContext.RequestID = fmt.Sprintf("Vx3aHhGxIAMEV%03d=", s.deliveries%1000)
	req.RequestContext.HTTP.Method = "POST"
	lambdaCtx := func() context.Context {
		return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: delivery.NewID()})
	}

	recvBytes, recvLines := s.recvLogs.Len(), strings.Count(s.recvLogs.String(), "\n")
	cpu := cpuTime()
	resp, err := s.recv(lambdaCtx(), req)
	d.recvCPU = cpuTime() - cpu
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("receiver: %d %v\n%s", resp.StatusCode, err, s.recvLogs)
	}
	d.recvBytes, d.recvLines = float64(s.recvLogs.Len()-recvBytes), float64(strings.Count(s.recvLogs.String(), "\n")-recvLines)

	out, err := s.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil || len(out.Messages) != 1 {
		b.Fatalf("queue: %d messages, %v", len(out.Messages), err)
	}
	m := out.Messages[0]
	record := events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{}, EventSource: "aws:sqs"}
	d.messageBytes = float64(len(record.Body))
	for k, v := range m.MessageAttributes {
		record.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		d.messageBytes += float64(len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue))
	}

	procBytes, procLines := s.procLogs.Len(), strings.Count(s.procLogs.String(), "\n")
	succeeded, duplicates := s.procLogs.Count("processing.succeeded"), s.procLogs.Count("processing.duplicate")
	cpu = cpuTime()
	res, err := s.proc(lambdaCtx(), events.SQSEvent{Records: []events.SQSMessage{record}})
	d.procCPU = cpuTime() - cpu
	if err != nil || len(res.BatchItemFailures) != 0 {
		b.Fatalf("processor: %v %v\n%s", res.BatchItemFailures, err, s.procLogs)
	}
	d.procBytes, d.procLines = float64(s.procLogs.Len()-procBytes), float64(strings.Count(s.procLogs.String(), "\n")-procLines)
	d.succeeded = s.procLogs.Count("processing.succeeded") - succeeded
	d.duplicates = s.procLogs.Count("processing.duplicate") - duplicates
	if s.meter != nil {
		u := s.meter.Take()
		d.wcu, d.rcu, d.requests = u.WCU, u.RCU, float64(u.TotalRequests())
	}
	if _, err := s.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		b.Fatal(err)
	}
	return d
}

// archiveCPU archives body as the processor does for a record (its entry
// encoded, a PutRecordBatch of one: dearer than a batch's share) and
// returns the CPU time that took.
func (s *capacityStack) archiveCPU(b *testing.B, body []byte) time.Duration {
	b.Helper()
	cpu := cpuTime()
	for _, err := range s.archive.Archive(context.Background(), []archive.Entry{archive.NewEntry(body, nil, delivery.NewID(), time.Now())}) {
		if err != nil {
			b.Fatal(err)
		}
	}
	return cpuTime() - cpu
}

// cpuTime is the CPU time this process has used, user and system. The
// emulator runs in another process: only the functions' own work (and the
// test's) is counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// add adds the processor's capacity, requests and logs of d to sum.
func (sum *delivered) add(d delivered) {
	sum.wcu, sum.rcu, sum.requests = sum.wcu+d.wcu, sum.rcu+d.rcu, sum.requests+d.requests
	sum.procBytes, sum.procLines = sum.procBytes+d.procBytes, sum.procLines+d.procLines
}

// streamLength is the realistic stream's length: a first event, then
// steady events with 1 to 3 changed signals.
const streamLength = 50

// BenchmarkCapacity delivers a vehicle's events one at a time through the
// receiver and the processor (functions.NewReceiver, functions.NewProcessor)
// against the emulator, and reports per scenario what DynamoDB would bill
// (awstest.Capacity: write and read units sized from the items, not
// moto's constants), the DynamoDB requests, and the bytes both functions
// write to stdout (CloudWatch Logs, EMF included). A second, unmetered
// run of a stream measures the functions' CPU time. Sub-benchmarks: 10
// and 85 signals per vehicle. Metrics are named scenario-quantity:
//
//	first, steady1, steady10, duplicate, stale, error: one event each
//	stream: mean over a first event and steady ones with 1–3 changes
//	steady: mean over the steady events of the stream alone
//	recv-*: per delivery of a VEHICLE_STATE, at the receiver
//
// benchreport (make bench) turns them into the capacity and cost tables.
func BenchmarkCapacity(b *testing.B) {
	for _, n := range []int{10, 85} {
		b.Run(fmt.Sprintf("%dsignals", n), func(b *testing.B) {
			var metrics map[string]float64
			for b.Loop() {
				metrics = measureCapacity(b, n)
			}
			for k, v := range metrics {
				b.ReportMetric(v, k)
			}
		})
	}
}

func measureCapacity(b *testing.B, n int) map[string]float64 {
	metrics := map[string]float64{}
	record := func(name string, d delivered, wantSucceeded, wantDuplicates int) {
		b.Helper()
		if d.succeeded != wantSucceeded || d.duplicates != wantDuplicates {
			b.Fatalf("%s: %d processing.succeeded, %d processing.duplicate; want %d, %d", name, d.succeeded, d.duplicates, wantSucceeded, wantDuplicates)
		}
		metrics[name+"-WCU"] = d.wcu
		metrics[name+"-RCU"] = d.rcu
		metrics[name+"-requests"] = d.requests
		metrics[name+"-logB"] = d.procBytes
		metrics[name+"-loglines"] = d.procLines
	}
	// Timestamps an hour old at most: the receiver refuses older
	// deliveries as replays, the processor clamps future ones.
	start := time.Now().Add(-30 * time.Minute).UnixMilli()
	at := func(i int) int64 { return start + int64(i)*1000 }

	s := newCapacityStack(b, true)
	v := newFleetVehicle(n, at(0))
	record("first", s.deliver(b, v.event(at(0))), 1, 0)
	v.change(at(1), 0)
	record("steady1", s.deliver(b, v.event(at(1))), 1, 0)
	changed := make([]int, min(10, n))
	for i := range changed {
		changed[i] = i
	}
	v.change(at(2), changed...)
	last := v.event(at(2))
	record("steady10", s.deliver(b, last), 1, 0)
	// Smartcar's retry of the last event: a new deliveryId and deliveredAt.
	record("duplicate", s.deliver(b, delivery.Rewrite{DeliveryID: delivery.NewID(), DeliveredAt: time.UnixMilli(at(3))}.Apply(last)), 0, 1)
	// A new event whose every signal is older than what is stored.
	old := newFleetVehicle(n, at(0)-60_000)
	old.id, old.userID = v.id, v.userID
	record("stale", s.deliver(b, old.event(at(0)-59_000)), 1, 0)
	record("error", s.deliver(b, v.errorEvent(at(4))), 1, 0)

	// The realistic stream, on a vehicle of its own.
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	var sum, steady delivered
	var recvSum delivered
	var archiveBytes, bodyBytes float64 // the stream's archive entries and bodies
	stream := newFleetVehicle(n, at(10))
	for i := range streamLength {
		if i > 0 {
			stream.change(at(10+i), rng.Perm(n)[:1+rng.IntN(3)]...)
		}
		body := stream.event(at(10 + i))
		d := s.deliver(b, body)
		if entry, err := archive.Encode(archive.NewEntry(body, nil, delivery.NewID(), time.Now())); err == nil {
			archiveBytes += float64(len(entry))
			bodyBytes += float64(len(body))
		}
		if d.succeeded != 1 {
			b.Fatalf("stream event %d not processed:\n%s", i, s.procLogs)
		}
		sum.add(d)
		if i > 0 {
			steady.add(d)
		}
		recvSum.recvBytes, recvSum.recvLines, recvSum.messageBytes = recvSum.recvBytes+d.recvBytes, recvSum.recvLines+d.recvLines, recvSum.messageBytes+d.messageBytes
	}
	const k = streamLength
	metrics["stream-WCU"], metrics["stream-RCU"], metrics["stream-requests"] = sum.wcu/k, sum.rcu/k, sum.requests/k
	metrics["stream-logB"], metrics["stream-loglines"] = sum.procBytes/k, sum.procLines/k
	metrics["steady-WCU"], metrics["steady-RCU"], metrics["steady-requests"] = steady.wcu/(k-1), steady.rcu/(k-1), steady.requests/(k-1)
	metrics["steady-logB"], metrics["steady-loglines"] = steady.procBytes/(k-1), steady.procLines/(k-1)
	metrics["recv-logB"], metrics["recv-loglines"], metrics["recv-msgB"] = recvSum.recvBytes/k, recvSum.recvLines/k, recvSum.messageBytes/k
	metrics["archive-B"], metrics["body-B"] = archiveBytes/k, bodyBytes/k

	// The domain events they publish, derived from the stream as the
	// publisher derives them: per event of the stream (each VEHICLE_STATE
	// changes signals), and per VEHICLE_ERROR (the one above).
	var stateEvents, errorEvents float64
	for _, ev := range streamEvents(b, awstest.Config(b), s.streamARN) {
		switch {
		case ev.Detail.VehicleID == stream.id:
			stateEvents++
		case ev.Detail.VehicleID == v.id && ev.Detail.Error != nil:
			errorEvents++
		}
	}
	metrics["state-domain-events"], metrics["error-domain-events"] = stateEvents/k, errorEvents

	// CPU time, without the meter's own work: a warm stream on another
	// stack, the first events (cold clients, first secret fetch) left out.
	const warmup, measured = 4, 20
	cs := newCapacityStack(b, false)
	cv := newFleetVehicle(n, at(200))
	var recvCPU, procCPU, errorCPU, duplicateCPU, archCPU time.Duration
	for i := range warmup + measured {
		if i > 0 {
			cv.change(at(200+i), rng.Perm(n)[:1+rng.IntN(3)]...)
		}
		body := cv.event(at(200 + i))
		d := cs.deliver(b, body)
		archiveCPU := cs.archiveCPU(b, body)
		if i < warmup {
			continue
		}
		recvCPU, procCPU, archCPU = recvCPU+d.recvCPU, procCPU+d.procCPU, archCPU+archiveCPU
		if i%4 == 0 { // a few errors and duplicates among them
			errorCPU += cs.deliver(b, cv.errorEvent(at(200+i))).procCPU
			duplicateCPU += cs.deliver(b, delivery.Rewrite{DeliveryID: delivery.NewID()}.Apply(body)).procCPU
		}
	}
	us := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
	metrics["recv-cpu-us"], metrics["stream-cpu-us"] = us(recvCPU, measured), us(procCPU, measured)
	metrics["error-cpu-us"], metrics["duplicate-cpu-us"] = us(errorCPU, measured/4), us(duplicateCPU, measured/4)
	metrics["archive-cpu-us"] = us(archCPU, measured)
	return metrics
}
