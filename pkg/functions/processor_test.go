package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

type processorStack struct {
	env    map[string]string
	awsCfg aws.Config
	sqs    *sqs.Client
	store  *dynamostore.Store
	logs   *loggingtest.Buffer
}

func newProcessorStack(t *testing.T) *processorStack {
	t.Helper()
	ctx := context.Background()
	awsCfg := awstest.Config(t)
	name := awstest.Name(t, "processor")
	s := &processorStack{awsCfg: awsCfg, sqs: sqs.NewFromConfig(awsCfg), logs: &loggingtest.Buffer{}}
	dlq, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq-" + name)})
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg)
	if err := dynamostore.CreateTables(ctx, ddb, "events-"+name, "vehicles-"+name); err != nil {
		t.Fatal(err)
	}
	s.store = dynamostore.New(ddb, "events-"+name, "vehicles-"+name)
	s.env = map[string]string{"EVENTS_TABLE": "events-" + name, "STATE_TABLE": "vehicles-" + name, "DLQ_URL": *dlq.QueueUrl}
	return s
}

func (s *processorStack) invoke(t *testing.T, event []byte) events.SQSEventResponse {
	t.Helper()
	h, err := NewProcessor(func(k string) string { return s.env[k] }, s.awsCfg, s.logs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(h).Invoke(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

const vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"

func TestPoisonParkedRestOfBatchSucceeds(t *testing.T) {
	s := newProcessorStack(t)
	resp := s.invoke(t, samples.MustRead("processor/sqs-batch-with-poison.json"))
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batchItemFailures = %v\n%s", resp.BatchItemFailures, s.logs)
	}
	st, err := s.store.GetVehicle(context.Background(), vehicleID)
	if err != nil || st.Source != vehicle.SourceEntries || len(st.Errors) != 2 || !st.NeedsReauth || st.Signals["tractionbattery-stateofcharge"].Body["value"] != json.Number("63") {
		t.Fatalf("vehicle = %+v, %v", st, err)
	}
	out, err := s.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(s.env["DLQ_URL"]), MessageAttributeNames: []string{"All"}, MaxNumberOfMessages: 10,
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("DLQ holds %d messages, %v", len(out.Messages), err)
	}
	m := out.Messages[0]
	reason := aws.ToString(m.MessageAttributes["failureReason"].StringValue)
	if !strings.Contains(reason, "no eventId") || m.MessageAttributes["failedAt"].StringValue == nil ||
		aws.ToString(m.MessageAttributes["vehicleId"].StringValue) != vehicleID || !strings.HasPrefix(aws.ToString(m.Body), `{"eventType"`) {
		t.Errorf("dead letter: body %s, attributes %v", aws.ToString(m.Body), m.MessageAttributes)
	}
	if s.logs.Count("processing.dead_lettered") == 0 {
		t.Error("no processing.dead_lettered log line")
	}
}

func TestDuplicateDeliveriesOneEffect(t *testing.T) {
	s := newProcessorStack(t)
	// The batch holds the event twice: one record applies it, the other
	// finds it applied.
	first := s.invoke(t, samples.MustRead("processor/sqs-duplicate-deliveries.json"))
	deferred := s.logs.Count("processing.deferred")
	if len(first.BatchItemFailures) != deferred {
		t.Fatalf("batchItemFailures = %v with %d processing.deferred lines; only deferred duplicates may fail\n%s",
			first.BatchItemFailures, deferred, s.logs)
	}
	// Redelivered, both records are duplicates of a completed event.
	if resp := s.invoke(t, samples.MustRead("processor/sqs-duplicate-deliveries.json")); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batchItemFailures = %v", resp.BatchItemFailures)
	}
	st, _ := s.store.GetVehicle(context.Background(), vehicleID)
	if sg := st.Signals["tractionbattery-stateofcharge"]; sg.EventID != "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02" {
		t.Fatalf("state of charge = %+v, want the event's", sg)
	}
	// Without handlers nothing is claimed: the record that lost the race
	// finds its writes refused, as not newer, and succeeds with nothing
	// applied; the redeliveries find the event's own entries stored.
	dups, done := s.logs.Count("processing.duplicate"), s.logs.Count("processing.succeeded")
	if dups < 2 || dups+done+deferred != 4 {
		t.Errorf("%d processing.duplicate, %d succeeded, %d deferred lines for 4 records; want the 2 redeliveries duplicates", dups, done, deferred)
	}
	if n := s.logs.Count("processing.failed"); n != 0 {
		t.Errorf("%d processing.failed lines for duplicates", n)
	}
}

// faultyClient fails DynamoDB requests that mention a marker, as a
// throttled or failing DynamoDB would.
type faultyClient struct {
	next   aws.HTTPClient
	marker string
}

func (c faultyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte(c.marker)) {
			return &http.Response{StatusCode: 500, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
				Body:    io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`)),
				Request: r}, nil
		}
	}
	return c.next.Do(r)
}

func TestTransientErrorFailsOnlyItsRecord(t *testing.T) {
	s := newProcessorStack(t)
	s.awsCfg.HTTPClient = faultyClient{next: s.awsCfg.HTTPClient, marker: "flaky-vehicle"}
	s.awsCfg.RetryMaxAttempts = 1
	flaky := strings.Replace(string(samples.MustRead("bodies/vehicle_error.json")), vehicleID, "flaky-vehicle", 1)
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "good", Body: string(samples.MustRead("bodies/vehicle_state.json")), Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "flaky", Body: flaky, Attributes: map[string]string{"ApproximateReceiveCount": "4"}},
	}}
	raw, _ := json.Marshal(ev)
	resp := s.invoke(t, raw)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "flaky" {
		t.Fatalf("batchItemFailures = %v, want [flaky]", resp.BatchItemFailures)
	}
	if st, _ := s.store.GetVehicle(context.Background(), vehicleID); st.Source != vehicle.SourceEntries || len(st.Signals) != 3 {
		t.Error("the good record was not processed")
	}
	// Its fourth receive was the last: the log says why the DLQ will hold it.
	if s.logs.Count("processing.dead_lettered") == 0 || !strings.Contains(s.logs.String(), "injected") {
		t.Errorf("no dead_lettered line with the reason:\n%s", s.logs)
	}
}

func TestLoadProcessorConfig(t *testing.T) {
	_, err := LoadProcessorConfig(func(k string) string {
		return map[string]string{"IDEMPOTENCY_TTL": "forever", "LEASE_DURATION": "0"}[k]
	})
	for _, name := range []string{"EVENTS_TABLE", "STATE_TABLE", "DLQ_URL", "IDEMPOTENCY_TTL", "LEASE_DURATION"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	for _, tt := range []struct {
		lease, visibility string
		ok                bool
	}{{"30s", "", false}, {"45s", "", false}, {"29s", "", true}, {"45s", "60s", true}, {"2s", "3s", true}, {"3s", "3s", false}} {
		_, err := LoadProcessorConfig(func(k string) string {
			return map[string]string{"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "q",
				"LEASE_DURATION": tt.lease, "QUEUE_VISIBILITY_TIMEOUT": tt.visibility}[k]
		})
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "LEASE_DURATION")) {
			t.Errorf("LEASE_DURATION=%s with visibility %q: %v", tt.lease, tt.visibility, err)
		}
	}
	cfg, err := LoadProcessorConfig(func(k string) string {
		return map[string]string{"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "q"}[k]
	})
	if err != nil || cfg.IdempotencyTTL.Hours() != 15*24 || cfg.DLQRetention.Hours() != 14*24 || cfg.Lease.Seconds() != 15 || cfg.MaxReceiveCount != 4 ||
		cfg.LegacyStateTable != "" {
		t.Errorf("defaults = %+v, %v", cfg, err)
	}
}

// TestLegacyStateTableWired: with LEGACY_STATE_TABLE set, a vehicle stored
// in the legacy one-item table is moved by its next event, nothing lost.
func TestLegacyStateTableWired(t *testing.T) {
	s := newProcessorStack(t)
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(s.awsCfg)
	legacy := s.env["STATE_TABLE"] + "-legacy"
	if err := dynamostore.CreateLegacyTable(ctx, ddb, legacy); err != nil {
		t.Fatal(err)
	}
	// A legacy item, as the one-item layout stored it.
	item := map[string]types.AttributeValue{
		"vehicleId": &types.AttributeValueMemberS{Value: vehicleID}, "make": &types.AttributeValueMemberS{Value: "TESLA"},
		"version": &types.AttributeValueMemberN{Value: "9"}, "lastDeliveredAt": &types.AttributeValueMemberN{Value: "1767225000000"},
		"errors": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
		"signals": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"odometer-traveleddistance": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"name": &types.AttributeValueMemberS{Value: "TraveledDistance"}, "status": &types.AttributeValueMemberS{Value: "SUCCESS"},
				"body":      &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"value": &types.AttributeValueMemberN{Value: "12345.6"}}},
				"orderedAt": &types.AttributeValueMemberN{Value: "1767225000000"}, "oemUpdatedAt": &types.AttributeValueMemberN{Value: "1767225000000"},
				"retrievedAt": &types.AttributeValueMemberN{Value: "0"},
			}},
		}},
	}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(legacy), Item: item}); err != nil {
		t.Fatal(err)
	}
	s.env["LEGACY_STATE_TABLE"] = legacy
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: string(samples.MustRead("bodies/vehicle_state.json")),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
	raw, _ := json.Marshal(ev)
	if resp := s.invoke(t, raw); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batchItemFailures = %v\n%s", resp.BatchItemFailures, s.logs)
	}
	st, err := s.store.GetVehicle(ctx, vehicleID) // a store without the legacy table: the entries alone
	if err != nil || st.Source != vehicle.SourceEntries || len(st.Signals) != 4 ||
		st.Signals["odometer-traveleddistance"].Body["value"] != json.Number("12345.6") || st.Signals["charge-ischarging"].Body["value"] != true {
		t.Fatalf("vehicle = %+v, %v: want the legacy signal moved beside the event's three", st, err)
	}
}

// TestProcessorConfigIdempotencyTTL: eventIds must be remembered a day
// beyond the dead-letter queue's retention, or a message redriven from it
// runs its event's handlers again. Before, the default was 7 days against
// the DLQ's 14, and nothing checked.
func TestProcessorConfigIdempotencyTTL(t *testing.T) {
	tests := []struct {
		ttl, retention string
		wantErr        []string // substrings of the error; none means valid
	}{
		{"", "", nil}, // the defaults: 15 days against 14
		{"360h", "", nil},
		{"1296000", "", nil}, // 15 days in seconds
		{"359h59m59s", "", []string{"IDEMPOTENCY_TTL: 359h59m59s", "DLQ_RETENTION, 336h0m0s", "360h0m0s"}},
		{"168h", "", []string{"IDEMPOTENCY_TTL: 168h0m0s", "DLQ_RETENTION, 336h0m0s"}}, // the old default
		{"", "360h", []string{"IDEMPOTENCY_TTL: 360h0m0s", "DLQ_RETENTION, 360h0m0s", "384h0m0s"}},
		{"96h", "72h", nil},
		{"95h", "72h", []string{"IDEMPOTENCY_TTL: 95h0m0s", "DLQ_RETENTION, 72h0m0s"}},
		{"", "soon", []string{"DLQ_RETENTION", "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.ttl+"/"+tt.retention, func(t *testing.T) {
			_, err := LoadProcessorConfig(func(k string) string {
				return map[string]string{"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "q",
					"IDEMPOTENCY_TTL": tt.ttl, "DLQ_RETENTION": tt.retention}[k]
			})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("IDEMPOTENCY_TTL=%q DLQ_RETENTION=%q: %v", tt.ttl, tt.retention, err)
				}
				return
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("IDEMPOTENCY_TTL=%q DLQ_RETENTION=%q: error %v, want it to say %q", tt.ttl, tt.retention, err, want)
				}
			}
		})
	}
	// Both start-up rules are reported at once.
	_, err := LoadProcessorConfig(func(k string) string {
		return map[string]string{"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "q", "LEASE_DURATION": "1m", "IDEMPOTENCY_TTL": "1h"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "LEASE_DURATION") || !strings.Contains(err.Error(), "IDEMPOTENCY_TTL") {
		t.Errorf("error %v, want both LEASE_DURATION and IDEMPOTENCY_TTL", err)
	}
}
