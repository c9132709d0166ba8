// Package vehicle is the stored state of one vehicle and the rules that
// merge webhook events into it: per signal, the newest value wins; per
// error, the newest delivery wins. A time later than the processing time
// plus MaxClockSkew is ordered at that bound, so that one report from a
// wrong clock cannot freeze a value. Merging is pure: it reads an event, a
// state and the processing time, and changes only the state.
package vehicle

import (
	"strings"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Signal statuses.
const (
	StatusSuccess = "SUCCESS"
	StatusError   = "ERROR"
)

// MaxClockSkew is how far past the processing time a reported time may lie
// and still be ordered as reported. A later time is ordered at that bound
// (and stored as reported): a vehicle's clock set to the year 2100 would
// otherwise make every correct report after it stale until then.
const MaxClockSkew = 5 * time.Minute

// Error states.
const (
	ErrorActive   = "ERROR"
	ErrorResolved = "RESOLVED"
)

// State is one vehicle's item in the state table.
type State struct {
	VehicleID string `json:"vehicleId"`
	Make      string `json:"make,omitempty"`
	Model     string `json:"model,omitempty"`
	Year      int    `json:"year,omitempty"`
	UserID    string `json:"userId,omitempty"`
	// Mode is the mode of the newest event applied: LIVE or TEST.
	Mode    string            `json:"mode,omitempty"`
	Signals map[string]Signal `json:"signals"`
	// Errors are keyed by ErrorKey.
	Errors map[string]Error `json:"errors"`
	// NeedsReauth is set while a PERMISSION error, or one whose resolution
	// is REAUTHENTICATE, is unresolved.
	NeedsReauth bool `json:"needsReauth"`
	// LastDeliveredAt is the newest meta.deliveredAt applied (ms), at most
	// its processing time plus MaxClockSkew; it decides whose make, model,
	// user and mode are kept.
	LastDeliveredAt int64 `json:"lastDeliveredAt"`
	// UpdatedAt is when the item was last written (ms).
	UpdatedAt int64 `json:"updatedAt"`
	// Version is incremented by every write; 0 for a new vehicle.
	Version int64 `json:"version"`
}

// Signal is the newest known value of one signal.
type Signal struct {
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	// Body is the newest good value; a signal reported in error keeps it.
	Body map[string]any `json:"body,omitempty"`
	// Status is SUCCESS or ERROR.
	Status    string `json:"status,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	ErrorCode string `json:"errorCode,omitempty"`
	// Unsupported is set by a COMPATIBILITY error naming the signal and
	// cleared when that error is resolved.
	Unsupported  bool  `json:"unsupported,omitempty"`
	OEMUpdatedAt int64 `json:"oemUpdatedAt"` // ms, as reported
	RetrievedAt  int64 `json:"retrievedAt"`  // ms, as reported
	// OrderedAt is the time the entry is ordered by: oemUpdatedAt, else
	// retrievedAt, else the delivery time; at most the processing time
	// plus MaxClockSkew.
	OrderedAt int64  `json:"orderedAt"`
	EventID   string `json:"eventId,omitempty"`
}

// Error is the newest report of one error condition.
type Error struct {
	Type string `json:"type"`
	// Code is "" for null.
	Code string `json:"code,omitempty"`
	// State is ERROR or RESOLVED.
	State          string `json:"state"`
	Description    string `json:"description,omitempty"`
	ResolutionType string `json:"resolutionType,omitempty"`
	// Signals are signal codes.
	Signals []string `json:"signals,omitempty"`
	// UpdatedAt is the meta.deliveredAt of the report (ms), as reported.
	UpdatedAt int64 `json:"updatedAt"`
	// OrderedAt is the time the report is ordered by: UpdatedAt, at most
	// the processing time plus MaxClockSkew. It is 0 in entries stored
	// before it existed, which are ordered by UpdatedAt.
	OrderedAt int64  `json:"orderedAt"`
	EventID   string `json:"eventId,omitempty"`
}

// ErrorKey returns the errors map key, "TYPE:CODE", with "null" for a null
// code.
func ErrorKey(errType, code string) string {
	if code == "" {
		code = "null"
	}
	return errType + ":" + code
}

// Result counts what a merge did.
type Result struct {
	Applied int // signals or errors replaced
	Stale   int // older or equal values ignored
	// Clamped lists the reported times ordered at the processing time
	// plus MaxClockSkew: one per signal and per error ordered by such a
	// time, and one for a meta.deliveredAt that orders the vehicle's
	// details. Nil when there are none.
	Clamped []Clamp
}

// Clamp is a reported time later than the processing time plus
// MaxClockSkew, ordered at that bound.
type Clamp struct {
	// Field names the time: oemUpdatedAt, retrievedAt or deliveredAt.
	Field string
	// Signal is the code of the signal it orders, ErrorKey the key of the
	// error; both are "" when it orders the vehicle's details.
	Signal   string
	ErrorKey string
	Reported int64 // ms
	Bound    int64 // ms
}

// Changed reports whether the merge changed the state.
func (r Result) Changed() bool { return r.Applied > 0 }

// New returns the empty state of a vehicle.
func New(vehicleID string) *State {
	return &State{VehicleID: vehicleID, Signals: map[string]Signal{}, Errors: map[string]Error{}}
}

// merge is one Apply: its event, its bound on times and its result.
type merge struct {
	eventID string
	// bound is the processing time plus MaxClockSkew (ms): the latest time
	// anything is ordered at.
	bound int64
	r     Result
}

// order returns the time reported orders at, recording a clamp when it is
// later than the bound.
func (m *merge) order(reported int64, c Clamp) int64 {
	if reported <= m.bound {
		return reported
	}
	c.Reported, c.Bound = reported, m.bound
	m.r.Clamped = append(m.r.Clamped, c)
	return m.bound
}

// stored returns the time a stored entry is ordered by. One later than the
// bound was stored before the bound existed: it orders as unknown, so that
// the next report replaces it.
func (m *merge) stored(at int64) int64 {
	if at > m.bound {
		return 0
	}
	return at
}

// Apply merges ev into s and returns what changed. now is the processing
// time: a time in ev later than now plus MaxClockSkew is ordered at that
// bound. A stored time later than the bound (stored before the bound
// existed) orders as unknown, so that the state recovers.
func (s *State) Apply(ev smartcar.Event, now time.Time) Result {
	if s.Signals == nil {
		s.Signals = map[string]Signal{}
	}
	if s.Errors == nil {
		s.Errors = map[string]Error{}
	}
	m := &merge{eventID: ev.EventID, bound: now.Add(MaxClockSkew).UnixMilli()}
	for _, sig := range ev.Signals {
		if s.applySignal(m, int64(ev.Meta.DeliveredAt), sig) {
			m.r.Applied++
		} else {
			m.r.Stale++
		}
	}
	for _, e := range ev.Errors {
		if s.applyError(m, int64(ev.Meta.DeliveredAt), e) {
			m.r.Applied++
		} else {
			m.r.Stale++
		}
	}
	s.applyDetails(m, ev)
	s.NeedsReauth = s.needsReauth()
	return m.r
}

// applyDetails keeps the vehicle's details and mode of the newest delivery.
func (s *State) applyDetails(m *merge, ev smartcar.Event) {
	delivered := m.order(int64(ev.Meta.DeliveredAt), Clamp{Field: "deliveredAt"})
	if delivered < m.stored(s.LastDeliveredAt) {
		return
	}
	changed := s.LastDeliveredAt != delivered
	s.LastDeliveredAt = delivered
	for _, f := range []struct {
		dst *string
		v   string
	}{{&s.Make, ev.Make}, {&s.Model, ev.Model}, {&s.UserID, ev.UserID}, {&s.Mode, ev.Meta.Mode}} {
		if f.v != "" && *f.dst != f.v {
			*f.dst, changed = f.v, true
		}
	}
	if ev.Year != 0 && s.Year != ev.Year {
		s.Year, changed = ev.Year, true
	}
	if changed && m.r.Applied == 0 {
		m.r.Applied++ // the vehicle's details are news too
	}
}

// Clone returns a copy of s whose maps can be changed without touching s.
// Signal bodies and error signal lists are shared: Apply replaces them
// whole and never changes them in place.
func (s *State) Clone() *State {
	c := *s
	c.Signals = make(map[string]Signal, len(s.Signals))
	for k, v := range s.Signals {
		c.Signals[k] = v
	}
	c.Errors = make(map[string]Error, len(s.Errors))
	for k, v := range s.Errors {
		c.Errors[k] = v
	}
	return &c
}

// reportedAt is the time a signal report is ordered by, before the bound,
// and the field it comes from.
func reportedAt(sig smartcar.Signal, delivered int64) (int64, string) {
	switch {
	case sig.OEMUpdatedAt > 0:
		return int64(sig.OEMUpdatedAt), "oemUpdatedAt"
	case sig.RetrievedAt > 0:
		return int64(sig.RetrievedAt), "retrievedAt"
	}
	return delivered, "deliveredAt"
}

func (s *State) applySignal(m *merge, delivered int64, sig smartcar.Signal) bool {
	reported, field := reportedAt(sig, delivered)
	at := m.order(reported, Clamp{Field: field, Signal: sig.Code})
	old, exists := s.Signals[sig.Code]
	if exists && at <= m.stored(old.OrderedAt) {
		return false
	}
	next := Signal{
		Name: sig.Name, Group: sig.Group, Body: sig.Body, Status: sig.Status,
		OEMUpdatedAt: int64(sig.OEMUpdatedAt), RetrievedAt: int64(sig.RetrievedAt),
		OrderedAt: at, EventID: m.eventID, Unsupported: old.Unsupported,
	}
	if next.Status != StatusSuccess {
		// Keep the last good value; record why this one failed.
		next.Body = old.Body
		next.ErrorType, next.ErrorCode = sig.ErrorType, sig.ErrorCode
	}
	if next.Name == "" {
		next.Name = old.Name
	}
	if next.Group == "" {
		next.Group = old.Group
	}
	s.Signals[sig.Code] = next
	return true
}

// orderedAt is the time a stored error is ordered by.
func (e Error) orderedAt() int64 {
	if e.OrderedAt != 0 {
		return e.OrderedAt
	}
	return e.UpdatedAt
}

func (s *State) applyError(m *merge, delivered int64, e smartcar.VehicleError) bool {
	key := ErrorKey(e.Type, e.Code)
	at := m.order(delivered, Clamp{Field: "deliveredAt", ErrorKey: key})
	if old, ok := s.Errors[key]; ok && at <= m.stored(old.orderedAt()) {
		return false
	}
	var codes []string
	for _, ref := range e.Signals {
		codes = append(codes, ref.Key())
	}
	s.Errors[key] = Error{
		Type: e.Type, Code: e.Code, State: e.State, Description: e.Description,
		ResolutionType: e.ResolutionType, Signals: codes, UpdatedAt: delivered, OrderedAt: at, EventID: m.eventID,
	}
	if e.Type == "COMPATIBILITY" {
		unsupported := e.State != ErrorResolved
		for i, code := range codes {
			sig, ok := s.Signals[code]
			if !ok {
				ref := e.Signals[i]
				sig = Signal{Name: ref.Name, Group: ref.Group}
			}
			sig.Unsupported = unsupported
			s.Signals[code] = sig
		}
	}
	return true
}

// needsReauth reports whether an unresolved error asks the user to
// re-authenticate.
func (s *State) needsReauth() bool {
	for _, e := range s.Errors {
		if e.State == ErrorResolved {
			continue
		}
		if e.Type == "PERMISSION" || e.Code == "PERMISSION" || strings.EqualFold(e.ResolutionType, "REAUTHENTICATE") {
			return true
		}
	}
	return false
}
