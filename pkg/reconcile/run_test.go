package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile/reconciletest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// runner is a Runner over the fixture, whose fleet is listed.
func (f *fixture) runner(fleet []vehicle.Activity) (*reconcile.Runner, *reconciletest.Marks) {
	marks := &reconciletest.Marks{}
	f.rec.Marks = marks
	return &reconcile.Runner{
		Reconciler: f.rec,
		Fleet: reconcile.FleetFunc(func(context.Context) ([]vehicle.Activity, error) {
			return slices.Clone(fleet), nil
		}),
		StaleAfter: 6 * time.Hour,
		Options:    reconcile.Options{Rate: 1000, Concurrency: 4},
	}, marks
}

func ago(f *fixture, d time.Duration) int64 { return f.polledAt.Add(-d).UnixMilli() }

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  reconcile.Request
		want string // in the error; "" for valid
	}{
		{"vehicles", reconcile.Request{VehicleIDs: []string{"v"}}, ""},
		{"since", reconcile.Request{Since: "2026-11-29T08:00:00Z"}, ""},
		{"stale dry run", reconcile.Request{Stale: true, DryRun: true}, ""},
		{"nothing", reconcile.Request{DryRun: true}, "choose the vehicles one way"},
		{"two ways", reconcile.Request{VehicleIDs: []string{"v"}, Stale: true}, "choose the vehicles one way"},
		{"bad since", reconcile.Request{Since: "yesterday"}, `since "yesterday": want an RFC 3339 time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRunStaleChoosesQuietVehiclesOldestFirst(t *testing.T) {
	f := newFixture(t)
	fleet := []vehicle.Activity{
		{VehicleID: "fresh", UpdatedAt: ago(f, time.Hour), HasUser: true},
		{VehicleID: "stale-7h", UpdatedAt: ago(f, 7*time.Hour), HasUser: true},
		{VehicleID: "stale-30h", UpdatedAt: ago(f, 30*time.Hour), HasUser: true},
		{VehicleID: "stale-no-user", UpdatedAt: ago(f, 30*time.Hour)},
		{VehicleID: "stale-reconciled", UpdatedAt: ago(f, 20*time.Hour), HasUser: true},
		{VehicleID: "stale-reconciled-long-ago", UpdatedAt: ago(f, 20*time.Hour), HasUser: true},
	}
	rn, marks := f.runner(fleet)
	_ = marks.MarkReconciled(context.Background(), "stale-reconciled", f.polledAt.Add(-time.Hour), time.Hour)
	_ = marks.MarkReconciled(context.Background(), "stale-reconciled-long-ago", f.polledAt.Add(-7*time.Hour), time.Hour)

	rep, err := rn.Run(context.Background(), reconcile.Request{Stale: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range rep.Results {
		got = append(got, res.VehicleID)
	}
	want := []string{"stale-30h", "stale-reconciled-long-ago", "stale-7h"}
	if !slices.Equal(got, want) || rep.Selected != 3 || rep.Skipped != 3 {
		t.Errorf("chose %v (selected %d, skipped %d), want %v (3, 3)", got, rep.Selected, rep.Skipped, want)
	}

	rn.MaxVehicles = 2
	rep, err = rn.Run(context.Background(), reconcile.Request{Stale: true, DryRun: true})
	if err != nil || rep.Selected != 2 || rep.Results[0].VehicleID != "stale-30h" {
		t.Errorf("with MaxVehicles 2: %+v, %v; want the 2 stalest", rep, err)
	}
}

func TestRunSinceChoosesVehiclesWrittenSince(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-a", "a", "user-a", odometer, "100", at(1))
	f.webhook(t, "wh-c", "c", "", odometer, "100", at(1))
	since := f.polledAt.Add(-24 * time.Hour)
	fleet := []vehicle.Activity{
		{VehicleID: "a", UpdatedAt: since.UnixMilli(), HasUser: true},
		{VehicleID: "b", UpdatedAt: since.UnixMilli() - 1, HasUser: true},
		{VehicleID: "c", UpdatedAt: ago(f, time.Minute)},
	}
	rn, _ := f.runner(fleet)
	rep, err := rn.Run(context.Background(), reconcile.Request{Since: since.Format(time.RFC3339Nano), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range rep.Results {
		got = append(got, res.VehicleID)
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("chose %v, want [a c]", got)
	}
	// c has no user id stored: counted as a vehicle that would not be
	// polled, with its reason.
	if rep.Reconciled != 1 || rep.Failed != 1 || rep.APICalls != 1 || !strings.Contains(rep.Failures[0], "no user id") {
		t.Errorf("report %+v, want 1 to poll with 1 call, 1 without a user id", rep)
	}
}

// TestRunHealsMarksAndCounts runs a stale run for real: the quiet
// vehicle's gap is healed, it is marked, the metrics count it, and the
// next stale run leaves it alone.
func TestRunHealsMarksAndCounts(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-1", "veh-1", "user-1", odometer, "100", at(1))
	f.srv.AddVehicle("veh-1", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})
	fleet := []vehicle.Activity{{VehicleID: "veh-1", UpdatedAt: ago(f, 7*time.Hour), HasUser: true}}
	rn, marks := f.runner(fleet)
	metrics := &reconciletest.Metrics{}
	f.rec.Metrics = metrics.Writer("")
	f.rec.APIErrors = func(kind string) reconcile.MetricsWriter { return metrics.Writer(kind) }

	rep, err := rn.Run(context.Background(), reconcile.Request{Stale: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reconciled != 1 || rep.SignalsHealed != 1 || rep.SignalsPolled != 1 || rep.APICalls != 1 || rep.Failed != 0 {
		t.Errorf("report %+v, want 1 vehicle, 1 signal healed in 1 call", rep)
	}
	if v, _ := f.stored(t, "veh-1", odometer); v != "150" {
		t.Errorf("odometer = %s, want 150", v)
	}
	if got := marks.All()["veh-1"]; !got.Equal(f.polledAt) || marks.Keep("veh-1") != reconcile.DefaultMarkKeep {
		t.Errorf("mark = %v kept %v, want %v kept %v", got, marks.Keep("veh-1"), f.polledAt, reconcile.DefaultMarkKeep)
	}
	if metrics.Sum("", reconcile.MetricVehiclesReconciled) != 1 || metrics.Sum("", reconcile.MetricSignalsHealed) != 1 {
		t.Errorf("metrics VehiclesReconciled %v, SignalsHealed %v; want 1, 1",
			metrics.Sum("", reconcile.MetricVehiclesReconciled), metrics.Sum("", reconcile.MetricSignalsHealed))
	}

	rep, err = rn.Run(context.Background(), reconcile.Request{Stale: true})
	if err != nil || rep.Selected != 0 || f.srv.Counts().SignalCalls != 1 {
		t.Errorf("second run: %+v, %v, %d signal calls; want nothing chosen, still 1 call", rep, err, f.srv.Counts().SignalCalls)
	}
}

func TestRunCountsAPIErrorsByKind(t *testing.T) {
	f := newFixture(t)
	f.addVehicles(t, 3)
	rn, _ := f.runner(nil)
	metrics := &reconciletest.Metrics{}
	f.rec.Metrics = metrics.Writer("")
	f.rec.APIErrors = func(kind string) reconcile.MetricsWriter { return metrics.Writer(kind) }
	f.srv.Inject(1, smartcarapitest.Fault{Status: 404})
	f.srv.Inject(1, smartcarapitest.Fault{Status: 403})

	rn.Options.Concurrency = 1
	rep, err := rn.Run(context.Background(), reconcile.Request{VehicleIDs: []string{"veh-1", "veh-2", "veh-3"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || rep.Reconciled != 1 || len(rep.Failures) != 2 {
		t.Errorf("report %+v, want 2 failed, 1 reconciled", rep)
	}
	for kind, want := range map[string]float64{"vehicle_not_found": 1, "permission": 1, "rate_limited": 0} {
		if got := metrics.Sum(kind, reconcile.MetricAPIErrors); got != want {
			t.Errorf("APIErrors{Kind=%s} = %v, want %v", kind, got, want)
		}
	}
	if got := metrics.Sum("", reconcile.MetricReconcileFailures); got != 2 {
		t.Errorf("ReconcileFailures = %v, want 2", got)
	}
}

func TestRunStopsOnAuthentication(t *testing.T) {
	f := newFixture(t)
	f.addVehicles(t, 2)
	rn, _ := f.runner(nil)
	metrics := &reconciletest.Metrics{}
	f.rec.Metrics = metrics.Writer("")
	f.srv.InjectToken(10, smartcarapitest.Unauthorized())

	rep, err := rn.Run(context.Background(), reconcile.Request{VehicleIDs: []string{"veh-1", "veh-2"}})
	if !errors.Is(err, reconcile.ErrStopped) || !errors.Is(err, smartcarapi.ErrAuthentication) {
		t.Fatalf("err = %v, want ErrStopped: authentication", err)
	}
	if !strings.Contains(rep.Stopped, "fix the client id and secret") || metrics.Sum("", reconcile.MetricReconcileStopped) != 1 {
		t.Errorf("Stopped %q, ReconcileStopped %v; want the hint and 1", rep.Stopped, metrics.Sum("", reconcile.MetricReconcileStopped))
	}
}

// TestRunLeavesTheRestBeforeItsDeadline: a Lambda's run stops starting
// vehicles shortly before its deadline (a tenth of its time, at most
// DeadlineMargin), and what it left is the next run's, not a failure.
func TestRunLeavesTheRestBeforeItsDeadline(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 3)
	rn, _ := f.runner(nil)
	rn.Options = reconcile.Options{Rate: 0.25, Concurrency: 1} // 4 s between vehicles
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	rep, err := rn.Run(ctx, reconcile.Request{VehicleIDs: ids})
	if err != nil {
		t.Fatalf("err = %v, want none: out of time is the next run's", err)
	}
	if rep.Reconciled != 1 || rep.Unfinished != 2 || rep.Failed != 0 {
		t.Errorf("report %+v, want 1 reconciled, 2 unfinished", rep)
	}

	// A dry run that runs out of time counts what it did not reach.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	rep, err = rn.Run(ctx, reconcile.Request{VehicleIDs: ids, DryRun: true})
	if err == nil || rep.Unfinished != 3 {
		t.Errorf("cancelled dry run: %+v, %v; want 3 unfinished and ErrStopped", rep, err)
	}
}

// TestPollKeepsTheVehiclesDetails: a poll brings signals only; the
// vehicle's details and mode stay those of its newest webhook (a TEST
// vehicle is not made LIVE), ordered by that webhook's delivery.
func TestPollKeepsTheVehiclesDetails(t *testing.T) {
	f := newFixture(t)
	body := `{"eventId":"wh-test","eventType":"VEHICLE_STATE","data":{"user":{"id":"user-1"},"vehicle":{"id":"veh-1","make":"M","model":"X","year":2024},` +
		`"signals":[{"code":"` + odometer + `","body":{"value":100},"meta":{"oemUpdatedAt":` + strconv.FormatInt(at(1).UnixMilli(), 10) + `},"status":{"value":"SUCCESS"}}]},` +
		`"meta":{"deliveryId":"d-1","deliveredAt":` + strconv.FormatInt(at(1).UnixMilli(), 10) + `,"mode":"TEST"}}`
	ev, err := smartcar.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.finisher.Finish(context.Background(), ev, processor.Claim{}); err != nil {
		t.Fatal(err)
	}
	f.srv.AddVehicle("veh-1", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})

	if res := f.rec.Vehicle(context.Background(), "veh-1"); res.Err != nil || res.Updated != 1 {
		t.Fatalf("Result = %+v, want 1 signal healed", res)
	}
	st, err := f.store.GetVehicle(context.Background(), "veh-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "TEST" || st.UserID != "user-1" || st.Make != "M" || st.LastDeliveredAt != at(1).UnixMilli() {
		t.Errorf("details %+v, want mode TEST, user-1, make M, lastDeliveredAt %d (the webhook's)", st.Details(), at(1).UnixMilli())
	}
}

// TestRunVehicleRequestLimitFailsThatVehicle: Smartcar's
// BILLING:VEHICLE_REQUEST_LIMIT caps the requests to one vehicle a month:
// that vehicle fails, the others are polled, and, like any vehicle whose
// poll failed, it is not tried again before StaleAfter.
func TestRunVehicleRequestLimitFailsThatVehicle(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 3)
	fleet := make([]vehicle.Activity, len(ids))
	for i, id := range ids {
		fleet[i] = vehicle.Activity{VehicleID: id, UpdatedAt: ago(f, 7*time.Hour) + int64(i), HasUser: true}
	}
	rn, marks := f.runner(fleet)
	rn.Options.Concurrency = 1
	metrics := &reconciletest.Metrics{}
	f.rec.Metrics = metrics.Writer("")
	f.rec.APIErrors = func(kind string) reconcile.MetricsWriter { return metrics.Writer(kind) }
	f.srv.Inject(1, smartcarapitest.Fault{Status: 430}) // the fake's 430 is VEHICLE_REQUEST_LIMIT

	rep, err := rn.Run(context.Background(), reconcile.Request{Stale: true})
	if err != nil || rep.Failed != 1 || rep.Reconciled != 2 || metrics.Sum("", reconcile.MetricReconcileStopped) != 0 {
		t.Fatalf("report %+v, %v; want veh-1 failed alone, 2 reconciled, no stop", rep, err)
	}
	if !strings.Contains(rep.Failures[0], "VEHICLE_REQUEST_LIMIT") || metrics.Sum("billing", reconcile.MetricAPIErrors) != 1 {
		t.Errorf("failures %q, APIErrors{billing} %v; want the limit named and counted", rep.Failures, metrics.Sum("billing", reconcile.MetricAPIErrors))
	}
	if len(marks.All()) != 3 {
		t.Errorf("marks %v, want all 3 vehicles, the failed one too", marks.All())
	}
	if rep, err = rn.Run(context.Background(), reconcile.Request{Stale: true}); err != nil || rep.Selected != 0 {
		t.Errorf("next run: %+v, %v; want none chosen", rep, err)
	}
}
