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
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Store is what a processor store provides.
type Store interface {
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
		{"VehicleRoundTrip", testVehicleRoundTrip},
		{"VehicleVersionConflict", testVersionConflict},
		{"VehicleWriteFenced", testVehicleFence},
		{"VehicleWriteCompletesEvent", testVehicleWriteCompletes},
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

func sampleState(id string) *vehicle.State {
	s := vehicle.New(id)
	s.Make, s.Model, s.Year, s.UserID, s.Mode = "TESLA", "Model Y", 2024, "u1", "TEST"
	s.Signals["tractionbattery-stateofcharge"] = vehicle.Signal{
		Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS",
		Body:         map[string]any{"value": json.Number("63.50"), "unit": "percent", "big": json.Number("9007199254740993")},
		OEMUpdatedAt: 1767225590000, RetrievedAt: 1767225598412, OrderedAt: 1767225590000, EventID: "e1",
	}
	s.Signals["location-preciselocation"] = vehicle.Signal{
		Name: "PreciseLocation", Group: "Location", Status: "SUCCESS",
		Body:      map[string]any{"latitude": json.Number("52.238523055555554"), "values": []any{json.Number("1"), "x", true, nil, map[string]any{"k": "v"}}},
		OrderedAt: 5, EventID: "e1",
	}
	s.Signals["location-isathome"] = vehicle.Signal{Name: "IsAtHome", Group: "Location", Status: "ERROR",
		ErrorType: "COMPATIBILITY", ErrorCode: "VEHICLE_NOT_CAPABLE", Unsupported: true, OrderedAt: 7, EventID: "e1"}
	s.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", ResolutionType: "REAUTHENTICATE",
		Signals: []string{"closure-islocked"}, UpdatedAt: 4102444800000, OrderedAt: 1767226012907, EventID: "e2", Description: "d"} // delivered "in 2100"
	s.NeedsReauth = true
	s.LastDeliveredAt = 1767225712907
	s.UpdatedAt = 1767225713000
	return s
}

func testVehicleRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	vid := uniqueID(t, "v")
	empty, err := s.GetVehicle(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	if empty.VehicleID != vid || empty.Version != 0 || len(empty.Signals) != 0 || empty.Signals == nil || empty.Errors == nil {
		t.Fatalf("unknown vehicle = %+v, want an empty state at version 0", empty)
	}
	fence := mustClaim(t, s, uniqueID(t, "e"), t0)
	want := sampleState(vid)
	if err := s.PutVehicle(ctx, want, fence); err != nil {
		t.Fatal(err)
	}
	if want.Version != 1 {
		t.Fatalf("version after first write = %d, want 1", want.Version)
	}
	got, err := s.GetVehicle(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Fatalf("round trip differs:\n got %s\nwant %s", gb, wb)
	}
	got.Model = "Model 3"
	if err := s.PutVehicle(ctx, got, mustClaim(t, s, uniqueID(t, "e2"), t0)); err != nil || got.Version != 2 {
		t.Fatalf("second write: version %d, %v", got.Version, err)
	}
}

func testVersionConflict(t *testing.T, s Store) {
	ctx := context.Background()
	vid := uniqueID(t, "v")
	first, second := mustClaim(t, s, uniqueID(t, "e1"), t0), mustClaim(t, s, uniqueID(t, "e2"), t0)
	a, _ := s.GetVehicle(ctx, vid)
	b, _ := s.GetVehicle(ctx, vid)
	a.Make = "A"
	if err := s.PutVehicle(ctx, a, first); err != nil {
		t.Fatal(err)
	}
	b.Make = "B"
	if err := s.PutVehicle(ctx, b, second); !errors.Is(err, processor.ErrVersionConflict) {
		t.Fatalf("write from a stale read = %v, want ErrVersionConflict", err)
	}
	// The losing write changed nothing: its event is still held, not completed.
	if err := s.Release(ctx, second); err != nil {
		t.Fatalf("the losing writer's claim was disturbed: %v", err)
	}
	if got, _ := s.GetVehicle(ctx, vid); got.Make != "A" || got.Version != 1 {
		t.Fatalf("stored = %s v%d, want A v1", got.Make, got.Version)
	}
}

func testVehicleWriteCompletes(t *testing.T, s Store) {
	ctx := context.Background()
	vid, eid := uniqueID(t, "v"), uniqueID(t, "e")
	c := mustClaim(t, s, eid, t0)
	st, _ := s.GetVehicle(ctx, vid)
	st.Make = "M"
	if err := s.PutVehicle(ctx, st, c); err != nil {
		t.Fatal(err)
	}
	if _, out, err := s.Claim(ctx, claimReq(eid, t0.Add(time.Hour))); err != nil || out != processor.AlreadyCompleted {
		t.Fatalf("claim after the state write = %v, %v; want AlreadyCompleted (state and completion are one write)", out, err)
	}
	st.Make = "AGAIN"
	if err := s.PutVehicle(ctx, st, c); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("second write under a completed claim = %v, want ErrFenceLost", err)
	}
}

func testVehicleFence(t *testing.T, s Store) {
	ctx := context.Background()
	vid, eid := uniqueID(t, "v"), uniqueID(t, "e")
	old := mustClaim(t, s, eid, t0)
	mustClaim(t, s, eid, t0.Add(20*time.Second)) // takeover
	st, _ := s.GetVehicle(ctx, vid)
	st.Make = "LATE"
	if err := s.PutVehicle(ctx, st, old); !errors.Is(err, processor.ErrFenceLost) {
		t.Fatalf("stale worker's vehicle write = %v, want ErrFenceLost", err)
	}
	if got, _ := s.GetVehicle(ctx, vid); got.Version != 0 || got.Make != "" {
		t.Fatalf("fenced write was applied: %+v", got)
	}
}
