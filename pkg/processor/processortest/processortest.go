// Package processortest provides hand-written fakes of the processor's
// dependencies: an in-memory store (Ledger and VehicleStore) and a
// dead-letter queue.
package processortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

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
	vehicles map[string]*vehicle.State // clones, so callers never share maps with it
	Err      error
	writes   int
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{events: map[string]eventItem{}, vehicles: map[string]*vehicle.State{}}
}

// Writes counts the write calls made so far (Claim, Complete, Release,
// PutVehicle), like DynamoDB write requests.
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
	st, ok := s.vehicles[vehicleID]
	if !ok {
		return vehicle.New(vehicleID), nil
	}
	return st.Clone(), nil
}

// PutVehicle implements processor.VehicleStore.
func (s *Store) PutVehicle(_ context.Context, st *vehicle.State, fence processor.Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.Err != nil {
		return s.Err
	}
	if !s.holds(fence) {
		return processor.ErrFenceLost
	}
	var stored int64
	if cur, ok := s.vehicles[st.VehicleID]; ok {
		stored = cur.Version
	}
	if stored != st.Version {
		return processor.ErrVersionConflict
	}
	next := st.Clone()
	next.Version++
	s.vehicles[st.VehicleID] = next
	s.events[fence.EventID] = eventItem{status: "COMPLETED", token: fence.Token}
	st.Version = next.Version
	return nil
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
