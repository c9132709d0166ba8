package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// ErrVersionConflict is returned by VehicleStore.PutVehicle when another
// writer changed the vehicle since it was read.
var ErrVersionConflict = errors.New("vehicle changed since it was read")

// VehicleStore keeps one State per vehicle, beside the Ledger of events.
type VehicleStore interface {
	Ledger
	// GetVehicle returns the vehicle's state, or vehicle.New(id) with
	// Version 0 if there is none.
	GetVehicle(ctx context.Context, vehicleID string) (*vehicle.State, error)
	// PutVehicle writes s as version s.Version+1 and marks fence's event
	// completed, atomically: only if the stored version is still s.Version
	// (ErrVersionConflict otherwise) and fence still holds its event
	// (ErrFenceLost otherwise). On success it sets s.Version to the new
	// version. It is one write request.
	PutVehicle(ctx context.Context, s *vehicle.State, fence Claim) error
}

// DefaultConflictRetries is how often StateFinisher re-reads and re-merges
// after losing a version race before failing the record.
const DefaultConflictRetries = 8

// StateFinisher is the default Finisher: it merges each event into its
// vehicle's stored state (newest value per signal, newest report per error)
// and completes the event in the same write.
type StateFinisher struct {
	// Now is the processing time; a reported time later than it by more
	// than vehicle.MaxClockSkew is ordered at that bound. NewStateFinisher
	// sets it to time.Now.
	Now func() time.Time

	store   VehicleStore
	retries int
	log     *slog.Logger
	metrics MetricsWriter
}

// NewStateFinisher returns a StateFinisher over store. log and metrics may
// be nil.
func NewStateFinisher(store VehicleStore, log *slog.Logger, metrics MetricsWriter) *StateFinisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = emf.Discard{}
	}
	return &StateFinisher{Now: time.Now, store: store, retries: DefaultConflictRetries, log: log, metrics: metrics}
}

// Finish merges ev into the stored state and completes it, retrying the
// merge when a concurrent event for the same vehicle wins the write. An
// event that brings nothing newer only completes.
func (h *StateFinisher) Finish(ctx context.Context, ev smartcar.Event, claim Claim) error {
	for attempt := 0; ; attempt++ {
		s, err := h.store.GetVehicle(ctx, ev.VehicleID)
		if err != nil {
			return fmt.Errorf("read vehicle: %w", err)
		}
		now := h.Now()
		res := s.Apply(ev, now)
		if res.Stale > 0 {
			h.log.InfoContext(ctx, "state.stale_ignored", "eventId", ev.EventID, "vehicleId", ev.VehicleID,
				"stale", res.Stale, "applied", res.Applied)
		}
		if !res.Changed() {
			h.report(ctx, ev, res)
			return h.store.Complete(ctx, claim, now) // nothing newer to store
		}
		s.UpdatedAt = now.UnixMilli()
		err = h.store.PutVehicle(ctx, s, claim)
		if err == nil {
			h.report(ctx, ev, res)
			return nil
		}
		if !errors.Is(err, ErrVersionConflict) {
			return fmt.Errorf("write vehicle: %w", err)
		}
		if attempt >= h.retries {
			return fmt.Errorf("write vehicle: lost %d version races: %w", attempt+1, err)
		}
		// Back off a little, with jitter, before merging again.
		backoff := time.Duration(rand.Int64N(int64(5*time.Millisecond) << min(attempt, 4)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
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
