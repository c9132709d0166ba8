package vehicle_test

import (
	"encoding/json"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

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
	}{
		{"newer replaces", []smartcar.Event{state("e1", 10, sig("soc", 50, 100)), state("e2", 20, sig("soc", 60, 200))}, map[string]string{"soc": "60"}, 0},
		{"older ignored", []smartcar.Event{state("e2", 20, sig("soc", 60, 200)), state("e1", 10, sig("soc", 50, 100))}, map[string]string{"soc": "60"}, 1},
		{"equal ignored", []smartcar.Event{state("e1", 10, sig("soc", 50, 100)), state("e2", 20, sig("soc", 51, 100))}, map[string]string{"soc": "50"}, 1},
		{"merged per signal", []smartcar.Event{
			state("new", 20, sig("soc", 60, 200), sig("odo", 1000, 150)),
			state("old", 10, sig("soc", 50, 100), sig("odo", 1100, 300)), // older event, newer odometer
		}, map[string]string{"soc": "60", "odo": "1100"}, 1},
		{"retrievedAt when oemUpdatedAt is 0", []smartcar.Event{
			state("e1", 10, smartcar.Signal{Code: "vin", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}, RetrievedAt: 500}),
			state("e2", 20, smartcar.Signal{Code: "vin", Status: "SUCCESS", Body: map[string]any{"value": json.Number("2")}, RetrievedAt: 400}),
		}, map[string]string{"vin": "1"}, 1},
		{"deliveredAt when no signal time", []smartcar.Event{
			state("e2", 20, smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("2")}}),
			state("e1", 10, smartcar.Signal{Code: "x", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}}),
		}, map[string]string{"x": "2"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vehicle.New("v1")
			var last vehicle.Result
			for _, ev := range tt.events {
				last = s.Apply(ev)
			}
			for code, want := range tt.want {
				if got := value(t, s, code); got != want {
					t.Errorf("%s = %s, want %s", code, got, want)
				}
			}
			if last.Stale != tt.wantStale {
				t.Errorf("stale = %d, want %d", last.Stale, tt.wantStale)
			}
		})
	}
}

func TestErrorSignalKeepsLastGoodBody(t *testing.T) {
	s := vehicle.New("v1")
	s.Apply(state("e1", 10, sig("soc", 50, 100)))
	s.Apply(state("e2", 20, smartcar.Signal{Code: "soc", Status: "ERROR", ErrorType: "VEHICLE_STATE", ErrorCode: "ASLEEP", RetrievedAt: 200}))
	got := s.Signals["soc"]
	if got.Status != "ERROR" || got.ErrorType != "VEHICLE_STATE" || got.ErrorCode != "ASLEEP" || value(t, s, "soc") != "50" || got.EventID != "e2" {
		t.Errorf("signal = %+v", got)
	}
	s.Apply(state("e3", 30, sig("soc", 55, 300)))
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
	s.Apply(errEvent("e1", 100, perm))
	if !s.NeedsReauth {
		t.Fatal("PERMISSION error did not set needsReauth")
	}
	e := s.Errors["PERMISSION:null"]
	if e.State != "ERROR" || e.EventID != "e1" || e.UpdatedAt != 100 || len(e.Signals) != 1 || s.Mode != "TEST" {
		t.Errorf("error entry = %+v, mode %s", e, s.Mode)
	}
	// An older ERROR report arriving late changes nothing.
	resolved := perm
	resolved.State = "RESOLVED"
	s.Apply(errEvent("e3", 300, resolved))
	if r := s.Apply(errEvent("e2", 200, perm)); r.Stale != 1 || s.NeedsReauth {
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
	))
	if !s.NeedsReauth {
		t.Error("REAUTHENTICATE resolution did not set needsReauth")
	}
	if e := s.Errors["BRAND_NEW_TYPE:X"]; e.Description != "d" || e.State != "ERROR" {
		t.Errorf("unknown type not stored as it came: %+v", e)
	}
	s.Apply(errEvent("e2", 200, smartcar.VehicleError{Type: "CONNECTED_SERVICES_ACCOUNT", Code: "AUTHENTICATION_FAILED", State: "RESOLVED"}))
	if s.NeedsReauth {
		t.Error("RESOLVED did not clear needsReauth")
	}
}

func TestCompatibilityMarksSignalsUnsupported(t *testing.T) {
	s := vehicle.New("v1")
	s.Apply(state("e1", 10, sig("location-isathome", 1, 100)))
	compat := smartcar.VehicleError{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR",
		Signals: []smartcar.SignalRef{{Group: "Location", Name: "IsAtHome"}, {Code: "charge-ischarging", Name: "IsCharging", Group: "Charge"}}}
	s.Apply(errEvent("e2", 20, compat))
	if !s.Signals["location-isathome"].Unsupported || !s.Signals["charge-ischarging"].Unsupported {
		t.Fatalf("signals not marked unsupported: %+v", s.Signals)
	}
	if value(t, s, "location-isathome") != "1" {
		t.Error("unsupported mark lost the stored value")
	}
	// A newer value keeps the mark; only RESOLVED clears it.
	s.Apply(state("e3", 30, sig("location-isathome", 0, 200)))
	if !s.Signals["location-isathome"].Unsupported {
		t.Error("a new value cleared the unsupported mark")
	}
	compat.State = "RESOLVED"
	s.Apply(errEvent("e4", 40, compat))
	if s.Signals["location-isathome"].Unsupported || s.Signals["charge-ischarging"].Unsupported {
		t.Error("RESOLVED did not clear the unsupported mark")
	}
}

func TestVehicleDetailsFollowNewestDelivery(t *testing.T) {
	s := vehicle.New("v1")
	newer := state("e2", 20)
	newer.Meta.Mode = "TEST"
	s.Apply(newer)
	older := state("e1", 10)
	older.Model, older.Meta.Mode = "OLD", "LIVE"
	s.Apply(older)
	if s.Mode != "TEST" || s.Model != "Y" || s.Make != "TESLA" || s.Year != 2024 || s.UserID != "u1" {
		t.Errorf("details = %+v", s)
	}
	if r := s.Apply(newer); r.Changed() {
		t.Error("re-applying the same event changed the state")
	}
}
