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
	store   VehicleStore
	retries int
	log     *slog.Logger
	metrics MetricsWriter
	now     func() time.Time
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
	return &StateFinisher{store: store, retries: DefaultConflictRetries, log: log, metrics: metrics, now: time.Now}
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
		res := s.Apply(ev)
		if res.Stale > 0 {
			h.log.InfoContext(ctx, "state.stale_ignored", "eventId", ev.EventID, "vehicleId", ev.VehicleID,
				"stale", res.Stale, "applied", res.Applied)
		}
		if !res.Changed() {
			h.emitStale(res.Stale)
			return h.store.Complete(ctx, claim, h.now()) // nothing newer to store
		}
		s.UpdatedAt = h.now().UnixMilli()
		err = h.store.PutVehicle(ctx, s, claim)
		if err == nil {
			h.emitStale(res.Stale)
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

func (h *StateFinisher) emitStale(n int) {
	if n > 0 {
		_ = h.metrics.Emit(emf.Metric{Name: MetricStaleSignalsIgnored, Value: float64(n), Unit: emf.Count})
	}
}
