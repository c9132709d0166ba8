package smartcar_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestParseEventExamples(t *testing.T) {
	state, err := smartcar.ParseEvent(readBody(t, "vehicle_state.json"))
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

	errEv, err := smartcar.ParseEvent(readBody(t, "vehicle_error.json"))
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
		"signals not array": `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"signals":{}}}`,
		"anonymous signal":  `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"v","data":{"signals":[{"body":{}}]}}`,
	}
	for name, body := range bodies {
		if _, err := smartcar.ParseEvent([]byte(body)); !errors.Is(err, smartcar.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
}
