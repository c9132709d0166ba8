package smartcar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Millis is a time in milliseconds since the epoch. It decodes from a
// number or an ISO-8601 string, since Smartcar's documents use both.
type Millis int64

// UnmarshalJSON accepts a number of milliseconds, an ISO-8601 string (with
// or without a zone; none means UTC) or a numeric string. Anything else,
// null included, reads as 0 (unknown): a bad timestamp never fails an event.
func (m *Millis) UnmarshalJSON(b []byte) error {
	*m = 0
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil
		}
		s = strings.TrimSpace(s)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				*m = Millis(t.UnixMilli())
				return nil
			}
		}
		b = []byte(s)
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil {
		*m = Millis(f)
	}
	return nil
}

// lenient decodes a JSON object into T, and any other value (a string where
// an object belongs, say) as absent.
type lenient[T any] struct{ v *T }

func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		l.v = nil
		return nil
	}
	l.v = new(T)
	return decodeExact(b, l.v)
}

// decodeExact decodes b into v keeping numbers exact (json.Number).
func decodeExact(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// get returns the decoded value, or T's zero value when absent.
func (l lenient[T]) get() T {
	if l.v == nil {
		var zero T
		return zero
	}
	return *l.v
}

// lenientList decodes an array, skipping elements that are not objects,
// and any other value as an empty list.
type lenientList[T any] []T

func (l *lenientList[T]) UnmarshalJSON(b []byte) error {
	*l = nil
	var raw []json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil // not an array
	}
	for _, r := range raw {
		var e lenient[T]
		if err := json.Unmarshal(r, &e); err != nil {
			return err
		}
		if e.v != nil {
			*l = append(*l, *e.v)
		}
	}
	return nil
}

// Wire shapes, decoded tolerantly and then normalized into Event.
type wireEvent struct {
	EventID   text              `json:"eventId"`
	EventType text              `json:"eventType"`
	VehicleID text              `json:"vehicleId"`
	Data      lenient[wireData] `json:"data"`
	Meta      lenient[wireMeta] `json:"meta"`
	EventName text              `json:"eventName"`
	Triggers  json.RawMessage   `json:"triggers"` // shapes vary; unused
}

type wireData struct {
	User    lenient[struct{ ID text }] `json:"user"`
	Vehicle lenient[struct {
		ID, Make, Model, Year text
	}] `json:"vehicle"`
	Signals lenientList[wireSignal] `json:"signals"`
	Errors  lenientList[wireError]  `json:"errors"`
}

type wireMeta struct {
	DeliveryID  text   `json:"deliveryId"`
	DeliveredAt Millis `json:"deliveredAt"`
	Mode        text   `json:"mode"`
	Version     text   `json:"version"`
	WebhookID   text   `json:"webhookId"`
}

type wireSignal struct {
	Code  text `json:"code"`
	Name  text `json:"name"`
	Group text `json:"group"`
	Body  any  `json:"body"`
	Meta  lenient[struct {
		OEMUpdatedAt Millis `json:"oemUpdatedAt"`
		RetrievedAt  Millis `json:"retrievedAt"`
		FetchedAt    Millis `json:"fetchedAt"`
	}] `json:"meta"`
	Status lenient[struct {
		Value text                               `json:"value"`
		Error lenient[struct{ Type, Code text }] `json:"error"`
	}] `json:"status"`
}

type wireError struct {
	Type        text            `json:"type"`
	Code        text            `json:"code"`
	State       text            `json:"state"`
	Description text            `json:"description"`
	Resolution  wireResolution  `json:"resolution"`
	Signals     []wireSignalRef `json:"signals"`
}

// wireResolution is {"type": ...}, or just the type as a string.
type wireResolution struct{ Type text }

func (r *wireResolution) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct{ Type text }
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		r.Type = o.Type
		return nil
	}
	return r.Type.UnmarshalJSON(b)
}

type wireSignalRef SignalRef

// UnmarshalJSON accepts {code, name, group} or "Group.Name".
func (r *wireSignalRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		group, name, ok := strings.Cut(s, ".")
		if !ok {
			group, name = "", s
		}
		*r = wireSignalRef{Group: group, Name: name}
		return nil
	}
	var o lenient[struct{ Code, Name, Group text }]
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	v := o.get()
	*r = wireSignalRef{Code: str(v.Code), Name: str(v.Name), Group: str(v.Group)}
	return nil
}

// text decodes any JSON scalar as its text (null as ""), and an object or
// array as "", so that a field of an unexpected type never fails a decode.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")) || b[0] == '{' || b[0] == '[':
		*t = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	default:
		*t = text(b)
	}
	return nil
}

func str(t text) string { return string(t) }

// ParseEvent decodes a VEHICLE_STATE or VEHICLE_ERROR body. Errors wrap
// ErrInvalidEvent and say why: the body is not a JSON object, has no
// eventId, has an unknown eventType, or names no vehicle. Numbers in signal
// bodies are kept exactly (as json.Number).
func ParseEvent(body []byte) (Event, error) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Event{}, fmt.Errorf("%w: not a JSON object of the webhook shape: %v", ErrInvalidEvent, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidEvent)
	}
	ev := Event{EventID: str(w.EventID), EventType: str(w.EventType), VehicleID: str(w.VehicleID)}
	if ev.EventID == "" {
		return Event{}, fmt.Errorf("%w: no eventId", ErrInvalidEvent)
	}
	switch ev.EventType {
	case EventVehicleState, EventVehicleError:
	case "":
		if w.EventName != "" {
			return Event{}, fmt.Errorf("%w: legacy v2 event %q is not supported", ErrInvalidEvent, w.EventName)
		}
		return Event{}, fmt.Errorf("%w: no eventType", ErrInvalidEvent)
	default:
		return Event{}, fmt.Errorf("%w: unknown eventType %q", ErrInvalidEvent, ev.EventType)
	}
	m := w.Meta.get()
	ev.Meta = Meta{DeliveryID: str(m.DeliveryID), DeliveredAt: m.DeliveredAt, Mode: str(m.Mode),
		Version: str(m.Version), WebhookID: str(m.WebhookID)}
	d := w.Data.get()
	ev.UserID = str(d.User.get().ID)
	v := d.Vehicle.get()
	if id := str(v.ID); id != "" {
		ev.VehicleID = id
	}
	ev.Make, ev.Model = str(v.Make), str(v.Model)
	if y, err := strconv.Atoi(str(v.Year)); err == nil {
		ev.Year = y
	}
	for _, s := range d.Signals {
		ev.Signals = append(ev.Signals, s.normalize())
	}
	for _, e := range d.Errors {
		ev.Errors = append(ev.Errors, e.normalize())
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

func (s wireSignal) normalize() Signal {
	sig := Signal{Code: str(s.Code), Name: str(s.Name), Group: str(s.Group), Status: "SUCCESS"}
	switch b := s.Body.(type) {
	case nil:
	case map[string]any:
		sig.Body = b
	default: // a bare value: keep it in the usual {"value": ...} shape
		sig.Body = map[string]any{"value": b}
	}
	if sig.Code == "" {
		sig.Code = SignalRef{Name: sig.Name, Group: sig.Group}.Key()
	}
	meta := s.Meta.get()
	sig.OEMUpdatedAt, sig.RetrievedAt = meta.OEMUpdatedAt, meta.RetrievedAt
	if sig.RetrievedAt == 0 {
		sig.RetrievedAt = meta.FetchedAt
	}
	st := s.Status.get()
	if v := str(st.Value); v != "" {
		sig.Status = strings.ToUpper(v)
	}
	if e := st.Error.v; e != nil {
		sig.Status = "ERROR"
		sig.ErrorType, sig.ErrorCode = str(e.Type), str(e.Code)
	}
	return sig
}

func (e wireError) normalize() VehicleError {
	ve := VehicleError{Type: str(e.Type), Code: str(e.Code), State: strings.ToUpper(str(e.State)), Description: str(e.Description)}
	if ve.State == "" {
		ve.State = "ERROR"
	}
	ve.ResolutionType = str(e.Resolution.Type)
	for _, r := range e.Signals {
		ve.Signals = append(ve.Signals, SignalRef(r))
	}
	return ve
}
