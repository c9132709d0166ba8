package domainevents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// validateJSON validates doc against schema, for the subset of JSON
// Schema the package's schemas use: type, required, properties,
// additionalProperties (a boolean), enum, items and format date-time
// (RFC 3339), besides the annotations $schema, $id, title and
// description. A schema using any other keyword is a failure: it would
// say what this validator does not check.
func validateJSON(t *testing.T, schema, doc []byte) []string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatalf("schema: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	validate(s, v, "$", &problems)
	return problems
}

func validate(s map[string]any, v any, at string, problems *[]string) {
	fail := func(format string, args ...any) {
		*problems = append(*problems, at+": "+fmt.Sprintf(format, args...))
	}
	for k := range s {
		switch k {
		case "$schema", "$id", "title", "description", "type", "required", "properties", "additionalProperties", "enum", "items", "format":
		default:
			fail("schema keyword %q not supported", k)
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(v, typ) {
		fail("%v is not of type %s", v, typ)
		return
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool {
		return fmt.Sprint(e) == fmt.Sprint(v) && hasType(v, "string") == hasType(e, "string")
	}) {
		fail("%v is not one of %v", v, enum)
	}
	if f, ok := s["format"].(string); ok {
		str, _ := v.(string)
		if f != "date-time" {
			fail("format %q not supported", f)
		} else if _, err := time.Parse(time.RFC3339, str); err != nil {
			fail("%q is no date-time: %v", str, err)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				fail("%s is required", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, pv := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					fail("%s is not allowed", k)
				}
				continue
			}
			validate(ps, pv, at+"."+k, problems)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, iv := range arr {
				validate(items, iv, fmt.Sprintf("%s[%d]", at, i), problems)
			}
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func hasType(v any, typ string) bool {
	switch v := v.(type) {
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	case string:
		return typ == "string"
	case bool:
		return typ == "boolean"
	case nil:
		return typ == "null"
	case json.Number:
		return typ == "number" || typ == "integer" && !strings.ContainsAny(string(v), ".eE")
	}
	return false
}

func TestValidator(t *testing.T) {
	schema := domainevents.Schemas()[domainevents.ErrorRaised]
	good := `{"schemaVersion":"1","vehicleId":"v","eventId":"e","occurredAt":"2026-01-01T00:00:00.000Z","idempotencyKey":"k",` +
		`"error":{"key":"A:null","type":"A","state":"ERROR","signals":["s"]}}`
	tests := []struct {
		name, doc, want string
	}{
		{"valid", good, ""},
		{"missing required", strings.Replace(good, `"eventId":"e",`, "", 1), "eventId is required"},
		{"extra property", strings.Replace(good, `"eventId":"e",`, `"eventId":"e","x":1,`, 1), "x is not allowed"},
		{"nested extra property", strings.Replace(good, `"type":"A"`, `"type":"A","y":true`, 1), "$.error: y is not allowed"},
		{"wrong type", strings.Replace(good, `"eventId":"e"`, `"eventId":7`, 1), "$.eventId: 7 is not of type string"},
		{"not in the enum", strings.Replace(good, `"state":"ERROR"`, `"state":"RESOLVED"`, 1), "is not one of"},
		{"schemaVersion a number", strings.Replace(good, `"schemaVersion":"1"`, `"schemaVersion":1`, 1), "not of type string"},
		{"bad date-time", strings.Replace(good, `2026-01-01T00:00:00.000Z`, `2026-01-01 00:00`, 1), "is no date-time"},
		{"bad item", strings.Replace(good, `["s"]`, `["s",2]`, 1), "$.error.signals[1]: 2 is not of type string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(validateJSON(t, schema, []byte(tt.doc)), "; ")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
	if got := validateJSON(t, []byte(`{"type":"string","minLength":1}`), []byte(`"x"`)); len(got) == 0 {
		t.Error("an unsupported keyword passed")
	}
}

// jsonFields returns the JSON names of a struct's fields, and those that
// are always present (not omitempty).
func jsonFields(typ reflect.Type) (all, always []string) {
	for i := range typ.NumField() {
		name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		all = append(all, name)
		if opts != "omitempty" {
			always = append(always, name)
		}
	}
	return all, always
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func strs(l []any) []string {
	var s []string
	for _, v := range l {
		s = append(s, v.(string))
	}
	sort.Strings(s)
	return s
}

// Each schema describes the detail exactly: the properties are the Go
// fields, the required ones those never omitted (and the event's own
// list or error), and nothing else is allowed.
func TestSchemasDescribeTheDetail(t *testing.T) {
	schemas := domainevents.Schemas()
	if got := keysOf(func() map[string]any {
		m := map[string]any{}
		for k := range schemas {
			m[k] = true
		}
		return m
	}()); !slices.Equal(got, sorted(domainevents.DetailTypes())) {
		t.Fatalf("schemas of %v", got)
	}
	check := func(t *testing.T, what string, s map[string]any, typ reflect.Type, drop, require string) {
		t.Helper()
		all, always := jsonFields(typ)
		all = slices.DeleteFunc(all, func(n string) bool { return n == drop })
		if require != "" {
			always = append(always, require)
		}
		if got := keysOf(s["properties"].(map[string]any)); !slices.Equal(got, sorted(all)) {
			t.Errorf("%s properties %v, want %v", what, got, sorted(all))
		}
		if got := strs(asList(s["required"])); !slices.Equal(got, sorted(always)) {
			t.Errorf("%s required %v, want %v", what, got, sorted(always))
		}
		if s["type"] != "object" || s["additionalProperties"] != false {
			t.Errorf("%s: an object allowing nothing else, please", what)
		}
	}
	for dt, b := range schemas {
		t.Run(dt, func(t *testing.T) {
			var s map[string]any
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || !strings.HasSuffix(s["$id"].(string), "/"+dt+".schema.json") {
				t.Errorf("$schema %v, $id %v", s["$schema"], s["$id"])
			}
			props := s["properties"].(map[string]any)
			if dt == domainevents.SignalsChanged {
				check(t, "detail", s, reflect.TypeFor[domainevents.Detail](), "error", "signals")
				check(t, "signal", props["signals"].(map[string]any)["items"].(map[string]any), reflect.TypeFor[domainevents.SignalChange](), "", "")
				return
			}
			check(t, "detail", s, reflect.TypeFor[domainevents.Detail](), "signals", "error")
			check(t, "error", props["error"].(map[string]any), reflect.TypeFor[domainevents.ErrorInfo](), "", "")
			want := vehicle.ErrorActive
			if dt == domainevents.ErrorResolved || dt == domainevents.ReauthCleared {
				want = vehicle.ErrorResolved
			}
			state := props["error"].(map[string]any)["properties"].(map[string]any)["state"].(map[string]any)
			if got := strs(asList(state["enum"])); !slices.Equal(got, []string{want}) {
				t.Errorf("error.state enum %v, want [%s]", got, want)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// exampleBatch is one stream batch of a vehicle's entries: a VEHICLE_STATE
// webhook changing two signals and reporting one unsupported (one
// rewritten with the same value), a VEHICLE_ERROR webhook raising two
// errors, and a later one resolving the PERMISSION error.
func exampleBatch() []vehicle.EntryChange {
	const (
		vid      = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
		state    = "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"
		errs     = "7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57"
		resolves = "2b4d6f8a-0c1e-4a3b-8d5f-7a9c1e3b5d70"
		earlier  = "6f8a0c2e-4b6d-4f1a-9c3e-5d7b9f1a3c24"
	)
	soc := func(eventID string, v int, oem, retrieved int64) *vehicle.Signal {
		return &vehicle.Signal{Name: "StateOfCharge", Group: "TractionBattery", Body: map[string]any{"value": json.Number(fmt.Sprint(v)), "unit": "percent"},
			Status: vehicle.StatusSuccess, OEMUpdatedAt: oem, RetrievedAt: retrieved, OrderedAt: oem, EventID: eventID}
	}
	charging := func(eventID string, oem, retrieved int64) *vehicle.Signal {
		return &vehicle.Signal{Name: "IsCharging", Group: "Charge", Body: map[string]any{"value": true},
			Status: vehicle.StatusSuccess, OEMUpdatedAt: oem, RetrievedAt: retrieved, OrderedAt: oem, EventID: eventID}
	}
	unreachable := &vehicle.Error{Type: "VEHICLE_STATE", Code: "UNREACHABLE", State: vehicle.ErrorActive,
		Description:    "The vehicle was unable to perform your request because it is currently unreachable.",
		ResolutionType: "RETRY_LATER", Signals: []string{"location-preciselocation", "odometer-traveleddistance"},
		UpdatedAt: 1767225712907, OrderedAt: 1767225712907, EventID: errs}
	permission := func(state, eventID string, at int64) *vehicle.Error {
		return &vehicle.Error{Type: "PERMISSION", State: state,
			Description:    "Your application has insufficient permissions to access the requested resource. Please prompt the user to re-authenticate using Smartcar Connect.",
			ResolutionType: "REAUTHENTICATE", Signals: []string{"closure-islocked"}, UpdatedAt: at, OrderedAt: at, EventID: eventID}
	}
	return []vehicle.EntryChange{
		{VehicleID: vid, Details: &vehicle.DetailsChange{New: &vehicle.Details{Make: "TESLA", Model: "Model Y", Year: 2024, Mode: "LIVE", LastDeliveredAt: 1767225598530}}},
		{VehicleID: vid, Signal: &vehicle.SignalChange{Code: "tractionbattery-stateofcharge",
			Old: soc(earlier, 58, 1767224690000, 1767224698107), New: soc(state, 63, 1767225590000, 1767225598412)}},
		{VehicleID: vid, Signal: &vehicle.SignalChange{Code: "charge-ischarging",
			Old: charging(earlier, 1767224690000, 1767224698107), New: charging(state, 1767225590000, 1767225598412)}},
		{VehicleID: vid, Signal: &vehicle.SignalChange{Code: "location-isathome",
			New: &vehicle.Signal{Name: "IsAtHome", Group: "Location", Status: vehicle.StatusError, ErrorType: "COMPATIBILITY",
				ErrorCode: "VEHICLE_NOT_CAPABLE", OrderedAt: 1767225598530, EventID: state}}},
		{VehicleID: vid, Error: &vehicle.ErrorChange{Key: "VEHICLE_STATE:UNREACHABLE", New: unreachable}},
		{VehicleID: vid, Error: &vehicle.ErrorChange{Key: "PERMISSION:null", New: permission(vehicle.ErrorActive, errs, 1767225712907)}},
		{VehicleID: vid, Error: &vehicle.ErrorChange{Key: "PERMISSION:null",
			Old: permission(vehicle.ErrorActive, errs, 1767225712907), New: permission(vehicle.ErrorResolved, resolves, 1767229403125)}},
	}
}

// envelope is an event as an EventBridge target receives it.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// exampleIDs are the examples' EventBridge event ids (made up).
func exampleIDs() map[string]string {
	return map[string]string{
		domainevents.SignalsChanged: "b1f3c5e7-9a2b-4c4d-8e6f-0a1b2c3d4e5f",
		domainevents.ErrorRaised:    "c2a4e6f8-0b3c-4d5e-9f7a-1b2c3d4e5f60",
		domainevents.ErrorResolved:  "d3b5f7a9-1c4d-4e6f-8a8b-2c3d4e5f6071",
		domainevents.ReauthRequired: "e4c6a8b0-2d5e-4f7a-9b9c-3d4e5f607182",
		domainevents.ReauthCleared:  "f5d7b9c1-3e6f-4a8b-8cad-4e5f60718293",
	}
}

// Each example's detail is what Derive makes of the example batch: the
// first event of its detail-type (go test -update rewrites them).
func TestExamplesGolden(t *testing.T) {
	evs, err := domainevents.Derive(context.Background(), exampleBatch(), &fakeReauth{needs: false})
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]domainevents.Event{}
	for _, e := range evs {
		if _, ok := first[e.DetailType]; !ok {
			first[e.DetailType] = e
		}
	}
	examples := domainevents.Examples()
	for _, dt := range domainevents.DetailTypes() {
		t.Run(dt, func(t *testing.T) {
			e, ok := first[dt]
			if !ok {
				t.Fatalf("the example batch has no %s", dt)
			}
			detail, err := e.DetailJSON()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(envelope{Version: "0", ID: exampleIDs()[dt], DetailType: dt, Source: domainevents.Source,
				Account: "123456789012", Time: e.Time.UTC().Format(time.RFC3339), Region: "us-east-1", Resources: []string{}, Detail: detail}); err != nil {
				t.Fatal(err)
			}
			golden := "examples/" + dt + ".json"
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return // embedded before the rewrite
			}
			if !bytes.Equal(buf.Bytes(), examples[dt]) {
				t.Errorf("%s changed (go test -update to accept):\n got %s\nwant %s", golden, buf.Bytes(), examples[dt])
			}
		})
	}
}

func TestExamplesValid(t *testing.T) {
	schemas := domainevents.Schemas()
	for dt, b := range domainevents.Examples() {
		t.Run(dt, func(t *testing.T) {
			var env envelope
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&env); err != nil {
				t.Fatal(err)
			}
			if env.DetailType != dt || env.Source != domainevents.Source || env.Version != "0" {
				t.Errorf("envelope %+v", env)
			}
			if _, err := time.Parse(time.RFC3339, env.Time); err != nil {
				t.Errorf("time: %v", err)
			}
			if problems := validateJSON(t, schemas[dt], env.Detail); len(problems) > 0 {
				t.Errorf("detail invalid: %s", strings.Join(problems, "; "))
			}
		})
	}
}
