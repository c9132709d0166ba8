package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dlq"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents/domaineventstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const (
	token          = "e2e-token"
	exampleVehicle = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s: %s", limit, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stateEvent is a VEHICLE_STATE for vehicleID with one signal at oem ms.
func stateEvent(eventID, vehicleID string, value int, oem int64) []byte {
	return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_STATE","data":{"user":{"id":"u"},"vehicle":{"id":%q,"make":"VW","model":"ID.4","year":2023},"signals":[{"code":"odometer-traveleddistance","name":"TraveledDistance","group":"Odometer","body":{"value":%d,"unit":"km"},"meta":{"oemUpdatedAt":%d,"retrievedAt":%d},"status":{"value":"SUCCESS"}}]},"meta":{"deliveryId":%q,"deliveredAt":%d,"mode":"TEST","version":"4.0"}}`,
		eventID, vehicleID, value, oem, oem+100, delivery.NewID(), oem+500))
}

// getenv reads variables from m, as a function's configuration reads them
// from its environment.
func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// pipeline is the local stack's pieces, running in the test: the
// gateway on a free port serving the receiver, the event source feeding
// the processor from the queue, and the stream source feeding the
// publisher from the state table's stream.
type pipeline struct {
	cfg  aws.Config
	res  devstack.Resources
	url  string              // the webhook URL
	logs *loggingtest.Buffer // the processor's
}

// deliver posts body to the gateway as Smartcar does, with a fresh
// deliveredAt, and returns the bytes sent; an error or a status other than
// 200 ends the test.
func (p *pipeline) deliver(t *testing.T, body []byte) []byte {
	t.Helper()
	b := delivery.Rewrite{DeliveredAt: time.Now()}.Apply(body)
	r, err := delivery.Send(context.Background(), &http.Client{Timeout: 15 * time.Second}, p.url, token, b)
	if err != nil || r.Status != 200 {
		t.Fatalf("deliver: %v, status %d", err, r.Status)
	}
	return b
}

// published returns the domain events the subscriber's queue received,
// as sorted strings: at least want of them, then any more that arrive
// within 1.5 s, when the stream has surely been read. check, if set, is
// called with each.
func (p *pipeline) published(t *testing.T, what string, want int, check func(domaineventstest.BusEvent)) []string {
	t.Helper()
	q := sqs.NewFromConfig(p.cfg)
	var got []string
	drain := func() {
		for _, ev := range domaineventstest.Drain(t, q, p.res.EventsTailQueueURL, 0) {
			if check != nil {
				check(ev)
			}
			got = append(got, ev.String())
		}
	}
	eventually(t, 30*time.Second, what, func() (bool, string) {
		drain()
		return len(got) >= want, fmt.Sprintf("%d of %d events: %v", len(got), want, got)
	})
	time.Sleep(1500 * time.Millisecond)
	drain()
	sort.Strings(got)
	return got
}

// startPipeline provisions a stack named after the test and runs it, with
// the processor's handlers, until the test ends.
func startPipeline(t *testing.T, name string, handlers ...processor.Handler) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, token, devstack.Options{Prefix: awstest.Name(t, name) + "-"})
	if err != nil {
		t.Fatal(err)
	}
	recv, err := functions.NewReceiver(getenv(res.ReceiverEnv()), cfg, &loggingtest.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &loggingtest.Buffer{}
	proc, err := functions.NewProcessor(getenv(res.ProcessorEnv()), cfg, logs, handlers...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- devstack.Serve(ctx, ln, lambda.NewHandler(recv)) }()
	pub, err := functions.NewPublisher(getenv(res.PublisherEnv()), cfg, &loggingtest.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	poller := &devstack.Poller{SQS: sqs.NewFromConfig(cfg), QueueURL: res.QueueURL, QueueARN: res.QueueARN, Handler: lambda.NewHandler(proc)}
	polled, streamed := make(chan struct{}), make(chan struct{})
	go func() { poller.Run(ctx); close(polled) }()
	streams := &devstack.StreamPoller{Streams: dynamodbstreams.NewFromConfig(cfg), StreamARN: res.StateStreamARN, Handler: lambda.NewHandler(pub)}
	go func() { streams.Run(ctx); close(streamed) }()
	t.Cleanup(func() { cancel(); <-polled; <-streamed; <-served })
	return &pipeline{cfg: cfg, res: res, url: "http://" + ln.Addr().String() + receiver.PathWebhook, logs: logs}
}

// TestLocalPipelineEndToEnd runs the local stack's pieces (the emulator,
// the gateway on a free port, the event source poller, both functions) and
// drives them over HTTP as Smartcar would.
func TestLocalPipelineEndToEnd(t *testing.T) {
	ctx := context.Background()
	// A user handler that parks events of vehicles not yet enrolled, until
	// the "repair" below enrolls them.
	// It counts the effects of each event.
	var enrolled atomic.Bool
	var effectsMu sync.Mutex
	effects := map[string]int{}
	gate := processor.HandlerFunc(func(_ context.Context, ev smartcar.Event, _ processor.Claim) error {
		if ev.VehicleID == "v-unenrolled" && !enrolled.Load() {
			return processor.Permanent(errors.New("vehicle not enrolled"))
		}
		effectsMu.Lock()
		effects[ev.EventID]++
		effectsMu.Unlock()
		return nil
	})
	p := startPipeline(t, "e2e", gate)
	cfg, res, logs, url := p.cfg, p.res, p.logs, p.url
	client := &http.Client{Timeout: 15 * time.Second}
	post := func(b []byte, tok string, wantStatus int) delivery.Result {
		t.Helper()
		r, err := delivery.Send(ctx, client, url, tok, b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != wantStatus {
			t.Fatalf("status %d, want %d: %s", r.Status, wantStatus, r.Body)
		}
		return r
	}
	// send delivers b as Smartcar does: meta.deliveredAt is set anew on
	// every delivery attempt, inside the signed body.
	send := func(b []byte, tok string, wantStatus int) delivery.Result {
		t.Helper()
		return post(delivery.Rewrite{DeliveredAt: time.Now()}.Apply(b), tok, wantStatus)
	}

	// VERIFY, unsigned as Smartcar may send it.
	verify := send(events.MustRead("bodies/verify.json"), "", 200)
	if want := smartcar.HashChallenge(token, "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74"); !strings.Contains(string(verify.Body), want) {
		t.Fatalf("VERIFY answered %s, want %s", verify.Body, want)
	}
	// State and error events, the state one delivered twice (a Smartcar
	// retry: same eventId, new deliveryId and deliveredAt).
	send(events.MustRead("bodies/vehicle_state.json"), token, 200)
	send(events.MustRead("bodies/vehicle_error.json"), token, 200)
	retry := delivery.Rewrite{DeliveryID: delivery.NewID(), DeliveredAt: time.Now()}.Apply(events.MustRead("bodies/vehicle_state.json"))
	send(retry, token, 200)
	// An out-of-order pair: the newer reading arrives first.
	send(stateEvent("newer", "v-ooo", 200, 1767300000000), token, 200)
	send(stateEvent("older", "v-ooo", 100, 1767200000000), token, 200)
	// A captured delivery replayed two hours later is refused, though its
	// signature is valid.
	post(delivery.Rewrite{DeliveredAt: time.Now().Add(-2 * time.Hour)}.Apply(stateEvent("replayed", "v-replay", 1, 1767200000000)), token, 401)
	// A forged delivery, a poison body, and an event the user logic parks.
	send(events.MustRead("bodies/vehicle_state.json"), "not-the-token", 401)
	send([]byte(`{"eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v-poison"}}}`), token, 200)
	send(stateEvent("unenrolled-1", "v-unenrolled", 5, 1767200000000), token, 200)

	store := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable)
	get := func(id string) *vehicle.State {
		st, err := store.GetVehicle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	queue := dlq.Queue{API: sqs.NewFromConfig(cfg), DLQURL: res.DLQURL, DLQARN: res.DLQARN, QueueURL: res.QueueURL, QueueARN: res.QueueARN}
	eventually(t, 30*time.Second, "both events applied and two records dead-lettered", func() (bool, string) {
		st := get(exampleVehicle)
		msgs, _ := queue.List(ctx, 0)
		applied := len(st.Errors) == 2 && st.Signals["tractionbattery-stateofcharge"].EventID != ""
		return applied && get("v-ooo").Exists() && len(msgs) == 2,
			fmt.Sprintf("example vehicle: %d errors, %d signals; DLQ %d", len(st.Errors), len(st.Signals), len(msgs))
	})

	st := get(exampleVehicle)
	if st.Signals["tractionbattery-stateofcharge"].Body["value"] != json.Number("63") || !st.NeedsReauth ||
		st.Errors["VEHICLE_STATE:UNREACHABLE"].State != "ERROR" || st.Make != "TESLA" {
		t.Errorf("example vehicle state: %+v", st)
	}
	effectsMu.Lock()
	if n := effects["4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"]; n != 1 {
		t.Errorf("the state event had %d effects: the duplicate had an effect", n)
	}
	effectsMu.Unlock()
	if got := get("v-ooo").Signals["odometer-traveleddistance"].Body["value"]; got != json.Number("200") {
		t.Errorf("out-of-order pair left odometer %v, want the newer 200", got)
	}
	msgs, err := queue.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range msgs {
		reasons[m.Attributes["vehicleId"]] = m.FailureReason
	}
	if !strings.Contains(reasons["v-poison"], "no eventId") || !strings.Contains(reasons["v-unenrolled"], "not enrolled") {
		t.Fatalf("DLQ reasons = %v", reasons)
	}

	// Repair, then redrive the parked event: it succeeds.
	enrolled.Store(true)
	moved, err := queue.Redrive(ctx, "unenrolled-1")
	if err != nil || moved.Moved != 1 {
		t.Fatalf("redrive = %+v, %v", moved, err)
	}
	eventually(t, 30*time.Second, "the redriven event applied", func() (bool, string) {
		st := get("v-unenrolled")
		return st.Exists(), fmt.Sprintf("v-unenrolled stored: %v", st.Exists())
	})
	msgs, _ = queue.List(ctx, 0)
	if len(msgs) != 1 || msgs[0].Attributes["vehicleId"] != "v-poison" {
		t.Fatalf("DLQ after redrive holds %d messages, want only the poison body", len(msgs))
	}
	// Redriving a body that can never succeed parks it again, once: the
	// redrive moves what was there and does not chase the new copy.
	again, err := queue.Redrive(ctx, "")
	if err != nil || (again.TaskHandle == "" && again.Moved != 1) {
		t.Fatalf("redrive all = %+v, %v", again, err)
	}
	eventually(t, 30*time.Second, "the poison body parked again", func() (bool, string) {
		msgs, _ := queue.List(ctx, 0)
		return len(msgs) == 1 && msgs[0].MessageID != "" && msgs[0].FailureReason != "", fmt.Sprintf("DLQ holds %d", len(msgs))
	})
	if logs.Count("processing.succeeded") == 0 || !strings.Contains(logs.String(), `"eventId":"unenrolled-1"`) {
		t.Error("no processing.succeeded log line for the redriven event")
	}
}
