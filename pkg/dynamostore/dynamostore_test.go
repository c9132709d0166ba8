package dynamostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/storetest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// requestCounter counts DynamoDB requests by operation.
type requestCounter struct {
	mu   sync.Mutex
	ops  map[string]int
	next aws.HTTPClient
}

func (c *requestCounter) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return c.next.Do(r)
}

func (c *requestCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = map[string]int{}
	return ops
}

// newStore creates fresh tables in the emulator and returns a store over
// them, with a counter of its requests.
func newStore(t *testing.T) (*dynamostore.Store, *requestCounter) {
	return newStoreTB(t)
}

func newStoreTB(t testing.TB) (*dynamostore.Store, *requestCounter) {
	t.Helper()
	cfg := awstest.Config(t)
	counter := &requestCounter{ops: map[string]int{}, next: cfg.HTTPClient}
	cfg.HTTPClient = counter
	client := dynamodb.NewFromConfig(cfg)
	events, vehicles := createTables(t, client)
	counter.reset()
	return dynamostore.New(client, events, vehicles), counter
}

// createTables creates a fresh events table and vehicle-state table in the
// emulator, named after the test, and returns their names.
func createTables(tb testing.TB, client *dynamodb.Client) (events, vehicles string) {
	tb.Helper()
	events, vehicles = awstest.Name(tb, "ev"), awstest.Name(tb, "veh")
	if err := dynamostore.CreateTables(context.Background(), client, events, vehicles); err != nil {
		tb.Fatal(err)
	}
	ttl, err := client.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(events)})
	if err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != dynamostore.TTLAttribute {
		tb.Fatalf("TTL not enabled on %s: %+v, %v", events, ttl, err)
	}
	return events, vehicles
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, _ := newStore(t)
		return s
	})
}

func newProcessor(store *dynamostore.Store, dlq processor.DeadLetterQueue, extra ...processor.Handler) *processor.Processor {
	return processor.New(store, processor.NewStateFinisher(store, nil, nil), dlq, extra, processor.Options{Concurrency: 10, Logger: testLogger})
}

func body(eventID, vehicleID string, oem int64, signals map[string]int) []byte {
	var sigs []string
	for code, v := range signals {
		sigs = append(sigs, fmt.Sprintf(`{"code":%q,"name":"N","group":"G","body":{"value":%d},"meta":{"oemUpdatedAt":%d},"status":{"value":"SUCCESS"}}`, code, v, oem))
	}
	return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_STATE","data":{"vehicle":{"id":%q},"signals":[%s]},"meta":{"deliveredAt":%d}}`,
		eventID, vehicleID, strings.Join(sigs, ","), oem+1000))
}

func value(t *testing.T, s *dynamostore.Store, vehicleID, code string) string {
	t.Helper()
	st, err := s.GetVehicle(context.Background(), vehicleID)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(st.Signals[code].Body["value"])
}

func TestWriteRequestsPer85SignalEvent(t *testing.T) {
	store, counter := newStore(t)
	signals := map[string]int{}
	for i := range 85 {
		signals[fmt.Sprintf("group%d-signal", i)] = i
	}
	p := newProcessor(store, &processortest.DLQ{})
	if failed := p.ProcessBatch(context.Background(), []processor.Record{{MessageID: "m", Body: body("e85", "v85", 1000, signals), ReceiveCount: 1}}); len(failed) != 0 {
		t.Fatal(failed)
	}
	ops := counter.reset()
	t.Logf("DynamoDB requests for a vehicle's first 85-signal event: %v", ops)
	if w := writes(ops); w != 86 || ops["Query"] != 1 || ops["GetItem"] != 0 {
		t.Fatalf("%d write requests %v, want 86 (85 signals, the vehicle; no claim without handlers) and one Query", w, ops)
	}
	// The next event changes one signal: only that one is written.
	signals["group7-signal"] = 1000
	next := strings.Replace(string(body("e85b", "v85", 2000, signals)), `"oemUpdatedAt":2000`, `"oemUpdatedAt":1000`, -1)
	next = strings.Replace(next, `"body":{"value":1000},"meta":{"oemUpdatedAt":1000}`, `"body":{"value":1000},"meta":{"oemUpdatedAt":2000}`, 1)
	if failed := p.ProcessBatch(context.Background(), []processor.Record{{MessageID: "m2", Body: []byte(next), ReceiveCount: 1}}); len(failed) != 0 {
		t.Fatal(failed)
	}
	ops = counter.reset()
	if w := writes(ops); w != 1 || ops["Query"] != 1 {
		t.Fatalf("%d write requests %v for one changed signal, want the signal's alone and one Query", w, ops)
	}
	if got := value(t, store, "v85", "group84-signal"); got != "84" {
		t.Fatalf("signal 84 = %s", got)
	}
	if got := value(t, store, "v85", "group7-signal"); got != "1000" {
		t.Fatalf("signal 7 = %s, want 1000", got)
	}
}

func writes(ops map[string]int) int {
	return ops["UpdateItem"] + ops["PutItem"] + ops["TransactWriteItems"] + ops["DeleteItem"] + ops["BatchWriteItem"]
}

// TestFiveHundredSignalEvent: an event may carry any number of signals;
// 500 are stored, through the strict layer that refuses what AWS refuses.
func TestFiveHundredSignalEvent(t *testing.T) {
	store, counter := newStore(t)
	signals := map[string]int{}
	for i := range 500 {
		signals[fmt.Sprintf("group%d-signal%d", i, i)] = i
	}
	dlq := &processortest.DLQ{}
	if failed := newProcessor(store, dlq).ProcessBatch(context.Background(), []processor.Record{{MessageID: "m", Body: body("e500", "v500", 1000, signals), ReceiveCount: 1}}); len(failed) != 0 || len(dlq.Letters()) != 0 {
		t.Fatalf("failed %v, dead letters %+v", failed, dlq.Letters())
	}
	st, err := store.GetVehicle(context.Background(), "v500")
	if err != nil || len(st.Signals) != 500 {
		t.Fatalf("%d signals stored, %v; want 500", len(st.Signals), err)
	}
	for code, v := range signals {
		if got := fmt.Sprint(st.Signals[code].Body["value"]); got != fmt.Sprint(v) {
			t.Fatalf("%s = %s, want %d", code, got, v)
		}
	}
	t.Logf("requests: %v", counter.reset())
}

func TestSameEventFiveTimesConcurrentlyOneEffect(t *testing.T) {
	store, _ := newStore(t)
	var mu sync.Mutex
	effects := 0
	counter := processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error {
		mu.Lock()
		effects++
		mu.Unlock()
		return nil
	})
	p := newProcessor(store, &processortest.DLQ{}, counter)
	b := body("dup", "vdup", 1000, map[string]int{"a": 1})
	var records []processor.Record
	for i := range 5 {
		records = append(records, processor.Record{MessageID: fmt.Sprint("m", i), Body: b, ReceiveCount: 1})
	}
	// Duplicates that find the event in progress are retried, as the queue
	// would after the visibility timeout; by then it is completed.
	failed := p.ProcessBatch(context.Background(), records)
	if failed := p.ProcessBatch(context.Background(), processortest.Redeliveries(records, failed)); len(failed) != 0 {
		t.Fatalf("retries failed %v: a duplicate of a completed event must be acknowledged", failed)
	}
	if effects != 1 {
		t.Fatalf("%d effects, want 1", effects)
	}
	if st, _ := store.GetVehicle(context.Background(), "vdup"); st.Signals["a"].EventID != "dup" || value(t, store, "vdup", "a") != "1" {
		t.Fatalf("vehicle = %+v", st)
	}
}

func TestOlderEventLastChangesNothingAndMixedMerge(t *testing.T) {
	store, counter := newStore(t)
	p := newProcessor(store, &processortest.DLQ{})
	ctx := context.Background()
	p.ProcessBatch(ctx, []processor.Record{{MessageID: "1", Body: body("new", "vo", 2000, map[string]int{"soc": 60, "odo": 100}), ReceiveCount: 1}})
	before, _ := store.GetVehicle(ctx, "vo")
	counter.reset()
	p.ProcessBatch(ctx, []processor.Record{{MessageID: "2", Body: body("old", "vo", 1000, map[string]int{"soc": 50, "odo": 90}), ReceiveCount: 1}})
	after, _ := store.GetVehicle(ctx, "vo")
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("older event changed the state:\n%+v\n%+v", before, after)
	}
	if ops := counter.reset(); writes(ops) != 0 {
		t.Errorf("an all-stale event wrote %v, want nothing", ops)
	}
	// An older event with one newer signal: merged per signal.
	mixed := []byte(strings.Replace(string(body("mixed", "vo", 1000, map[string]int{"soc": 40, "odo": 150})), `"odo","name":"N","group":"G","body":{"value":150},"meta":{"oemUpdatedAt":1000}`, `"odo","name":"N","group":"G","body":{"value":150},"meta":{"oemUpdatedAt":3000}`, 1))
	p.ProcessBatch(ctx, []processor.Record{{MessageID: "3", Body: mixed, ReceiveCount: 1}})
	if soc, odo := value(t, store, "vo", "soc"), value(t, store, "vo", "odo"); soc != "60" || odo != "150" {
		t.Fatalf("soc=%s odo=%s, want 60 and 150", soc, odo)
	}
}

func TestConcurrentEventsSameVehicle(t *testing.T) {
	store, _ := newStore(t)
	p := newProcessor(store, &processortest.DLQ{})
	var records []processor.Record
	for i := range 10 {
		records = append(records, processor.Record{MessageID: fmt.Sprint(i), Body: body(fmt.Sprint("c", i), "vc", 1000, map[string]int{fmt.Sprint("s", i): i}), ReceiveCount: 1})
	}
	if failed := p.ProcessBatch(context.Background(), records); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	for i := range 10 {
		if got := value(t, store, "vc", fmt.Sprint("s", i)); got != fmt.Sprint(i) {
			t.Errorf("s%d = %s: lost update", i, got)
		}
	}
}

func TestCrashAfterClaimFinishedOnceStaleWriteRefused(t *testing.T) {
	store, counter := newStore(t)
	ctx := context.Background()
	b := body("crash", "vx", 1000, map[string]int{"a": 1})
	// The first worker claims and dies, its lease already over.
	stale, out, err := store.Claim(ctx, processor.ClaimRequest{EventID: "crash", Now: time.Now().Add(-time.Minute), Lease: 15 * time.Second, TTL: time.Hour})
	if err != nil || out != processor.Claimed {
		t.Fatal(out, err)
	}
	// A handler makes the processor claim events.
	p := newProcessor(store, &processortest.DLQ{}, processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error { return nil }))
	if failed := p.ProcessBatch(ctx, []processor.Record{{MessageID: "m", Body: b, ReceiveCount: 2}}); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if got := value(t, store, "vx", "a"); got != "1" {
		t.Fatalf("retry did not apply the event: %s", got)
	}
	// The stale worker wakes up with its merge of the empty state it read
	// and writes it: nothing older is left to replace.
	before, _ := store.GetVehicle(ctx, "vx")
	ev, _ := smartcar.ParseEvent(b)
	old := vehicle.New("vx")
	ch := old.Apply(ev, time.Now()).Changes
	ch.All = true
	if w, err := store.WriteEntries(ctx, old, ch); err != nil || w.Stored > 1 {
		t.Fatalf("stale worker's write stored %+v, %v: want nothing but the same details", w, err)
	}
	if err := store.Complete(ctx, stale, time.Now()); err != processor.ErrFenceLost {
		t.Fatalf("stale worker's complete = %v, want ErrFenceLost", err)
	}
	if got, _ := store.GetVehicle(ctx, "vx"); got.Signals["a"].EventID != "crash" || value(t, store, "vx", "a") != "1" || got.Make != before.Make {
		t.Fatalf("stale write changed the state: %+v", got)
	}
	// And a redelivery after completion is a duplicate: its claim is its
	// only write.
	counter.reset()
	if failed := p.ProcessBatch(ctx, []processor.Record{{MessageID: "m", Body: b, ReceiveCount: 3}}); len(failed) != 0 {
		t.Fatal(failed)
	}
	if ops := counter.reset(); writes(ops) != 1 || ops["Query"] != 0 {
		t.Fatalf("a duplicate made %v, want its claim alone", ops)
	}
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// loseFirstAnswer lets the first request of an operation reach DynamoDB
// and then loses its answer, as a timeout or reset after the write would.
type loseFirstAnswer struct {
	next aws.HTTPClient
	op   string
	done atomic.Bool
}

func (l *loseFirstAnswer) Do(r *http.Request) (*http.Response, error) {
	resp, err := l.next.Do(r)
	if err == nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+l.op) && l.done.CompareAndSwap(false, true) {
		resp.Body.Close()
		return &http.Response{StatusCode: 500, Request: r, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
			Body: io.NopCloser(strings.NewReader(`{"__type":"InternalFailure","message":"answer lost"}`))}, nil
	}
	return resp, err
}

// TestClaimAndCompleteSurviveSDKRetries loses the answer to a claim and to
// a completion that DynamoDB applied: the SDK's retry must still see the
// event as the caller's own, not as someone else's.
func TestClaimAndCompleteSurviveSDKRetries(t *testing.T) {
	{
		cfg := awstest.Config(t)
		lose := &loseFirstAnswer{next: cfg.HTTPClient, op: "UpdateItem"}
		cfg.HTTPClient = lose
		cfg.RetryMaxAttempts = 3
		base, _ := newStore(t)
		store := dynamostore.New(dynamodb.NewFromConfig(cfg), base.EventsTable(), base.StateTable())
		ctx := context.Background()
		c, out, err := store.Claim(ctx, processor.ClaimRequest{EventID: "retried", Now: time.Now(), Lease: 15 * time.Second, TTL: time.Hour})
		if !lose.done.Load() {
			t.Fatal("no answer was lost: the test proves nothing")
		}
		if err != nil || out != processor.Claimed {
			t.Fatalf("claim whose first answer was lost = %v, %v; want Claimed", out, err)
		}
		lose.done.Store(false)
		if err := store.Complete(ctx, c, time.Now()); err != nil {
			t.Fatalf("completion whose first answer was lost = %v", err)
		}
		if _, out, _ := store.Claim(ctx, processor.ClaimRequest{EventID: "retried", Now: time.Now(), Lease: time.Second, TTL: time.Hour}); out != processor.AlreadyCompleted {
			t.Fatalf("after completion: %v", out)
		}
	}
}

// TestKeysDynamoDBCannotStoreDeadLetteredAtOnce: an eventId or vehicleId
// over DynamoDB's 2048-byte partition key limit can never be stored, so its
// record is dead-lettered on its first delivery, with the reason.
func TestKeysDynamoDBCannotStoreDeadLetteredAtOnce(t *testing.T) {
	store, _ := newStore(t)
	tests := []struct {
		name, eventID, vehicleID string
		wantReason               string // "": processed
	}{
		{"eventId 2049 bytes", strings.Repeat("e", 2049), "v-long-event", "eventId is 2049 bytes, over DynamoDB's 2048-byte partition key limit"},
		{"vehicleId 2049 bytes", "e-long-vehicle", strings.Repeat("v", 2049), "vehicleId is 2049 bytes, over DynamoDB's 2048-byte partition key limit"},
		{"vehicleId 2050 bytes of UTF-8", "e-long-utf8", strings.Repeat("é", 1025), "vehicleId is 2050 bytes"},
		{"eventId 2048 bytes", strings.Repeat("f", 2048), "v-2048-event", ""},
		{"vehicleId 2048 bytes", "e-2048-vehicle", strings.Repeat("w", 2048), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "vehicleId") {
				// Without handlers nothing is claimed: the vehicle's key is
				// refused by the state's read, as permanently.
				dlq := &processortest.DLQ{}
				failed := newProcessor(store, dlq).ProcessBatch(context.Background(), []processor.Record{{MessageID: "m-bare-" + tt.name,
					Body: body(tt.eventID+"-bare", tt.vehicleID, 1000, map[string]int{"a": 1}), ReceiveCount: 1}})
				letters := dlq.Letters()
				if len(failed) != 0 || (tt.wantReason != "" && (len(letters) != 1 || !strings.Contains(letters[0].Reason, tt.wantReason))) {
					t.Fatalf("without handlers: failed %v, dead letters %+v; want reason %q", failed, letters, tt.wantReason)
				}
			}
			dlq := &processortest.DLQ{}
			var handled atomic.Int32
			p := newProcessor(store, dlq, processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error {
				handled.Add(1)
				return nil
			}))
			failed := p.ProcessBatch(context.Background(), []processor.Record{{MessageID: "m-" + tt.name, Body: body(tt.eventID, tt.vehicleID, 1000, map[string]int{"a": 1}), ReceiveCount: 1}})
			if len(failed) != 0 {
				t.Fatalf("record failed, to be retried: a key that can never be stored must be dead-lettered at once")
			}
			if tt.wantReason != "" && handled.Load() != 0 {
				t.Errorf("users' handlers ran for an event whose state can never be stored")
			}
			letters := dlq.Letters()
			if tt.wantReason == "" {
				if len(letters) != 0 || value(t, store, tt.vehicleID, "a") != "1" {
					t.Fatalf("%d dead letters, want the event processed", len(letters))
				}
				return
			}
			if len(letters) != 1 || !strings.Contains(letters[0].Reason, tt.wantReason) {
				t.Fatalf("dead letters %d, want 1 with reason %q", len(letters), tt.wantReason)
			}
			t.Logf("reason: %s", letters[0].Reason)
		})
	}
}

// TestNumbersDynamoDBCannotHoldStoredExactly: a signal value DynamoDB's N
// type cannot hold is stored as B, the event completes, and the vehicle
// view shows the number's exact digits.
func TestNumbersDynamoDBCannotHoldStoredExactly(t *testing.T) {
	store, _ := newStore(t)
	ctx := context.Background()
	tests := []struct {
		value, wantType string
	}{
		{"63.50", "N"},
		{"0", "N"},
		{"-17", "N"},
		{"12345678901234567890123456789012345678", "N"},  // 38 digits
		{"123456789012345678901234567890123456789", "B"}, // 39
		{"123456789012345678901234567890123456789012", "B"},
		{"0.00012345678901234567890123456789012345678", "N"},
		{"9.9999999999999999999999999999999999999E+125", "N"},
		{"1E+126", "B"},
		{"1e300", "B"},
		{"-1e300", "B"},
		{"1E-130", "N"},
		{"1e-131", "B"},
		{"1" + strings.Repeat("0", 40), "B"}, // conservative: trailing zeros count
		{"0e200", "B"},
	}
	var signals []string
	for i, tt := range tests {
		signals = append(signals, fmt.Sprintf(`{"code":"s%d","name":"N","group":"G","body":{"value":%s},"meta":{"oemUpdatedAt":1000},"status":{"value":"SUCCESS"}}`, i, tt.value))
	}
	signals = append(signals, `{"code":"nested","name":"N","group":"G","body":{"value":[1e300,{"deep":-2e-200}],"unit":"x"},"meta":{"oemUpdatedAt":1000},"status":{"value":"SUCCESS"}}`)
	b := fmt.Appendf(nil, `{"eventId":"e-numbers","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v-numbers"},"signals":[%s]},"meta":{"deliveredAt":2000}}`, strings.Join(signals, ","))
	dlq := &processortest.DLQ{}
	if failed := newProcessor(store, dlq).ProcessBatch(ctx, []processor.Record{{MessageID: "m", Body: b, ReceiveCount: 1}}); len(failed) != 0 || len(dlq.Letters()) != 0 {
		t.Fatalf("failed %v, dead letters %+v: the event must complete", failed, dlq.Letters())
	}
	st, err := store.GetVehicle(ctx, "v-numbers")
	if err != nil || len(st.Signals) != len(tests)+1 {
		t.Fatalf("vehicle %+v, %v", st, err)
	}
	for i, tt := range tests {
		code := fmt.Sprint("s", i)
		if got := st.Signals[code].Body["value"]; got != json.Number(tt.value) {
			t.Errorf("%s: GetVehicle has %#v, want json.Number(%q)", tt.value, got, tt.value)
		}
		raw, err := dynamodb.NewFromConfig(awstest.Config(t)).GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(store.StateTable()), Key: map[string]types.AttributeValue{
				dynamostore.StateKey: &types.AttributeValueMemberS{Value: "v-numbers"}, dynamostore.EntryKey: &types.AttributeValueMemberS{Value: "signal#" + code}},
		})
		if err != nil {
			t.Fatal(err)
		}
		v := raw.Item["b"].(*types.AttributeValueMemberM).Value["value"]
		if typ := map[bool]string{true: "N", false: "B"}[isN(v)]; typ != tt.wantType {
			t.Errorf("%s stored as %s, want %s", tt.value, typ, tt.wantType)
		}
	}
	shown, _ := json.Marshal(st.Signals["nested"].Body)
	if string(shown) != `{"unit":"x","value":[1e300,{"deep":-2e-200}]}` {
		t.Errorf("nested body shown as %s", shown)
	}
}

func isN(v types.AttributeValue) bool {
	_, ok := v.(*types.AttributeValueMemberN)
	return ok
}
