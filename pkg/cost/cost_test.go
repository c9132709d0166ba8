package cost_test

import (
	"math"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/cost"
)

// TestPrice checks the arithmetic against figures worked out by hand.
func TestPrice(t *testing.T) {
	// One delivery per event, no errors, no overheads, a whole vCPU: each
	// line is a single product.
	bare := cost.Assumptions{
		DeliveriesPerEvent: 1, ReceiverMemoryMB: 1024, ProcessorMemoryMB: 1024, FullVCPUMemoryMB: 1024,
		ProcessorBatch: 1, BatchConcurrency: 1, SQSChunkBytes: 64 << 10, SecretTTL: 5 * time.Minute, WebhooksPerSecond: 1,
	}
	// The "before" figures for an 85-signal vehicle: 41 WCU per
	// event, 5 RCU, 100 KB messages (two SQS chunks each, 16 per batch of
	// ten), 5 warm receivers fetching the secret every 5 minutes at 10
	// webhooks a second.
	realistic := cost.DefaultAssumptions()
	// The stack of then logged Lambda's START, END and REPORT lines, and
	// published no domain events.
	realistic.PlatformLogBytes, realistic.PlatformLogLines = 270, 3
	tests := []struct {
		name string
		a    cost.Assumptions
		m    cost.Measured
		want map[string]float64 // dollars per million webhooks, by line; "total"
		// archive is what the archive's lines sum to.
		archive float64
	}{
		{
			name: "bare",
			a:    bare,
			m: cost.Measured{
				State:    cost.Event{WCU: 4, RCU: 2, CPU: 100 * time.Millisecond},
				Receiver: cost.Delivery{MessageBytes: 1000},
			},
			want: map[string]float64{
				"API Gateway HTTP API requests":          1.00,
				"Lambda requests (receiver + processor)": 0.40,    // 2 invocations × $0.20
				"Lambda duration, processor":             1.33334, // 0.1 s × 1 GB × $0.0000133334 × 1e6
				"SQS requests (send, receive, delete)":   1.20,    // 3 × $0.40
				"DynamoDB write request units":           2.50,    // 4 × $0.625
				"DynamoDB read request units":            0.25,    // 2 × $0.125
				"total":                                  6.68334,
			},
		},
		{
			name: "first events",
			a:    func() cost.Assumptions { a := bare; a.EventsPerVehicle = 4; return a }(),
			m: cost.Measured{
				State:    cost.Event{WCU: 2},
				First:    cost.Event{WCU: 86},
				Receiver: cost.Delivery{MessageBytes: 1000},
			},
			want: map[string]float64{
				"API Gateway HTTP API requests":          1.00,
				"Lambda requests (receiver + processor)": 0.40,
				"SQS requests (send, receive, delete)":   1.20,
				"DynamoDB write request units":           14.375, // (3/4 × 2 + 1/4 × 86) × $0.625
				"total":                                  16.975,
			},
		},
		{
			// A 20 KB VEHICLE_STATE whose entry compresses to 3157 bytes:
			// one 5 KB Firehose increment; an object every 15 minutes at
			// one webhook a second; 400 days in Intelligent-Tiering.
			name: "archive",
			a: func() cost.Assumptions {
				a := bare
				a.FirehoseWait, a.ArchiveBufferInterval, a.ArchiveBufferBytes, a.ArchiveRetentionDays = 20*time.Millisecond, 15*time.Minute, 128<<20, 400
				return a
			}(),
			m: cost.Measured{Receiver: cost.Delivery{MessageBytes: 1000}, ArchiveEntryBytes: 3157, ArchiveCPU: time.Millisecond},
			want: map[string]float64{
				"API Gateway HTTP API requests":                                             1.00,
				"Lambda requests (receiver + processor)":                                    0.40,
				"SQS requests (send, receive, delete)":                                      1.20,
				"Lambda duration, processor archiving: CPU and Firehose's answer (archive)": 0.2800014,           // (20 ms + 1 ms) × 1 GB
				"Firehose ingestion, 5 KB increments (archive)":                             0.13828277587890625, // 5120 B × $0.029/GB
				// 1/900 objects × ($0.005 + $0.01 + 13.14 months × $0.0025) per 1,000
				"S3 objects: PUT, transition, monitoring (archive)": 0.053171343828428023,
				// 3157 B × (30 d × $0.023 + 60 d × $0.0125 + 310 d × $0.004) / 30.44 d
				"S3 storage for 400 days, Intelligent-Tiering (archive)": 0.2588812085882104,
				"total": 3.3303367282955447,
			},
			archive: 0.7303367282955446,
		},
		{
			// Half the events are errors publishing two domain events each;
			// at 10 webhooks a second, one publisher invocation a second
			// waits 20 ms on EventBridge.
			name: "domain events",
			a: func() cost.Assumptions {
				a := bare
				a.ErrorShare, a.WebhooksPerSecond = 0.5, 10
				a.PublisherWindow, a.PutEventsWait, a.PublisherMemoryMB = time.Second, 20*time.Millisecond, 1024
				return a
			}(),
			m: cost.Measured{Receiver: cost.Delivery{MessageBytes: 1000}, DomainEventsPerState: 1, DomainEventsPerError: 2},
			want: map[string]float64{
				"API Gateway HTTP API requests":             1.00,
				"Lambda requests (receiver + processor)":    0.40,
				"SQS requests (send, receive, delete)":      1.20,
				"EventBridge custom events (domain events)": 1.50,      // 1.5 events × $1
				"Lambda, publisher: requests and duration":  0.0466668, // 0.1 × ($0.20 + 20 ms × 1 GB)
				"total": 4.1466668,
			},
		},
		{
			name: "85 signals before issue 11",
			a:    realistic,
			m: cost.Measured{
				State: cost.Event{WCU: 41, RCU: 5, DynamoDBRequests: 3, LogBytes: 1700, LogLines: 5, CPU: 14 * time.Millisecond},
				// The one-item layout wrote the whole vehicle on every event.
				First:     cost.Event{WCU: 41, RCU: 5, DynamoDBRequests: 3, LogBytes: 1700, LogLines: 5, CPU: 14 * time.Millisecond},
				Error:     cost.Event{WCU: 41, RCU: 5, DynamoDBRequests: 3, LogBytes: 1200, LogLines: 3, CPU: 4 * time.Millisecond},
				Duplicate: cost.Event{WCU: 1, RCU: 1, DynamoDBRequests: 1, LogBytes: 1100, LogLines: 3, CPU: time.Millisecond},
				Receiver:  cost.Delivery{LogBytes: 1000, LogLines: 4, CPU: 3 * time.Millisecond, MessageBytes: 100 << 10},
			},
			want: map[string]float64{
				"API Gateway HTTP API requests":          1.05,
				"Lambda requests (receiver + processor)": 0.231,             // (1.05 + 0.105) × $0.20
				"Lambda duration, receiver":              0.107557178408203, // 1.05 × (10 ms + 3 ms × 1769/256) × 0.25 GB
				"Lambda duration, processor":             0.313301696708984,
				"SQS requests (send, receive, delete)":   1.554,              // 1.05×2 + 0.105×16 + 0.105 requests
				"DynamoDB write request units":           25.65625,           // (0.9×41 + 0.1×41 + 0.05×1) × $0.625
				"DynamoDB read request units":            0.63125,            // 5.05 × $0.125
				"CloudWatch Logs ingestion":              1.580845564603806,  // 3394.84 bytes
				"Secrets Manager calls":                  0.008333333333333,  // 5/300/10 calls
				"total":                                  31.132537773054327, // the issue's ≈ $31
			},
		},
	}
	for _, tt := range tests {
		bill := cost.Price(cost.ListPrices(), tt.a, tt.m)
		got := map[string]float64{"total": bill.Total}
		for _, l := range bill.Lines {
			got[l.Name] = l.PerMillion
		}
		for name, want := range tt.want {
			if g, ok := got[name]; !ok || math.Abs(g-want) > 1e-9 {
				t.Errorf("%s: %s = $%.12f per million, want $%.12f", tt.name, name, g, want)
			}
		}
		for name, g := range got {
			if _, ok := tt.want[name]; !ok && g != 0 {
				t.Errorf("%s: %s = $%g per million, want 0", tt.name, name, g)
			}
		}
		if g := bill.Sum(cost.PartArchive); math.Abs(g-tt.archive) > 1e-9 {
			t.Errorf("%s: the archive costs $%.12f per million, want $%.12f", tt.name, g, tt.archive)
		}
	}
	if d := cost.Price(cost.ListPrices(), realistic, tests[1].m).Dominant(); d.Name != "DynamoDB write request units" {
		t.Errorf("dominant line %q, want DynamoDB write request units", d.Name)
	}
}
