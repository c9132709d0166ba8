// Package vehicle is the stored state of one vehicle and the rules that
// merge webhook events into it: per signal, the newest value wins; per
// error, the newest delivery wins. A time later than the processing time
// plus MaxClockSkew is ordered at that bound, so that one report from a
// wrong clock cannot freeze a value. Merging is pure: it reads an event, a
// state and the processing time, and changes only the state.
//
// A state is stored as entries that are written independently: the
// vehicle's details, one entry per signal and one per error condition.
// Each entry is written only when it is strictly newer than the stored one
// (see Changes), so writes of concurrent events commute. What depends on
// several entries (NeedsReauth, each signal's Unsupported) is derived when
// the state is read (Derive), never stored.
package vehicle

import (
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

// State is one vehicle's state: the view users read, assembled from its
// stored entries.
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
	// is REAUTHENTICATE, is unresolved. Derived from Errors.
	NeedsReauth bool `json:"needsReauth"`
	// LastDeliveredAt is the meta.deliveredAt (ms, at most its processing
	// time plus MaxClockSkew) of the newest delivery that changed the make,
	// model, year, user or mode; it decides whose are kept. A delivery that
	// changes none of them is not recorded.
	LastDeliveredAt int64 `json:"lastDeliveredAt"`
	// UpdatedAt is when an entry of the vehicle was last written (ms).
	UpdatedAt int64 `json:"updatedAt"`
	// Source says where the state was read from.
	Source Source `json:"-"`
}

// Source is where a State was read from.
type Source int

// Sources of a State.
const (
	// SourceNone: nothing is stored for the vehicle.
	SourceNone Source = iota
	// SourceLegacy: the vehicle is stored in the legacy one-item layout
	// (possibly overlaid with entries written since): its next write
	// stores every entry.
	SourceLegacy
	// SourceEntries: the vehicle is stored as entries.
	SourceEntries
)

// Exists reports whether anything is stored for the vehicle.
func (s *State) Exists() bool {
	return s.Source != SourceNone || len(s.Signals) > 0 || len(s.Errors) > 0
}

// Details are the vehicle's own fields: its details entry.
type Details struct {
	Make, Model string
	Year        int
	UserID      string
	Mode        string
	// LastDeliveredAt orders the entry: a write lands only over an entry
	// whose LastDeliveredAt is not later.
	LastDeliveredAt int64
}

// Details returns s's details entry.
func (s *State) Details() Details {
	return Details{Make: s.Make, Model: s.Model, Year: s.Year, UserID: s.UserID, Mode: s.Mode, LastDeliveredAt: s.LastDeliveredAt}
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
	// Unsupported is set while an unresolved COMPATIBILITY error names the
	// signal. Derived from the errors.
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
	// Refs are the signals as reported, with their names and groups:
	// Refs[i].Code is Signals[i]. A COMPATIBILITY error's refs name the
	// signals the vehicle never reported itself. Nil for errors stored
	// without them.
	Refs []smartcar.SignalRef `json:"-"`
	// UpdatedAt is the meta.deliveredAt of the report (ms), as reported.
	UpdatedAt int64 `json:"updatedAt"`
	// OrderedAt is the time the report is ordered by: UpdatedAt, at most
	// the processing time plus MaxClockSkew. It is 0 in entries stored
	// before it existed, which are ordered by UpdatedAt.
	OrderedAt int64  `json:"orderedAt"`
	EventID   string `json:"eventId,omitempty"`
	// VehicleNeedsReauth is whether the vehicle needed re-authentication
	// once this report was merged, as the writer of the entry saw it
	// (State.NeedsReauth): what a resolution's domain event is decided
	// by, from the stored change alone. Nil in entries stored before it.
	VehicleNeedsReauth *bool `json:"-"`
}

// ErrorKey returns the errors map key, "TYPE:CODE", with "null" for a null
// code.
func ErrorKey(errType, code string) string {
	if code == "" {
		code = "null"
	}
	return errType + ":" + code
}

// Result counts what a merge did. Each signal and error report of the
// event counts once: Applied, Stale, Unchanged or Repeated.
type Result struct {
	Applied int // signals, errors or details replaced
	// Stale counts reports older than the stored ones: news that arrived
	// out of order, ignored.
	Stale int
	// Unchanged counts reports ordered at the same time as the stored
	// ones of another event: Smartcar repeats every subscribed signal in
	// every event, so most of an event's signals are unchanged.
	Unchanged int
	// Repeated counts reports whose stored entry this very event wrote:
	// a redelivery of an event already applied.
	Repeated int
	// OrderedByDelivery is set when a report the merge applied, or found
	// stored by this same event, is ordered by the delivery's
	// meta.deliveredAt (an error, a signal without a time of its own, a
	// change of the details) or at the clock-skew bound. Smartcar's retry
	// of an event carries a later deliveredAt, and a later merge a later
	// bound: once a newer event has replaced the entry, such a redelivery
	// would win over it, and only a record of the events applied can tell
	// it apart.
	OrderedByDelivery bool
	// Clamped lists the reported times ordered at the processing time
	// plus MaxClockSkew: one per signal and per error ordered by such a
	// time, and one for a meta.deliveredAt that orders the vehicle's
	// details. Nil when there are none.
	Clamped []Clamp
	// Changes are the entries the merge replaced: what to store.
	Changes Changes
}

// Changes name the entries of a State to store. Each entry is stored only
// over an older one: a signal or an error over one whose orderedAt is
// earlier; the details over ones whose lastDeliveredAt is not later. A
// write that finds a newer entry stored is skipped: a concurrent event
// brought newer news. So the writes of any events, in any order, leave the
// newest entry of each.
type Changes struct {
	// All asks for every entry of the state, details last: its first
	// write in the entry layout.
	All bool
	// Signals and Errors are the codes and keys of the entries replaced.
	Signals []string
	Errors  []string
	// Details, when set, holds the details a delivery changed: its
	// non-empty fields replace the stored ones.
	Details *Details
}

// Empty reports whether there is nothing to store.
func (c Changes) Empty() bool {
	return !c.All && len(c.Signals) == 0 && len(c.Errors) == 0 && c.Details == nil
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

// AlreadyApplied reports whether the event was applied before: it changes
// nothing, and the stored state holds at least one of its reports.
func (r Result) AlreadyApplied() bool { return r.Applied == 0 && r.Repeated > 0 }

// Bound returns the latest time anything processed at now is ordered at:
// now plus MaxClockSkew (ms).
func Bound(now time.Time) int64 { return now.Add(MaxClockSkew).UnixMilli() }

// Newer reports whether an entry ordered at at replaces one stored with
// orderedAt stored.
func Newer(at, stored int64) bool { return at > stored }

// ForgetTimesAfter forgets every ordering time of s later than bound (ms):
// such a time was stored before times were bounded (vehicle states written
// before MaxClockSkew existed, such as a legacy item carrying a report
// dated 2100), and would hold its entry against every genuine report. A
// forgotten time orders as unknown, so the next report replaces the entry.
// It returns how many it forgot.
func (s *State) ForgetTimesAfter(bound int64) int {
	n := 0
	for code, sg := range s.Signals {
		if sg.OrderedAt > bound {
			sg.OrderedAt = 0
			s.Signals[code] = sg
			n++
		}
	}
	for key, e := range s.Errors {
		if e.Ordered() > bound {
			e.OrderedAt, e.UpdatedAt = 0, 0
			s.Errors[key] = e
			n++
		}
	}
	if s.LastDeliveredAt > bound {
		s.LastDeliveredAt = 0
		n++
	}
	return n
}

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
	// wroteSignal and wroteError name the signals and errors this merge
	// replaced, each once in r.Changes: an event naming one twice changes
	// one entry, and is not its own redelivery.
	wroteSignal, wroteError map[string]bool
}

// verdict is what a merge made of one report.
type verdict int

const (
	applied verdict = iota
	stale
	unchanged
	repeated
)

// judge compares a report ordered at at with the entry, if any, ordered
// at storedAt and written by storedEvent (stored before this merge unless
// wrote).
func (m *merge) judge(wrote, exists bool, at, storedAt int64, storedEvent string) verdict {
	switch {
	case !exists:
		return applied
	case storedEvent != "" && storedEvent == m.eventID && !wrote:
		// Whatever its times (a redelivery ordered by its new
		// deliveredAt), the event's own report is stored.
		return repeated
	case Newer(at, storedAt):
		return applied
	case at == storedAt:
		return unchanged
	}
	return stale
}

// count counts v into the result.
func (m *merge) count(v verdict) {
	switch v {
	case applied:
		m.r.Applied++
	case stale:
		m.r.Stale++
	case unchanged:
		m.r.Unchanged++
	case repeated:
		m.r.Repeated++
	}
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

// Apply merges ev into s and returns what changed. now is the processing
// time: a time in ev later than now plus MaxClockSkew is ordered at that
// bound.
func (s *State) Apply(ev smartcar.Event, now time.Time) Result {
	if s.Signals == nil {
		s.Signals = map[string]Signal{}
	}
	if s.Errors == nil {
		s.Errors = map[string]Error{}
	}
	m := &merge{eventID: ev.EventID, bound: Bound(now), wroteSignal: map[string]bool{}, wroteError: map[string]bool{}}
	for _, sig := range ev.Signals {
		m.count(s.applySignal(m, int64(ev.Meta.DeliveredAt), sig))
	}
	for _, e := range ev.Errors {
		m.count(s.applyError(m, int64(ev.Meta.DeliveredAt), e))
	}
	s.applyDetails(m, ev)
	s.Derive()
	return m.r
}

// applyDetails keeps the vehicle's details and mode of the newest delivery.
func (s *State) applyDetails(m *merge, ev smartcar.Event) {
	delivered := m.order(int64(ev.Meta.DeliveredAt), Clamp{Field: "deliveredAt"})
	if delivered < s.LastDeliveredAt {
		return
	}
	// A newer delivery alone is not news: only a changed field is stored.
	changed := false
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
	if !changed {
		return
	}
	s.LastDeliveredAt = delivered
	m.r.OrderedByDelivery = true
	// The event's own fields: a concurrent newer delivery may have changed
	// the others since s was read.
	m.r.Changes.Details = &Details{Make: ev.Make, Model: ev.Model, Year: ev.Year, UserID: ev.UserID, Mode: ev.Meta.Mode, LastDeliveredAt: delivered}
	if m.r.Applied == 0 {
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

func (s *State) applySignal(m *merge, delivered int64, sig smartcar.Signal) verdict {
	reported, field := reportedAt(sig, delivered)
	at := m.order(reported, Clamp{Field: field, Signal: sig.Code})
	old, exists := s.Signals[sig.Code]
	v := m.judge(m.wroteSignal[sig.Code], exists, at, old.OrderedAt, old.EventID)
	if v == applied || v == repeated {
		m.r.OrderedByDelivery = m.r.OrderedByDelivery || field == "deliveredAt" || at != reported
	}
	if v != applied {
		return v
	}
	if !m.wroteSignal[sig.Code] {
		m.wroteSignal[sig.Code] = true
		m.r.Changes.Signals = append(m.r.Changes.Signals, sig.Code)
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
	return applied
}

// Ordered is the time a stored error is ordered by: its OrderedAt, or,
// in entries stored before it existed, its UpdatedAt.
func (e Error) Ordered() int64 {
	if e.OrderedAt != 0 {
		return e.OrderedAt
	}
	return e.UpdatedAt
}

func (s *State) applyError(m *merge, delivered int64, e smartcar.VehicleError) verdict {
	key := ErrorKey(e.Type, e.Code)
	at := m.order(delivered, Clamp{Field: "deliveredAt", ErrorKey: key})
	old, exists := s.Errors[key]
	v := m.judge(m.wroteError[key], exists, at, old.Ordered(), old.EventID)
	if v == applied || v == repeated {
		m.r.OrderedByDelivery = true
	}
	if v != applied {
		return v
	}
	if !m.wroteError[key] {
		m.wroteError[key] = true
		m.r.Changes.Errors = append(m.r.Changes.Errors, key)
	}
	var codes []string
	var refs []smartcar.SignalRef
	for _, ref := range e.Signals {
		ref.Code = ref.Key()
		codes = append(codes, ref.Code)
		refs = append(refs, ref)
	}
	s.Errors[key] = Error{
		Type: e.Type, Code: e.Code, State: e.State, Description: e.Description,
		ResolutionType: e.ResolutionType, Signals: codes, Refs: refs, UpdatedAt: delivered, OrderedAt: at, EventID: m.eventID,
	}
	return applied
}

// Derive sets what the state derives from its errors: NeedsReauth, and
// each signal's Unsupported (an unresolved COMPATIBILITY error names it).
// A signal a COMPATIBILITY error names and the vehicle never reported is
// shown with the name and group the error gave. Stores call it on the
// state they read; Apply calls it after merging.
func (s *State) Derive() {
	if s.Signals == nil {
		s.Signals = map[string]Signal{}
	}
	for code, sg := range s.Signals {
		if sg.Unsupported {
			sg.Unsupported = false
			s.Signals[code] = sg
		}
	}
	for _, e := range s.Errors {
		if e.Type != "COMPATIBILITY" {
			continue
		}
		for i, code := range e.Signals {
			sg, ok := s.Signals[code]
			if !ok && i < len(e.Refs) {
				sg = Signal{Name: e.Refs[i].Name, Group: e.Refs[i].Group}
			}
			sg.Unsupported = sg.Unsupported || e.State != ErrorResolved
			s.Signals[code] = sg
		}
	}
	s.NeedsReauth = s.needsReauth()
}

// needsReauth reports whether an unresolved error asks the user to
// re-authenticate.
func (s *State) needsReauth() bool {
	for _, e := range s.Errors {
		if e.State == ErrorResolved {
			continue
		}
		if e.AsksReauth() {
			return true
		}
	}
	return false
}

// Activity is when a vehicle's stored state was last written: what
// chooses the vehicles to reconcile with Smartcar's API.
type Activity struct {
	VehicleID string
	// UpdatedAt is the newest write of any of its entries (ms).
	UpdatedAt int64
	// HasUser says whether a user id is stored, without which the vehicle
	// cannot be polled.
	HasUser bool
}
