package smartcar_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestParseEventExamples(t *testing.T) {
	state, err := smartcar.ParseEvent(events.MustRead("bodies/vehicle_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if state.EventID != "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02" || state.EventType != "VEHICLE_STATE" ||
		state.VehicleID != "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24" || state.UserID != "5e2b8d4f-7a1c-4e9b-b3d6-0c8f2a4e6b13" ||
		state.Make != "TESLA" || state.Model != "Model Y" || state.Year != 2024 {
		t.Errorf("state envelope: %+v", state)
	}
	if state.Meta.DeliveredAt != 1767225598530 || state.Meta.Mode != "LIVE" || state.Meta.DeliveryID == "" {
		t.Errorf("meta: %+v", state.Meta)
	}
	if len(state.Signals) != 3 {
		t.Fatalf("%d signals", len(state.Signals))
	}
	soc := state.Signals[0]
	if soc.Code != "tractionbattery-stateofcharge" || soc.Status != "SUCCESS" || soc.OEMUpdatedAt != 1767225590000 ||
		soc.RetrievedAt != 1767225598412 || soc.Body["value"] != json.Number("63") || soc.Body["unit"] != "percent" {
		t.Errorf("state of charge: %+v", soc)
	}
	home := state.Signals[2]
	if home.Status != "ERROR" || home.ErrorType != "COMPATIBILITY" || home.ErrorCode != "VEHICLE_NOT_CAPABLE" || home.Body != nil {
		t.Errorf("signal in error: %+v", home)
	}

	errEv, err := smartcar.ParseEvent(events.MustRead("bodies/vehicle_error.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(errEv.Errors) != 2 {
		t.Fatalf("%d errors", len(errEv.Errors))
	}
	perm := errEv.Errors[1]
	if perm.Type != "PERMISSION" || perm.Code != "" || perm.State != "ERROR" || perm.ResolutionType != "REAUTHENTICATE" ||
		len(perm.Signals) != 1 || perm.Signals[0].Key() != "closure-islocked" {
		t.Errorf("permission error: %+v", perm)
	}
}

func TestParseEventVariants(t *testing.T) {
	body := `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"top",
	 "data":{"vehicle":{"make":"VW","year":"2023"},"triggers":[{"code":"FIRST_DELIVERY"}],
	  "signals":[
	   {"code":"odometer-traveleddistance","name":"TraveledDistance","group":"Odometer","body":{"value":12.50},"meta":{"oemUpdatedAt":0,"fetchedAt":1700000000000}},
	   {"name":"Vin","group":"Vehicle","body":"WVW123","status":{"value":"success"}},
	   {"code":"x","body":{"value":9007199254740993},"meta":{"oemUpdatedAt":"2026-01-01T00:00:00.5Z"},"status":{"value":"ERROR","error":{"type":"PERMISSION","code":null}}}]},
	 "triggers":[{"type":"SIGNAL_UPDATED","signal":"Odometer.TraveledDistance"}],
	 "meta":{"deliveredAt":"2026-01-01T00:00:01Z","mode":"TEST"}}`
	ev, err := smartcar.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.VehicleID != "top" || ev.Year != 2023 || ev.Meta.DeliveredAt != 1767225601000 || ev.Meta.Mode != "TEST" {
		t.Errorf("event: %+v", ev)
	}
	odo, vin, x := ev.Signals[0], ev.Signals[1], ev.Signals[2]
	if odo.RetrievedAt != 1700000000000 || odo.Body["value"] != json.Number("12.50") {
		t.Errorf("fetchedAt or exact number lost: %+v", odo)
	}
	if vin.Code != "vehicle-vin" || vin.Body["value"] != "WVW123" || vin.Status != "SUCCESS" {
		t.Errorf("signal without code: %+v", vin)
	}
	if x.OEMUpdatedAt != 1767225600500 || x.Status != "ERROR" || x.ErrorType != "PERMISSION" || x.ErrorCode != "" {
		t.Errorf("ISO oemUpdatedAt or null code: %+v", x)
	}

	errBody := `{"eventId":"e2","eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v"},"errors":[
	  {"type":"COMPATIBILITY","code":"VEHICLE_NOT_CAPABLE","state":"resolved","signals":["Location.IsAtHome"],"resolution":{"type":null}},
	  {"type":"SOMETHING_NEW","code":42}]},"meta":{"deliveredAt":1767225600000}}`
	ev, err = smartcar.ParseEvent([]byte(errBody))
	if err != nil {
		t.Fatal(err)
	}
	compat, unknown := ev.Errors[0], ev.Errors[1]
	if compat.State != "RESOLVED" || compat.ResolutionType != "" || compat.Signals[0].Key() != "location-isathome" {
		t.Errorf("string signal refs: %+v", compat)
	}
	if unknown.Type != "SOMETHING_NEW" || unknown.Code != "42" || unknown.State != "ERROR" {
		t.Errorf("unknown error type: %+v", unknown)
	}
}

// TestParseEventToleratesWrongTypes feeds fields of unexpected types: each
// reads as absent, and the event is still processed.
func TestParseEventToleratesWrongTypes(t *testing.T) {
	body := `{"eventId":"e","eventType":"VEHICLE_ERROR","meta":"x","data":{"user":"u","vehicle":{"id":"v","year":{}},
	  "signals":{"not":"an array"},
	  "errors":[
	    {"type":"PERMISSION","state":"ERROR","resolution":"REAUTHENTICATE","signals":[42,"Closure.IsLocked",{"code":"c"}]},
	    "not an object",
	    {"type":"VEHICLE_STATE","code":"ASLEEP","resolution":null,"signals":"Closure.IsLocked"}]}}`
	ev, err := smartcar.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.VehicleID != "v" || ev.UserID != "" || ev.Meta != (smartcar.Meta{}) || len(ev.Signals) != 0 || len(ev.Errors) != 2 {
		t.Fatalf("event = %+v", ev)
	}
	perm := ev.Errors[0]
	if perm.ResolutionType != "REAUTHENTICATE" || len(perm.Signals) != 3 || perm.Signals[1].Key() != "closure-islocked" || perm.Signals[2].Key() != "c" {
		t.Errorf("error entry = %+v", perm)
	}
	if asleep := ev.Errors[1]; asleep.Code != "ASLEEP" || asleep.ResolutionType != "" || len(asleep.Signals) != 0 {
		t.Errorf("error entry with signals not an array = %+v", asleep)
	}

	state := `{"eventId":"s","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"signals":[
	  {"code":"a","body":{"value":1},"meta":{"oemUpdatedAt":true,"retrievedAt":"2026-01-01T00:00:02"},"status":{"value":"SUCCESS"}},
	  {"code":"b","meta":"x","status":{"value":"ERROR","error":"ASLEEP"}},
	  {"code":"c","status":"SUCCESS","body":{"value":3}},
	  7]},"meta":{"deliveredAt":"yesterday"}}`
	ev, err = smartcar.ParseEvent([]byte(state))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Signals) != 3 || ev.Meta.DeliveredAt != 0 {
		t.Fatalf("event = %+v", ev)
	}
	a, b, c := ev.Signals[0], ev.Signals[1], ev.Signals[2]
	if a.OEMUpdatedAt != 0 || a.RetrievedAt != 1767225602000 {
		t.Errorf("a: oemUpdatedAt %d (want 0 for true), retrievedAt %d (want the zone-less time as UTC)", a.OEMUpdatedAt, a.RetrievedAt)
	}
	if b.Status != "ERROR" || b.ErrorType != "" {
		t.Errorf("b = %+v", b)
	}
	if c.Status != "SUCCESS" || c.Body["value"] != json.Number("3") {
		t.Errorf("c = %+v", c)
	}
}

// FuzzParseEvent: any input either decodes or fails as a permanent
// ErrInvalidEvent, never a panic.
func FuzzParseEvent(f *testing.F) {
	for _, name := range []string{"vehicle_state.json", "vehicle_error.json", "verify.json"} {
		f.Add(events.MustRead("bodies/" + name))
	}
	f.Add([]byte(`{"eventId":"e","eventType":"VEHICLE_ERROR","vehicleId":"v","data":{"errors":[{"signals":[1,null,{}]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := smartcar.ParseEvent(body); err != nil && !errors.Is(err, smartcar.ErrInvalidEvent) {
			t.Fatalf("error %v is not ErrInvalidEvent", err)
		}
	})
}

func TestParseEventPermanentFailures(t *testing.T) {
	bodies := map[string]string{
		"not JSON":          `not json`,
		"array":             `[{"eventId":"e"}]`,
		"truncated":         `{"eventId":"e","eventType":"VEHICLE_STATE"`,
		"trailing data":     `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v"} {}`,
		"no eventId":        `{"eventType":"VEHICLE_STATE","vehicleId":"v"}`,
		"no eventType":      `{"eventId":"e","vehicleId":"v"}`,
		"unknown eventType": `{"eventId":"e","eventType":"VEHICLE_TELEPORTED","vehicleId":"v"}`,
		"VERIFY":            `{"eventId":"e","eventType":"VERIFY","data":{"challenge":"c"}}`,
		"legacy v2":         `{"version":"2.0","eventName":"eventBased","payload":{"eventId":"e","vehicleId":"v"}}`,
		"no vehicle":        `{"eventId":"e","eventType":"VEHICLE_ERROR","data":{"errors":[]}}`,
		"anonymous signal":  `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"signals":[{"body":{}}]}}`,
	}
	for name, body := range bodies {
		if _, err := smartcar.ParseEvent([]byte(body)); !errors.Is(err, smartcar.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
}

// TestParseEventUnreadableTimestamps: a non-finite, out-of-range or
// negative time, as a JSON number or a string, reads as unknown on every
// architecture (a float64 beyond int64 once converted to MinInt64 on amd64
// and to MaxInt64 on arm64), so the signal is ordered by its retrievedAt.
func TestParseEventUnreadableTimestamps(t *testing.T) {
	for _, raw := range []string{`1e300`, `"1e300"`, `"Infinity"`, `"-Infinity"`, `"NaN"`, `-1e400`, `1e400`, `-5`,
		`99999999999999999999`, `"9999999999999999999"`, `"10000-01-01T00:00:00Z"`} {
		t.Run(raw, func(t *testing.T) {
			body := `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"signals":[
			  {"code":"a","body":{"value":1},"meta":{"oemUpdatedAt":` + raw + `,"retrievedAt":1767225598412}},
			  {"code":"b","body":{"value":2},"meta":{"retrievedAt":` + raw + `,"fetchedAt":1767225598413}}]},
			  "meta":{"deliveredAt":` + raw + `}}`
			ev, err := smartcar.ParseEvent([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			a, b := ev.Signals[0], ev.Signals[1]
			if a.OEMUpdatedAt != 0 || a.RetrievedAt != 1767225598412 || b.RetrievedAt != 1767225598413 || ev.Meta.DeliveredAt != 0 {
				t.Errorf("oemUpdatedAt %d, retrievedAt %d and %d, deliveredAt %d: want 0, 1767225598412, 1767225598413 (fetchedAt), 0",
					a.OEMUpdatedAt, a.RetrievedAt, b.RetrievedAt, ev.Meta.DeliveredAt)
			}
		})
	}
}
