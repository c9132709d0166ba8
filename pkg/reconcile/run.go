package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Defaults of a Runner.
const (
	// DefaultStaleAfter: a vehicle is stale when nothing of it was written
	// for this long, and is then polled at most once per this period.
	DefaultStaleAfter = 6 * time.Hour
	// DefaultMaxVehicles bounds the vehicles of one run: at the default
	// rate, about 8 minutes of a Lambda's 15.
	DefaultMaxVehicles = 1000
	// DeadlineMargin is how long before its context's deadline a run stops
	// starting vehicles, to report what it did: at most a tenth of the
	// time it has.
	DeadlineMargin = 30 * time.Second
	// maxFailuresReported bounds Report.Failures.
	maxFailuresReported = 20
)

// Request is what a run reconciles: the vehicles listed, else every
// vehicle written since a time, else (Stale) the vehicles whose newest
// data is older than the Runner's StaleAfter. It is the reconciler
// Lambda's event; its schedule sends {"stale": true}.
type Request struct {
	VehicleIDs []string `json:"vehicleIds,omitempty"`
	// Since is an RFC 3339 time.
	Since  string `json:"since,omitempty"`
	Stale  bool   `json:"stale,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
}

// Validate says what is wrong with r, if anything: exactly one way of
// choosing vehicles.
func (r Request) Validate() error {
	n := 0
	for _, set := range []bool{len(r.VehicleIDs) > 0, r.Since != "", r.Stale} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New(`choose the vehicles one way: "vehicleIds": [...], "since": "<RFC 3339 time>" or "stale": true`)
	}
	if r.Since != "" {
		if _, err := time.Parse(time.RFC3339Nano, r.Since); err != nil {
			return fmt.Errorf("since %q: want an RFC 3339 time (2026-11-29T08:00:00Z)", r.Since)
		}
	}
	return nil
}

// Report is what a run did, the reconciler Lambda's answer.
type Report struct {
	DryRun bool `json:"dryRun,omitempty"`
	// Selected counts the vehicles chosen; Skipped those the selection
	// left out (no user id stored, reconciled within StaleAfter, or over
	// MaxVehicles: the next run's).
	Selected int `json:"selected"`
	Skipped  int `json:"skipped,omitempty"`
	// Reconciled and Failed count the vehicles polled and merged, and
	// those that failed; in a dry run, Reconciled counts those that
	// would be polled.
	Reconciled    int `json:"reconciled"`
	Failed        int `json:"failed"`
	SignalsPolled int `json:"signalsPolled"`
	SignalsHealed int `json:"signalsHealed"`
	// APICalls counts the requests to the signals endpoint (in a dry run,
	// at least those it would make: one per vehicle).
	APICalls int `json:"apiCalls"`
	// Unfinished counts the vehicles left for the next run because the
	// invocation ran out of time.
	Unfinished int `json:"unfinished,omitempty"`
	// Stopped says why a run stopped before its end.
	Stopped string `json:"stopped,omitempty"`
	// Failures are the first failures' messages.
	Failures []string `json:"failures,omitempty"`
	Results  []Result `json:"-"`
}

// Fleet lists the stored vehicles with their newest write:
// dynamostore.ListActivity.
type Fleet interface {
	Activity(ctx context.Context) ([]vehicle.Activity, error)
}

// FleetFunc is a Fleet.
type FleetFunc func(ctx context.Context) ([]vehicle.Activity, error)

// Activity calls f.
func (f FleetFunc) Activity(ctx context.Context) ([]vehicle.Activity, error) { return f(ctx) }

// Runner chooses the vehicles of a Request and reconciles them: the one
// path of the Lambda, its schedule and `make reconcile`.
type Runner struct {
	Reconciler *Reconciler
	// Fleet is required for Since and Stale requests.
	Fleet Fleet
	// StaleAfter defaults to DefaultStaleAfter, MaxVehicles to
	// DefaultMaxVehicles; Options pace the polls.
	StaleAfter  time.Duration
	MaxVehicles int
	Options     Options
}

// Run reconciles the vehicles req chooses. Its error is an invalid
// request, a failure to list the vehicles, or a run stopped early
// (ErrStopped: authentication, billing, ctx cancelled); a vehicle's own
// failure is counted in the Report. Run stops choosing and starting
// vehicles shortly before ctx's deadline (a tenth of the time left, at
// most DeadlineMargin) and leaves the rest to the next run
// (Report.Unfinished), which is no error.
func (rn *Runner) Run(ctx context.Context, req Request) (Report, error) {
	rep := Report{DryRun: req.DryRun}
	if err := req.Validate(); err != nil {
		return rep, err
	}
	runCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		margin := min(DeadlineMargin, time.Until(deadline)/10)
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	ids, skipped, err := rn.choose(runCtx, req)
	if err != nil {
		return rep, err
	}
	rep.Selected, rep.Skipped = len(ids), skipped

	opts := rn.Options
	opts.DryRun = req.DryRun
	results, err := rn.Reconciler.Vehicles(runCtx, ids, opts)
	rep.Results = results
	rep.Unfinished = len(ids) - len(results) // a dry run stopped early
	outOfTime := ctx.Err() == nil && errors.Is(runCtx.Err(), context.DeadlineExceeded)
	for _, res := range results {
		rep.APICalls += res.Calls
		rep.SignalsPolled += res.Polled
		rep.SignalsHealed += res.Updated
		switch {
		case res.Err == nil:
			rep.Reconciled++
		case outOfTime && (errors.Is(res.Err, ErrStopped) || errors.Is(res.Err, context.DeadlineExceeded)):
			rep.Unfinished++ // not started, or interrupted
		default:
			rep.Failed++
			if len(rep.Failures) < maxFailuresReported {
				rep.Failures = append(rep.Failures, res.Err.Error())
			}
		}
	}
	if err != nil && outOfTime && errors.Is(err, context.DeadlineExceeded) {
		err = nil // out of time: the next run goes on
	}
	if err != nil {
		rep.Stopped = err.Error()
	}
	return rep, err
}

// choose returns the vehicle ids req chooses, and how many it left out.
func (rn *Runner) choose(ctx context.Context, req Request) ([]string, int, error) {
	if len(req.VehicleIDs) > 0 {
		return distinct(req.VehicleIDs), 0, nil
	}
	if rn.Fleet == nil {
		return nil, 0, errors.New("no fleet to choose vehicles from")
	}
	all, err := rn.Fleet.Activity(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list vehicles: %w", err)
	}
	if req.Since != "" {
		since, _ := time.Parse(time.RFC3339Nano, req.Since) // validated
		var ids []string
		for _, a := range all {
			if a.UpdatedAt >= since.UnixMilli() {
				ids = append(ids, a.VehicleID)
			}
		}
		return ids, 0, nil
	}
	return rn.stale(ctx, all)
}

// stale returns the vehicles with a user id whose newest write is older
// than StaleAfter and that were not reconciled within it, oldest first,
// at most MaxVehicles.
func (rn *Runner) stale(ctx context.Context, all []vehicle.Activity) ([]string, int, error) {
	after := cmp.Or(rn.StaleAfter, DefaultStaleAfter)
	limit := cmp.Or(rn.MaxVehicles, DefaultMaxVehicles)
	cutoff := rn.Reconciler.now().Add(-after)
	var candidates []vehicle.Activity
	for _, a := range all {
		if a.HasUser && a.UpdatedAt < cutoff.UnixMilli() {
			candidates = append(candidates, a)
		}
	}
	slices.SortStableFunc(candidates, func(a, b vehicle.Activity) int { return cmp.Compare(a.UpdatedAt, b.UpdatedAt) })
	ids := make([]string, 0, min(len(candidates), limit))
	// The marks of a chunk of candidates at a time, until the run is full.
	for start := 0; start < len(candidates) && len(ids) < limit; start += marksChunk {
		chunk := candidates[start:min(start+marksChunk, len(candidates))]
		var marks map[string]time.Time
		if m := rn.Reconciler.Marks; m != nil {
			chunkIDs := make([]string, len(chunk))
			for i, a := range chunk {
				chunkIDs[i] = a.VehicleID
			}
			var err error
			if marks, err = m.Reconciled(ctx, chunkIDs); err != nil {
				return nil, 0, fmt.Errorf("read the last polls: %w", err)
			}
		}
		for _, a := range chunk {
			if len(ids) < limit && !marks[a.VehicleID].After(cutoff) {
				ids = append(ids, a.VehicleID)
			}
		}
	}
	return ids, len(all) - len(ids), nil
}

// marksChunk is how many candidates' marks are read at once: a
// BatchGetItem's 100 keys.
const marksChunk = 100
