// Package vehicle is the stored state of one vehicle and the rules that
// merge webhook events into it: per signal, the newest value wins; per
// error, the newest delivery wins. Merging is pure: it reads an event and a
// state and changes only the state.
package vehicle

import (
	"strings"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Signal statuses.
const (
	StatusSuccess = "SUCCESS"
	StatusError   = "ERROR"
)

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
	// LastDeliveredAt is the newest meta.deliveredAt applied (ms); it
	// decides whose make, model, user and mode are kept.
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
	OEMUpdatedAt int64 `json:"oemUpdatedAt"` // ms
	RetrievedAt  int64 `json:"retrievedAt"`  // ms
	// OrderedAt is the time the entry is ordered by: oemUpdatedAt, else
	// retrievedAt, else the delivery time.
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
	// UpdatedAt is the meta.deliveredAt of the report (ms).
	UpdatedAt int64  `json:"updatedAt"`
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
}

// Changed reports whether the merge changed the state.
func (r Result) Changed() bool { return r.Applied > 0 }

// New returns the empty state of a vehicle.
func New(vehicleID string) *State {
	return &State{VehicleID: vehicleID, Signals: map[string]Signal{}, Errors: map[string]Error{}}
}

// Apply merges ev into s and returns what changed.
func (s *State) Apply(ev smartcar.Event) Result {
	if s.Signals == nil {
		s.Signals = map[string]Signal{}
	}
	if s.Errors == nil {
		s.Errors = map[string]Error{}
	}
	var r Result
	delivered := int64(ev.Meta.DeliveredAt)
	for _, sig := range ev.Signals {
		if s.applySignal(ev.EventID, delivered, sig) {
			r.Applied++
		} else {
			r.Stale++
		}
	}
	for _, e := range ev.Errors {
		if s.applyError(ev.EventID, delivered, e) {
			r.Applied++
		} else {
			r.Stale++
		}
	}
	if delivered >= s.LastDeliveredAt {
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
		if changed && r.Applied == 0 {
			r.Applied++ // the vehicle's details are news too
		}
	}
	s.NeedsReauth = s.needsReauth()
	return r
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

// orderedAt is the time a signal report is ordered by.
func orderedAt(sig smartcar.Signal, delivered int64) int64 {
	switch {
	case sig.OEMUpdatedAt > 0:
		return int64(sig.OEMUpdatedAt)
	case sig.RetrievedAt > 0:
		return int64(sig.RetrievedAt)
	}
	return delivered
}

func (s *State) applySignal(eventID string, delivered int64, sig smartcar.Signal) bool {
	at := orderedAt(sig, delivered)
	old, exists := s.Signals[sig.Code]
	if exists && at <= old.OrderedAt {
		return false
	}
	next := Signal{
		Name: sig.Name, Group: sig.Group, Body: sig.Body, Status: sig.Status,
		OEMUpdatedAt: int64(sig.OEMUpdatedAt), RetrievedAt: int64(sig.RetrievedAt),
		OrderedAt: at, EventID: eventID, Unsupported: old.Unsupported,
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

func (s *State) applyError(eventID string, delivered int64, e smartcar.VehicleError) bool {
	key := ErrorKey(e.Type, e.Code)
	if old, ok := s.Errors[key]; ok && delivered <= old.UpdatedAt {
		return false
	}
	var codes []string
	for _, ref := range e.Signals {
		codes = append(codes, ref.Key())
	}
	s.Errors[key] = Error{
		Type: e.Type, Code: e.Code, State: e.State, Description: e.Description,
		ResolutionType: e.ResolutionType, Signals: codes, UpdatedAt: delivered, EventID: eventID,
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
