// Package storetest is the contract every processor store passes: the
// in-memory fake and the DynamoDB store run the same tests, so the fake
// that unit tests rely on behaves like the real thing.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Store is what a processor store provides: the ledger of claimed events
// and the vehicles' state.
type Store interface {
	processor.Ledger
	processor.VehicleStore
}

// Run runs the contract against stores made by newStore. Each test gets a
// fresh store, or one whose ids are unique to the test.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"ClaimOutcomes", testClaimOutcomes},
		{"ReleaseLetsNextAttemptRun", testRelease},
		{"ExpiredLeaseTakenOverAndOldTokenFenced", testTakeover},
		{"RedeliveredMessageTakesOverItsOwnClaim", testSameMessageTakeover},
		{"ConcurrentClaimsOneWinner", testConcurrentClaims},
		{"UnknownVehicle", testUnknownVehicle},
		{"VehicleRoundTrip", testVehicleRoundTrip},
		{"NewestEntryWins", testNewestEntryWins},
		{"ErrorReportKeepsLastGoodBody", testErrorReportKeepsBody},
		{"ConcurrentWritersNewestWins", testConcurrentWriters},
		{"DerivedFromErrors", testDerived},
		{"FiveHundredSignals", testFiveHundredSignals},
		{"AppliedEventsRemembered", testAppliedRemembered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func claimReq(id string, now time.Time) processor.ClaimRequest {
	return processor.ClaimRequest{EventID: id, EventType: "VEHICLE_STATE", VehicleID: "v", Now: now, Lease: 15 * time.Second, TTL: 7 * 24 * time.Hour}
}

func mustClaim(t *testing.T, s Store, id string, now time.Time) processor.Claim {
	t.Helper()
	c, out, err := s.Claim(context.Background(), claimReq(id, now))
	if err != nil || out != processor.Claimed || c.Token == "" || c.EventID != id {
		t.Fatalf("Claim(%s) = %+v, %v, %v; want a fresh claim", id, c, out, err)
	}
	return c
}

func uniqueID(t *testing.T, suffix string) string {
	return fmt.Sprintf("%s-%s-%d", t.Name(), suffix, time.Now().UnixNano())
}

func testClaimOutcomes(t *testing.T, s Store) {
	ctx := context.Background()
	id := uniqueID(t, "e")
	c := mustClaim(t, s, id, t0)
	if _, out, err := s.Claim(ctx, claimReq(id, t0.Add(time.Second))); err != nil || out != processor.HeldElsewhere {
		t.Fatalf("second claim under a live lease = %v, %v; want HeldElsewhere", out, err)
	}
	if err := s.Complete(ctx, c, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{t0.Add(3 * time.Second), t0.Add(time.Hour)} {
		if _, out, err := s.Claim(ctx, claimReq(id, at)); err != nil || out != processor.AlreadyCompleted {
			t.Fatalf("claim after completion = %v, %v; want AlreadyCompleted", out, err)
		}
	}
	if err := s.Complete(ctx, c, t0); err != nil {
		t.Fatalf("completing again under the same token (an SDK retry) = %v, want success", err)
	}
}

func testRelease(t *testing.T, s Store) {
	ctx := context.Background()
	id := uniqueID(t, "e")
	c := mustClaim(t, s, id, t0)
	if err := s.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	c2 := mustClaim(t, s, id, t0.Add(time.Second))
	if c2.Token == c.Token {
		t.Fatal("the retry got the failed attempt's token")
	}
	if err := s.Complete(ctx, c, t0); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("Complete with the released token = %v, want ErrFenceLost", err)
	}
	if err := s.Complete(ctx, c2, t0); err != nil {
		t.Fatal(err)
	}
}

func testTakeover(t *testing.T, s Store) {
	ctx := context.Background()
	id := uniqueID(t, "e")
	old := mustClaim(t, s, id, t0)
	// The first worker crashed; its 15 s lease runs out.
	fresh := mustClaim(t, s, id, t0.Add(16*time.Second))
	if fresh.Token == old.Token {
		t.Fatal("takeover kept the old token")
	}
	if err := s.Complete(ctx, old, t0.Add(17*time.Second)); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("stale worker's Complete = %v, want ErrFenceLost", err)
	}
	if err := s.Release(ctx, old); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("stale worker's Release = %v, want ErrFenceLost", err)
	}
	if err := s.Complete(ctx, fresh, t0.Add(18*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func testSameMessageTakeover(t *testing.T, s Store) {
	ctx := context.Background()
	id := uniqueID(t, "e")
	req := func(messageID string, at time.Time) processor.ClaimRequest {
		r := claimReq(id, at)
		r.MessageID = messageID
		return r
	}
	old, out, err := s.Claim(ctx, req("m1", t0))
	if err != nil || out != processor.Claimed {
		t.Fatalf("first claim = %v, %v", out, err)
	}
	if _, out, err := s.Claim(ctx, req("m2", t0.Add(time.Second))); err != nil || out != processor.HeldElsewhere {
		t.Fatalf("another message's claim under a live lease = %v, %v; want HeldElsewhere", out, err)
	}
	// m1 is handed out again: its earlier attempt is over.
	fresh, out, err := s.Claim(ctx, req("m1", t0.Add(2*time.Second)))
	if err != nil || out != processor.Claimed || fresh.Token == old.Token {
		t.Fatalf("the same message's claim under its own live lease = %+v, %v, %v; want a takeover with a new token", fresh, out, err)
	}
	if err := s.Complete(ctx, old, t0.Add(3*time.Second)); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("the earlier attempt's Complete = %v, want ErrFenceLost", err)
	}
	if _, out, err := s.Claim(ctx, req("m2", t0.Add(3*time.Second))); err != nil || out != processor.HeldElsewhere {
		t.Fatalf("another message's claim after the takeover = %v, %v; want HeldElsewhere", out, err)
	}
	if err := s.Complete(ctx, fresh, t0.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, out, err := s.Claim(ctx, req("m1", t0.Add(5*time.Second))); err != nil || out != processor.AlreadyCompleted {
		t.Fatalf("the same message after completion = %v, %v; want AlreadyCompleted", out, err)
	}
}

func testConcurrentClaims(t *testing.T, s Store) {
	id := uniqueID(t, "e")
	const n = 5
	outcomes := make([]processor.Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, outcomes[i], errs[i] = s.Claim(context.Background(), claimReq(id, t0))
		}()
	}
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("claim %d: %v", i, errs[i])
		}
		switch outcomes[i] {
		case processor.Claimed:
			won++
		case processor.HeldElsewhere:
		default:
			t.Errorf("claim %d outcome %v", i, outcomes[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent claims won, want 1", won)
	}
}

// SampleState returns a state with every kind of entry: signals with
// exact and huge numbers, one in error that kept its body, errors (one
// delivered "in 2100"), and a COMPATIBILITY error naming a signal the
// vehicle never reported.
func SampleState(id string) *vehicle.State {
	s := vehicle.New(id)
	s.Make, s.Model, s.Year, s.UserID, s.Mode = "TESLA", "Model Y", 2024, "u1", "TEST"
	s.Signals["tractionbattery-stateofcharge"] = vehicle.Signal{
		Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS",
		Body:         map[string]any{"value": json.Number("63.50"), "unit": "percent", "big": json.Number("9007199254740993"), "huge": json.Number("1e300")},
		OEMUpdatedAt: 1767225590000, RetrievedAt: 1767225598412, OrderedAt: 1767225590000, EventID: "e1",
	}
	s.Signals["location-preciselocation"] = vehicle.Signal{
		Name: "PreciseLocation", Group: "Location", Status: "SUCCESS",
		Body:      map[string]any{"latitude": json.Number("52.238523055555554"), "values": []any{json.Number("1"), "x", true, nil, map[string]any{"k": "v"}}},
		OrderedAt: 5, EventID: "e1",
	}
	s.Signals["location-isathome"] = vehicle.Signal{Name: "IsAtHome", Group: "Location", Status: "ERROR",
		Body:      map[string]any{"value": true},
		ErrorType: "COMPATIBILITY", ErrorCode: "VEHICLE_NOT_CAPABLE", RetrievedAt: 7, OrderedAt: 7, EventID: "e1"}
	s.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", ResolutionType: "REAUTHENTICATE",
		Signals: []string{"closure-islocked"}, Refs: []smartcar.SignalRef{{Code: "closure-islocked", Name: "IsLocked", Group: "Closure"}},
		UpdatedAt: 4102444800000, OrderedAt: 1767226012907, EventID: "e2", Description: "d"} // delivered "in 2100"
	s.Errors["COMPATIBILITY:VEHICLE_NOT_CAPABLE"] = vehicle.Error{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR",
		Signals:   []string{"location-isathome", "charge-ischarging"},
		Refs:      []smartcar.SignalRef{{Code: "location-isathome", Name: "IsAtHome", Group: "Location"}, {Code: "charge-ischarging", Name: "IsCharging", Group: "Charge"}},
		UpdatedAt: 1767225712000, OrderedAt: 1767225712000, EventID: "e3"}
	s.LastDeliveredAt = 1767225712907
	s.UpdatedAt = 1767225713000
	return s
}

func write(t *testing.T, s Store, st *vehicle.State, ch vehicle.Changes) processor.Written {
	t.Helper()
	w, err := s.WriteEntries(context.Background(), st, ch)
	if err != nil {
		t.Fatalf("WriteEntries: %v", err)
	}
	return w
}

func get(t *testing.T, s Store, id string) *vehicle.State {
	t.Helper()
	st, err := s.GetVehicle(context.Background(), id)
	if err != nil {
		t.Fatalf("GetVehicle: %v", err)
	}
	return st
}

func testUnknownVehicle(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	st := get(t, s, vid)
	if st.VehicleID != vid || st.Exists() || st.Source != vehicle.SourceNone || st.Signals == nil || st.Errors == nil || len(st.Signals)+len(st.Errors) != 0 {
		t.Fatalf("unknown vehicle = %+v, want an empty state from no source", st)
	}
}

func testVehicleRoundTrip(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	want := SampleState(vid)
	entries := len(want.Signals) + len(want.Errors) + 1
	if w := write(t, s, want, vehicle.Changes{All: true}); w.Stored != entries || w.Skipped != 0 {
		t.Fatalf("first write = %+v, want %d entries stored", w, entries)
	}
	got := get(t, s, vid)
	want.Derive()
	want.Source = vehicle.SourceEntries
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Fatalf("round trip differs:\n got %s\nwant %s", gb, wb)
	}
	if !got.NeedsReauth || !got.Signals["location-isathome"].Unsupported || got.Signals["charge-ischarging"].Name != "IsCharging" {
		t.Fatalf("derived fields wrong: %+v", got)
	}
	// Writing the same state again (a retry) skips every signal and
	// error; the details' condition is "not later", so they are rewritten,
	// unchanged.
	if w := write(t, s, SampleState(vid), vehicle.Changes{All: true}); w.Stored != 1 || w.Skipped != entries-1 {
		t.Fatalf("second write of the same state = %+v, want only the details rewritten", w)
	}
	if again := get(t, s, vid); !reflect.DeepEqual(again, want) {
		t.Fatalf("a retried write changed the state")
	}
}

func testNewestEntryWins(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	at := func(code string, v int, orderedAt int64) *vehicle.State {
		st := vehicle.New(vid)
		st.Signals[code] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number(fmt.Sprint(v))}, OrderedAt: orderedAt, EventID: fmt.Sprint("e", v)}
		return st
	}
	value := func(code string) string { return fmt.Sprint(get(t, s, vid).Signals[code].Body["value"]) }
	// An entry ordered at its writer's clock-skew bound (a report from the
	// future): a later writer's bound may be lower (its clock a little
	// behind, or its record taken first), and an older report must still
	// lose to it.
	clamped := vehicle.Bound(t0)
	write(t, s, at("soc", 1, 100), vehicle.Changes{Signals: []string{"soc"}})
	write(t, s, at("clamped", 1, clamped), vehicle.Changes{Signals: []string{"clamped"}})
	tests := []struct {
		name      string
		code      string
		v         int
		orderedAt int64
		want      string
	}{
		{"older skipped", "soc", 2, 50, "1"},
		{"equal skipped", "soc", 3, 100, "1"},
		{"newer stored", "soc", 4, 150, "4"},
		{"clamped entry kept against an older report", "clamped", 5, clamped - 3600_000, "1"},
		{"clamped entry replaced by a later one", "clamped", 6, clamped + 1, "6"},
	}
	for _, tt := range tests {
		w := write(t, s, at(tt.code, tt.v, tt.orderedAt), vehicle.Changes{Signals: []string{tt.code}})
		if got := value(tt.code); got != tt.want {
			t.Errorf("%s: %s = %s, want %s", tt.name, tt.code, got, tt.want)
		}
		if stored := tt.want == fmt.Sprint(tt.v); w.Stored != map[bool]int{true: 1}[stored] || w.Skipped != map[bool]int{false: 1}[stored] {
			t.Errorf("%s: written %+v", tt.name, w)
		}
	}

	errAt := func(state string, orderedAt int64) *vehicle.State {
		st := vehicle.New(vid)
		st.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: state, UpdatedAt: orderedAt, OrderedAt: orderedAt}
		return st
	}
	errCh := vehicle.Changes{Errors: []string{"PERMISSION:null"}}
	write(t, s, errAt("RESOLVED", 300), errCh)
	write(t, s, errAt("ERROR", 200), errCh)
	if got := get(t, s, vid); got.Errors["PERMISSION:null"].State != "RESOLVED" || got.NeedsReauth {
		t.Errorf("an older ERROR replaced a newer RESOLVED: %+v", got.Errors)
	}

	details := func(model string, delivered int64) *vehicle.State {
		st := vehicle.New(vid)
		st.Model, st.LastDeliveredAt = model, delivered
		return st
	}
	detailsCh := func(d vehicle.Details) vehicle.Changes { return vehicle.Changes{Details: &d} }
	write(t, s, details("B", 200), detailsCh(vehicle.Details{Make: "M", Model: "B", LastDeliveredAt: 200}))
	write(t, s, details("A", 100), detailsCh(vehicle.Details{Model: "A", LastDeliveredAt: 100}))
	if got := get(t, s, vid); got.Model != "B" || got.Make != "M" || got.LastDeliveredAt != 200 || got.Source != vehicle.SourceEntries {
		t.Errorf("older details replaced newer ones: %+v", got)
	}
	write(t, s, details("C", 300), detailsCh(vehicle.Details{Model: "C", LastDeliveredAt: 300}))
	if got := get(t, s, vid); got.Model != "C" || got.Make != "M" || got.LastDeliveredAt != 300 {
		t.Errorf("newer details: %+v, want model C and the make kept", got)
	}
}

func testErrorReportKeepsBody(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	report := func(status string, v int, orderedAt int64) *vehicle.State {
		st := vehicle.New(vid)
		sg := vehicle.Signal{Name: "N", Group: "G", Status: status, OrderedAt: orderedAt, EventID: fmt.Sprint("e", orderedAt)}
		if status == "SUCCESS" {
			sg.Body = map[string]any{"value": json.Number(fmt.Sprint(v))}
		} else {
			sg.ErrorType, sg.ErrorCode, sg.Name = "VEHICLE_STATE", "ASLEEP", ""
		}
		st.Signals["soc"] = sg
		return st
	}
	ch := vehicle.Changes{Signals: []string{"soc"}}
	write(t, s, report("SUCCESS", 50, 100), ch)
	write(t, s, report("ERROR", 0, 300), ch)
	// A good body older than the error report lands late: skipped.
	write(t, s, report("SUCCESS", 60, 200), ch)
	got := get(t, s, vid).Signals["soc"]
	if got.Status != "ERROR" || got.ErrorCode != "ASLEEP" || fmt.Sprint(got.Body["value"]) != "50" || got.Name != "N" || got.OrderedAt != 300 {
		t.Fatalf("signal = %+v, want ERROR with the last good body 50 and its name kept", got)
	}
	write(t, s, report("SUCCESS", 70, 400), ch)
	if got := get(t, s, vid).Signals["soc"]; got.Status != "SUCCESS" || got.ErrorCode != "" || got.ErrorType != "" || fmt.Sprint(got.Body["value"]) != "70" {
		t.Fatalf("recovered signal = %+v", got)
	}

	// A first write (ch.All: a vehicle read from the legacy layout, say)
	// of a report in error carries the last good body it read. A newer good
	// body stored meanwhile by a concurrent event stays.
	firstWrite := report("ERROR", 0, 600)
	sg := firstWrite.Signals["soc"]
	sg.Body = map[string]any{"value": json.Number("70")} // what it read
	firstWrite.Signals["soc"] = sg
	write(t, s, report("SUCCESS", 80, 500), ch) // the concurrent newer good report lands first
	write(t, s, firstWrite, vehicle.Changes{All: true})
	if got := get(t, s, vid).Signals["soc"]; got.Status != "ERROR" || fmt.Sprint(got.Body["value"]) != "80" {
		t.Fatalf("signal = %+v after a first write in error, want ERROR keeping the newer good body 80", got)
	}
}

func testConcurrentWriters(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	const n = 12
	order := []int{7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, v := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := vehicle.New(vid)
			st.Signals["soc"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number(fmt.Sprint(v))}, OrderedAt: int64(1000 + v)}
			own := fmt.Sprint("own-", v)
			st.Signals[own] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number(fmt.Sprint(v))}, OrderedAt: 1}
			_, errs[i] = s.WriteEntries(context.Background(), st, vehicle.Changes{Signals: []string{"soc", own}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, s, vid)
	if v := fmt.Sprint(got.Signals["soc"].Body["value"]); v != fmt.Sprint(n-1) {
		t.Errorf("soc = %s after %d concurrent writers, want the newest, %d", v, n, n-1)
	}
	for v := range n {
		if _, ok := got.Signals[fmt.Sprint("own-", v)]; !ok {
			t.Errorf("writer %d's own signal lost", v)
		}
	}
}

func testDerived(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	st := vehicle.New(vid)
	st.Signals["location-isathome"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": true}, OrderedAt: 10}
	st.Errors["COMPATIBILITY:VEHICLE_NOT_CAPABLE"] = vehicle.Error{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR",
		Signals: []string{"location-isathome"}, Refs: []smartcar.SignalRef{{Code: "location-isathome"}}, UpdatedAt: 20, OrderedAt: 20}
	st.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", UpdatedAt: 20, OrderedAt: 20}
	write(t, s, st, vehicle.Changes{All: true})
	if got := get(t, s, vid); !got.NeedsReauth || !got.Signals["location-isathome"].Unsupported {
		t.Fatalf("needsReauth %v, unsupported %v: want both derived from the unresolved errors", got.NeedsReauth, got.Signals["location-isathome"].Unsupported)
	}
	resolved := vehicle.New(vid)
	for key, e := range st.Errors {
		e.State, e.UpdatedAt, e.OrderedAt = "RESOLVED", 30, 30
		resolved.Errors[key] = e
	}
	write(t, s, resolved, vehicle.Changes{Errors: []string{"COMPATIBILITY:VEHICLE_NOT_CAPABLE", "PERMISSION:null"}})
	if got := get(t, s, vid); got.NeedsReauth || got.Signals["location-isathome"].Unsupported {
		t.Fatalf("needsReauth %v, unsupported %v after RESOLVED: want both cleared", got.NeedsReauth, got.Signals["location-isathome"].Unsupported)
	}
}

// testFiveHundredSignals: an event may carry any number of signals.
func testFiveHundredSignals(t *testing.T, s Store) {
	vid := uniqueID(t, "v")
	st := vehicle.New(vid)
	var codes []string
	for i := range 500 {
		code := fmt.Sprintf("group%d-signal%d", i, i)
		codes = append(codes, code)
		st.Signals[code] = vehicle.Signal{Name: "N", Group: "G", Status: "SUCCESS", Body: map[string]any{"value": json.Number(fmt.Sprint(i))}, OrderedAt: 100}
	}
	if w := write(t, s, st, vehicle.Changes{All: true}); w.Stored != 501 {
		t.Fatalf("first write of 500 signals = %+v, want 500 signals and the details stored", w)
	}
	for code, sg := range st.Signals {
		sg.OrderedAt, sg.Body = 200, map[string]any{"value": json.Number("7")}
		st.Signals[code] = sg
	}
	if w := write(t, s, st, vehicle.Changes{Signals: codes}); w.Stored != 500 {
		t.Fatalf("500 newer signals: %+v", w)
	}
	got := get(t, s, vid)
	if len(got.Signals) != 500 {
		t.Fatalf("%d signals read back, want 500", len(got.Signals))
	}
	for _, code := range codes {
		if sg := got.Signals[code]; fmt.Sprint(sg.Body["value"]) != "7" || sg.OrderedAt != 200 {
			t.Fatalf("%s = %+v", code, sg)
		}
	}
}

// testAppliedRemembered: an event marked applied is remembered, as is one
// completed under a claim; no other is.
func testAppliedRemembered(t *testing.T, s Store) {
	ctx := context.Background()
	applied := func(id string) bool {
		t.Helper()
		ok, err := s.Applied(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	id := fmt.Sprintf("marked-%d", time.Now().UnixNano())
	if applied(id) {
		t.Fatalf("%s applied before it was marked", id)
	}
	if err := s.MarkApplied(ctx, processor.ClaimRequest{EventID: id, EventType: "VEHICLE_ERROR", VehicleID: "v", Now: t0, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if !applied(id) {
		t.Errorf("%s marked applied, then not remembered", id)
	}
	claimed := id + "-claimed"
	c := mustClaim(t, s, claimed, t0)
	if applied(claimed) {
		t.Errorf("%s applied while only claimed", claimed)
	}
	if err := s.Complete(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	if !applied(claimed) {
		t.Errorf("%s completed under a claim, then not remembered as applied", claimed)
	}
}
