package sqslambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

var update = flag.Bool("update", false, "rewrite the events/processor fixtures")

// PoisonBody is the unprocessable record in sqs-batch-with-poison.json.
const poisonBody = `{"eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"}}}`

// message builds an SQS message as the event source delivers it, with the
// attributes the receiver sets.
func message(t *testing.T, n int, body string) events.SQSMessage {
	attrs := map[string]events.SQSMessageAttribute{}
	if env, err := smartcar.ParseEnvelope([]byte(body)); err == nil {
		for k, v := range sqsqueue.Attributes(env) {
			attrs[k] = events.SQSMessageAttribute{DataType: *v.DataType, StringValue: v.StringValue}
		}
	}
	return events.SQSMessage{
		MessageId:     "00000000-0000-4000-8000-00000000000" + string(rune('0'+n)),
		ReceiptHandle: "fixture-receipt-handle",
		Body:          body,
		Attributes: map[string]string{
			"ApproximateReceiveCount": "1", "SentTimestamp": "1767225598600",
			"SenderId": "AROAEXAMPLE:receiver", "ApproximateFirstReceiveTimestamp": "1767225598700",
		},
		MessageAttributes: attrs,
		EventSource:       "aws:sqs",
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:smartcar-webhooks",
		AWSRegion:         "us-east-1",
	}
}

var fixtures = map[string][]string{
	"sqs-vehicle-state.json":        {"vehicle_state.json"},
	"sqs-vehicle-error.json":        {"vehicle_error.json"},
	"sqs-batch-with-poison.json":    {"vehicle_state.json", "vehicle_error.json", "poison"},
	"sqs-duplicate-deliveries.json": {"vehicle_state.json", "vehicle_state.json"},
}

func build(t *testing.T, bodies []string) []byte {
	var ev events.SQSEvent
	for i, name := range bodies {
		body := poisonBody
		if name != "poison" {
			body = string(samples.MustRead("bodies/" + name))
		}
		ev.Records = append(ev.Records, message(t, i+1, body))
	}
	out, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestFixturesUpToDate keeps events/processor in step with events/bodies.
// Run with -update to rewrite them.
func TestFixturesUpToDate(t *testing.T) {
	for file, bodies := range fixtures {
		path := filepath.Join("..", "..", "events", "processor", file)
		want := build(t, bodies)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is out of date (%v): run go test ./pkg/sqslambda -run TestFixturesUpToDate -update", file, err)
		}
	}
}

func TestHandlerWithFixtures(t *testing.T) {
	tests := []struct {
		file        string
		wantLetters int
	}{
		{"sqs-vehicle-state.json", 0},
		{"sqs-vehicle-error.json", 0},
		{"sqs-batch-with-poison.json", 1},
		{"sqs-duplicate-deliveries.json", 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			event := samples.MustRead("processor/" + tt.file)
			store, dlq, logs := processortest.NewStore(), &processortest.DLQ{}, &loggingtest.Buffer{}
			p := processor.New(store, processor.NewStateFinisher(store, nil, nil), dlq, nil, processor.Options{Logger: logging.New(logs, slog.LevelInfo)})
			out, err := lambda.NewHandler(sqslambda.Handler(p)).Invoke(context.Background(), event)
			if err != nil {
				t.Fatal(err)
			}
			var resp events.SQSEventResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			// Only a duplicate that found its event still in progress under
			// the other record may fail, to be retried.
			if deferred := logs.Count("processing.deferred"); len(resp.BatchItemFailures) != deferred {
				t.Errorf("batchItemFailures = %v with %d deferred duplicates", resp.BatchItemFailures, deferred)
			}
			letters := dlq.Letters()
			if len(letters) != tt.wantLetters {
				t.Fatalf("%d dead letters, want %d", len(letters), tt.wantLetters)
			}
			for _, l := range letters {
				if string(l.Record.Body) != poisonBody || l.Record.Attributes["vehicleId"] == "" || l.Reason == "" {
					t.Errorf("dead letter %+v", l)
				}
			}
			st, _ := store.GetVehicle(context.Background(), "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
			if !st.Exists() {
				t.Error("nothing was stored")
			}
		})
	}
}

// failingProcessor fails every other record.
type failingProcessor struct{}

func (failingProcessor) ProcessBatch(_ context.Context, records []processor.Record) []string {
	var ids []string
	for i, r := range records {
		if i%2 == 1 {
			ids = append(ids, r.MessageID)
		}
	}
	return ids
}

func TestRecordAndPartialBatchResponse(t *testing.T) {
	msg := events.SQSMessage{MessageId: "m1", Body: "b", Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1767225598600"},
		MessageAttributes: map[string]events.SQSMessageAttribute{"eventId": {StringValue: ptr("e1"), DataType: "String"}, "bin": {DataType: "Binary"}}}
	r := sqslambda.Record(msg)
	if r.MessageID != "m1" || string(r.Body) != "b" || r.ReceiveCount != 3 || r.Attributes["eventId"] != "e1" || len(r.Attributes) != 1 ||
		r.SentAt.UnixMilli() != 1767225598600 {
		t.Errorf("record = %+v", r)
	}
	resp, _ := sqslambda.Handler(failingProcessor{})(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "a"}, {MessageId: "b"}, {MessageId: "c"}}})
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "b" {
		t.Errorf("response = %+v", resp)
	}
}

func ptr(s string) *string { return &s }

func TestRecordRestoresWhatSQSCouldNotCarry(t *testing.T) {
	body := []byte("{\"eventId\":\"e\uffff\",\"x\":\"\xff\"}")
	encoded := base64.StdEncoding.EncodeToString(body)
	str := func(s string) events.SQSMessageAttribute {
		return events.SQSMessageAttribute{DataType: "String", StringValue: ptr(s)}
	}
	bin := func(s string) events.SQSMessageAttribute {
		return events.SQSMessageAttribute{DataType: "Binary", BinaryValue: []byte(s)}
	}
	tests := []struct {
		name      string
		body      string
		attrs     map[string]events.SQSMessageAttribute
		wantBody  string
		wantAttrs map[string]string
	}{
		{"text", `{"a":1}`, map[string]events.SQSMessageAttribute{"eventId": str("e1")}, `{"a":1}`, map[string]string{"eventId": "e1"}},
		{"base64 body, binary label", encoded,
			map[string]events.SQSMessageAttribute{"bodyEncoding": str("base64"), "eventId": bin("e\uffff"), "vehicleId": str("v")},
			string(body), map[string]string{"eventId": "e\uffff", "vehicleId": "v"}},
		// Kept as received, labelled, for the processor to dead-letter.
		{"undecodable body", "not base64!", map[string]events.SQSMessageAttribute{"bodyEncoding": str("base64")},
			"not base64!", map[string]string{"bodyEncoding": "base64"}},
		{"unknown encoding", "abc", map[string]events.SQSMessageAttribute{"bodyEncoding": str("zstd")},
			"abc", map[string]string{"bodyEncoding": "zstd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sqslambda.Record(events.SQSMessage{MessageId: "m", Body: tt.body, MessageAttributes: tt.attrs})
			if string(r.Body) != tt.wantBody || !maps.Equal(r.Attributes, tt.wantAttrs) {
				t.Errorf("record body %q attributes %q, want %q %q", r.Body, r.Attributes, tt.wantBody, tt.wantAttrs)
			}
		})
	}
}
