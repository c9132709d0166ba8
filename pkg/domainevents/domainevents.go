// Package domainevents derives the domain events the stack publishes to
// its EventBridge bus from what was stored: the changes of the
// vehicle-state table's entries, as its stream reports them (decoded into
// vehicle.EntryChange). An event says what changed in the stored state,
// never what a webhook merely reported: a report that was stale, or that
// rewrote a value with the same one, is no news.
//
// # Catalogue
//
// Each event has a detail-type, a time and a detail (Detail, whose JSON is
// described by the JSON Schema of its detail-type: Schemas; an example
// event of each, as a consumer receives it: Examples):
//
//   - vehicle.signals.changed: signals whose stored value changed.
//   - vehicle.error.raised: an error condition became active.
//   - vehicle.error.resolved: an active error condition was resolved.
//   - vehicle.reauth.required: an error raised asks the user to
//     re-authenticate (vehicle.Error.AsksReauth).
//   - vehicle.reauth.cleared: such an error was resolved, and the vehicle
//     has no other open error that asks for it.
//
// # Rules
//
// Signals. A signal entry's change is news only if the stored value
// changed: the entry is new, or its body differs (compared as JSON values:
// key order and the spelling of numbers do not matter), or its status
// changed. A rewrite with the same body and status (only its times moved,
// or its name or error code) is not news. The news of one batch are
// grouped into one vehicle.signals.changed per vehicle and webhook event
// (the eventId that wrote them), its signals sorted by code; a signal
// written twice by the same webhook event in one batch appears once, with
// its newest value and the value before the first write. The event's time
// (occurredAt) is the latest orderedAt of its signals. A group whose
// detail would exceed MaxDetailSize bytes of JSON is split into several
// events, in order of code, each holding as many signals as fit. A single
// signal too large even alone, or whose body cannot be encoded as JSON, is
// published without its bodies (bodyOmitted): consumers read it from the
// stored vehicle.
//
// Errors. An error entry's change is vehicle.error.raised when its state
// becomes ERROR from anything else (a new entry, or a RESOLVED one), and
// vehicle.error.resolved when it becomes RESOLVED from ERROR. A rewrite
// that keeps the state (a newer report of the same active error), and a
// first report that is already RESOLVED, are not news. The event's time
// is the report's orderedAt (its updatedAt in entries stored before
// orderedAt existed).
//
// Re-authentication. An error raised that asks for re-authentication
// also yields vehicle.reauth.required, with the same error and time. Such
// an error resolved also yields vehicle.reauth.cleared, only if the
// vehicle has no other open error that asks for it, as the processor
// stored with the resolution (vehicle.Error.VehicleNeedsReauth): decided
// by the stored change alone, the same however often it is derived. For
// an entry stored before that, Derive asks the ReauthState, which reads
// the stored vehicle, at most once per vehicle per batch.
//
// The vehicle's details (make, model, year, user, mode) are not in the
// catalogue: their changes yield nothing. Nor does an entry removed.
//
// # Times and keys
//
// Times in a detail are RFC 3339 in UTC with milliseconds
// ("2026-01-01T00:00:00.000Z"); a signal's oemUpdatedAt and retrievedAt
// are left out when not reported.
//
// Each detail's idempotencyKey is the same for the same stored change,
// however often its stream record is delivered: consumers dedupe on it.
// It is the hex SHA-256 of these lines, each ended by "\n":
//
//	<detail-type>
//	<vehicleId>
//	<entry> <orderedAt> <eventId>   one line per entry, in the detail's order
//	part <i>                        only for the i-th (from 0) of a split group
//
// where <entry> is "signal:<code>" or "error:<TYPE:CODE>", <orderedAt> the
// new entry's orderedAt in ms (decimal) and <eventId> the webhook event
// that wrote it. The key of a vehicle.signals.changed depends on which
// signals it holds, so on which of its webhook event's changes share a
// stream batch (a retry may batch them otherwise): each of its signals
// therefore carries its own key, the one its change would have alone,
// which is the same whenever that change is published. Consumers of
// signals dedupe on the signals' keys.
package domainevents

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// SchemaVersion is the version of the detail's shape: Detail.SchemaVersion.
const SchemaVersion = "1"

// Source is the source of the events on the bus.
const Source = "smartcar-webhook-receiver"

// Detail-types.
const (
	SignalsChanged = "vehicle.signals.changed"
	ErrorRaised    = "vehicle.error.raised"
	ErrorResolved  = "vehicle.error.resolved"
	ReauthRequired = "vehicle.reauth.required"
	ReauthCleared  = "vehicle.reauth.cleared"
)

// DetailTypes returns the detail-types of the catalogue.
func DetailTypes() []string {
	return []string{SignalsChanged, ErrorRaised, ErrorResolved, ReauthRequired, ReauthCleared}
}

// MaxDetailSize bounds the JSON of an event's detail (bytes), leaving room
// under EventBridge's 256 KB entry for the rest of the entry.
const MaxDetailSize = 200 << 10

// Event is one domain event.
type Event struct {
	// DetailType is one of the catalogue's.
	DetailType string
	// Time is when it happened: the detail's occurredAt.
	Time   time.Time
	Detail Detail
	// From are the indices, ascending, of the changes passed to Derive
	// that produced the event.
	From []int
}

// Detail is an event's detail.
type Detail struct {
	SchemaVersion string `json:"schemaVersion"`
	VehicleID     string `json:"vehicleId"`
	// EventID is the webhook event whose report made the change.
	EventID string `json:"eventId"`
	// OccurredAt is when the change happened (RFC 3339, ms, UTC).
	OccurredAt string `json:"occurredAt"`
	// IdempotencyKey is the same for the same stored change.
	IdempotencyKey string `json:"idempotencyKey"`
	// Signals are set in vehicle.signals.changed only.
	Signals []SignalChange `json:"signals,omitempty"`
	// Error is set in vehicle.error.* and vehicle.reauth.* only.
	Error *ErrorInfo `json:"error,omitempty"`
}

// SignalChange is one signal's new stored value.
type SignalChange struct {
	Code string `json:"code"`
	// IdempotencyKey is the signal change's own key: the same whenever
	// this stored change is published, whatever event carries it. Dedupe
	// a vehicle.signals.changed's signals on it.
	IdempotencyKey string `json:"idempotencyKey"`
	Name           string `json:"name,omitempty"`
	Group          string `json:"group,omitempty"`
	// Status is the reported status: SUCCESS or ERROR.
	Status string `json:"status"`
	// ErrorType and ErrorCode say why a signal in ERROR failed.
	ErrorType string `json:"errorType,omitempty"`
	ErrorCode string `json:"errorCode,omitempty"`
	// Body is the new value; for a signal in ERROR the last good value,
	// kept. Absent when there is none, or when omitted.
	Body map[string]any `json:"body,omitempty"`
	// PreviousStatus and PreviousBody are the stored status and body the
	// change replaced; absent for a new signal.
	PreviousStatus string         `json:"previousStatus,omitempty"`
	PreviousBody   map[string]any `json:"previousBody,omitempty"`
	// BodyOmitted is set when the bodies were left out: too large to keep
	// the detail under MaxDetailSize, or not JSON.
	BodyOmitted bool `json:"bodyOmitted,omitempty"`
	// OEMUpdatedAt and RetrievedAt are the reported times (RFC 3339, ms,
	// UTC), absent when not reported.
	OEMUpdatedAt string `json:"oemUpdatedAt,omitempty"`
	RetrievedAt  string `json:"retrievedAt,omitempty"`
}

// ErrorInfo is an error condition as stored.
type ErrorInfo struct {
	// Key is the error's key: "TYPE:CODE", with "null" for a null code.
	Key  string `json:"key"`
	Type string `json:"type"`
	// Code is absent when Smartcar's code is null.
	Code string `json:"code,omitempty"`
	// State is ERROR or RESOLVED.
	State          string `json:"state"`
	Description    string `json:"description,omitempty"`
	ResolutionType string `json:"resolutionType,omitempty"`
	// Signals are the codes of the signals it concerns.
	Signals []string `json:"signals,omitempty"`
}

// ReauthState tells whether a vehicle, as stored, has an open error that
// asks the user to re-authenticate.
type ReauthState interface {
	NeedsReauth(ctx context.Context, vehicleID string) (bool, error)
}

// DetailJSON returns the JSON of e's detail, as published.
func (e Event) DetailJSON() ([]byte, error) {
	b, err := marshal(e.Detail)
	if err != nil {
		return nil, fmt.Errorf("%s detail: %w", e.DetailType, err)
	}
	return b, nil
}

// Derive returns the domain events of changes: one stream batch, in
// stream order. Events come in the order of the first change each was
// derived from. reauth is asked only about a vehicle one of whose errors
// asking for re-authentication was resolved (nil is then an error); its
// errors are returned, for the caller to retry the batch.
func Derive(ctx context.Context, changes []vehicle.EntryChange, reauth ReauthState) ([]Event, error) {
	d := &deriver{reauth: reauth, groups: map[groupKey]*group{}, needs: map[string]bool{}}
	for i, ch := range changes {
		var err error
		switch {
		case ch.Signal != nil:
			d.addSignal(i, ch.VehicleID, ch.Signal)
		case ch.Error != nil:
			err = d.addError(ctx, i, ch.VehicleID, ch.Error)
		}
		if err != nil {
			return nil, err
		}
	}
	var out []Event
	for _, it := range d.items {
		if it.group == nil {
			out = append(out, it.events...)
			continue
		}
		evs, err := it.group.events()
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// deriver is one Derive.
type deriver struct {
	reauth ReauthState
	// items are the events in order of their first change: a signal group,
	// or an error change's events.
	items  []item
	groups map[groupKey]*group
	// needs caches ReauthState's answers, per vehicle.
	needs map[string]bool
}

type item struct {
	group  *group
	events []Event
}

type groupKey struct{ vehicleID, eventID string }

// group is the signal news of one vehicle and webhook event.
type group struct {
	vehicleID, eventID string
	members            map[string]*member // by code
}

// member is one signal of a group.
type member struct {
	code     string
	old, new *vehicle.Signal
	from     []int
}

func (d *deriver) addSignal(i int, vehicleID string, c *vehicle.SignalChange) {
	if !signalNews(c) {
		return
	}
	k := groupKey{vehicleID, c.New.EventID}
	g := d.groups[k]
	if g == nil {
		g = &group{vehicleID: vehicleID, eventID: c.New.EventID, members: map[string]*member{}}
		d.groups[k] = g
		d.items = append(d.items, item{group: g})
	}
	if m := g.members[c.Code]; m != nil {
		// Written twice by one webhook event: its newest value, over the
		// value before the first write.
		m.new = c.New
		m.from = append(m.from, i)
		return
	}
	g.members[c.Code] = &member{code: c.Code, old: c.Old, new: c.New, from: []int{i}}
}

// signalNews reports whether c changed the stored value.
func signalNews(c *vehicle.SignalChange) bool {
	switch {
	case c.New == nil:
		return false
	case c.Old == nil:
		return true
	}
	return c.Old.Status != c.New.Status || !sameJSON(c.Old.Body, c.New.Body)
}

// events returns g's events, split to fit MaxDetailSize.
func (g *group) events() ([]Event, error) {
	members := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b *member) int { return strings.Compare(a.code, b.code) })

	// A detail's size is that of the detail without signals, plus
	// `,"signals":[]`, plus each signal's JSON and the commas between.
	// The key and occurredAt have fixed lengths.
	base, err := marshal(Detail{SchemaVersion: SchemaVersion, VehicleID: g.vehicleID, EventID: g.eventID,
		OccurredAt: stamp(0), IdempotencyKey: strings.Repeat("0", sha256.Size*2)})
	if err != nil {
		return nil, fmt.Errorf("%s detail of vehicle %s: %w", SignalsChanged, g.vehicleID, err)
	}
	overhead := len(base) + len(`,"signals":[]`)

	var parts [][]*member
	var changes [][]SignalChange
	size := overhead
	for _, m := range members {
		sc := signalChange(g.vehicleID, m)
		b, err := marshal(sc)
		if err != nil || overhead+len(b) > MaxDetailSize {
			// Too large, or not JSON (never seen): without its bodies.
			sc.Body, sc.PreviousBody, sc.BodyOmitted = nil, nil, true
			if b, err = marshal(sc); err != nil {
				return nil, fmt.Errorf("%s detail of vehicle %s, signal %s: %w", SignalsChanged, g.vehicleID, m.code, err)
			}
		}
		n := len(parts)
		if n == 0 || size+1+len(b) > MaxDetailSize {
			parts, changes = append(parts, nil), append(changes, nil)
			size, n = overhead-1, n+1 // no comma before the first
		}
		parts[n-1] = append(parts[n-1], m)
		changes[n-1] = append(changes[n-1], sc)
		size += 1 + len(b)
	}

	evs := make([]Event, 0, len(parts))
	for p, ms := range parts {
		var at int64
		var from []int
		var entries []entry
		for _, m := range ms {
			at = max(at, signalOrderedAt(m.new))
			from = append(from, m.from...)
			entries = append(entries, entry{"signal:" + m.code, m.new.OrderedAt, m.new.EventID})
		}
		slices.Sort(from)
		part := -1
		if len(parts) > 1 {
			part = p
		}
		evs = append(evs, Event{
			DetailType: SignalsChanged,
			Time:       millisTime(at),
			Detail: Detail{SchemaVersion: SchemaVersion, VehicleID: g.vehicleID, EventID: g.eventID, OccurredAt: stamp(at),
				IdempotencyKey: key(SignalsChanged, g.vehicleID, entries, part), Signals: changes[p]},
			From: from,
		})
	}
	return evs, nil
}

// signalOrderedAt is the time a signal's change happened.
func signalOrderedAt(s *vehicle.Signal) int64 {
	switch {
	case s.OrderedAt != 0:
		return s.OrderedAt
	case s.OEMUpdatedAt != 0:
		return s.OEMUpdatedAt
	}
	return s.RetrievedAt
}

func signalChange(vehicleID string, m *member) SignalChange {
	n := m.new
	sc := SignalChange{Code: m.code, Name: n.Name, Group: n.Group, Status: n.Status, ErrorType: n.ErrorType, ErrorCode: n.ErrorCode,
		Body: nonEmpty(n.Body), OEMUpdatedAt: optStamp(n.OEMUpdatedAt), RetrievedAt: optStamp(n.RetrievedAt),
		// The key the signal's change would have alone: the same in any
		// event, however the stream's records are batched.
		IdempotencyKey: key(SignalsChanged, vehicleID, []entry{{"signal:" + m.code, n.OrderedAt, n.EventID}}, -1)}
	if m.old != nil {
		sc.PreviousStatus, sc.PreviousBody = m.old.Status, nonEmpty(m.old.Body)
	}
	return sc
}

func (d *deriver) addError(ctx context.Context, i int, vehicleID string, c *vehicle.ErrorChange) error {
	n := c.New
	if n == nil {
		return nil
	}
	var was string
	if c.Old != nil {
		was = c.Old.State
	}
	var types []string
	switch {
	case n.State == vehicle.ErrorActive && was != vehicle.ErrorActive:
		types = append(types, ErrorRaised)
		if n.AsksReauth() {
			types = append(types, ReauthRequired)
		}
	case n.State == vehicle.ErrorResolved && was == vehicle.ErrorActive:
		types = append(types, ErrorResolved)
		if n.AsksReauth() || c.Old.AsksReauth() {
			// What the processor stored with the resolution; entries
			// stored before it say nothing, and the stored vehicle is
			// asked.
			needs := n.VehicleNeedsReauth
			if needs == nil {
				v, err := d.needsReauth(ctx, vehicleID)
				if err != nil {
					return err
				}
				needs = &v
			}
			if !*needs {
				types = append(types, ReauthCleared)
			}
		}
	default:
		return nil
	}
	at := n.Ordered()
	info := &ErrorInfo{Key: c.Key, Type: n.Type, Code: n.Code, State: n.State, Description: n.Description,
		ResolutionType: n.ResolutionType, Signals: n.Signals}
	entries := []entry{{"error:" + c.Key, at, n.EventID}}
	var evs []Event
	for _, t := range types {
		evs = append(evs, Event{
			DetailType: t,
			Time:       millisTime(at),
			Detail: Detail{SchemaVersion: SchemaVersion, VehicleID: vehicleID, EventID: n.EventID, OccurredAt: stamp(at),
				IdempotencyKey: key(t, vehicleID, entries, -1), Error: info},
			From: []int{i},
		})
	}
	d.items = append(d.items, item{events: evs})
	return nil
}

// needsReauth asks the ReauthState once per vehicle.
func (d *deriver) needsReauth(ctx context.Context, vehicleID string) (bool, error) {
	if needs, ok := d.needs[vehicleID]; ok {
		return needs, nil
	}
	if d.reauth == nil {
		return false, fmt.Errorf("reauth state of vehicle %s: no ReauthState", vehicleID)
	}
	needs, err := d.reauth.NeedsReauth(ctx, vehicleID)
	if err != nil {
		return false, fmt.Errorf("reauth state of vehicle %s: %w", vehicleID, err)
	}
	d.needs[vehicleID] = needs
	return needs, nil
}

// entry is a stored entry an event is derived from.
type entry struct {
	name      string // signal:<code> or error:<key>
	orderedAt int64
	eventID   string
}

// key returns the idempotency key of an event (see the package doc);
// part is -1 for an event not split.
func key(detailType, vehicleID string, entries []entry, part int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", detailType, vehicleID)
	for _, e := range entries {
		fmt.Fprintf(h, "%s %d %s\n", e.name, e.orderedAt, e.eventID)
	}
	if part >= 0 {
		fmt.Fprintf(h, "part %d\n", part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const stampLayout = "2006-01-02T15:04:05.000Z"

func millisTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// stamp formats a time in ms as RFC 3339 in UTC with milliseconds.
func stamp(ms int64) string { return millisTime(ms).Format(stampLayout) }

// optStamp is stamp, or "" for 0 (not reported).
func optStamp(ms int64) string {
	if ms == 0 {
		return ""
	}
	return stamp(ms)
}

func nonEmpty(body map[string]any) map[string]any {
	if len(body) == 0 {
		return nil
	}
	return body
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// sameJSON reports whether two bodies are the same JSON value: an empty
// body is none, and numbers are compared by value.
func sameJSON(a, b map[string]any) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false // not comparable: news
	}
	if bytes.Equal(ja, jb) {
		return true
	}
	va, errA := decode(ja)
	vb, errB := decode(jb)
	return errA == nil && errB == nil && equalValues(va, vb)
}

func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// equalValues compares decoded JSON values, numbers by value.
func equalValues(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !equalValues(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, okA := new(big.Rat).SetString(string(a))
		rb, okB := new(big.Rat).SetString(string(b))
		return okA && okB && ra.Cmp(rb) == 0
	}
	return a == b
}
