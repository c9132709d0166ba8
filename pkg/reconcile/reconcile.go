// Package reconcile heals vehicle state after webhooks were lost: Smartcar
// gives up on a webhook after a few retries, so after an outage a stored
// vehicle can be stale. The Reconciler reads a vehicle's current signals
// from Smartcar's v3 API and merges them through the same newest-wins path
// as webhooks (a processor.StateFinisher): a
// polled value never replaces a newer stored one, and a newer polled value
// fills the gap.
//
// A poll is merged as a VEHICLE_STATE event of its own, "reconcile-" +
// vehicle id + "-" + the poll time in epoch milliseconds, delivered at the
// poll time, with the zero processor.Claim: reconciliation runs no
// handlers, its only effect is the stored state. Each signal is ordered
// as a webhook's: by its oemUpdatedAt, else its retrievedAt, else the poll
// time, at most the processing time plus vehicle.MaxClockSkew.
//
// The API is called on behalf of the vehicle's user, whose id only a
// webhook brings (data.user.id): a vehicle with no user id stored is not
// polled.
//
// Nothing here logs a signal's value, a token or the client secret: the
// log lines carry vehicle ids, counts and errors (whose text the
// smartcarapi package keeps free of secrets).
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// EventIDPrefix begins the event id of every poll.
const EventIDPrefix = "reconcile-"

// Defaults of Options.
const (
	DefaultRate        = 2.0 // vehicles per second
	DefaultConcurrency = 2
)

var (
	// ErrNoUserID: the vehicle has no user id stored (or nothing stored at
	// all), so the API cannot be called on its user's behalf.
	ErrNoUserID = errors.New("no user id stored: wait for a webhook of it")
	// ErrStopped: Vehicles stopped before the end, on an error no other
	// vehicle can succeed after (authentication, billing), or because its
	// context ended.
	ErrStopped = errors.New("reconciliation stopped")
)

// Metric names, emitted by Vehicle and Vehicles (not in a dry run).
const (
	MetricVehiclesReconciled = "VehiclesReconciled"
	// MetricSignalsHealed counts signals whose stored entry a poll made
	// newer: the gaps it healed.
	MetricSignalsHealed     = "SignalsHealed"
	MetricReconcileFailures = "ReconcileFailures"
	// MetricReconcileStopped is 1 for a run stopped on an authentication
	// or billing error.
	MetricReconcileStopped = "ReconcileStopped"
	// MetricAPIErrors counts the vehicles whose poll failed, emitted
	// through Reconciler.APIErrors under the error's kind
	// (smartcarapi.ErrorKind).
	MetricAPIErrors = "APIErrors"
)

// DefaultMarkKeep is how long a vehicle's last reconciliation is
// remembered by default (Reconciler.MarkKeep).
const DefaultMarkKeep = 7 * 24 * time.Hour

// Marks remember when each vehicle was last polled, so that the scheduled
// runs poll a quiet vehicle, or one whose polls fail, once per staleness
// period, not on every run: *dynamostore.Store.
type Marks interface {
	// Reconciled returns the last poll of each of the vehicles that has
	// one remembered.
	Reconciled(ctx context.Context, vehicleIDs []string) (map[string]time.Time, error)
	MarkReconciled(ctx context.Context, vehicleID string, at time.Time, keep time.Duration) error
}

// MetricsWriter emits metrics: *emf.Writer.
type MetricsWriter interface {
	Emit(metrics ...emf.Metric) error
}

// SignalsAPI reads a vehicle's signals: *smartcarapi.Client.
type SignalsAPI interface {
	Signals(ctx context.Context, vehicleID, userID string) ([]smartcarapi.Signal, smartcarapi.Stats, error)
}

// Reconciler polls vehicles and merges what it reads into their stored
// state. API and Store are required; Now defaults to time.Now, Log to
// discarding. It is safe for concurrent use once set up.
type Reconciler struct {
	API   SignalsAPI
	Store processor.VehicleStore
	// Users, if set, reads a vehicle's user id alone: cheaper than the
	// whole state Store.GetVehicle reads otherwise.
	Users Users
	// Now is the poll time: the event's meta.deliveredAt and id. Pacing
	// (Options.Rate) runs on the real clock.
	Now func() time.Time
	Log *slog.Logger
	// Marks, if set, record each poll that reached the API and did not
	// stop the run, successful or not, remembered for MarkKeep
	// (DefaultMarkKeep when not positive).
	Marks    Marks
	MarkKeep time.Duration
	// Metrics, if set, receives the counts; APIErrors, if set, the
	// writer of MetricAPIErrors for an error kind.
	Metrics   MetricsWriter
	APIErrors func(kind string) MetricsWriter
}

// Users reads the user id stored for a vehicle ("" if none) and whether
// anything is stored for it: *dynamostore.Store.
type Users interface {
	UserID(ctx context.Context, vehicleID string) (userID string, stored bool, err error)
}

// Result is what reconciling one vehicle did.
type Result struct {
	VehicleID string
	// Polled counts the signals the API returned.
	Polled int
	// Updated counts the signals whose stored entry now comes from this
	// poll: the gaps it healed.
	Updated int
	// Calls counts the requests to the signals endpoint, retries included
	// (token requests are not counted). In a dry run, the requests the
	// vehicle would need at least: 1, or 0 if it would not be polled.
	Calls int
	Err   error

	apiError bool      // Err is the API's answer, not the store's or a cancellation
	polled   time.Time // when the API was called; zero if it was not
}

// Options configure Vehicles.
type Options struct {
	// Rate is how many vehicles are started per second at most
	// (DefaultRate when not positive): each vehicle starts at least 1/Rate
	// after the one before.
	Rate float64
	// Concurrency is how many vehicles are reconciled at once at most
	// (DefaultConcurrency when not positive).
	Concurrency int
	// DryRun calls no API and writes nothing: each vehicle's Result says
	// whether it would be polled (Calls 1) or why not (Err).
	DryRun bool
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) log() *slog.Logger { return logging.OrDiscard(r.Log) }

// counted is the store of one merge, counting the entries it stored.
type counted struct {
	processor.VehicleStore
	signals int // signal entries the merge made newer and stored
}

// WriteEntries implements processor.VehicleStore. A poll writes signals
// alone (no details, no errors), unless the vehicle is moved from the
// legacy layout, when the signals it made newer are at most those stored.
func (c *counted) WriteEntries(ctx context.Context, st *vehicle.State, ch vehicle.Changes) (processor.Written, error) {
	w, err := c.VehicleStore.WriteEntries(ctx, st, ch)
	c.signals += min(len(ch.Signals), w.Stored)
	return w, err
}

// EventID is the id of the event merging the poll of vehicleID made at
// polled.
func EventID(vehicleID string, polled time.Time) string {
	return EventIDPrefix + vehicleID + "-" + strconv.FormatInt(polled.UnixMilli(), 10)
}

// userID returns the user id stored for the vehicle, or an error saying
// why the vehicle cannot be polled.
func (r *Reconciler) userID(ctx context.Context, vehicleID string) (string, error) {
	if vehicleID == "" {
		return "", errors.New("empty vehicle id")
	}
	if r.Users != nil {
		id, stored, err := r.Users.UserID(ctx, vehicleID)
		switch {
		case err != nil:
			return "", fmt.Errorf("read vehicle: %w", err)
		case !stored:
			return "", fmt.Errorf("vehicle not stored: %w", ErrNoUserID)
		case id == "":
			return "", ErrNoUserID
		}
		return id, nil
	}
	s, err := r.Store.GetVehicle(ctx, vehicleID)
	if err != nil {
		return "", fmt.Errorf("read vehicle: %w", err)
	}
	if s == nil || !s.Exists() {
		return "", fmt.Errorf("vehicle not stored: %w", ErrNoUserID)
	}
	if s.UserID == "" {
		return "", ErrNoUserID
	}
	return s.UserID, nil
}

// Vehicle polls the vehicle's signals and merges them into its stored
// state. Result.Err says why it failed, if it did; a poll that brings
// nothing newer than what is stored is no error (Updated 0).
func (r *Reconciler) Vehicle(ctx context.Context, vehicleID string) Result {
	res := r.vehicle(ctx, vehicleID)
	_, stops := fatal(res.Err)
	if r.Marks != nil && (res.Err == nil || res.apiError && stops == nil) {
		// A vehicle whose polls fail (access revoked, deleted, over its
		// monthly requests) is tried again a period later, not on every
		// run ahead of the others. An unrecorded poll only lets a
		// scheduled run poll the vehicle again sooner.
		keep := r.MarkKeep
		if keep <= 0 {
			keep = DefaultMarkKeep
		}
		if err := r.Marks.MarkReconciled(ctx, vehicleID, res.polled, keep); err != nil {
			r.log().WarnContext(ctx, "reconcile.mark_failed", "vehicleId", vehicleID, "error", err.Error())
		}
	}
	if res.Err == nil {
		r.emit(emf.Metric{Name: MetricVehiclesReconciled, Value: 1, Unit: emf.Count},
			emf.Metric{Name: MetricSignalsHealed, Value: float64(res.Updated), Unit: emf.Count})
		return res
	}
	res.Err = fmt.Errorf("reconcile vehicle %s: %w", vehicleID, res.Err)
	if ctx.Err() != nil {
		// Interrupted (out of time, or the run stopped): no failure of
		// the vehicle's.
		r.log().InfoContext(ctx, "reconcile.vehicle_interrupted", "vehicleId", vehicleID, "calls", res.Calls, "error", res.Err.Error())
		return res
	}
	kind := smartcarapi.ErrorKind(res.Err)
	r.log().WarnContext(ctx, "reconcile.vehicle_failed", "vehicleId", vehicleID, "calls", res.Calls, "kind", kind, "error", res.Err.Error())
	r.emit(emf.Metric{Name: MetricReconcileFailures, Value: 1, Unit: emf.Count})
	if res.apiError && r.APIErrors != nil {
		_ = r.APIErrors(kind).Emit(emf.Metric{Name: MetricAPIErrors, Value: 1, Unit: emf.Count})
	}
	return res
}

// emit writes metrics, if anything is to receive them; a metric lost is
// no reason to fail a vehicle.
func (r *Reconciler) emit(metrics ...emf.Metric) {
	if r.Metrics != nil {
		_ = r.Metrics.Emit(metrics...)
	}
}

func (r *Reconciler) vehicle(ctx context.Context, vehicleID string) Result {
	res := Result{VehicleID: vehicleID}
	userID, err := r.userID(ctx, vehicleID)
	if err != nil {
		res.Err = err
		return res
	}
	// Before the call: a signal the API reports without a time is
	// ordered at it, behind a webhook processed while the call ran.
	polled := r.now()
	res.polled = polled
	signals, st, err := r.API.Signals(ctx, vehicleID, userID)
	res.Calls = st.Calls
	if err != nil {
		res.Err = fmt.Errorf("poll: %w", err)
		res.apiError = ctx.Err() == nil
		return res
	}
	res.Polled = len(signals)
	ev := smartcar.Event{
		EventID:   EventID(vehicleID, polled),
		EventType: smartcar.EventVehicleState,
		VehicleID: vehicleID,
		Signals:   make([]smartcar.Signal, 0, len(signals)),
		// No user, mode, make: a poll changes no details, so it writes no
		// vehicle entry and orders no later webhook's details (a user id
		// read before the call could be older than one stored since).
		Meta: smartcar.Meta{DeliveredAt: smartcar.Millis(polled.UnixMilli())},
	}
	for _, s := range signals {
		ev.Signals = append(ev.Signals, s.Signal)
	}
	if len(ev.Signals) > 0 {
		// The processor's merge, over a store that counts what it wrote.
		store := &counted{VehicleStore: r.Store}
		if err := processor.NewStateFinisher(store, r.Log, nil).Finish(ctx, ev, processor.Claim{}); err != nil && !errors.Is(err, processor.ErrAlreadyApplied) {
			res.Err = fmt.Errorf("merge: %w", err)
			return res
		}
		res.Updated = store.signals
	}
	r.log().InfoContext(ctx, "reconcile.vehicle", "vehicleId", vehicleID, "eventId", ev.EventID,
		"polled", res.Polled, "updated", res.Updated, "calls", st.Calls, "tokenCalls", st.TokenCalls,
		"retries", st.Retries, "pages", st.Pages, "skipped", st.Skipped, "waitedMs", st.Waited.Milliseconds())
	return res
}

// plan is a dry run's Result for the vehicle.
func (r *Reconciler) plan(ctx context.Context, vehicleID string) Result {
	res := Result{VehicleID: vehicleID}
	if _, err := r.userID(ctx, vehicleID); err != nil {
		res.Err = fmt.Errorf("reconcile vehicle %s: would not poll: %w", vehicleID, err)
		return res
	}
	res.Calls = 1
	return res
}

// vehicleRequestLimit is the code of Smartcar's billing error for one
// vehicle over its plan's monthly requests: that vehicle's alone.
const vehicleRequestLimit = "VEHICLE_REQUEST_LIMIT"

// fatal returns, for an error that ends a run, what to do about it and
// its kind; nil otherwise.
func fatal(err error) (hint string, kind error) {
	var api *smartcarapi.APIError
	switch {
	case errors.Is(err, smartcarapi.ErrAuthentication):
		return "Smartcar refused the application's credentials: fix the client id and secret, then run again", smartcarapi.ErrAuthentication
	case errors.As(err, &api) && strings.EqualFold(api.Code, vehicleRequestLimit):
		return "", nil
	case errors.Is(err, smartcarapi.ErrBilling):
		return "Smartcar's billing limit forbids polling: check the application's plan, then run again", smartcarapi.ErrBilling
	}
	return "", nil
}

// Vehicles reconciles the vehicles ids (each distinct id once, in order),
// at most opts.Rate vehicles started per second and opts.Concurrency at a
// time, and returns one Result per distinct id, in order. A vehicle's
// failure is recorded in its Result and the others go on, except an
// authentication or billing error: no other vehicle can succeed after it,
// so Vehicles stops (cancelling the polls under way), records ErrStopped
// for the vehicles not reconciled, and returns an error wrapping
// ErrStopped and the cause. The error is also ErrStopped, wrapping the
// context's error, when ctx ends first.
func (r *Reconciler) Vehicles(ctx context.Context, ids []string, opts Options) ([]Result, error) {
	ids = distinct(ids)
	results := make([]Result, len(ids))
	if opts.DryRun {
		polled := 0
		for i, id := range ids {
			if err := ctx.Err(); err != nil {
				return results[:i], fmt.Errorf("%w: %w", ErrStopped, err)
			}
			results[i] = r.plan(ctx, id)
			if results[i].Err == nil {
				polled++
			}
		}
		r.log().InfoContext(ctx, "reconcile.dry_run", "vehicles", len(ids), "wouldPoll", polled,
			"signalCallsAtLeast", polled, "tokenCallsAtLeast", min(polled, 1))
		return results, nil
	}

	rate := opts.Rate
	if !(rate > 0) || math.IsInf(rate, 0) {
		rate = DefaultRate
	}
	interval := time.Duration(float64(time.Second) / rate)
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex
		stopErr error // the first fatal error
		skipErr error // its short form, for the vehicles it skipped
	)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	started := make([]bool, len(ids))
	var next time.Time // the earliest the next vehicle may start
dispatch:
	for i, id := range ids {
		if wait := time.Until(next); !next.IsZero() && wait > 0 {
			if resend.Sleep(runCtx, wait) != nil {
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			break dispatch
		}
		if runCtx.Err() != nil {
			<-sem
			break
		}
		next = time.Now().Add(interval)
		started[i] = true
		wg.Go(func() {
			defer func() { <-sem }()
			res := r.Vehicle(runCtx, id)
			if hint, kind := fatal(res.Err); kind != nil {
				mu.Lock()
				if stopErr == nil {
					stopErr = fmt.Errorf("%w at vehicle %s: %s: %w", ErrStopped, id, hint, res.Err)
					skipErr = fmt.Errorf("%w at vehicle %s: %w", ErrStopped, id, kind)
					cancel(stopErr)
				}
				mu.Unlock()
			}
			results[i] = res
		})
	}
	wg.Wait()

	var runErr error
	switch {
	case stopErr != nil:
		runErr = stopErr
		r.log().ErrorContext(ctx, "reconcile.stopped", "error", stopErr.Error())
		r.emit(emf.Metric{Name: MetricReconcileStopped, Value: 1, Unit: emf.Count})
	case ctx.Err() != nil:
		runErr = fmt.Errorf("%w: %w", ErrStopped, ctx.Err())
	}
	notPolled := runErr
	switch {
	case skipErr != nil:
		notPolled = skipErr
	case notPolled == nil:
		notPolled = ErrStopped // unreachable: a vehicle is skipped only once stopped
	}
	for i, id := range ids {
		switch {
		case !started[i]:
			results[i] = Result{VehicleID: id, Err: fmt.Errorf("reconcile vehicle %s: not polled: %w", id, notPolled)}
		case stopErr != nil && errors.Is(results[i].Err, context.Canceled):
			results[i].Err = fmt.Errorf("reconcile vehicle %s: cancelled: %w", id, skipErr)
		}
	}
	ok, failed := 0, 0
	for _, res := range results {
		if res.Err == nil {
			ok++
		} else {
			failed++
		}
	}
	r.log().InfoContext(ctx, "reconcile.done", "vehicles", len(ids), "reconciled", ok, "failed", failed)
	return results, runErr
}

// distinct returns ids without repeats, in order.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
