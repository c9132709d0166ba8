package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// stack provisions a local stack on the emulator and returns its
// resources, an SQS client, and a function that publishes an event as
// the publisher does.
func stack(t *testing.T) (devstack.Resources, *sqs.Client, func(detailType, detail string, at time.Time)) {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: awstest.Name(t, "tail") + "-"})
	if err != nil {
		t.Fatal(err)
	}
	eb := eventbridge.NewFromConfig(cfg)
	publish := func(detailType, detail string, at time.Time) {
		t.Helper()
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: aws.String(res.EventBusName), Source: aws.String(res.EventSource),
			DetailType: aws.String(detailType), Detail: aws.String(detail), Time: aws.Time(at),
		}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("put events: %+v, %v", out, err)
		}
	}
	return res, sqs.NewFromConfig(cfg), publish
}

func count(t *testing.T, q *sqs.Client, url string) int {
	t.Helper()
	out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 0})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Messages)
}

// TestTailPrintsInOrderAndDeletes: the events on the queue are printed
// one line each, in the order of their times, with the detail's ids (a
// nested one found, a missing one "-"), the detail under each with
// -detail; they are deleted, or with -keep left.
func TestTailPrintsInOrderAndDeletes(t *testing.T) {
	res, q, publish := stack(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	publish("VehicleSignalChanged", `{"vehicleId":"v1","eventId":"e2","idempotencyKey":"k2","signal":{"code":"odometer","value":12.5}}`, t0.Add(time.Minute))
	publish("VehicleErrorRaised", `{"eventId":"e1","meta":{"vehicleId":"v0","idempotencyKey":"k1"}}`, t0)
	publish("VehicleDetailsChanged", `{"eventId":"e3","count":12345678901234567890}`, t0.Add(2*time.Minute))

	for _, keep := range []bool{true, false} {
		var out, errOut bytes.Buffer
		if err := tail(context.Background(), q, options{queueURL: res.EventsTailQueueURL, detail: true, keep: keep}, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		want := "2026-05-01T12:00:00Z  VehicleErrorRaised  vehicleId=v0  eventId=e1  idempotencyKey=k1\n" +
			`  {"eventId":"e1","meta":{"idempotencyKey":"k1","vehicleId":"v0"}}` + "\n" +
			"2026-05-01T12:01:00Z  VehicleSignalChanged  vehicleId=v1  eventId=e2  idempotencyKey=k2\n" +
			`  {"eventId":"e2","idempotencyKey":"k2","signal":{"code":"odometer","value":12.5},"vehicleId":"v1"}` + "\n" +
			"2026-05-01T12:02:00Z  VehicleDetailsChanged  vehicleId=-  eventId=e3  idempotencyKey=-\n" +
			`  {"count":12345678901234567890,"eventId":"e3"}` + "\n"
		if out.String() != want {
			t.Errorf("keep=%v: printed\n%s\nwant\n%s", keep, out.String(), want)
		}
		if !strings.Contains(errOut.String(), "3 event(s)") {
			t.Errorf("stderr %q", errOut.String())
		}
	}
	if n := count(t, q, res.EventsTailQueueURL); n != 0 {
		t.Errorf("%d messages left after a run without -keep", n)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTailFollow: -follow prints events as they come until its context
// ends, then returns without error.
func TestTailFollow(t *testing.T) {
	res, q, publish := stack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- tail(ctx, q, options{queueURL: res.EventsTailQueueURL, follow: true, wait: 2 * time.Second}, &out, &errOut)
	}()
	publish("VehicleSignalChanged", `{"vehicleId":"v1","eventId":"e1","idempotencyKey":"k1"}`, time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "eventId=e1") {
		if time.Now().After(deadline) {
			t.Fatalf("not printed: %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
	if n := count(t, q, res.EventsTailQueueURL); n != 0 {
		t.Errorf("%d messages left", n)
	}
}

// TestDeployedStackExplains: a deployed stack has no queue for the tool:
// it says how to subscribe one.
func TestDeployedStackExplains(t *testing.T) {
	err := noQueue(devstack.Target{Stack: "S"}, devstack.Resources{EventBusName: "bus-1", EventSource: devstack.EventSource})
	for _, s := range []string{"bus-1", `{"source":["smartcar-webhook-receiver"]}`, "put-rule", "put-targets", "events.amazonaws.com", "-queue"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("message lacks %q: %v", s, err)
		}
	}
	if err := noQueue(devstack.Target{Stack: "S"}, devstack.Resources{}); err == nil || !strings.Contains(err.Error(), "EventBusName") {
		t.Errorf("stack without a bus: %v", err)
	}
}
