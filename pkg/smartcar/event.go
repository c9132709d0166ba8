package smartcar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidEvent is wrapped by ParseEvent's errors: the body can never be
// processed, however often it is retried.
var ErrInvalidEvent = errors.New("invalid event")

// Event is a decoded VEHICLE_STATE or VEHICLE_ERROR webhook.
type Event struct {
	EventID   string
	EventType string
	VehicleID string // data.vehicle.id, else top-level vehicleId
	UserID    string
	Make      string
	Model     string
	Year      int
	Signals   []Signal       // VEHICLE_STATE
	Errors    []VehicleError // VEHICLE_ERROR
	Meta      Meta
}

// Meta is the event's delivery metadata.
type Meta struct {
	DeliveryID  string
	DeliveredAt Millis // changes on every retry
	Mode        string // LIVE or TEST
	Version     string
	WebhookID   string
}

// Signal is one entry of data.signals.
type Signal struct {
	Code  string
	Name  string
	Group string
	// Body is the signal's value, with numbers kept exactly as sent. Nil
	// when the signal is in error.
	Body         map[string]any
	Status       string // SUCCESS or ERROR
	ErrorType    string
	ErrorCode    string
	OEMUpdatedAt Millis
	RetrievedAt  Millis // meta.retrievedAt, or meta.fetchedAt
}

// VehicleError is one entry of data.errors.
type VehicleError struct {
	Type           string
	Code           string // "" when null
	State          string // ERROR or RESOLVED
	Description    string
	ResolutionType string // "" when null
	Signals        []SignalRef
}

// SignalRef names a signal in an error: an object {code, name, group} or a
// "Group.Name" string.
type SignalRef struct {
	Code  string
	Name  string
	Group string
}

// Key returns the signal's code, derived from group and name when absent
// (Smartcar codes are lower-case "group-name").
func (r SignalRef) Key() string {
	if r.Code != "" {
		return r.Code
	}
	if r.Group == "" {
		return strings.ToLower(r.Name)
	}
	return strings.ToLower(r.Group) + "-" + strings.ToLower(r.Name)
}

// A decoded JSON value is read tolerantly: a field of an unexpected type
// reads as absent and never fails the event.

// object returns v as an object, or nil when it is anything else.
func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// objects returns the elements of v that are objects, or nil when v is not
// an array.
func objects(v any) []map[string]any {
	a, _ := v.([]any)
	var out []map[string]any
	for _, e := range a {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// text returns a scalar's text: a string as is, a number or a boolean as
// written; null, an object or an array as "".
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// ParseEvent decodes a VEHICLE_STATE or VEHICLE_ERROR body. Errors wrap
// ErrInvalidEvent and say why: the body is not a JSON object, has no
// eventId, has an unknown eventType, or names no vehicle. Numbers in signal
// bodies are kept exactly (as json.Number).
//
// The body is decoded once into a generic tree, then read field by field;
// field names are case-sensitive, as Smartcar sends them.
func ParseEvent(body []byte) (Event, error) {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return Event{}, fmt.Errorf("%w: not JSON: %v", ErrInvalidEvent, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidEvent)
	}
	w, ok := tree.(map[string]any)
	if !ok {
		return Event{}, fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	ev := Event{EventID: text(w["eventId"]), EventType: text(w["eventType"]), VehicleID: text(w["vehicleId"])}
	if ev.EventID == "" {
		return Event{}, fmt.Errorf("%w: no eventId", ErrInvalidEvent)
	}
	switch ev.EventType {
	case EventVehicleState, EventVehicleError:
	case "":
		if name := text(w["eventName"]); name != "" {
			return Event{}, fmt.Errorf("%w: legacy v2 event %.64q is not supported", ErrInvalidEvent, name)
		}
		return Event{}, fmt.Errorf("%w: no eventType", ErrInvalidEvent)
	default:
		return Event{}, fmt.Errorf("%w: unknown eventType %.64q", ErrInvalidEvent, ev.EventType)
	}
	m := object(w["meta"])
	ev.Meta = Meta{DeliveryID: text(m["deliveryId"]), DeliveredAt: millis(m["deliveredAt"]), Mode: text(m["mode"]),
		Version: text(m["version"]), WebhookID: text(m["webhookId"])}
	d := object(w["data"])
	ev.UserID = text(object(d["user"])["id"])
	v := object(d["vehicle"])
	if id := text(v["id"]); id != "" {
		ev.VehicleID = id
	}
	ev.Make, ev.Model = text(v["make"]), text(v["model"])
	if y, err := strconv.Atoi(text(v["year"])); err == nil {
		ev.Year = y
	}
	for _, s := range objects(d["signals"]) {
		ev.Signals = append(ev.Signals, ReadSignal(s, object(s["meta"])))
	}
	for _, e := range objects(d["errors"]) {
		ev.Errors = append(ev.Errors, vehicleError(e))
	}
	if ev.VehicleID == "" {
		return Event{}, fmt.Errorf("%w: %s without a vehicle id", ErrInvalidEvent, ev.EventType)
	}
	for i, s := range ev.Signals {
		if s.Code == "" && s.Name == "" {
			return Event{}, fmt.Errorf("%w: signal %d has neither code nor name", ErrInvalidEvent, i)
		}
	}
	return ev, nil
}

// ReadSignal reads a signal as Smartcar writes it, in a webhook's
// data.signals entry or an API signal's attributes: code, name, group,
// body and status from fields, the times from meta. A missing code is
// derived from group and name (SignalRef.Key); a bare body value reads as
// {"value": v}; the status is SUCCESS unless status.value or status.error
// says otherwise.
func ReadSignal(fields, meta map[string]any) Signal {
	sig := Signal{Code: text(fields["code"]), Name: text(fields["name"]), Group: text(fields["group"]), Status: "SUCCESS"}
	switch b := fields["body"].(type) {
	case nil:
	case map[string]any:
		sig.Body = b
	default: // a bare value: keep it in the usual {"value": ...} shape
		sig.Body = map[string]any{"value": b}
	}
	if sig.Code == "" {
		sig.Code = SignalRef{Name: sig.Name, Group: sig.Group}.Key()
	}
	sig.OEMUpdatedAt, sig.RetrievedAt = millis(meta["oemUpdatedAt"]), millis(meta["retrievedAt"])
	if sig.RetrievedAt == 0 {
		sig.RetrievedAt = millis(meta["fetchedAt"])
	}
	st := object(fields["status"])
	if v := text(st["value"]); v != "" {
		sig.Status = strings.ToUpper(v)
	}
	if e := object(st["error"]); e != nil {
		sig.Status = "ERROR"
		sig.ErrorType, sig.ErrorCode = text(e["type"]), text(e["code"])
	}
	return sig
}

// vehicleError reads one entry of data.errors. Its resolution is
// {"type": ...} or just the type; its signals are {code, name, group}
// objects or "Group.Name" strings.
func vehicleError(e map[string]any) VehicleError {
	ve := VehicleError{Type: text(e["type"]), Code: text(e["code"]), State: strings.ToUpper(text(e["state"])),
		Description: text(e["description"])}
	if ve.State == "" {
		ve.State = "ERROR"
	}
	if r, ok := e["resolution"].(map[string]any); ok {
		ve.ResolutionType = text(r["type"])
	} else {
		ve.ResolutionType = text(e["resolution"])
	}
	refs, _ := e["signals"].([]any)
	for _, r := range refs {
		var ref SignalRef
		switch r := r.(type) {
		case string:
			group, name, ok := strings.Cut(r, ".")
			if !ok {
				group, name = "", r
			}
			ref = SignalRef{Group: group, Name: name}
		case map[string]any:
			ref = SignalRef{Code: text(r["code"]), Name: text(r["name"]), Group: text(r["group"])}
		}
		ve.Signals = append(ve.Signals, ref)
	}
	return ve
}
