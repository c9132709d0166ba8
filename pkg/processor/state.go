package processor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// VehicleStore keeps each vehicle's state as entries (its details, one
// per signal, one per error), and remembers the events applied without a
// claim whose changes a redelivery could repeat (see
// vehicle.Result.OrderedByDelivery).
type VehicleStore interface {
	// Applied reports whether the event was marked applied, or completed
	// under a claim.
	Applied(ctx context.Context, eventID string) (bool, error)
	// MarkApplied records the event applied, for req.TTL from req.Now.
	MarkApplied(ctx context.Context, req ClaimRequest) error
	// GetVehicle returns the vehicle's state, assembled from its entries
	// and derived (vehicle.State.Derive), with the Source it was read from;
	// vehicle.New(id) if nothing is stored.
	GetVehicle(ctx context.Context, vehicleID string) (*vehicle.State, error)
	// WriteEntries stores the entries of s that ch names, each on its own
	// condition (see vehicle.Changes), with updatedAt s.UpdatedAt. A write
	// that finds a newer entry stored is skipped and counted, not an
	// error. With ch.All it stores every entry of s and then its details.
	WriteEntries(ctx context.Context, s *vehicle.State, ch vehicle.Changes) (Written, error)
}

// Written counts the entry writes of a WriteEntries.
type Written struct {
	Stored  int // entries written
	Skipped int // entries a newer stored one kept
}

// StateFinisher is the default Finisher: it merges each event into its
// vehicle's stored state (newest value per signal, newest report per error,
// details of the newest delivery that changed them) and stores only the
// entries the event made newer.
//
// Every entry write is conditioned on being newer than the stored entry, so
// writes are idempotent (a redelivery, or a retry after a crash part-way,
// finds nothing newer than what it stored) and commutative (the order in
// which events land does not change the result); a worker whose claim was
// taken over can only store what is newer, which is correct state. An
// event whose own reports are stored and that brings nothing newer is
// ErrAlreadyApplied: it writes nothing.
//
// One case needs a record: a change ordered by the delivery's deliveredAt
// (an error, a signal without a time of its own, the details) or at the
// clock-skew bound. Smartcar's retry of an event carries a later
// deliveredAt, so once a newer event has replaced the entry, the retry
// would win over it (a resolved error re-opened). Such an event, when no
// claim guards it, is looked up in the events table first (a duplicate is
// ErrAlreadyApplied) and marked applied after its writes: one read and
// one write, for VEHICLE_ERROR events and the rare details change.
type StateFinisher struct {
	// Now is the processing time; a reported time later than it by more
	// than vehicle.MaxClockSkew is ordered at that bound. NewStateFinisher
	// sets it to time.Now.
	Now func() time.Time
	// TTL is how long an event marked applied is remembered;
	// NewStateFinisher sets DefaultIdempotencyTTL.
	TTL time.Duration

	store   VehicleStore
	log     *slog.Logger
	metrics MetricsWriter
}

// NewStateFinisher returns a StateFinisher over store. log and metrics may
// be nil.
func NewStateFinisher(store VehicleStore, log *slog.Logger, metrics MetricsWriter) *StateFinisher {
	log = logging.OrDiscard(log)
	if metrics == nil {
		metrics = emf.Discard{}
	}
	return &StateFinisher{Now: time.Now, TTL: DefaultIdempotencyTTL, store: store, log: log, metrics: metrics}
}

// Finish merges ev into the stored state and stores the entries it made
// newer. An event that brings nothing newer writes nothing. A vehicle not
// yet stored as entries (new, or in the legacy layout) is stored whole.
func (h *StateFinisher) Finish(ctx context.Context, ev smartcar.Event, claim Claim) error {
	s, err := h.store.GetVehicle(ctx, ev.VehicleID)
	if err != nil {
		return fmt.Errorf("read vehicle: %w", err)
	}
	now := h.Now()
	res := s.Apply(ev, now)
	ch := res.Changes
	if s.Source != vehicle.SourceEntries {
		ch.All = true
	}
	// Unclaimed, a change a redelivery could repeat needs the record (a
	// replay's under its generation).
	record := claim.Token == "" && res.OrderedByDelivery
	if record {
		done, err := h.store.Applied(ctx, EventKey(ev.EventID, claim.Generation))
		if err != nil {
			return fmt.Errorf("read event: %w", err)
		}
		if done {
			return ErrAlreadyApplied
		}
	}
	if !ch.Empty() {
		s.UpdatedAt = now.UnixMilli()
		// Each error written says whether the vehicle needs
		// re-authentication now: its resolution's news (reauth cleared or
		// not) is then part of the stored change.
		needs := s.NeedsReauth
		for key := range s.Errors {
			if ch.All || slices.Contains(ch.Errors, key) {
				e := s.Errors[key]
				e.VehicleNeedsReauth = &needs
				s.Errors[key] = e
			}
		}
		w, err := h.store.WriteEntries(ctx, s, ch)
		if err != nil {
			return fmt.Errorf("write vehicle: %w", err)
		}
		// What a concurrent newer event stored first is stale news here.
		res.Applied -= min(w.Skipped, res.Applied)
		res.Stale += w.Skipped
	}
	if res.Stale > 0 {
		h.log.DebugContext(ctx, "state.stale_ignored", "eventId", ev.EventID, "vehicleId", ev.VehicleID,
			"stale", res.Stale, "applied", res.Applied)
	}
	if record {
		// Failed, the record is retried: it finds its entries stored (or
		// replaced by newer news, which it leaves) and marks the event.
		if err := h.store.MarkApplied(ctx, ClaimRequest{EventID: EventKey(ev.EventID, claim.Generation), EventType: ev.EventType, VehicleID: ev.VehicleID,
			Now: now, TTL: h.TTL}); err != nil {
			return fmt.Errorf("mark applied: %w", err)
		}
	}
	h.report(ctx, ev, res)
	if res.AlreadyApplied() && ch.Empty() {
		return ErrAlreadyApplied
	}
	return nil
}

// report emits the metrics of the merge that was kept, and logs the times
// it ordered at the clock-skew bound (never the signals' values).
func (h *StateFinisher) report(ctx context.Context, ev smartcar.Event, res vehicle.Result) {
	var metrics []emf.Metric
	if res.Stale > 0 {
		metrics = append(metrics, emf.Metric{Name: MetricStaleSignalsIgnored, Value: float64(res.Stale), Unit: emf.Count})
	}
	if n := len(res.Clamped); n > 0 {
		metrics = append(metrics, emf.Metric{Name: MetricFutureTimestampsClamped, Value: float64(n), Unit: emf.Count})
	}
	for _, c := range res.Clamped {
		attrs := []any{"eventId", ev.EventID, "vehicleId", ev.VehicleID, "field", c.Field,
			"reported", c.Reported, "bound", c.Bound}
		switch {
		case c.Signal != "":
			attrs = append(attrs, "signal", c.Signal)
		case c.ErrorKey != "":
			attrs = append(attrs, "errorKey", c.ErrorKey)
		}
		h.log.WarnContext(ctx, "state.future_timestamp_clamped", attrs...)
	}
	if len(metrics) > 0 {
		_ = h.metrics.Emit(metrics...)
	}
}
