package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// countingHandler counts the effects of each event.
type countingHandler struct {
	mu      sync.Mutex
	effects map[string]int
}

func (h *countingHandler) Handle(_ context.Context, ev smartcar.Event, _ processor.Claim) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.effects == nil {
		h.effects = map[string]int{}
	}
	h.effects[ev.EventID]++
	return nil
}

func (h *countingHandler) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.effects[id]
}

type fixture struct {
	p       *processor.Processor
	store   *processortest.Store
	dlq     *processortest.DLQ
	effects *countingHandler
	archive *processortest.Archive
	logs    *loggingtest.Buffer
	metrics *loggingtest.Buffer
	now     atomic.Int64 // unix ms
}

func newFixture(t *testing.T, extra ...processor.Handler) *fixture {
	t.Helper()
	f := &fixture{store: processortest.NewStore(), dlq: &processortest.DLQ{}, effects: &countingHandler{}, archive: &processortest.Archive{},
		logs: &loggingtest.Buffer{}, metrics: &loggingtest.Buffer{}}
	f.now.Store(time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC).UnixMilli())
	log := logging.New(f.logs, slog.LevelDebug)
	metrics := emf.NewWriter(f.metrics, "SmartcarWebhooks", map[string]string{"Service": "processor"})
	// Extra handlers run before the effect counter, so it counts only
	// events whose handlers all succeeded; the state merge finishes.
	handlers := append(extra, f.effects)
	clock := func() time.Time { return time.UnixMilli(f.now.Load()) }
	finisher := processor.NewStateFinisher(f.store, log, metrics)
	finisher.Now = clock
	f.p = processor.New(f.store, finisher, f.dlq, handlers, processor.Options{
		Archive: f.archive, Logger: log, Metrics: metrics, Now: clock,
	})
	return f
}

// newStateOnlyFixture is a processor without handlers: the state merge is
// all it does, and its ledger must never be used.
func newStateOnlyFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: processortest.NewStore(), dlq: &processortest.DLQ{}, effects: &countingHandler{}, archive: &processortest.Archive{},
		logs: &loggingtest.Buffer{}, metrics: &loggingtest.Buffer{}}
	f.now.Store(time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC).UnixMilli())
	log := logging.New(f.logs, slog.LevelDebug)
	metrics := emf.NewWriter(f.metrics, "SmartcarWebhooks", map[string]string{"Service": "processor"})
	clock := func() time.Time { return time.UnixMilli(f.now.Load()) }
	finisher := processor.NewStateFinisher(f.store, log, metrics)
	finisher.Now = clock
	f.p = processor.New(unusedLedger{t}, finisher, f.dlq, nil, processor.Options{Archive: f.archive, Logger: log, Metrics: metrics, Now: clock})
	return f
}

// unusedLedger fails the test on any call.
type unusedLedger struct{ t *testing.T }

func (l unusedLedger) Claim(context.Context, processor.ClaimRequest) (processor.Claim, processor.Outcome, error) {
	l.t.Error("Claim called without handlers")
	return processor.Claim{}, processor.Claimed, nil
}

func (l unusedLedger) Complete(context.Context, processor.Claim, time.Time) error {
	l.t.Error("Complete called without handlers")
	return nil
}

func (l unusedLedger) Release(context.Context, processor.Claim) error {
	l.t.Error("Release called without handlers")
	return nil
}

func (f *fixture) advance(d time.Duration) { f.now.Add(d.Milliseconds()) }

func rec(id string, body []byte) processor.Record {
	return processor.Record{MessageID: id, Body: body, ReceiveCount: 1}
}

// stateBody returns a VEHICLE_STATE body for vehicle v with the given
// signal values at the given oemUpdatedAt.
func stateBody(eventID, vehicleID string, oem int64, signals map[string]int) []byte {
	var sigs []string
	for code, v := range signals {
		sigs = append(sigs, fmt.Sprintf(`{"code":%q,"name":"N","group":"G","body":{"value":%d},"meta":{"oemUpdatedAt":%d,"retrievedAt":%d},"status":{"value":"SUCCESS"}}`, code, v, oem, oem))
	}
	return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_STATE","data":{"user":{"id":"u"},"vehicle":{"id":%q,"make":"M","model":"X","year":2024},"signals":[%s]},"meta":{"deliveryId":"d","deliveredAt":%d,"mode":"LIVE"}}`,
		eventID, vehicleID, strings.Join(sigs, ","), oem+1000))
}

func (f *fixture) value(t *testing.T, vehicleID, code string) string {
	t.Helper()
	st, err := f.store.GetVehicle(context.Background(), vehicleID)
	if err != nil {
		t.Fatal(err)
	}
	sg, ok := st.Signals[code]
	if !ok {
		return "<none>"
	}
	return fmt.Sprint(sg.Body["value"])
}

func TestProcessesExampleEvents(t *testing.T) {
	f := newFixture(t)
	failed := f.p.ProcessBatch(context.Background(), []processor.Record{
		rec("m1", events.MustRead("bodies/vehicle_state.json")), rec("m2", events.MustRead("bodies/vehicle_error.json")),
	})
	if len(failed) != 0 {
		t.Fatalf("failed: %v\n%s", failed, f.logs.String())
	}
	st, _ := f.store.GetVehicle(context.Background(), "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
	if st.Source != vehicle.SourceEntries || !st.NeedsReauth || st.Make != "TESLA" || len(st.Signals) != 3 || len(st.Errors) != 2 {
		t.Errorf("state = %+v", st)
	}
	if got := f.value(t, st.VehicleID, "tractionbattery-stateofcharge"); got != "63" {
		t.Errorf("state of charge = %s", got)
	}
	for _, msg := range []string{"processing.started", "processing.succeeded"} {
		if f.logs.Count(msg) != 2 {
			t.Errorf("want two %s lines", msg)
		}
	}
	for _, m := range []string{`"EventsProcessed":1`, `"EndToEndLatency":`} {
		if !strings.Contains(f.metrics.String(), m) {
			t.Errorf("no %s metric: %s", m, f.metrics.String())
		}
	}
}

func TestDuplicateSkipped(t *testing.T) {
	f := newFixture(t)
	body := events.MustRead("bodies/vehicle_state.json")
	for i := range 3 {
		if failed := f.p.ProcessBatch(context.Background(), []processor.Record{rec(fmt.Sprint("m", i), body)}); len(failed) != 0 {
			t.Fatalf("delivery %d failed", i)
		}
	}
	if n := f.effects.count("4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if !strings.Contains(f.metrics.String(), `"DuplicatesSkipped":1`) || strings.Count(f.logs.String(), "processing.duplicate") != 2 {
		t.Errorf("duplicates not counted and logged:\n%s", f.logs.String())
	}
}

// TestWithoutHandlersRedeliveriesAreDuplicates: with no handlers nothing is
// claimed; a redelivery, concurrent or later, even with Smartcar's later
// deliveredAt, is recognised from the stored state, counted as a
// duplicate and writes nothing.
func TestWithoutHandlersRedeliveriesAreDuplicates(t *testing.T) {
	for _, name := range []string{"vehicle_state", "vehicle_error"} {
		t.Run(name, func(t *testing.T) {
			f := newStateOnlyFixture(t)
			ctx := context.Background()
			body := events.MustRead("bodies/" + name + ".json")
			if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m0", body)}); len(failed) != 0 {
				t.Fatalf("first delivery failed:\n%s", f.logs)
			}
			want, _ := f.store.GetVehicle(ctx, "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
			writes := f.store.Writes()
			// Smartcar's retries carry the same body but a later deliveredAt,
			// which orders errors.
			retry := bytes.Replace(body, []byte(`"deliveredAt":`), []byte(`"deliveredAt":9`), 1)
			var records []processor.Record
			for i := range 4 {
				b := body
				if i%2 == 1 {
					b = retry
				}
				records = append(records, rec(fmt.Sprint("m", i+1), b))
			}
			if failed := f.p.ProcessBatch(ctx, records); len(failed) != 0 {
				t.Fatalf("redeliveries failed: %v\n%s", failed, f.logs)
			}
			if w := f.store.Writes() - writes; w != 0 {
				t.Errorf("redeliveries wrote %d entries, want none", w)
			}
			if got, _ := f.store.GetVehicle(ctx, want.VehicleID); !reflect.DeepEqual(got, want) {
				t.Errorf("redeliveries changed the state:\n%+v\n%+v", want, got)
			}
			if n := f.logs.Count("processing.duplicate"); n != 4 {
				t.Errorf("%d processing.duplicate lines, want 4:\n%s", n, f.logs)
			}
			if n := strings.Count(f.metrics.String(), `"DuplicatesSkipped":1`); n != 4 {
				t.Errorf("%d DuplicatesSkipped metrics, want 4:\n%s", n, f.metrics)
			}
		})
	}
}

// TestRetryAfterNewerNewsWithoutHandlers: Smartcar's retry of an applied
// VEHICLE_ERROR carries a later deliveredAt, which orders errors. Once a
// newer event has resolved the error, the retry must not re-open it: the
// event was recorded applied, and the retry is a duplicate.
func TestRetryAfterNewerNewsWithoutHandlers(t *testing.T) {
	f := newStateOnlyFixture(t)
	ctx := context.Background()
	errBody := func(id, state string, delivered int64) []byte {
		return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v"},"errors":[{"type":"PERMISSION","code":null,"state":%q,"resolution":{"type":"REAUTHENTICATE"}}]},"meta":{"deliveredAt":%d,"mode":"LIVE"}}`, id, state, delivered))
	}
	for i, b := range [][]byte{errBody("e1", "ERROR", 1000), errBody("e2", "RESOLVED", 2000), errBody("e1", "ERROR", 3000)} {
		if failed := f.p.ProcessBatch(ctx, []processor.Record{rec(fmt.Sprint("m", i), b)}); len(failed) != 0 {
			t.Fatalf("delivery %d failed:\n%s", i, f.logs)
		}
	}
	st, _ := f.store.GetVehicle(ctx, "v")
	if e := st.Errors["PERMISSION:null"]; e.State != "RESOLVED" || e.EventID != "e2" || st.NeedsReauth {
		t.Errorf("error = %+v, needsReauth %v: the retry of e1 re-opened the error e2 resolved", e, st.NeedsReauth)
	}
	if n := f.logs.Count("processing.duplicate"); n != 1 {
		t.Errorf("%d processing.duplicate lines, want the retry's", n)
	}
}

func TestConcurrentDuplicatesOneEffect(t *testing.T) {
	f := newFixture(t)
	body := events.MustRead("bodies/vehicle_state.json")
	var records []processor.Record
	for i := range 5 {
		records = append(records, rec(fmt.Sprint("m", i), body))
	}
	// A duplicate that finds the event in progress under another message
	// is retried, never acknowledged: nothing proves the holder finishes.
	failed := f.p.ProcessBatch(context.Background(), records)
	if deferred := f.logs.Count("processing.deferred"); len(failed) != deferred {
		t.Fatalf("failed %v, but %d processing.deferred lines", failed, deferred)
	}
	f.advance(30 * time.Second) // the queue's visibility timeout
	if failed := f.p.ProcessBatch(context.Background(), processortest.Redeliveries(records, failed)); len(failed) != 0 {
		t.Fatalf("retries of the deferred duplicates failed: %v", failed)
	}
	if n := f.effects.count("4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if n := f.logs.Count("processing.duplicate"); n != 4 {
		t.Errorf("%d processing.duplicate lines, want 4", n)
	}
	if len(f.dlq.Letters()) != 0 || f.logs.Count("processing.failed") != 0 {
		t.Fatalf("a duplicate was dead-lettered or logged as an error:\n%s", f.logs.String())
	}
}

// slowHandler takes its time on an event's first run, long enough for a
// copy run beside it to find the event in progress, and records how many
// runs overlapped at most.
type slowHandler struct {
	ran               sync.Map
	running, overlaps atomic.Int32
}

func (h *slowHandler) Handle(_ context.Context, ev smartcar.Event, c processor.Claim) error {
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for m := h.overlaps.Load(); n > m && !h.overlaps.CompareAndSwap(m, n); m = h.overlaps.Load() {
	}
	if _, again := h.ran.LoadOrStore(processor.EventKey(ev.EventID, c.Generation), true); !again {
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// TestCopiesInOneBatchAcknowledged: copies of an event in one batch (an
// SQS redelivery, a Smartcar retry, a replay sent twice) are acknowledged
// as duplicates at once, not deferred for a visibility timeout, while
// other events in the batch still run beside them.
func TestCopiesInOneBatchAcknowledged(t *testing.T) {
	slow := &slowHandler{}
	f := newFixture(t, slow)
	labelled := func(id, eventID, generation string, body []byte) processor.Record {
		r := rec(id, body)
		r.Attributes = map[string]string{processor.AttrEventID: eventID}
		if generation != "" {
			r.Attributes[processor.AttrReplayGeneration] = generation
		}
		return r
	}
	a, b := stateBody("a", "v1", 1000, map[string]int{"x": 1}), stateBody("b", "v2", 1000, map[string]int{"x": 2})
	records := []processor.Record{
		labelled("m0", "a", "", a), labelled("m1", "b", "", b), labelled("m2", "a", "", a),
		labelled("m3", "a", "replay-1", a), labelled("m4", "a", "", a), labelled("m5", "a", "replay-1", a),
	}
	if failed := f.p.ProcessBatch(context.Background(), records); len(failed) != 0 {
		t.Fatalf("failed %v: copies were deferred, to wait a visibility timeout:\n%s", failed, f.logs)
	}
	// Three events (a, b, and a's replay), each slow on its first run.
	if n := slow.overlaps.Load(); n != 3 {
		t.Errorf("at most %d runs at once, want 3: the batch's events ran one after another", n)
	}
	if f.effects.count("a") != 2 || f.effects.count("b") != 1 {
		t.Errorf("effects a %d (want 2: once, once replayed), b %d (want 1)", f.effects.count("a"), f.effects.count("b"))
	}
	for line, want := range map[string]int{"processing.succeeded": 2, "processing.duplicate": 2, "processing.replayed": 2, "processing.deferred": 0} {
		if n := f.logs.Count(line); n != want {
			t.Errorf("%d %s lines, want %d", n, line, want)
		}
	}
}

func TestDuplicateOfDeadHolderIsNotLost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := stateBody("e", "v", 1000, map[string]int{"a": 1})
	// A worker claims the event for message m1 and dies; m1 is gone (it was
	// dead-lettered, say). A duplicate, m2, arrives inside the lease.
	if _, out, err := f.store.Claim(ctx, processor.ClaimRequest{EventID: "e", MessageID: "m1",
		Now: time.UnixMilli(f.now.Load()), Lease: processor.DefaultLease, TTL: time.Hour}); err != nil || out != processor.Claimed {
		t.Fatal(out, err)
	}
	err := f.p.Process(ctx, rec("m2", body))
	if !errors.Is(err, processor.ErrInProgress) {
		t.Fatalf("Process(duplicate under a live lease) = %v, want ErrInProgress: acknowledging it would lose the event", err)
	}
	f.advance(30 * time.Second)
	if err := f.p.Process(ctx, rec("m2", body)); err != nil || f.effects.count("e") != 1 {
		t.Fatalf("retry after the lease = %v with %d effects, want the event applied once", err, f.effects.count("e"))
	}
}

func TestRedeliveredMessageTakesOverItsOwnClaim(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := stateBody("e", "v", 1000, map[string]int{"a": 1})
	ev, _ := smartcar.ParseEvent(body)
	// An attempt on message m claimed the event late in its visibility
	// timeout and died; the queue hands m out again inside that lease.
	stale, out, err := f.store.Claim(ctx, processor.ClaimRequest{EventID: "e", MessageID: "m",
		Now: time.UnixMilli(f.now.Load()), Lease: processor.DefaultLease, TTL: time.Hour})
	if err != nil || out != processor.Claimed {
		t.Fatal(out, err)
	}
	f.advance(5 * time.Second)
	redelivery := rec("m", body)
	redelivery.ReceiveCount = 2
	if err := f.p.Process(ctx, redelivery); err != nil || f.effects.count("e") != 1 {
		t.Fatalf("redelivery = %v with %d effects, want the event applied at once", err, f.effects.count("e"))
	}
	// The dead attempt wakes up with its merge of the empty state it read:
	// its late writes find nothing older to replace, and its completion is
	// fenced.
	lateWrite(t, f, ev, stale)
}

// lateWrite replays what a worker whose claim was taken over does last:
// it stores its merge of an old read and completes. Neither may change
// the state the retry left.
func lateWrite(t *testing.T, f *fixture, ev smartcar.Event, stale processor.Claim) {
	t.Helper()
	ctx := context.Background()
	before, _ := f.store.GetVehicle(ctx, ev.VehicleID)
	old := vehicle.New(ev.VehicleID)
	ch := old.Apply(ev, time.UnixMilli(f.now.Load())).Changes
	ch.All = true
	w, err := f.store.WriteEntries(ctx, old, ch)
	if err != nil || w.Stored > 1 { // the details, rewritten unchanged
		t.Fatalf("the late write stored %+v, %v: want nothing but the same details", w, err)
	}
	if err := f.store.Complete(ctx, stale, time.Now()); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("the late completion = %v, want ErrFenceLost", err)
	}
	if after, _ := f.store.GetVehicle(ctx, ev.VehicleID); !reflect.DeepEqual(after, before) {
		t.Fatalf("the late write changed the state:\n%+v\n%+v", before, after)
	}
}

func TestOrderingPerSignal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.p.ProcessBatch(ctx, []processor.Record{rec("m1", stateBody("new", "v", 2000, map[string]int{"soc": 60, "odo": 100}))})
	// An older event arrives last, with a newer odometer only.
	old := stateBody("old", "v", 1000, map[string]int{"soc": 50})
	mixed := []byte(strings.Replace(string(stateBody("old2", "v", 1000, map[string]int{"odo": 150})), `"oemUpdatedAt":1000`, `"oemUpdatedAt":3000`, 1))
	if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m2", old), rec("m3", mixed)}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if soc, odo := f.value(t, "v", "soc"), f.value(t, "v", "odo"); soc != "60" || odo != "150" {
		t.Errorf("soc=%s odo=%s, want 60 and 150", soc, odo)
	}
	if !strings.Contains(f.logs.String(), "state.stale_ignored") || !strings.Contains(f.metrics.String(), `"StaleSignalsIgnored":1`) {
		t.Error("stale signal not logged or counted")
	}
}

func TestConcurrentEventsSameVehicleLoseNothing(t *testing.T) {
	for name, newF := range map[string]func(*testing.T) *fixture{
		"with handlers": func(t *testing.T) *fixture { return newFixture(t) }, "without handlers": newStateOnlyFixture,
	} {
		t.Run(name, func(t *testing.T) {
			f := newF(t)
			var records []processor.Record
			for i := range 10 {
				records = append(records, rec(fmt.Sprint("m", i), stateBody(fmt.Sprint("e", i), "v", 1000, map[string]int{fmt.Sprint("sig", i): i})))
			}
			if failed := f.p.ProcessBatch(context.Background(), records); len(failed) != 0 {
				t.Fatalf("failed %v", failed)
			}
			for i := range 10 {
				if got := f.value(t, "v", fmt.Sprint("sig", i)); got != fmt.Sprint(i) {
					t.Errorf("sig%d = %s: an update was lost", i, got)
				}
			}
		})
	}
}

func TestPoisonRecordsDeadLetteredRestSucceeds(t *testing.T) {
	f := newFixture(t)
	poison := map[string]string{
		"p1": `not json`,
		"p2": `[1,2]`,
		"p3": `{"eventType":"VEHICLE_STATE","vehicleId":"v"}`,
		"p4": `{"eventId":"e","eventType":"VEHICLE_TELEPORTED","vehicleId":"v"}`,
		"p5": `{"eventId":"e","eventType":"VEHICLE_ERROR","data":{"errors":[]}}`,
	}
	records := []processor.Record{rec("good", events.MustRead("bodies/vehicle_state.json"))}
	for id, b := range poison {
		r := rec(id, []byte(b))
		r.Attributes = map[string]string{"eventId": "attr-" + id}
		records = append(records, r)
	}
	if failed := f.p.ProcessBatch(context.Background(), records); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	letters := f.dlq.Letters()
	if len(letters) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(poison))
	}
	for _, l := range letters {
		if string(l.Record.Body) != poison[l.Record.MessageID] || l.Reason == "" || l.FailedAt.IsZero() || l.Record.Attributes["eventId"] == "" {
			t.Errorf("dead letter %+v", l)
		}
	}
	if f.effects.count("4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02") != 1 {
		t.Error("the good record was not processed")
	}
	if !strings.Contains(f.metrics.String(), `"PermanentFailures":1`) || strings.Count(f.logs.String(), "processing.dead_lettered") != len(poison) {
		t.Error("permanent failures not counted or logged")
	}
}

func TestDeadLetterSendFailureFailsRecord(t *testing.T) {
	f := newFixture(t)
	f.dlq.Err = errors.New("sqs down")
	if failed := f.p.ProcessBatch(context.Background(), []processor.Record{rec("p", []byte("garbage"))}); len(failed) != 1 || failed[0] != "p" {
		t.Fatalf("failed = %v, want [p]", failed)
	}
}

// faultyHandler fails, or panics, for chosen vehicles.
type faultyHandler struct {
	failFor, panicFor string
	calls             atomic.Int32
}

func (h *faultyHandler) Handle(_ context.Context, ev smartcar.Event, _ processor.Claim) error {
	h.calls.Add(1)
	switch ev.VehicleID {
	case h.failFor:
		return errors.New("throttled")
	case h.panicFor:
		panic("user handler bug")
	}
	return nil
}

func TestTransientErrorAndPanicFailOnlyTheirRecord(t *testing.T) {
	faulty := &faultyHandler{failFor: "flaky", panicFor: "buggy"}
	f := newFixture(t, faulty)
	records := []processor.Record{
		rec("ok1", stateBody("e1", "v1", 1000, map[string]int{"a": 1})),
		rec("flaky", stateBody("e2", "flaky", 1000, map[string]int{"a": 1})),
		rec("buggy", stateBody("e3", "buggy", 1000, map[string]int{"a": 1})),
		rec("ok2", stateBody("e4", "v2", 1000, map[string]int{"a": 1})),
	}
	failed := f.p.ProcessBatch(context.Background(), records)
	if strings.Join(failed, ",") != "flaky,buggy" {
		t.Fatalf("failed = %v, want [flaky buggy]", failed)
	}
	if !strings.Contains(f.logs.String(), "processing.panic") {
		t.Error("panic not logged")
	}
	// The failed attempts released their claims: the retry runs at once.
	faulty.failFor, faulty.panicFor = "", ""
	if failed := f.p.ProcessBatch(context.Background(), records[1:3]); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		if n := f.effects.count(id); n != 1 {
			t.Errorf("%s: %d effects, want 1", id, n)
		}
	}
}

func TestLastAttemptLogsDeadLettered(t *testing.T) {
	f := newFixture(t, &faultyHandler{failFor: "v"})
	r := rec("m", stateBody("e", "v", 1000, map[string]int{"a": 1}))
	r.ReceiveCount = 3
	f.p.ProcessBatch(context.Background(), []processor.Record{r})
	if strings.Contains(f.logs.String(), "processing.dead_lettered") {
		t.Fatal("dead_lettered logged before the last attempt")
	}
	r.ReceiveCount = 4
	f.p.ProcessBatch(context.Background(), []processor.Record{r})
	if f.logs.Count("processing.dead_lettered") == 0 || !strings.Contains(f.logs.String(), "throttled") {
		t.Fatalf("last attempt not logged with its reason:\n%s", f.logs.String())
	}
}

func TestPermanentFromHandlerDeadLetters(t *testing.T) {
	reject := processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error {
		return processor.Permanent(errors.New("vehicle not enrolled"))
	})
	f := newFixture(t, reject)
	if failed := f.p.ProcessBatch(context.Background(), []processor.Record{rec("m", events.MustRead("bodies/vehicle_state.json"))}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if l := f.dlq.Letters(); len(l) != 1 || !strings.Contains(l[0].Reason, "not enrolled") {
		t.Fatalf("letters = %+v", l)
	}
}

func TestCrashAfterClaimFinishedOnceByRetry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := stateBody("e", "v", 1000, map[string]int{"a": 1})
	ev, _ := smartcar.ParseEvent(body)
	// A worker claims the event and dies before completing it.
	stale, out, err := f.store.Claim(ctx, processor.ClaimRequest{EventID: "e", Now: time.UnixMilli(f.now.Load()), Lease: processor.DefaultLease, TTL: time.Hour})
	if err != nil || out != processor.Claimed {
		t.Fatal(out, err)
	}
	// A duplicate inside the lease is deferred, not processed.
	if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m", body)}); len(failed) != 1 || f.effects.count("e") != 0 {
		t.Fatalf("failed %v, %d effects: want the record retried, unprocessed, under another worker's live lease", failed, f.effects.count("e"))
	}
	// Redelivered after the visibility timeout (30 s > the 15 s lease).
	f.advance(30 * time.Second)
	if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m", body)}); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if f.effects.count("e") != 1 {
		t.Fatal("retry did not finish the event")
	}
	// The stale worker wakes up and writes: nothing changes.
	lateWrite(t, f, ev, stale)
}

// TestFutureTimestampClamped: a signal timed in 2100 (by its oemUpdatedAt
// and its deliveredAt) is ordered at the processing time plus the skew,
// counted and logged, so a correct report processed after that bound wins.
func TestFutureTimestampClamped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	year2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m1", stateBody("future", "v", year2100, map[string]int{"soc": 987654}))}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	bound := f.now.Load() + vehicle.MaxClockSkew.Milliseconds()
	if strings.Contains(f.metrics.String(), `"EndToEndLatency":-`) {
		t.Errorf("a delivery time in the future gave a negative end-to-end latency: %s", f.metrics.String())
	}
	if !strings.Contains(f.metrics.String(), `"FutureTimestampsClamped":2`) {
		t.Errorf("no FutureTimestampsClamped metric of 2 (oemUpdatedAt and deliveredAt): %s", f.metrics.String())
	}
	lines := f.logs.Lines("state.future_timestamp_clamped")
	if len(lines) != 2 {
		t.Fatalf("%d state.future_timestamp_clamped lines, want 2:\n%s", len(lines), f.logs.String())
	}
	for _, l := range lines {
		if l["signal"] == "soc" && (l["field"] != "oemUpdatedAt" || l["reported"] != float64(year2100) || l["bound"] != float64(bound)) {
			t.Errorf("clamp line = %v, want field oemUpdatedAt, reported %d, bound %d", l, year2100, bound)
		}
		if _, ok := l["value"]; ok || strings.Contains(fmt.Sprint(l), "987654") {
			t.Errorf("clamp line logs the signal's value: %v", l)
		}
	}
	f.advance(vehicle.MaxClockSkew + time.Second)
	later := f.now.Load()
	if failed := f.p.ProcessBatch(ctx, []processor.Record{rec("m2", stateBody("later", "v", later, map[string]int{"soc": 43}))}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.value(t, "v", "soc"); got != "43" {
		t.Errorf("soc = %s after a correct later report, want 43: the 2100 report froze it", got)
	}
}

// TestWritesPer85SignalEvent: a vehicle's first event stores every entry;
// after that an event writes only what it changed, and, with handlers,
// its claim and completion.
func TestWritesPer85SignalEvent(t *testing.T) {
	signals := map[string]int{}
	for i := range 85 {
		signals[fmt.Sprint("signal-", i)] = i
	}
	steady := func(id string, oem int64, changed int) []byte {
		next := maps.Clone(signals)
		for i := range changed {
			next[fmt.Sprint("signal-", i)] = int(oem) + i
		}
		b := stateBody(id, "v", oem, next)
		// The unchanged signals keep their time: only the changed ones are news.
		for code, v := range signals {
			if next[code] == v {
				b = bytes.Replace(b, fmt.Appendf(nil, `"code":%q,"name":"N","group":"G","body":{"value":%d},"meta":{"oemUpdatedAt":%d`, code, v, oem),
					fmt.Appendf(nil, `"code":%q,"name":"N","group":"G","body":{"value":%d},"meta":{"oemUpdatedAt":%d`, code, v, 1000), 1)
			}
		}
		return b
	}
	fixtures := []struct {
		name string
		new  func(*testing.T) *fixture
		// claim and duplicate are the ledger's writes: a claim and its
		// completion, and a duplicate's refused claim; first those of the
		// first event, whose details (ordered by deliveredAt) are recorded
		// applied without a claim.
		claim, duplicate, first int
	}{
		{"without handlers", newStateOnlyFixture, 0, 0, 1},
		{"with handlers", func(t *testing.T) *fixture { return newFixture(t) }, 2, 1, 2},
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.new(t)
			tests := []struct {
				name  string
				rec   processor.Record
				write int
			}{
				{"first event", rec("m1", stateBody("e1", "v", 1000, signals)), 85 + 1 + fx.first},
				{"1 changed", rec("m2", steady("e2", 2000, 1)), 1 + fx.claim},
				{"10 changed", rec("m3", steady("e3", 3000, 10)), 10 + fx.claim},
				{"duplicate", rec("m4", steady("e3", 3000, 10)), fx.duplicate},
				{"stale", rec("m5", steady("e5", 1500, 3)), fx.claim},
			}
			for _, tt := range tests {
				before := f.store.Writes()
				if failed := f.p.ProcessBatch(context.Background(), []processor.Record{tt.rec}); len(failed) != 0 {
					t.Fatalf("%s failed", tt.name)
				}
				if w := f.store.Writes() - before; w != tt.write {
					t.Errorf("%s: %d writes, want %d", tt.name, w, tt.write)
				}
			}
			if got := f.value(t, "v", "signal-9"); got != "3009" {
				t.Errorf("signal-9 = %s, want 3009", got)
			}
		})
	}
}

func TestTestModeProcessedAndKept(t *testing.T) {
	f := newFixture(t)
	body := bytes.Replace(events.MustRead("bodies/vehicle_state.json"), []byte(`"mode":"LIVE"`), []byte(`"mode":"TEST"`), 1)
	if failed := f.p.ProcessBatch(context.Background(), []processor.Record{rec("m", body)}); len(failed) != 0 {
		t.Fatal(failed)
	}
	st, _ := f.store.GetVehicle(context.Background(), "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
	if st.Mode != "TEST" || len(st.Signals) != 3 {
		t.Errorf("mode %s, %d signals", st.Mode, len(st.Signals))
	}
}

func TestStoreOutageFailsRecords(t *testing.T) {
	f := newFixture(t)
	f.store.Err = errors.New("dynamodb: 500")
	failed := f.p.ProcessBatch(context.Background(), []processor.Record{rec("m", events.MustRead("bodies/vehicle_state.json"))})
	if len(failed) != 1 || len(f.dlq.Letters()) != 0 {
		t.Fatalf("failed = %v, letters %d: an outage must be retried, not parked", failed, len(f.dlq.Letters()))
	}
	for _, l := range f.logs.Lines("processing.failed") {
		if id, _ := l["eventId"].(string); id != "" {
			return
		}
	}
	t.Error("no processing.failed line with the eventId")
}

// TestLongIDsAreClippedInLogs: ids come from the body, and one too long to
// store is a permanent failure; it must not write kilobytes into every log
// line of its record.
func TestLongIDsAreClippedInLogs(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("e", 3000)
	r := rec("m", stateBody(long, strings.Repeat("v", 3000), 1000, map[string]int{"soc": 1}))
	r.Attributes = map[string]string{"eventId": long}
	f.p.ProcessBatch(context.Background(), []processor.Record{r})
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("logged %d lines, want the record's story:\n%s", len(lines), f.logs.String())
	}
	for _, l := range lines {
		if len(l) > 1024 {
			t.Errorf("a %d-byte log line: %.200s…", len(l), l)
		}
		if strings.Contains(l, `"eventId"`) && !strings.Contains(l, logging.ClipMark) {
			t.Errorf("eventId not marked as cut: %.200s…", l)
		}
	}
}
