package domainevents_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

const (
	v1 = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	v2 = "0b2d4f6a-8c1e-4a3b-9d5f-7e0a2c4b6d81"
)

// fakeReauth answers NeedsReauth with needs, or fails with err, and
// counts the calls.
type fakeReauth struct {
	needs bool
	err   error
	calls []string
}

func (f *fakeReauth) NeedsReauth(_ context.Context, vehicleID string) (bool, error) {
	f.calls = append(f.calls, vehicleID)
	return f.needs, f.err
}

func value(v any) map[string]any { return map[string]any{"value": v} }

// sg is a stored signal written by eventID, ordered at at.
func sg(eventID string, at int64, status string, body map[string]any) *vehicle.Signal {
	return &vehicle.Signal{Body: body, Status: status, OEMUpdatedAt: at, RetrievedAt: at + 500, OrderedAt: at, EventID: eventID}
}

func ok(eventID string, at int64, v any) *vehicle.Signal {
	return sg(eventID, at, vehicle.StatusSuccess, value(v))
}

func signal(vehicleID, code string, old, new *vehicle.Signal) vehicle.EntryChange {
	return vehicle.EntryChange{VehicleID: vehicleID, Signal: &vehicle.SignalChange{Code: code, Old: old, New: new}}
}

// er is a stored report of the error key TYPE:CODE.
func er(key, state, eventID string, at int64) *vehicle.Error {
	typ, code, _ := strings.Cut(key, ":")
	if code == "null" {
		code = ""
	}
	e := &vehicle.Error{Type: typ, Code: code, State: state, Description: "d", UpdatedAt: at, OrderedAt: at, EventID: eventID}
	if typ == "PERMISSION" {
		e.ResolutionType = "REAUTHENTICATE"
	}
	return e
}

func errorChange(vehicleID, key string, old, new *vehicle.Error) vehicle.EntryChange {
	return vehicle.EntryChange{VehicleID: vehicleID, Error: &vehicle.ErrorChange{Key: key, Old: old, New: new}}
}

const (
	active   = vehicle.ErrorActive
	resolved = vehicle.ErrorResolved
	unreach  = "VEHICLE_STATE:UNREACHABLE"
	perm     = "PERMISSION:null"
)

// summary is what a table compares of an event: its type, vehicle,
// eventId, signal codes or error key, source changes and time (ms).
func summary(e domainevents.Event) string {
	what := ""
	if e.Detail.Error != nil {
		what = e.Detail.Error.Key
	}
	for i, s := range e.Detail.Signals {
		if i > 0 {
			what += ","
		}
		what += s.Code
	}
	return fmt.Sprintf("%s %s/%s %s from=%v at=%d", e.DetailType, e.Detail.VehicleID, e.Detail.EventID, what, e.From, e.Time.UnixMilli())
}

// checkEvent checks what holds of every event: its detail is valid
// against its schema and fits, its times agree, its key is a SHA-256.
func checkEvent(t *testing.T, e domainevents.Event) {
	t.Helper()
	b, err := e.DetailJSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > domainevents.MaxDetailSize {
		t.Errorf("%s detail is %d bytes, over %d", e.DetailType, len(b), domainevents.MaxDetailSize)
	}
	if problems := validateJSON(t, domainevents.Schemas()[e.DetailType], b); len(problems) > 0 {
		t.Errorf("%s detail invalid: %s\n%s", e.DetailType, strings.Join(problems, "; "), b)
	}
	if want := e.Time.UTC().Format("2006-01-02T15:04:05.000Z"); e.Detail.OccurredAt != want {
		t.Errorf("occurredAt = %s, want %s (Time)", e.Detail.OccurredAt, want)
	}
	if k, err := hex.DecodeString(e.Detail.IdempotencyKey); err != nil || len(k) != sha256.Size {
		t.Errorf("idempotencyKey %q is no hex SHA-256", e.Detail.IdempotencyKey)
	}
	if len(e.From) == 0 || !slices.IsSorted(e.From) {
		t.Errorf("From = %v, want ascending indices", e.From)
	}
	if e.Detail.SchemaVersion != domainevents.SchemaVersion {
		t.Errorf("schemaVersion = %q", e.Detail.SchemaVersion)
	}
}

func derive(t *testing.T, changes []vehicle.EntryChange, reauth domainevents.ReauthState) []domainevents.Event {
	t.Helper()
	evs, err := domainevents.Derive(context.Background(), changes, reauth)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		checkEvent(t, e)
	}
	return evs
}

func TestDerive(t *testing.T) {
	tests := []struct {
		name    string
		changes []vehicle.EntryChange
		needs   bool
		want    []string
		// calls are the vehicles whose reauth state is asked.
		calls []string
	}{
		// Signals.
		{name: "new signal",
			changes: []vehicle.EntryChange{signal(v1, "soc", nil, ok("e1", 1000, 63))},
			want:    []string{"vehicle.signals.changed " + v1 + "/e1 soc from=[0] at=1000"}},
		{name: "changed body",
			changes: []vehicle.EntryChange{signal(v1, "soc", ok("e0", 500, 58), ok("e1", 1000, 63))},
			want:    []string{"vehicle.signals.changed " + v1 + "/e1 soc from=[0] at=1000"}},
		{name: "same body rewritten: only its times moved",
			changes: []vehicle.EntryChange{signal(v1, "soc", ok("e0", 500, 63), ok("e1", 1000, 63))}},
		{name: "same body spelled differently",
			changes: []vehicle.EntryChange{signal(v1, "soc",
				sg("e0", 500, vehicle.StatusSuccess, map[string]any{"value": json.Number("63.0"), "unit": "percent"}),
				sg("e1", 1000, vehicle.StatusSuccess, map[string]any{"unit": "percent", "value": 63}))}},
		{name: "nested body changed",
			changes: []vehicle.EntryChange{signal(v1, "loc",
				sg("e0", 500, vehicle.StatusSuccess, map[string]any{"values": []any{1.0, map[string]any{"a": "x"}}}),
				sg("e1", 1000, vehicle.StatusSuccess, map[string]any{"values": []any{1.0, map[string]any{"a": "y"}}}))},
			want: []string{"vehicle.signals.changed " + v1 + "/e1 loc from=[0] at=1000"}},
		{name: "status changed, body kept",
			changes: []vehicle.EntryChange{signal(v1, "soc", ok("e0", 500, 63), sg("e1", 1000, vehicle.StatusError, value(63)))},
			want:    []string{"vehicle.signals.changed " + v1 + "/e1 soc from=[0] at=1000"}},
		{name: "still in error",
			changes: []vehicle.EntryChange{signal(v1, "soc", sg("e0", 500, vehicle.StatusError, nil), sg("e1", 1000, vehicle.StatusError, nil))}},
		{name: "signals of one eventId grouped, sorted by code, at the latest",
			changes: []vehicle.EntryChange{
				signal(v1, "c", nil, ok("e1", 1000, 1)),
				signal(v1, "a", nil, ok("e1", 3000, 2)),
				signal(v1, "b", ok("e0", 500, 3), ok("e1", 2000, 4)),
			},
			want: []string{"vehicle.signals.changed " + v1 + "/e1 a,b,c from=[0 1 2] at=3000"}},
		{name: "two eventIds, two events",
			changes: []vehicle.EntryChange{
				signal(v1, "a", nil, ok("e1", 1000, 1)),
				signal(v1, "b", nil, ok("e2", 2000, 2)),
				signal(v1, "c", nil, ok("e1", 1500, 3)),
			},
			want: []string{
				"vehicle.signals.changed " + v1 + "/e1 a,c from=[0 2] at=1500",
				"vehicle.signals.changed " + v1 + "/e2 b from=[1] at=2000",
			}},
		{name: "one eventId, two vehicles, two events",
			changes: []vehicle.EntryChange{
				signal(v1, "a", nil, ok("e1", 1000, 1)),
				signal(v2, "a", nil, ok("e1", 1000, 1)),
			},
			want: []string{
				"vehicle.signals.changed " + v1 + "/e1 a from=[0] at=1000",
				"vehicle.signals.changed " + v2 + "/e1 a from=[1] at=1000",
			}},
		{name: "a signal written twice by one event appears once",
			changes: []vehicle.EntryChange{
				signal(v1, "a", ok("e0", 500, 1), ok("e1", 1000, 2)),
				signal(v1, "a", ok("e1", 1000, 2), ok("e1", 1200, 3)),
			},
			want: []string{"vehicle.signals.changed " + v1 + "/e1 a from=[0 1] at=1200"}},
		{name: "signal removed",
			changes: []vehicle.EntryChange{signal(v1, "soc", ok("e0", 500, 63), nil)}},

		// Errors.
		{name: "error raised",
			changes: []vehicle.EntryChange{errorChange(v1, unreach, nil, er(unreach, active, "e1", 1000))},
			want:    []string{"vehicle.error.raised " + v1 + "/e1 " + unreach + " from=[0] at=1000"}},
		{name: "error raised again after it was resolved",
			changes: []vehicle.EntryChange{errorChange(v1, unreach, er(unreach, resolved, "e0", 500), er(unreach, active, "e1", 1000))},
			want:    []string{"vehicle.error.raised " + v1 + "/e1 " + unreach + " from=[0] at=1000"}},
		{name: "error resolved: its reauth state not asked",
			changes: []vehicle.EntryChange{errorChange(v1, unreach, er(unreach, active, "e0", 500), er(unreach, resolved, "e1", 1000))},
			want:    []string{"vehicle.error.resolved " + v1 + "/e1 " + unreach + " from=[0] at=1000"}},
		{name: "error rewritten, still active",
			changes: []vehicle.EntryChange{errorChange(v1, unreach, er(unreach, active, "e0", 500), er(unreach, active, "e1", 1000))}},
		{name: "error rewritten, still resolved",
			changes: []vehicle.EntryChange{errorChange(v1, perm, er(perm, resolved, "e0", 500), er(perm, resolved, "e1", 1000))}},
		{name: "error first reported resolved",
			changes: []vehicle.EntryChange{errorChange(v1, perm, nil, er(perm, resolved, "e1", 1000))}},
		{name: "error removed",
			changes: []vehicle.EntryChange{errorChange(v1, perm, er(perm, active, "e0", 500), nil)}},
		{name: "error stored before orderedAt: at its updatedAt",
			changes: []vehicle.EntryChange{errorChange(v1, unreach, nil, &vehicle.Error{Type: "VEHICLE_STATE", Code: "UNREACHABLE", State: active, UpdatedAt: 900, EventID: "e1"})},
			want:    []string{"vehicle.error.raised " + v1 + "/e1 " + unreach + " from=[0] at=900"}},
		{name: "reauth required with the raise",
			changes: []vehicle.EntryChange{errorChange(v1, perm, nil, er(perm, active, "e1", 1000))},
			want: []string{
				"vehicle.error.raised " + v1 + "/e1 " + perm + " from=[0] at=1000",
				"vehicle.reauth.required " + v1 + "/e1 " + perm + " from=[0] at=1000",
			}},
		{name: "reauth cleared: no other error asks for it",
			changes: []vehicle.EntryChange{errorChange(v1, perm, er(perm, active, "e0", 500), er(perm, resolved, "e1", 1000))},
			needs:   false,
			calls:   []string{v1},
			want: []string{
				"vehicle.error.resolved " + v1 + "/e1 " + perm + " from=[0] at=1000",
				"vehicle.reauth.cleared " + v1 + "/e1 " + perm + " from=[0] at=1000",
			}},
		{name: "reauth not cleared: another error asks for it",
			changes: []vehicle.EntryChange{errorChange(v1, perm, er(perm, active, "e0", 500), er(perm, resolved, "e1", 1000))},
			needs:   true,
			calls:   []string{v1},
			want:    []string{"vehicle.error.resolved " + v1 + "/e1 " + perm + " from=[0] at=1000"}},
		{name: "reauth asked by the resolved report only",
			changes: []vehicle.EntryChange{errorChange(v1, "AUTHENTICATION:null",
				&vehicle.Error{Type: "AUTHENTICATION", State: active, OrderedAt: 500, EventID: "e0"},
				&vehicle.Error{Type: "AUTHENTICATION", State: resolved, ResolutionType: "REAUTHENTICATE", OrderedAt: 1000, EventID: "e1"})},
			calls: []string{v1},
			want: []string{
				"vehicle.error.resolved " + v1 + "/e1 AUTHENTICATION:null from=[0] at=1000",
				"vehicle.reauth.cleared " + v1 + "/e1 AUTHENTICATION:null from=[0] at=1000",
			}},
		{name: "reauth state asked once per vehicle",
			changes: []vehicle.EntryChange{
				errorChange(v1, perm, er(perm, active, "e0", 500), er(perm, resolved, "e1", 1000)),
				errorChange(v1, "PERMISSION:SCOPE", er("PERMISSION:SCOPE", active, "e0", 500), er("PERMISSION:SCOPE", resolved, "e1", 1000)),
				errorChange(v2, perm, er(perm, active, "e0", 500), er(perm, resolved, "e2", 1000)),
			},
			calls: []string{v1, v2},
			want: []string{
				"vehicle.error.resolved " + v1 + "/e1 " + perm + " from=[0] at=1000",
				"vehicle.reauth.cleared " + v1 + "/e1 " + perm + " from=[0] at=1000",
				"vehicle.error.resolved " + v1 + "/e1 PERMISSION:SCOPE from=[1] at=1000",
				"vehicle.reauth.cleared " + v1 + "/e1 PERMISSION:SCOPE from=[1] at=1000",
				"vehicle.error.resolved " + v2 + "/e2 " + perm + " from=[2] at=1000",
				"vehicle.reauth.cleared " + v2 + "/e2 " + perm + " from=[2] at=1000",
			}},

		// Details, and the order of a mixed batch.
		{name: "details changed",
			changes: []vehicle.EntryChange{{VehicleID: v1, Details: &vehicle.DetailsChange{
				Old: &vehicle.Details{Make: "TESLA", Model: "Model 3"}, New: &vehicle.Details{Make: "TESLA", Model: "Model Y"}}}}},
		{name: "details created",
			changes: []vehicle.EntryChange{{VehicleID: v1, Details: &vehicle.DetailsChange{New: &vehicle.Details{Make: "TESLA"}}}}},
		{name: "no entry",
			changes: []vehicle.EntryChange{{VehicleID: v1}}},
		{name: "events in the order of their first change",
			changes: []vehicle.EntryChange{
				{VehicleID: v1, Details: &vehicle.DetailsChange{New: &vehicle.Details{Make: "TESLA"}}},
				signal(v1, "b", nil, ok("e1", 1000, 1)),
				errorChange(v1, perm, nil, er(perm, active, "e2", 2000)),
				signal(v1, "a", nil, ok("e1", 1000, 2)),
				signal(v1, "a", ok("e1", 1000, 2), ok("e3", 3000, 2)), // same value
			},
			want: []string{
				"vehicle.signals.changed " + v1 + "/e1 a,b from=[1 3] at=1000",
				"vehicle.error.raised " + v1 + "/e2 " + perm + " from=[2] at=2000",
				"vehicle.reauth.required " + v1 + "/e2 " + perm + " from=[2] at=2000",
			}},
		{name: "empty batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reauth := &fakeReauth{needs: tt.needs}
			var got []string
			for _, e := range derive(t, tt.changes, reauth) {
				got = append(got, summary(e))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if !slices.Equal(reauth.calls, tt.calls) {
				t.Errorf("reauth state asked of %v, want %v", reauth.calls, tt.calls)
			}
		})
	}
}

func TestSignalChangeDetail(t *testing.T) {
	tests := []struct {
		name string
		ch   vehicle.EntryChange
		want domainevents.SignalChange
	}{
		{"new signal: no previous, times as RFC 3339",
			signal(v1, "soc", nil, &vehicle.Signal{Name: "StateOfCharge", Group: "TractionBattery", Body: value(63), Status: "SUCCESS",
				OEMUpdatedAt: 1767225590000, RetrievedAt: 1767225598412, OrderedAt: 1767225590000, EventID: "e1"}),
			domainevents.SignalChange{Code: "soc", Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS", Body: value(63),
				OEMUpdatedAt: "2025-12-31T23:59:50.000Z", RetrievedAt: "2025-12-31T23:59:58.412Z"}},
		{"changed body: the previous one",
			signal(v1, "soc", ok("e0", 500, 58), &vehicle.Signal{Body: value(63), Status: "SUCCESS", OrderedAt: 1000, EventID: "e1"}),
			domainevents.SignalChange{Code: "soc", Status: "SUCCESS", Body: value(63), PreviousStatus: "SUCCESS", PreviousBody: value(58)}},
		{"in error: why, and the body kept",
			signal(v1, "soc", ok("e0", 500, 58), &vehicle.Signal{Body: value(58), Status: "ERROR", ErrorType: "COMPATIBILITY", ErrorCode: "VEHICLE_NOT_CAPABLE", OrderedAt: 1000, EventID: "e1"}),
			domainevents.SignalChange{Code: "soc", Status: "ERROR", ErrorType: "COMPATIBILITY", ErrorCode: "VEHICLE_NOT_CAPABLE", Body: value(58),
				PreviousStatus: "SUCCESS", PreviousBody: value(58)}},
		{"an empty body is none",
			signal(v1, "soc", sg("e0", 500, "SUCCESS", map[string]any{}), &vehicle.Signal{Status: "ERROR", OrderedAt: 1000, EventID: "e1"}),
			domainevents.SignalChange{Code: "soc", Status: "ERROR", PreviousStatus: "SUCCESS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := derive(t, []vehicle.EntryChange{tt.ch}, nil)
			if len(evs) != 1 || len(evs[0].Detail.Signals) != 1 {
				t.Fatalf("events %v", evs)
			}
			got := evs[0].Detail.Signals[0]
			// Alone in its event, the signal's key is the event's.
			if got.IdempotencyKey != evs[0].Detail.IdempotencyKey {
				t.Errorf("signal key %s, event key %s", got.IdempotencyKey, evs[0].Detail.IdempotencyKey)
			}
			got.IdempotencyKey = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("signal change\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestErrorDetail(t *testing.T) {
	e := &vehicle.Error{Type: "PERMISSION", State: active, Description: "re-authenticate", ResolutionType: "REAUTHENTICATE",
		Signals: []string{"closure-islocked"}, UpdatedAt: 1767225712907, OrderedAt: 1767225712907, EventID: "e1"}
	evs := derive(t, []vehicle.EntryChange{errorChange(v1, perm, nil, e)}, nil)
	want := domainevents.ErrorInfo{Key: perm, Type: "PERMISSION", State: active, Description: "re-authenticate",
		ResolutionType: "REAUTHENTICATE", Signals: []string{"closure-islocked"}}
	for _, ev := range evs {
		if ev.Detail.Error == nil || !reflect.DeepEqual(*ev.Detail.Error, want) {
			t.Errorf("%s error %+v, want %+v", ev.DetailType, ev.Detail.Error, want)
		}
		if ev.Detail.OccurredAt != "2026-01-01T00:01:52.907Z" || ev.Detail.EventID != "e1" || ev.Detail.Signals != nil {
			t.Errorf("%s detail %+v", ev.DetailType, ev.Detail)
		}
	}
	if len(evs) != 2 || evs[0].Detail.IdempotencyKey == evs[1].Detail.IdempotencyKey {
		t.Errorf("raised and reauth required must differ in key: %v", evs)
	}
}

func TestReauthStateError(t *testing.T) {
	boom := errors.New("table unavailable")
	changes := []vehicle.EntryChange{
		signal(v1, "a", nil, ok("e1", 1000, 1)),
		errorChange(v1, perm, er(perm, active, "e0", 500), er(perm, resolved, "e1", 1000)),
	}
	evs, err := domainevents.Derive(context.Background(), changes, &fakeReauth{err: boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), v1) {
		t.Errorf("err = %v, want %v naming the vehicle", err, boom)
	}
	if evs != nil {
		t.Errorf("events %v with an error", evs)
	}
	if _, err := domainevents.Derive(context.Background(), changes, nil); err == nil {
		t.Error("no ReauthState to ask: no error")
	}
}

// bigSignal is a new signal of about size bytes of JSON.
func bigSignal(code, eventID string, size int) vehicle.EntryChange {
	return signal(v1, code, nil, ok(eventID, 1000, strings.Repeat("x", size)))
}

func TestSplitBySize(t *testing.T) {
	const kib = 1 << 10
	tests := []struct {
		name  string
		sizes []int // of the signals a..., in KiB
		parts []string
	}{
		{"fits", []int{60, 60, 60}, []string{"a,b,c"}},
		{"two parts", []int{60, 60, 60, 60, 60}, []string{"a,b,c", "d,e"}},
		{"three parts", []int{150, 150, 150}, []string{"a", "b", "c"}},
		{"a small one after a big one", []int{190, 20, 1}, []string{"a", "b,c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changes []vehicle.EntryChange
			for i := len(tt.sizes) - 1; i >= 0; i-- { // out of order
				changes = append(changes, bigSignal(string(rune('a'+i)), "e1", tt.sizes[i]*kib))
			}
			evs := derive(t, changes, nil)
			var parts []string
			keys := map[string]bool{}
			for _, e := range evs {
				var codes []string
				for _, s := range e.Detail.Signals {
					codes = append(codes, s.Code)
					if s.BodyOmitted || s.Body == nil {
						t.Errorf("signal %s lost its body", s.Code)
					}
				}
				parts = append(parts, strings.Join(codes, ","))
				keys[e.Detail.IdempotencyKey] = true
				var from []int
				for _, c := range codes {
					from = append(from, len(tt.sizes)-1-int(c[0]-'a'))
				}
				slices.Sort(from)
				if !slices.Equal(e.From, from) {
					t.Errorf("part %s from %v, want %v", codes, e.From, from)
				}
			}
			if !slices.Equal(parts, tt.parts) {
				t.Errorf("parts %q, want %q", parts, tt.parts)
			}
			if len(keys) != len(evs) {
				t.Errorf("%d keys for %d parts", len(keys), len(evs))
			}
		})
	}
}

func TestBodyOmitted(t *testing.T) {
	tests := []struct {
		name string
		body map[string]any
	}{
		{"too large even alone", value(strings.Repeat("x", domainevents.MaxDetailSize))},
		{"not JSON", value(math.NaN())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := []vehicle.EntryChange{
				signal(v1, "a", ok("e0", 500, "y"), sg("e1", 1000, vehicle.StatusSuccess, tt.body)),
				bigSignal("b", "e1", 100),
			}
			evs := derive(t, changes, nil)
			if len(evs) != 1 || len(evs[0].Detail.Signals) != 2 {
				t.Fatalf("events %v", evs)
			}
			a, b := evs[0].Detail.Signals[0], evs[0].Detail.Signals[1]
			if !a.BodyOmitted || a.Body != nil || a.PreviousBody != nil || a.PreviousStatus != "SUCCESS" {
				t.Errorf("signal without its body: %+v", a)
			}
			if b.BodyOmitted || b.Body == nil {
				t.Errorf("the other signal: %+v", b)
			}
		})
	}
}

func keys(evs []domainevents.Event) map[string]string {
	m := map[string]string{}
	for _, e := range evs {
		m[summary(e)] = e.Detail.IdempotencyKey
	}
	return m
}

func TestKeysDeterministic(t *testing.T) {
	single := signal(v1, "soc", ok("e0", 500, 58), ok("e1", 1000, 63))
	raised := errorChange(v1, perm, nil, er(perm, active, "e2", 2000))
	batch := []vehicle.EntryChange{
		single,
		signal(v1, "odo", nil, ok("e3", 1000, 5)),
		raised,
		signal(v2, "soc", nil, ok("e1", 1000, 63)),
	}
	first, second := keys(derive(t, batch, nil)), keys(derive(t, batch, nil))
	if !reflect.DeepEqual(first, second) {
		t.Errorf("Derive twice:\n%v\n%v", first, second)
	}
	// Alone, or with others, a change's events keep their keys.
	alone := derive(t, []vehicle.EntryChange{single}, nil)
	if got := alone[0].Detail.IdempotencyKey; got != first["vehicle.signals.changed "+v1+"/e1 soc from=[0] at=1000"] {
		t.Errorf("single signal's key %s changed with the batch: %v", got, first)
	}
	for _, e := range derive(t, []vehicle.EntryChange{raised}, nil) {
		want := first[strings.Replace(summary(e), "from=[0]", "from=[2]", 1)]
		if e.Detail.IdempotencyKey != want {
			t.Errorf("%s key %s, in the batch %s", e.DetailType, e.Detail.IdempotencyKey, want)
		}
	}
	// What was stored makes the key: another write, another key.
	other := derive(t, []vehicle.EntryChange{signal(v1, "soc", ok("e0", 500, 58), ok("e1", 1001, 63))}, nil)
	if other[0].Detail.IdempotencyKey == alone[0].Detail.IdempotencyKey {
		t.Error("a write ordered at another time has the same key")
	}
	// Same keys across vehicles? Never.
	if first["vehicle.signals.changed "+v2+"/e1 soc from=[3] at=1000"] == alone[0].Detail.IdempotencyKey {
		t.Error("two vehicles' changes share a key")
	}
}

// The recipe of the package doc, pinned.
func TestKeyRecipe(t *testing.T) {
	hash := func(lines ...string) string {
		sum := sha256.Sum256([]byte(strings.Join(lines, "\n") + "\n"))
		return hex.EncodeToString(sum[:])
	}
	tests := []struct {
		name    string
		changes []vehicle.EntryChange
		want    []string
	}{
		{"signals",
			[]vehicle.EntryChange{signal(v1, "b", nil, ok("e1", 2000, 1)), signal(v1, "a", nil, ok("e1", 1000, 1))},
			[]string{hash("vehicle.signals.changed", v1, "signal:a 1000 e1", "signal:b 2000 e1")}},
		{"error raised",
			[]vehicle.EntryChange{errorChange(v1, perm, nil, er(perm, active, "e2", 3000))},
			[]string{hash("vehicle.error.raised", v1, "error:PERMISSION:null 3000 e2"), hash("vehicle.reauth.required", v1, "error:PERMISSION:null 3000 e2")}},
		{"error stored before orderedAt",
			[]vehicle.EntryChange{errorChange(v1, unreach, nil, &vehicle.Error{Type: "VEHICLE_STATE", Code: "UNREACHABLE", State: active, UpdatedAt: 900, EventID: "e1"})},
			[]string{hash("vehicle.error.raised", v1, "error:VEHICLE_STATE:UNREACHABLE 900 e1")}},
		{"split",
			[]vehicle.EntryChange{bigSignal("a", "e1", 150<<10), bigSignal("b", "e1", 150<<10)},
			[]string{hash("vehicle.signals.changed", v1, "signal:a 1000 e1", "part 0"), hash("vehicle.signals.changed", v1, "signal:b 1000 e1", "part 1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range derive(t, tt.changes, nil) {
				got = append(got, e.Detail.IdempotencyKey)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDetailJSONShape(t *testing.T) {
	evs := derive(t, []vehicle.EntryChange{signal(v1, "soc", nil, &vehicle.Signal{Body: map[string]any{"note": "<&>"}, Status: "SUCCESS", OrderedAt: 1000, EventID: "e1"})}, nil)
	b, err := evs[0].DetailJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":"1","vehicleId":"` + v1 + `","eventId":"e1","occurredAt":"1970-01-01T00:00:01.000Z","idempotencyKey":"` +
		evs[0].Detail.IdempotencyKey + `","signals":[{"code":"soc","idempotencyKey":"` + evs[0].Detail.IdempotencyKey +
		`","status":"SUCCESS","body":{"note":"<&>"}}]}`
	if string(b) != want {
		t.Errorf("detail\n got %s\nwant %s", b, want)
	}
	if evs[0].Time != time.UnixMilli(1000).UTC() {
		t.Errorf("time %v", evs[0].Time)
	}
}

// A signal's own key does not depend on the company it keeps: grouped
// with another signal of its webhook, or alone (as a retry may batch it),
// it is the same.
func TestSignalKeyWhateverTheBatch(t *testing.T) {
	a := signal(v1, "a", nil, &vehicle.Signal{Body: value(1), Status: "SUCCESS", OrderedAt: 1000, EventID: "e1"})
	b := signal(v1, "b", nil, &vehicle.Signal{Body: value(2), Status: "SUCCESS", OrderedAt: 1000, EventID: "e1"})
	together := derive(t, []vehicle.EntryChange{a, b}, nil)
	alone := derive(t, []vehicle.EntryChange{b}, nil)
	if len(together) != 1 || len(together[0].Detail.Signals) != 2 || len(alone) != 1 {
		t.Fatalf("events %v, %v", together, alone)
	}
	if together[0].Detail.IdempotencyKey == alone[0].Detail.IdempotencyKey {
		t.Error("the events' keys should differ: they carry different changes")
	}
	if k1, k2 := together[0].Detail.Signals[1].IdempotencyKey, alone[0].Detail.Signals[0].IdempotencyKey; k1 != k2 || k1 == "" {
		t.Errorf("signal b's key %s grouped, %s alone", k1, k2)
	}
}

// A resolution stored with whether the vehicle still needs
// re-authentication is decided by that alone, the stored vehicle never
// asked: two reauth errors resolved one after the other clear it once,
// with the second, however late the batch is derived.
func TestReauthClearedFromTheStoredChange(t *testing.T) {
	resolved := func(key, eventID string, at int64, stillNeeded bool) vehicle.EntryChange {
		n := er(key, vehicle.ErrorResolved, eventID, at)
		n.VehicleNeedsReauth = &stillNeeded
		return errorChange(v1, key, er(key, vehicle.ErrorActive, "e0", 1), n)
	}
	reauth := &fakeReauth{err: errors.New("the stored vehicle must not be asked")}
	evs := derive(t, []vehicle.EntryChange{
		resolved("PERMISSION:null", "e1", 10, true),            // another one still open
		resolved("AUTHENTICATION:PERMISSION", "e2", 20, false), // the last one
	}, reauth)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.DetailType+" "+ev.Detail.EventID)
	}
	want := "vehicle.error.resolved e1 vehicle.error.resolved e2 vehicle.reauth.cleared e2"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	if len(reauth.calls) != 0 {
		t.Errorf("asked the stored vehicle about %v", reauth.calls)
	}
}
