// Package processortest provides hand-written fakes of the processor's
// dependencies: an in-memory store (Ledger and VehicleStore), a
// dead-letter queue and an archive.
package processortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

type eventItem struct {
	status    string // IN_PROGRESS or COMPLETED
	token     string
	messageID string // the message the claim was made for
	leaseEnd  time.Time
}

// Store is an in-memory processor.Ledger and processor.VehicleStore with
// the same conditions as the DynamoDB store. Set Err to make every call
// fail.
type Store struct {
	mu       sync.Mutex
	events   map[string]eventItem
	vehicles map[string]*entries
	Err      error
	writes   int
}

// entries are one vehicle's stored entries, as the DynamoDB store keeps
// them: nothing derived is stored.
type entries struct {
	details          *vehicle.Details // nil until written
	detailsUpdatedAt int64
	signals          map[string]stored[vehicle.Signal]
	errors           map[string]stored[vehicle.Error]
}

type stored[T any] struct {
	v         T
	updatedAt int64
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{events: map[string]eventItem{}, vehicles: map[string]*entries{}}
}

// Writes counts the write requests made so far, as DynamoDB would: Claim,
// Complete, Release, MarkApplied, and every entry write of WriteEntries, a skipped one
// included (a failed conditional write is charged too).
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Claim implements processor.Ledger.
func (s *Store) Claim(_ context.Context, req processor.ClaimRequest) (processor.Claim, processor.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.Err != nil {
		return processor.Claim{}, 0, s.Err
	}
	if it, ok := s.events[req.EventID]; ok {
		if it.status == "COMPLETED" {
			return processor.Claim{}, processor.AlreadyCompleted, nil
		}
		sameMessage := req.MessageID != "" && req.MessageID == it.messageID
		if req.Now.Before(it.leaseEnd) && !sameMessage {
			return processor.Claim{}, processor.HeldElsewhere, nil
		}
	}
	c := processor.Claim{EventID: req.EventID, Token: newToken()}
	s.events[req.EventID] = eventItem{status: "IN_PROGRESS", token: c.Token, messageID: req.MessageID, leaseEnd: req.Now.Add(req.Lease)}
	return c, processor.Claimed, nil
}

// holds reports whether c still holds its event. Callers hold s.mu.
func (s *Store) holds(c processor.Claim) bool {
	it, ok := s.events[c.EventID]
	return ok && it.status == "IN_PROGRESS" && it.token == c.Token
}

// Complete implements processor.Ledger.
func (s *Store) Complete(_ context.Context, c processor.Claim, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.Err != nil {
		return s.Err
	}
	if it := s.events[c.EventID]; it.token == c.Token && it.status == "COMPLETED" {
		return nil // completing again under the same token is a no-op
	}
	if !s.holds(c) {
		return processor.ErrFenceLost
	}
	s.events[c.EventID] = eventItem{status: "COMPLETED", token: c.Token}
	return nil
}

// Applied implements processor.VehicleStore.
func (s *Store) Applied(_ context.Context, eventID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return false, s.Err
	}
	return s.events[eventID].status == "COMPLETED", nil
}

// MarkApplied implements processor.VehicleStore.
func (s *Store) MarkApplied(_ context.Context, req processor.ClaimRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.Err != nil {
		return s.Err
	}
	s.events[req.EventID] = eventItem{status: "COMPLETED"}
	return nil
}

// Release implements processor.Ledger.
func (s *Store) Release(_ context.Context, c processor.Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.Err != nil {
		return s.Err
	}
	if !s.holds(c) {
		return processor.ErrFenceLost
	}
	it := s.events[c.EventID]
	it.leaseEnd = time.Time{}
	s.events[c.EventID] = it
	return nil
}

// GetVehicle implements processor.VehicleStore.
func (s *Store) GetVehicle(_ context.Context, vehicleID string) (*vehicle.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	st := vehicle.New(vehicleID)
	e, ok := s.vehicles[vehicleID]
	if !ok {
		return st, nil
	}
	if d := e.details; d != nil {
		st.Make, st.Model, st.Year, st.UserID, st.Mode, st.LastDeliveredAt = d.Make, d.Model, d.Year, d.UserID, d.Mode, d.LastDeliveredAt
		st.UpdatedAt = e.detailsUpdatedAt
		st.Source = vehicle.SourceEntries
	}
	for code, sg := range e.signals {
		st.Signals[code] = sg.v
		st.UpdatedAt = max(st.UpdatedAt, sg.updatedAt)
	}
	for key, er := range e.errors {
		st.Errors[key] = er.v
		st.UpdatedAt = max(st.UpdatedAt, er.updatedAt)
	}
	st.Derive()
	return st, nil
}

// WriteEntries implements processor.VehicleStore.
func (s *Store) WriteEntries(_ context.Context, st *vehicle.State, ch vehicle.Changes) (processor.Written, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var w processor.Written
	if s.Err != nil {
		return w, s.Err
	}
	e, ok := s.vehicles[st.VehicleID]
	if !ok {
		e = &entries{signals: map[string]stored[vehicle.Signal]{}, errors: map[string]stored[vehicle.Error]{}}
		s.vehicles[st.VehicleID] = e
	}
	count := func(written bool) {
		s.writes++
		if written {
			w.Stored++
		} else {
			w.Skipped++
		}
	}
	signals, errs, details := ch.Signals, ch.Errors, ch.Details
	if ch.All {
		signals, errs = slices.Collect(maps.Keys(st.Signals)), slices.Collect(maps.Keys(st.Errors))
		d := st.Details()
		details = &d
	}
	for _, code := range signals {
		next, ok := st.Signals[code]
		if !ok {
			continue
		}
		old, exists := e.signals[code]
		if exists && !vehicle.Newer(next.OrderedAt, old.v.OrderedAt) {
			count(false)
			continue
		}
		next.Unsupported = false // derived, never stored
		if next.Status != vehicle.StatusSuccess && (!ch.All || next.Body == nil || old.v.Body != nil) {
			// An error report never replaces a stored body; written whole
			// (ch.All) it brings the last good body it read, kept only
			// where none is stored.
			next.Body = old.v.Body
		}
		if next.Name == "" {
			next.Name = old.v.Name
		}
		if next.Group == "" {
			next.Group = old.v.Group
		}
		e.signals[code] = stored[vehicle.Signal]{next, st.UpdatedAt}
		count(true)
	}
	for _, key := range errs {
		next, ok := st.Errors[key]
		if !ok {
			continue
		}
		if old, exists := e.errors[key]; exists && !vehicle.Newer(next.Ordered(), old.v.Ordered()) {
			count(false)
			continue
		}
		next.OrderedAt = next.Ordered()
		e.errors[key] = stored[vehicle.Error]{next, st.UpdatedAt}
		count(true)
	}
	if details != nil {
		if old := e.details; old != nil && old.LastDeliveredAt > details.LastDeliveredAt {
			count(false)
		} else {
			next := vehicle.Details{}
			if old != nil {
				next = *old
			}
			for _, f := range []struct {
				dst *string
				v   string
			}{{&next.Make, details.Make}, {&next.Model, details.Model}, {&next.UserID, details.UserID}, {&next.Mode, details.Mode}} {
				if f.v != "" {
					*f.dst = f.v
				}
			}
			if details.Year != 0 {
				next.Year = details.Year
			}
			next.LastDeliveredAt = details.LastDeliveredAt
			e.details, e.detailsUpdatedAt = &next, st.UpdatedAt
			count(true)
		}
	}
	return w, nil
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Redeliveries returns what the queue hands out again after a batch: the
// records reported failed, each with its receive count raised.
func Redeliveries(records []processor.Record, failed []string) []processor.Record {
	var again []processor.Record
	for _, r := range records {
		if slices.Contains(failed, r.MessageID) {
			r.ReceiveCount++
			again = append(again, r)
		}
	}
	return again
}

// DeadLetter is one record sent to DLQ.
type DeadLetter struct {
	Record   processor.Record
	Reason   string
	FailedAt time.Time
}

// DLQ is an in-memory processor.DeadLetterQueue. Set Err to make sends fail.
type DLQ struct {
	mu      sync.Mutex
	letters []DeadLetter
	Err     error
}

// SendDeadLetter implements processor.DeadLetterQueue.
func (q *DLQ) SendDeadLetter(_ context.Context, rec processor.Record, reason string, failedAt time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Err != nil {
		return q.Err
	}
	q.letters = append(q.letters, DeadLetter{Record: rec, Reason: reason, FailedAt: failedAt})
	return nil
}

// Letters returns what was dead-lettered.
func (q *DLQ) Letters() []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.letters...)
}

// Archive is an in-memory processor.Archiver. Fail names the message ids
// whose archive writes fail.
type Archive struct {
	mu      sync.Mutex
	entries []archive.Entry
	Fail    map[string]bool
}

// ErrArchiveDown is what Archive returns for a message in Fail.
var ErrArchiveDown = errors.New("archive unavailable")

// Archive implements processor.Archiver.
func (a *Archive) Archive(_ context.Context, entries []archive.Entry) []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	errs := make([]error, len(entries))
	for i, e := range entries {
		if a.Fail[e.MessageID] {
			errs[i] = ErrArchiveDown
			continue
		}
		a.entries = append(a.entries, e)
	}
	return errs
}

// Entries returns what was archived, in order.
func (a *Archive) Entries() []archive.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.entries)
}
