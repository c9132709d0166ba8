package vehicle_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// now is the processing time of the merges: later than every time the
// tests report unless they say otherwise.
var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sig(code string, value int, oem int64) smartcar.Signal {
	return smartcar.Signal{Code: code, Name: code, Group: "G", Status: "SUCCESS",
		Body: map[string]any{"value": json.Number(itoa(value))}, OEMUpdatedAt: smartcar.Millis(oem)}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func state(id string, delivered int64, signals ...smartcar.Signal) smartcar.Event {
	return smartcar.Event{EventID: id, EventType: smartcar.EventVehicleState, VehicleID: "v1", Make: "TESLA", Model: "Y", Year: 2024,
		UserID: "u1", Signals: signals, Meta: smartcar.Meta{DeliveredAt: smartcar.Millis(delivered), Mode: "LIVE"}}
}

func value(t *testing.T, s *vehicle.State, code string) string {
	t.Helper()
	sg, ok := s.Signals[code]
	if !ok {
		t.Fatalf("no signal %s", code)
	}
	if sg.Body == nil {
		return "<nil>"
	}
	return string(sg.Body["value"].(json.Number))
}

func TestNewestSignalWins(t *testing.T) {
	tests := []struct {
		name      string
		events    []smartcar.Event
		want      map[string]string
		wantStale int // in the last event
		// wantUnchanged: reports at the stored time, in the last event
		wantUnchanged int
	}{
		{"newer replaces", []smartcar.Event{state("e1", 10, sig("soc", 50, 100)), state("e2", 20, sig("soc", 60, 200))}, map[string]string{"soc": "60"}, 0, 0},
		{"older ignored", []smartcar.Event{state("e2", 20, sig("soc", 60, 200)), state("e1", 10, sig("soc", 50, 100))}, map[string]string{"soc": "60"}, 1, 0},
		{"equal ignored", []smartcar.Event{state("e1", 10, sig("soc", 50, 100)), state("e2", 20, sig("soc", 51, 100))}, map[string]string{"soc": "50"}, 0, 1},
		{"merged per signal", []smartcar.Event{
			state("new", 20, sig("soc", 60, 200), sig("odo", 1000, 150)),
			state("old", 10, sig("soc", 50, 100), sig("odo", 1100, 300)), // older event, newer odometer
		}, map[string]string{"soc": "60", "odo": "1100"}, 1, 0},
		{"retrievedAt when oemUpdatedAt is 0", []smartcar.Event{
			state("e1", 10, smartcar.Signal{Code: "vin", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}, RetrievedAt: 500}),
			state("e2", 20, smartcar.Signal{Code: "vin", Status: "SUCCESS", Body: map[string]any{"value": json.Number("2")}, RetrievedAt: 400}),
		}, map[string]string{"vin": "1"}, 1, 0},
		{"deliveredAt when no signal time", []smartcar.Event{
			state("e2", 20, smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("2")}}),
			state("e1", 10, smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}}),
		}, map[string]string{"x": "2"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vehicle.New("v1")
			var last vehicle.Result
			for _, ev := range tt.events {
				last = s.Apply(ev, now)
			}
			for code, want := range tt.want {
				if got := value(t, s, code); got != want {
					t.Errorf("%s = %s, want %s", code, got, want)
				}
			}
			if last.Stale != tt.wantStale || last.Unchanged != tt.wantUnchanged {
				t.Errorf("stale = %d, unchanged = %d; want %d, %d", last.Stale, last.Unchanged, tt.wantStale, tt.wantUnchanged)
			}
		})
	}
}

func TestErrorSignalKeepsLastGoodBody(t *testing.T) {
	s := vehicle.New("v1")
	s.Apply(state("e1", 10, sig("soc", 50, 100)), now)
	s.Apply(state("e2", 20, smartcar.Signal{Code: "soc", Status: "ERROR", ErrorType: "VEHICLE_STATE", ErrorCode: "ASLEEP", RetrievedAt: 200}), now)
	got := s.Signals["soc"]
	if got.Status != "ERROR" || got.ErrorType != "VEHICLE_STATE" || got.ErrorCode != "ASLEEP" || value(t, s, "soc") != "50" || got.EventID != "e2" {
		t.Errorf("signal = %+v", got)
	}
	s.Apply(state("e3", 30, sig("soc", 55, 300)), now)
	if got := s.Signals["soc"]; got.Status != "SUCCESS" || got.ErrorType != "" || value(t, s, "soc") != "55" {
		t.Errorf("recovered signal = %+v", got)
	}
}

func errEvent(id string, delivered int64, errs ...smartcar.VehicleError) smartcar.Event {
	return smartcar.Event{EventID: id, EventType: smartcar.EventVehicleError, VehicleID: "v1", Errors: errs,
		Meta: smartcar.Meta{DeliveredAt: smartcar.Millis(delivered), Mode: "TEST"}}
}

func TestErrorLifecycle(t *testing.T) {
	s := vehicle.New("v1")
	perm := smartcar.VehicleError{Type: "PERMISSION", State: "ERROR", ResolutionType: "REAUTHENTICATE",
		Signals: []smartcar.SignalRef{{Code: "closure-islocked"}}}
	s.Apply(errEvent("e1", 100, perm), now)
	if !s.NeedsReauth {
		t.Fatal("PERMISSION error did not set needsReauth")
	}
	e := s.Errors["PERMISSION:null"]
	if e.State != "ERROR" || e.EventID != "e1" || e.UpdatedAt != 100 || e.OrderedAt != 100 || len(e.Signals) != 1 || s.Mode != "TEST" {
		t.Errorf("error entry = %+v, mode %s", e, s.Mode)
	}
	// An older ERROR report arriving late changes nothing.
	resolved := perm
	resolved.State = "RESOLVED"
	s.Apply(errEvent("e3", 300, resolved), now)
	if r := s.Apply(errEvent("e2", 200, perm), now); r.Stale != 1 || s.NeedsReauth {
		t.Fatalf("late older ERROR re-opened the error: %+v, needsReauth %v", r, s.NeedsReauth)
	}
	if s.Errors["PERMISSION:null"].State != "RESOLVED" {
		t.Error("RESOLVED was overwritten")
	}
}

func TestReauthFromResolutionAndUnknownTypes(t *testing.T) {
	s := vehicle.New("v1")
	s.Apply(errEvent("e1", 100,
		smartcar.VehicleError{Type: "CONNECTED_SERVICES_ACCOUNT", Code: "AUTHENTICATION_FAILED", State: "ERROR", ResolutionType: "REAUTHENTICATE"},
		smartcar.VehicleError{Type: "BRAND_NEW_TYPE", Code: "X", State: "ERROR", Description: "d"},
		smartcar.VehicleError{Type: "VEHICLE_STATE", Code: "ASLEEP", State: "ERROR", ResolutionType: "RETRY_LATER"},
	), now)
	if !s.NeedsReauth {
		t.Error("REAUTHENTICATE resolution did not set needsReauth")
	}
	if e := s.Errors["BRAND_NEW_TYPE:X"]; e.Description != "d" || e.State != "ERROR" {
		t.Errorf("unknown type not stored as it came: %+v", e)
	}
	s.Apply(errEvent("e2", 200, smartcar.VehicleError{Type: "CONNECTED_SERVICES_ACCOUNT", Code: "AUTHENTICATION_FAILED", State: "RESOLVED"}), now)
	if s.NeedsReauth {
		t.Error("RESOLVED did not clear needsReauth")
	}
}

func TestCompatibilityMarksSignalsUnsupported(t *testing.T) {
	s := vehicle.New("v1")
	s.Apply(state("e1", 10, sig("location-isathome", 1, 100)), now)
	compat := smartcar.VehicleError{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR",
		Signals: []smartcar.SignalRef{{Group: "Location", Name: "IsAtHome"}, {Code: "charge-ischarging", Name: "IsCharging", Group: "Charge"}}}
	s.Apply(errEvent("e2", 20, compat), now)
	if !s.Signals["location-isathome"].Unsupported || !s.Signals["charge-ischarging"].Unsupported {
		t.Fatalf("signals not marked unsupported: %+v", s.Signals)
	}
	if value(t, s, "location-isathome") != "1" {
		t.Error("unsupported mark lost the stored value")
	}
	// A newer value keeps the mark; only RESOLVED clears it.
	s.Apply(state("e3", 30, sig("location-isathome", 0, 200)), now)
	if !s.Signals["location-isathome"].Unsupported {
		t.Error("a new value cleared the unsupported mark")
	}
	compat.State = "RESOLVED"
	s.Apply(errEvent("e4", 40, compat), now)
	if s.Signals["location-isathome"].Unsupported || s.Signals["charge-ischarging"].Unsupported {
		t.Error("RESOLVED did not clear the unsupported mark")
	}
}

func TestVehicleDetailsFollowNewestDelivery(t *testing.T) {
	s := vehicle.New("v1")
	newer := state("e2", 20)
	newer.Meta.Mode = "TEST"
	s.Apply(newer, now)
	older := state("e1", 10)
	older.Model, older.Meta.Mode = "OLD", "LIVE"
	s.Apply(older, now)
	if s.Mode != "TEST" || s.Model != "Y" || s.Make != "TESLA" || s.Year != 2024 || s.UserID != "u1" {
		t.Errorf("details = %+v", s)
	}
	if r := s.Apply(newer, now); r.Changed() {
		t.Error("re-applying the same event changed the state")
	}
}

// year2100 is a time reported by a vehicle whose clock is wrong.
var year2100 = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// TestFutureTimeDoesNotFreezeSignal: a report timed in 2100 is stored as
// reported but ordered at the processing time plus MaxClockSkew, so a
// correct report later than that bound wins. Before, every report was
// stale until 2100.
func TestFutureTimeDoesNotFreezeSignal(t *testing.T) {
	t0 := now.UnixMilli()
	bound := now.Add(vehicle.MaxClockSkew).UnixMilli()
	tests := []struct {
		field  string
		future smartcar.Signal
		// delivered is the future event's meta.deliveredAt.
		delivered int64
	}{
		{"oemUpdatedAt", smartcar.Signal{OEMUpdatedAt: smartcar.Millis(year2100), RetrievedAt: smartcar.Millis(t0)}, t0},
		{"retrievedAt", smartcar.Signal{RetrievedAt: smartcar.Millis(year2100)}, t0},
		{"deliveredAt", smartcar.Signal{}, year2100},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			s := vehicle.New("v1")
			future := tt.future
			future.Code, future.Status, future.Body = "soc", "SUCCESS", map[string]any{"value": json.Number("1")}
			r := s.Apply(state("future", tt.delivered, future), now)
			got := s.Signals["soc"]
			if got.OrderedAt != bound || got.OEMUpdatedAt != int64(future.OEMUpdatedAt) || got.RetrievedAt != int64(future.RetrievedAt) {
				t.Errorf("stored %+v, want the times as reported, ordered at %d", got, bound)
			}
			want := vehicle.Clamp{Field: tt.field, Signal: "soc", Reported: year2100, Bound: bound}
			if len(r.Clamped) == 0 || r.Clamped[0] != want {
				t.Errorf("clamped = %+v, want %+v first", r.Clamped, want)
			}
			// A correct report inside the skew is ordered before the bound:
			// stale, as the bound says.
			inside := now.Add(time.Minute)
			if r := s.Apply(state("inside", inside.UnixMilli(), sig("soc", 2, inside.UnixMilli())), inside); r.Stale != 1 || len(r.Clamped) != 0 {
				t.Errorf("report inside the skew: %+v, want stale", r)
			}
			// Once processed after the bound, a correct later report wins.
			later := now.Add(vehicle.MaxClockSkew + time.Second)
			r = s.Apply(state("later", later.UnixMilli(), sig("soc", 3, later.UnixMilli())), later)
			if got := value(t, s, "soc"); got != "3" || r.Stale != 0 {
				t.Errorf("soc = %s (stale %d) after a correct later report, want 3: the 2100 report froze the signal", got, r.Stale)
			}
		})
	}
}

// TestFutureErrorDoesNotPinReauth: a PERMISSION error delivered "in 2100"
// is resolved by a genuine RESOLVED delivered after the bound. Before, it
// pinned needsReauth until 2100.
func TestFutureErrorDoesNotPinReauth(t *testing.T) {
	s := vehicle.New("v1")
	perm := smartcar.VehicleError{Type: "PERMISSION", State: "ERROR", ResolutionType: "REAUTHENTICATE"}
	r := s.Apply(errEvent("future", year2100, perm), now)
	bound := now.Add(vehicle.MaxClockSkew).UnixMilli()
	if e := s.Errors["PERMISSION:null"]; !s.NeedsReauth || e.UpdatedAt != year2100 || e.OrderedAt != bound {
		t.Fatalf("error %+v, needsReauth %v: want it stored as reported (%d), ordered at %d", e, s.NeedsReauth, year2100, bound)
	}
	want := []vehicle.Clamp{{Field: "deliveredAt", ErrorKey: "PERMISSION:null", Reported: year2100, Bound: bound},
		{Field: "deliveredAt", Reported: year2100, Bound: bound}}
	if !slices.Equal(r.Clamped, want) {
		t.Errorf("clamped = %+v, want %+v", r.Clamped, want)
	}
	if s.LastDeliveredAt != bound {
		t.Errorf("lastDeliveredAt = %d, want the bound %d", s.LastDeliveredAt, bound)
	}
	resolved := perm
	resolved.State = "RESOLVED"
	later := now.Add(vehicle.MaxClockSkew + time.Second)
	s.Apply(errEvent("resolved", later.UnixMilli(), resolved), later)
	if s.NeedsReauth || s.Errors["PERMISSION:null"].State != "RESOLVED" {
		t.Errorf("needsReauth %v, error %+v after a genuine RESOLVED: the 2100 ERROR pinned it", s.NeedsReauth, s.Errors["PERMISSION:null"])
	}
}

// TestStoredFutureTimesRecover: a state that took a 2100 time before the
// bound existed is replaced by the next report.
func TestStoredFutureTimesRecover(t *testing.T) {
	s := vehicle.New("v1")
	s.Signals["soc"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}, OEMUpdatedAt: year2100, OrderedAt: year2100}
	s.Signals["odo"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number("9")}, OrderedAt: 1000}
	s.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", UpdatedAt: year2100} // no orderedAt: an old item
	s.LastDeliveredAt, s.Make, s.NeedsReauth = year2100, "OLD", true
	// What a state stored before times were bounded is read with.
	if n := s.ForgetTimesAfter(vehicle.Bound(now)); n != 3 {
		t.Errorf("forgot %d times, want 3 (soc, the error, lastDeliveredAt)", n)
	}
	if s.Signals["odo"].OrderedAt != 1000 || s.Signals["soc"].OEMUpdatedAt != year2100 {
		t.Errorf("forgot more than the ordering times beyond the bound: %+v", s.Signals)
	}
	at := now.UnixMilli()
	s.Apply(state("e1", at, sig("soc", 2, at)), now)
	s.Apply(errEvent("e2", at, smartcar.VehicleError{Type: "PERMISSION", State: "RESOLVED"}), now)
	if value(t, s, "soc") != "2" || s.NeedsReauth || s.Make != "TESLA" || s.LastDeliveredAt != at {
		t.Errorf("soc %s, needsReauth %v, make %s, lastDeliveredAt %d: want the new reports", value(t, s, "soc"), s.NeedsReauth, s.Make, s.LastDeliveredAt)
	}
}

// TestUnreadableTimeIsUnknown: an oemUpdatedAt of "Infinity" or 1e300 is
// unknown, so the signal is ordered by its retrievedAt, else its delivery.
// Before, it read as MaxInt64 on arm64 (the signal froze for good) and as
// MinInt64 on amd64 (stored as such).
func TestUnreadableTimeIsUnknown(t *testing.T) {
	for _, tt := range []struct{ oem, retrieved string }{
		{`"Infinity"`, `1767225598412`}, {`1e300`, `1767225598412`}, {`"NaN"`, `1767225598412`},
		{`"Infinity"`, `null`}, {`1e300`, `null`},
	} {
		t.Run(tt.oem+","+tt.retrieved, func(t *testing.T) {
			body := func(id string, v int, oem, retrieved string, delivered int64) []byte {
				return fmt.Appendf(nil, `{"eventId":%q,"eventType":"VEHICLE_STATE","vehicleId":"v1","data":{"signals":[{"code":"soc","body":{"value":%d},
				  "meta":{"oemUpdatedAt":%s,"retrievedAt":%s}}]},"meta":{"deliveredAt":%d}}`, id, v, oem, retrieved, delivered)
			}
			ev, err := smartcar.ParseEvent(body("bad", 1, tt.oem, tt.retrieved, 1767225598530))
			if err != nil {
				t.Fatal(err)
			}
			s := vehicle.New("v1")
			s.Apply(ev, now)
			want := int64(1767225598412)
			if tt.retrieved == "null" {
				want = 1767225598530
			}
			if got := s.Signals["soc"]; got.OrderedAt != want || got.OEMUpdatedAt != 0 {
				t.Errorf("orderedAt %d, oemUpdatedAt %d: want %d and 0 (unknown)", got.OrderedAt, got.OEMUpdatedAt, want)
			}
			ev, _ = smartcar.ParseEvent(body("good", 2, "1767225599000", "1767225599100", 1767225599200))
			if s.Apply(ev, now); value(t, s, "soc") != "2" {
				t.Errorf("soc = %s, want 2: a correct later report lost to %s", value(t, s, "soc"), tt.oem)
			}
		})
	}
}

// TestChangesNameOnlyWhatIsNewer: a merge names the entries to store, and
// only those: a newer delivery alone is not news.
func TestChangesNameOnlyWhatIsNewer(t *testing.T) {
	s := vehicle.New("v1")
	first := s.Apply(state("e1", 10, sig("soc", 50, 100), sig("odo", 1000, 100)), now)
	if !slices.Equal(first.Changes.Signals, []string{"soc", "odo"}) || first.Changes.Details == nil {
		t.Fatalf("first event changes = %+v", first.Changes)
	}
	// Newer soc, older odo, the same details delivered later.
	r := s.Apply(state("e2", 20, sig("soc", 60, 200), sig("odo", 900, 50)), now)
	if !slices.Equal(r.Changes.Signals, []string{"soc"}) || r.Changes.Details != nil || len(r.Changes.Errors) != 0 || r.Stale != 1 {
		t.Errorf("changes = %+v, stale %d; want soc alone", r.Changes, r.Stale)
	}
	if r := s.Apply(state("e3", 30), now); r.Changed() || !r.Changes.Empty() {
		t.Errorf("a newer delivery alone changed %+v", r.Changes)
	}
	moved := state("e4", 40)
	moved.Model, moved.Make = "Z", ""
	r = s.Apply(moved, now)
	if d := r.Changes.Details; d == nil || d.Model != "Z" || d.Make != "" || d.LastDeliveredAt != 40 || s.Make != "TESLA" {
		t.Errorf("details change = %+v, state make %s; want the event's own fields", d, s.Make)
	}
	r = s.Apply(errEvent("e5", 50, smartcar.VehicleError{Type: "PERMISSION", State: "ERROR"}), now)
	if !slices.Equal(r.Changes.Errors, []string{"PERMISSION:null"}) {
		t.Errorf("error changes = %+v", r.Changes)
	}
}

// TestUnsupportedWhileAnyCompatibilityErrorUnresolved: Unsupported is
// derived from the errors, so two COMPATIBILITY errors naming a signal keep
// it unsupported until both are resolved, whatever order they land in.
// Before, the last one applied decided.
func TestUnsupportedWhileAnyCompatibilityErrorUnresolved(t *testing.T) {
	s := vehicle.New("v1")
	ref := []smartcar.SignalRef{{Code: "location-isathome", Name: "IsAtHome", Group: "Location"}}
	a := smartcar.VehicleError{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR", Signals: ref}
	b := smartcar.VehicleError{Type: "COMPATIBILITY", Code: "SMARTCAR_NOT_CAPABLE", State: "ERROR", Signals: ref}
	s.Apply(errEvent("e1", 10, a, b), now)
	a.State = "RESOLVED"
	s.Apply(errEvent("e2", 20, a), now)
	if got := s.Signals["location-isathome"]; !got.Unsupported || got.Name != "IsAtHome" {
		t.Fatalf("signal = %+v after one of two errors resolved, want still unsupported", got)
	}
	b.State = "RESOLVED"
	s.Apply(errEvent("e3", 30, b), now)
	if s.Signals["location-isathome"].Unsupported {
		t.Fatal("both errors resolved, signal still unsupported")
	}
}

// TestRedeliveryIsAlreadyApplied: a redelivery of an applied event changes
// nothing and is told apart from stale or unchanged news, even when
// Smartcar's retry carries a later deliveredAt (which orders errors and
// signals without times of their own).
func TestRedeliveryIsAlreadyApplied(t *testing.T) {
	perm := smartcar.VehicleError{Type: "PERMISSION", State: "ERROR"}
	untimed := smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}}
	tests := []struct {
		name        string
		first, next smartcar.Event
		want        bool // AlreadyApplied on next
	}{
		{"same state event", state("e1", 10, sig("soc", 50, 100), sig("odo", 7, 100)), state("e1", 10, sig("soc", 50, 100), sig("odo", 7, 100)), true},
		{"state retry delivered later", state("e1", 10, untimed), state("e1", 90, untimed), true},
		{"error retry delivered later", errEvent("e1", 100, perm), errEvent("e1", 400, perm), true},
		{"another event, same times", state("e1", 10, sig("soc", 50, 100)), state("e2", 20, sig("soc", 50, 100)), false},
		{"another event, older", state("e1", 10, sig("soc", 50, 100)), state("e0", 5, sig("soc", 40, 90)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vehicle.New("v1")
			s.Apply(tt.first, now)
			before := s.Clone()
			r := s.Apply(tt.next, now)
			if got := r.AlreadyApplied(); got != tt.want {
				t.Errorf("AlreadyApplied = %v, want %v (%+v)", got, tt.want, r)
			}
			if tt.want && (r.Changed() || !r.Changes.Empty() || r.Repeated == 0) {
				t.Errorf("a redelivery changed the state: %+v", r)
			}
			if tt.want && !reflect.DeepEqual(before.Signals, s.Signals) {
				t.Errorf("signals changed by a redelivery: %+v -> %+v", before.Signals, s.Signals)
			}
		})
	}
}

// TestSignalTwiceInOneEvent: an event naming a signal twice keeps the newer
// report; the second is not mistaken for a redelivery of the first.
func TestSignalTwiceInOneEvent(t *testing.T) {
	s := vehicle.New("v1")
	r := s.Apply(state("e1", 10, sig("x", 1, 100), sig("x", 2, 200)), now)
	if got := value(t, s, "x"); got != "2" || r.Repeated != 0 {
		t.Errorf("x = %s (repeated %d), want the newer report 2", got, r.Repeated)
	}
}

// TestOrderedByDelivery: a merge says when a change it applied is ordered
// by the delivery time or at the clock-skew bound, which a redelivery
// (Smartcar's retry carries a later deliveredAt) could apply again.
func TestOrderedByDelivery(t *testing.T) {
	untimed := smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}}
	future := sig("soc", 1, now.Add(time.Hour).UnixMilli())
	tests := []struct {
		name   string
		before []smartcar.Event
		ev     smartcar.Event
		want   bool
	}{
		{"signals with their own times, same details", []smartcar.Event{state("e0", 5, sig("soc", 1, 50))}, state("e1", 10, sig("soc", 2, 100)), false},
		{"a vehicle's first event: details", nil, state("e1", 10, sig("soc", 2, 100)), true},
		{"a signal without a time", []smartcar.Event{state("e0", 5, sig("soc", 1, 50))}, state("e1", 10, untimed), true},
		{"an error", nil, errEvent("e1", 10, smartcar.VehicleError{Type: "PERMISSION", State: "ERROR"}), true},
		{"a time beyond the skew bound", []smartcar.Event{state("e0", 5, sig("soc", 1, 50))}, state("e1", 10, future), true},
		{"nothing applied", []smartcar.Event{state("e0", 5, sig("soc", 1, 50))}, state("e1", 10, sig("soc", 0, 40)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vehicle.New("v1")
			for _, ev := range tt.before {
				s.Apply(ev, now)
			}
			if r := s.Apply(tt.ev, now); r.OrderedByDelivery != tt.want {
				t.Errorf("OrderedByDelivery = %v, want %v (%+v)", r.OrderedByDelivery, tt.want, r)
			}
		})
	}
}
