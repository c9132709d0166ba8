package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// replayed is rec marked as a replay of generation g.
func replayed(id string, body []byte, g string) processor.Record {
	r := rec(id, body)
	r.Attributes = map[string]string{processor.AttrReplayGeneration: g}
	return r
}

func TestArchivedBeforeProcessing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sent := time.Date(2026, 1, 1, 0, 4, 59, 0, time.UTC)
	ok := rec("m-ok", stateBody("e-ok", "v-ok", 1000, map[string]int{"odometer": 1}))
	ok.SentAt = sent
	down := rec("m-down", stateBody("e-down", "v-down", 1000, map[string]int{"odometer": 2}))
	// Redriven from the DLQ a day after it was received: the archive says
	// when it was received, not when this copy was sent.
	down.SentAt = sent.Add(24 * time.Hour)
	down.Attributes = map[string]string{processor.AttrReceivedAt: fmt.Sprint(sent.UnixMilli())}
	f.archive.Fail = map[string]bool{"m-down": true}

	failed := f.p.ProcessBatch(ctx, []processor.Record{ok, down})
	if fmt.Sprint(failed) != "[m-down]" {
		t.Fatalf("failed = %v, want [m-down]: a record not archived is retried", failed)
	}
	if got := f.value(t, "v-down", "odometer"); got != "<none>" {
		t.Errorf("the record not archived was processed: odometer %s", got)
	}
	if f.effects.count("e-down") != 0 {
		t.Error("the record not archived ran the handlers")
	}
	if got := f.value(t, "v-ok", "odometer"); got != "1" {
		t.Errorf("the archived record was not processed: odometer %s", got)
	}
	entries := f.archive.Entries()
	if len(entries) != 1 {
		t.Fatalf("%d entries archived, want 1", len(entries))
	}
	e := entries[0]
	if !bytes.Equal(e.Body, ok.Body) || e.EventID != "e-ok" || e.EventType != "VEHICLE_STATE" || e.VehicleID != "v-ok" ||
		e.MessageID != "m-ok" || !e.ReceivedAt.Equal(sent) || e.DeliveredAt == 0 {
		t.Errorf("archived %+v", e)
	}
	if !strings.Contains(f.metrics.String(), `"ArchiveFailures":1`) || f.logs.Count("processing.failed") != 1 ||
		!strings.Contains(f.logs.String(), "archive: "+processortest.ErrArchiveDown.Error()) {
		t.Errorf("the archive failure was not reported:\n%s%s", f.logs, f.metrics)
	}

	// Its retry, the archive back, is archived and processed.
	f.archive.Fail = nil
	if failed := f.p.ProcessBatch(ctx, []processor.Record{down}); len(failed) != 0 {
		t.Fatalf("retry failed:\n%s", f.logs)
	}
	if got := f.value(t, "v-down", "odometer"); got != "2" || len(f.archive.Entries()) != 2 {
		t.Fatalf("after the retry: odometer %s, %d entries archived", got, len(f.archive.Entries()))
	}
	if e := f.archive.Entries()[1]; !e.ReceivedAt.Equal(sent) {
		t.Errorf("the redriven record was archived as received %v, want %v", e.ReceivedAt, sent)
	}
}

// claimSpy records the claims the handlers were given.
type claimSpy struct{ claims []processor.Claim }

func (s *claimSpy) Handle(_ context.Context, _ smartcar.Event, c processor.Claim) error {
	s.claims = append(s.claims, c)
	return nil
}

func TestReplayRunsHandlersOncePerGeneration(t *testing.T) {
	spy := &claimSpy{}
	f := newFixture(t, spy)
	ctx := context.Background()
	body := stateBody("e1", "v1", 1000, map[string]int{"odometer": 7})
	steps := []struct {
		name    string
		record  processor.Record
		effects int    // handler runs for e1 so far
		outcome string // the record's outcome line
	}{
		{"live", rec("m1", body), 1, "processing.succeeded"},
		{"replay, generation a", replayed("r1", body, "replay-a"), 2, "processing.replayed"},
		{"the same generation again", replayed("r2", body, "replay-a"), 2, "processing.replayed"},
		{"generation b", replayed("r3", body, "replay-b"), 3, "processing.replayed"},
		{"a live redelivery", rec("m2", body), 3, "processing.duplicate"},
	}
	for _, st := range steps {
		before := f.logs.Count(st.outcome)
		if failed := f.p.ProcessBatch(ctx, []processor.Record{st.record}); len(failed) != 0 {
			t.Fatalf("%s: failed\n%s", st.name, f.logs)
		}
		if n := f.effects.count("e1"); n != st.effects {
			t.Errorf("%s: handlers ran %d times in all, want %d", st.name, n, st.effects)
		}
		if f.logs.Count(st.outcome) != before+1 {
			t.Errorf("%s: no %s line:\n%s", st.name, st.outcome, f.logs)
		}
	}
	var gens []string
	for _, c := range spy.claims {
		gens = append(gens, fmt.Sprintf("%s/%s/%v", c.EventID, c.Generation, c.Replayed()))
	}
	if got, want := strings.Join(gens, " "), "e1//false e1#replay-a/replay-a/true e1#replay-b/replay-b/true"; got != want {
		t.Errorf("handlers saw claims %s, want %s", got, want)
	}
	if got := f.value(t, "v1", "odometer"); got != "7" {
		t.Errorf("odometer %s after replays, want 7", got)
	}
	if n := len(f.archive.Entries()); n != 2 {
		t.Errorf("%d entries archived, want the 2 live deliveries only: replays come from the archive", n)
	}
	// Replays never look like duplicate deliveries (the duplicates alarm).
	m := f.metrics.String()
	if strings.Count(m, `"EventsReplayed":1`) != 3 || strings.Count(m, `"DuplicatesSkipped":1`) != 1 {
		t.Errorf("metrics: want 3 EventsReplayed and the live redelivery's DuplicatesSkipped:\n%s", m)
	}
}

// Without handlers a replay changes nothing that is newer, whatever the
// order: a replayed error that a newer event resolved stays resolved.
func TestReplayWithoutHandlersKeepsNewerState(t *testing.T) {
	f := newStateOnlyFixture(t)
	ctx := context.Background()
	errBody := func(id, state string, delivered int64) []byte {
		return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v"},"errors":[{"type":"PERMISSION","code":null,"state":%q,"resolution":{"type":"REAUTHENTICATE"}}]},"meta":{"deliveredAt":%d,"mode":"LIVE"}}`, id, state, delivered))
	}
	e1, e2 := errBody("e1", "ERROR", 1000), errBody("e2", "RESOLVED", 2000)
	for i, b := range [][]byte{e1, e2} {
		if failed := f.p.ProcessBatch(ctx, []processor.Record{rec(fmt.Sprint("m", i), b)}); len(failed) != 0 {
			t.Fatalf("delivery %d failed:\n%s", i, f.logs)
		}
	}
	want, _ := f.store.GetVehicle(ctx, "v")
	if failed := f.p.ProcessBatch(ctx, []processor.Record{replayed("r1", e2, "g1"), replayed("r2", e1, "g1")}); len(failed) != 0 {
		t.Fatalf("replay failed:\n%s", f.logs)
	}
	if got, _ := f.store.GetVehicle(ctx, "v"); !reflect.DeepEqual(got, want) {
		t.Errorf("the replay changed the state:\n got %+v\nwant %+v", got, want)
	}
	if strings.Contains(f.metrics.String(), "DuplicatesSkipped") {
		t.Errorf("replays counted as duplicates:\n%s", f.metrics)
	}

	// Rebuilt from history into an empty store, in the other order, the
	// state is the same.
	rebuilt := newStateOnlyFixture(t)
	rebuilt.now.Store(f.now.Load())
	if failed := rebuilt.p.ProcessBatch(ctx, []processor.Record{replayed("r1", e2, "g1")}); len(failed) != 0 {
		t.Fatal(rebuilt.logs)
	}
	if failed := rebuilt.p.ProcessBatch(ctx, []processor.Record{replayed("r2", e1, "g1")}); len(failed) != 0 {
		t.Fatal(rebuilt.logs)
	}
	got, _ := rebuilt.store.GetVehicle(ctx, "v")
	if e := got.Errors["PERMISSION:null"]; e.State != "RESOLVED" || e.EventID != "e2" || got.NeedsReauth {
		t.Errorf("rebuilt error = %+v, needsReauth %v: want e2's RESOLVED", e, got.NeedsReauth)
	}
}

func TestInvalidGenerationDeadLettered(t *testing.T) {
	for _, g := range []string{"has space", "x#y", strings.Repeat("g", 65)} {
		t.Run(g, func(t *testing.T) {
			f := newFixture(t)
			body := events.MustRead("bodies/vehicle_state.json")
			if failed := f.p.ProcessBatch(context.Background(), []processor.Record{replayed("r1", body, g)}); len(failed) != 0 {
				t.Fatalf("failed: %v", failed)
			}
			letters := f.dlq.Letters()
			if len(letters) != 1 || !strings.Contains(letters[0].Reason, "replay generation") {
				t.Errorf("dead letters %+v, want one saying the generation is invalid", letters)
			}
			if f.effects.count("7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57") != 0 || len(f.archive.Entries()) != 0 {
				t.Error("an invalid replay ran or was archived")
			}
		})
	}
}

// shortArchive answers for the first entry only.
type shortArchive struct{}

func (shortArchive) Archive(_ context.Context, entries []archive.Entry) []error {
	return make([]error, 1)
}

// An archive that does not say which entries it stored stored none of
// them, as far as the processor can tell.
func TestArchiveResultsNotMatchingFailTheBatch(t *testing.T) {
	f := newFixture(t)
	p := processor.New(f.store, processor.NewStateFinisher(f.store, nil, nil), f.dlq, nil, processor.Options{Archive: shortArchive{}})
	failed := p.ProcessBatch(context.Background(), []processor.Record{
		rec("m1", stateBody("e1", "v1", 1000, map[string]int{"odometer": 1})),
		rec("m2", stateBody("e2", "v2", 1000, map[string]int{"odometer": 2})),
	})
	if fmt.Sprint(failed) != "[m1 m2]" {
		t.Errorf("failed %v, want both records", failed)
	}
}

func TestEventKey(t *testing.T) {
	long := strings.Repeat("e", 2040)
	tests := []struct{ id, gen, want string }{
		{"e1", "", "e1"},
		{"e1", "replay-a", "e1#replay-a"},
		{long, "", long}, // a live key is the eventId, whatever its length
		{long, "replay-a", "sha256:"},
	}
	for _, tt := range tests {
		got := processor.EventKey(tt.id, tt.gen)
		if !strings.HasPrefix(got, tt.want) || tt.want == "sha256:" && (len(got) > 2048 || !strings.HasSuffix(got, "#replay-a")) {
			t.Errorf("EventKey(%.10s…, %q) = %.40s…", tt.id, tt.gen, got)
		}
	}
}

// stuckArchive answers only when its context ends.
type stuckArchive struct{}

func (stuckArchive) Archive(ctx context.Context, entries []archive.Entry) []error {
	<-ctx.Done()
	errs := make([]error, len(entries))
	for i := range errs {
		errs[i] = ctx.Err()
	}
	return errs
}

// A stuck archive costs at most half the invocation's time left: its
// records fail alone, in time to answer for the batch.
func TestArchiveBoundedByTheInvocation(t *testing.T) {
	f := newFixture(t)
	p := processor.New(f.store, processor.NewStateFinisher(f.store, nil, nil), f.dlq, nil, processor.Options{Archive: stuckArchive{}})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	failed := p.ProcessBatch(ctx, []processor.Record{rec("m1", stateBody("e1", "v1", 1000, map[string]int{"odometer": 1}))})
	if took := time.Since(start); fmt.Sprint(failed) != "[m1]" || took > 300*time.Millisecond {
		t.Errorf("failed %v after %v: want m1 failed within half of 400 ms", failed, took)
	}
}

// Every error entry written says whether the vehicle needs
// re-authentication once it was merged: what its resolution publishes.
func TestErrorsStoreWhetherReauthIsNeeded(t *testing.T) {
	f := newStateOnlyFixture(t)
	ctx := context.Background()
	body := events.MustRead("bodies/vehicle_error.json")
	resolved := []byte(strings.ReplaceAll(strings.Replace(string(body), "7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57", "r1", 1),
		`"state":"ERROR"`, `"state":"RESOLVED"`))
	resolved = bytes.Replace(resolved, []byte(`"deliveredAt":`), []byte(`"deliveredAt":9`), 1)
	for i, step := range []struct {
		body []byte
		want bool
	}{{body, true}, {resolved, false}} {
		if failed := f.p.ProcessBatch(ctx, []processor.Record{rec(fmt.Sprint("m", i), step.body)}); len(failed) != 0 {
			t.Fatalf("step %d failed:\n%s", i, f.logs)
		}
		st, _ := f.store.GetVehicle(ctx, "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
		if len(st.Errors) != 2 {
			t.Fatalf("step %d: %d errors", i, len(st.Errors))
		}
		for key, e := range st.Errors {
			if e.VehicleNeedsReauth == nil || *e.VehicleNeedsReauth != step.want || st.NeedsReauth != step.want {
				t.Errorf("step %d, error %s: stored needs-reauth %v, vehicle %v; want %v", i, key, e.VehicleNeedsReauth, st.NeedsReauth, step.want)
			}
		}
	}
}
