package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

const (
	odometer = "odometer-traveleddistance"
	battery  = "tractionbattery-stateofcharge"
)

type fixture struct {
	srv      *smartcarapitest.Server
	store    *processortest.Store
	finisher *processor.StateFinisher
	rec      *reconcile.Reconciler
	polledAt time.Time // the reconciler's clock
	logs     *loggingtest.Buffer

	mu     sync.Mutex
	sleeps []time.Duration // the client's waits, not slept
}

// base is a time an hour or more before every test's times: all are in
// the past, none is clamped.
var base = time.Now().Add(-4 * time.Hour).Truncate(time.Millisecond)

func at(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{srv: smartcarapitest.NewServer(t), store: processortest.NewStore(), logs: &loggingtest.Buffer{},
		polledAt: time.Now().Truncate(time.Millisecond)}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.finisher = processor.NewStateFinisher(f.store, log, nil)
	client := smartcarapi.New(f.srv.Credentials(),
		smartcarapi.WithTokenURL(f.srv.TokenURL()), smartcarapi.WithAPIBase(f.srv.APIBase()),
		smartcarapi.WithSleep(func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.sleeps = append(f.sleeps, d)
			return ctx.Err()
		}))
	f.rec = &reconcile.Reconciler{API: client, Store: f.store,
		Now: func() time.Time { return f.polledAt }, Log: log}
	return f
}

// webhook stores a VEHICLE_STATE webhook of the vehicle with the signal
// code = value, updated by the car at updated, through the processor's
// merge. userID "" sends no data.user.
func (f *fixture) webhook(t *testing.T, eventID, vehicleID, userID, code, value string, updated time.Time) {
	t.Helper()
	user := ""
	if userID != "" {
		user = fmt.Sprintf(`"user":{"id":%q},`, userID)
	}
	body := fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_STATE","data":{%s"vehicle":{"id":%q,"make":"M","model":"X","year":2024},`+
		`"signals":[{"code":%q,"name":"N","group":"G","body":{"value":%s},"meta":{"oemUpdatedAt":%d,"retrievedAt":%d},"status":{"value":"SUCCESS"}}]},`+
		`"meta":{"deliveryId":"d-%s","deliveredAt":%d,"mode":"LIVE"}}`,
		eventID, user, vehicleID, code, value, updated.UnixMilli(), updated.UnixMilli()+500, eventID, updated.UnixMilli()+1000)
	ev, err := smartcar.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.finisher.Finish(context.Background(), ev, processor.Claim{}); err != nil {
		t.Fatalf("store webhook %s: %v", eventID, err)
	}
}

// signal is a signal as the API reports it.
func signal(code string, value float64, updated time.Time) smartcarapi.Signal {
	return smartcarapi.Signal{ID: "sig-" + code, Signal: smartcar.Signal{Code: code, Name: "N", Group: "G", Status: "SUCCESS",
		Body: map[string]any{"value": value}, OEMUpdatedAt: smartcar.Millis(updated.UnixMilli()),
		RetrievedAt: smartcar.Millis(time.Now().UnixMilli())}}
}

// stored returns the stored value of the signal and the event it came
// from.
func (f *fixture) stored(t *testing.T, vehicleID, code string) (value, eventID string) {
	t.Helper()
	st, err := f.store.GetVehicle(context.Background(), vehicleID)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.Signals[code]
	if !ok {
		return "<none>", ""
	}
	return fmt.Sprint(s.Body["value"]), s.EventID
}

func (f *fixture) signalRequests() []smartcarapitest.Request {
	var out []smartcarapitest.Request
	for _, r := range f.srv.Requests() {
		if !r.Token {
			out = append(out, r)
		}
	}
	return out
}

func TestVehicleHealsGap(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-1", "veh-1", "user-1", odometer, "100.25", at(1))
	f.webhook(t, "wh-2", "veh-1", "user-1", battery, "0.5", at(1))
	f.srv.AddVehicle("veh-1", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{
		signal(odometer, 150.75, at(2)), // newer than the webhook: heals the gap
		signal(battery, 0.5, at(1)),     // the same report: unchanged
	}})

	res := f.rec.Vehicle(context.Background(), "veh-1")
	if res.Err != nil {
		t.Fatalf("Vehicle: %v\n%s", res.Err, f.logs)
	}
	if res.VehicleID != "veh-1" || res.Polled != 2 || res.Updated != 1 || res.Calls != 1 {
		t.Errorf("Result = %+v, want Polled 2, Updated 1, Calls 1", res)
	}
	wantEvent := "reconcile-veh-1-" + fmt.Sprint(f.polledAt.UnixMilli())
	if v, ev := f.stored(t, "veh-1", odometer); v != "150.75" || ev != wantEvent {
		t.Errorf("odometer = %s from %s, want 150.75 from %s", v, ev, wantEvent)
	}
	if v, ev := f.stored(t, "veh-1", battery); v != "0.5" || ev != "wh-2" {
		t.Errorf("battery = %s from %s, want 0.5 from wh-2", v, ev)
	}
	reqs := f.signalRequests()
	if len(reqs) != 1 || reqs[0].UserID != "user-1" || reqs[0].VehicleID != "veh-1" {
		t.Errorf("signal requests = %+v, want one for veh-1 as user-1", reqs)
	}
	logs := f.logs.String()
	for _, secret := range []string{"150.75", smartcarapitest.ClientSecret, "fake-token", "user-1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs show %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "reconcile.vehicle") {
		t.Errorf("no reconcile.vehicle log line:\n%s", logs)
	}

	// Polled again with nothing newer: no error, nothing updated.
	f.polledAt = f.polledAt.Add(time.Second)
	if res := f.rec.Vehicle(context.Background(), "veh-1"); res.Err != nil || res.Updated != 0 || res.Polled != 2 {
		t.Errorf("second poll = %+v, want Updated 0, no error", res)
	}
	if v, ev := f.stored(t, "veh-1", odometer); v != "150.75" || ev != wantEvent {
		t.Errorf("after a second poll odometer = %s from %s, want 150.75 from %s", v, ev, wantEvent)
	}
}

func TestVehicleStalePollLosesToNewerWebhook(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-3", "veh-1", "user-1", odometer, "200", at(3))
	f.srv.AddVehicle("veh-1", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})

	res := f.rec.Vehicle(context.Background(), "veh-1")
	if res.Err != nil || res.Polled != 1 || res.Updated != 0 {
		t.Fatalf("Result = %+v, want Polled 1, Updated 0, no error", res)
	}
	if v, ev := f.stored(t, "veh-1", odometer); v != "200" || ev != "wh-3" {
		t.Errorf("odometer = %s from %s, want 200 from wh-3", v, ev)
	}
}

func TestVehicleWithoutUserID(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-1", "veh-anon", "", odometer, "100", at(1))
	f.srv.AddVehicle("veh-anon", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})

	for _, id := range []string{"veh-anon", "veh-never-seen"} {
		res := f.rec.Vehicle(context.Background(), id)
		if !errors.Is(res.Err, reconcile.ErrNoUserID) || !strings.Contains(res.Err.Error(), "no user id stored: wait for a webhook of it") ||
			!strings.Contains(res.Err.Error(), id) {
			t.Errorf("%s: Err = %v, want ErrNoUserID naming the vehicle", id, res.Err)
		}
		if res.Calls != 0 || res.Polled != 0 {
			t.Errorf("%s: Result = %+v, want no call", id, res)
		}
	}
	if c := f.srv.Counts(); c.TokenCalls != 0 || c.SignalCalls != 0 {
		t.Errorf("API calls = %+v, want none", c)
	}
	if v, _ := f.stored(t, "veh-anon", odometer); v != "100" {
		t.Errorf("odometer = %s, want 100", v)
	}
}

func TestVehicleWaitsOutRateLimit(t *testing.T) {
	f := newFixture(t)
	f.webhook(t, "wh-1", "veh-1", "user-1", odometer, "100", at(1))
	f.srv.AddVehicle("veh-1", smartcarapitest.Vehicle{UserID: "user-1", Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})
	f.srv.Inject(1, smartcarapitest.RateLimited("1"))

	res := f.rec.Vehicle(context.Background(), "veh-1")
	if res.Err != nil || res.Updated != 1 || res.Calls != 2 {
		t.Fatalf("Result = %+v, want healed after 2 calls", res)
	}
	f.mu.Lock()
	sleeps := append([]time.Duration(nil), f.sleeps...)
	f.mu.Unlock()
	if len(sleeps) != 1 || sleeps[0] != time.Second {
		t.Errorf("client waited %v, want the retry-after [1s]", sleeps)
	}
	if v, _ := f.stored(t, "veh-1", odometer); v != "150" {
		t.Errorf("odometer = %s, want 150", v)
	}
}

// addVehicles stores and serves n vehicles veh-1..., each with a gap.
func (f *fixture) addVehicles(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("veh-%d", i)
		f.webhook(t, "wh-"+id, id, "user-"+id, odometer, "100", at(1))
		f.srv.AddVehicle(id, smartcarapitest.Vehicle{UserID: "user-" + id, Signals: []smartcarapi.Signal{signal(odometer, 150, at(2))}})
		ids = append(ids, id)
	}
	return ids
}

func TestVehiclesPacedInOrder(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 3)

	start := time.Now()
	results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{Rate: 100, Concurrency: 1})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	for i, res := range results {
		if res.VehicleID != ids[i] || res.Err != nil || res.Updated != 1 {
			t.Errorf("results[%d] = %+v, want %s healed", i, res, ids[i])
		}
	}
	var order []string
	for _, r := range f.signalRequests() {
		order = append(order, r.VehicleID)
	}
	if strings.Join(order, ",") != strings.Join(ids, ",") {
		t.Errorf("calls in order %v, want %v", order, ids)
	}
	if min := 2 * 10 * time.Millisecond; elapsed < min {
		t.Errorf("3 vehicles at 100/s took %v, want at least %v", elapsed, min)
	}
	if c := f.srv.Counts(); c.TokenCalls != 1 {
		t.Errorf("token calls = %d, want 1 (the token is shared)", c.TokenCalls)
	}
}

// slowAPI answers every vehicle after a delay, counting the calls under
// way.
type slowAPI struct {
	delay             time.Duration
	inFlight, maxSeen atomic.Int32
}

func (a *slowAPI) Signals(ctx context.Context, vehicleID, userID string) ([]smartcarapi.Signal, smartcarapi.Stats, error) {
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for {
		m := a.maxSeen.Load()
		if n <= m || a.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(a.delay):
	case <-ctx.Done():
		return nil, smartcarapi.Stats{Calls: 1}, ctx.Err()
	}
	return []smartcarapi.Signal{signal(odometer, 150, at(2))}, smartcarapi.Stats{Calls: 1, TokenCalls: 1}, nil
}

func TestVehiclesConcurrencyBound(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 6)
	api := &slowAPI{delay: 20 * time.Millisecond}
	f.rec.API = api

	results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{Rate: 1000, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		if res.Err != nil || res.Updated != 1 {
			t.Errorf("%+v, want healed", res)
		}
	}
	if got := api.maxSeen.Load(); got != 2 {
		t.Errorf("at most %d vehicles at once, want 2", got)
	}
}

func TestVehiclesStopOnAuthenticationOrBilling(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*smartcarapitest.Server)
		want  error
		hint  string
	}{
		{"authentication", func(s *smartcarapitest.Server) {
			s.SetCredentials(smartcarapi.Credentials{ClientID: "other", ClientSecret: "other-secret"})
		}, smartcarapi.ErrAuthentication, "credentials"},
		{"billing", func(s *smartcarapitest.Server) {
			s.Inject(1, smartcarapitest.Fault{Status: 430, Body: `{"type":"BILLING","code":"VEHICLE_LIMIT","description":"Too many vehicles.","statusCode":430}`})
		}, smartcarapi.ErrBilling, "plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ids := f.addVehicles(t, 3)
			tt.setup(f.srv)

			results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{Rate: 100, Concurrency: 1})
			if !errors.Is(err, reconcile.ErrStopped) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want ErrStopped and %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), "veh-1") {
				t.Errorf("err %q does not name the vehicle and say what to fix (%q)", err, tt.hint)
			}
			if strings.Contains(err.Error(), smartcarapitest.ClientSecret) || strings.Contains(err.Error(), "other-secret") {
				t.Errorf("err shows a secret: %v", err)
			}
			if len(results) != 3 || !errors.Is(results[0].Err, tt.want) {
				t.Fatalf("results = %+v, want 3, the first failing with %v", results, tt.want)
			}
			for _, res := range results[1:] {
				if !errors.Is(res.Err, reconcile.ErrStopped) || !errors.Is(res.Err, tt.want) || res.Calls != 0 {
					t.Errorf("%+v, want not polled: ErrStopped", res)
				}
			}
			if reqs := f.signalRequests(); len(reqs) > 1 {
				t.Errorf("signal requests after the stop: %+v", reqs)
			}
			for _, id := range ids {
				if v, _ := f.stored(t, id, odometer); v != "100" {
					t.Errorf("%s odometer = %s, want 100 untouched", id, v)
				}
			}
		})
	}
}

// refusingAPI refuses veh-1 as ErrAuthentication after a short delay and
// holds every other vehicle until cancelled.
type refusingAPI struct{}

func (refusingAPI) Signals(ctx context.Context, vehicleID, userID string) ([]smartcarapi.Signal, smartcarapi.Stats, error) {
	if vehicleID == "veh-1" {
		time.Sleep(5 * time.Millisecond)
		return nil, smartcarapi.Stats{TokenCalls: 1}, fmt.Errorf("token: %w", smartcarapi.ErrAuthentication)
	}
	<-ctx.Done()
	return nil, smartcarapi.Stats{Calls: 1, TokenCalls: 1}, ctx.Err()
}

func TestVehiclesStopCancelsPollsUnderWay(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 3)
	f.rec.API = refusingAPI{}

	results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{Rate: 1000, Concurrency: 2})
	if !errors.Is(err, reconcile.ErrStopped) || !errors.Is(err, smartcarapi.ErrAuthentication) {
		t.Fatalf("err = %v, want ErrStopped: ErrAuthentication", err)
	}
	if res := results[1]; !errors.Is(res.Err, reconcile.ErrStopped) || !strings.Contains(res.Err.Error(), "cancelled") {
		t.Errorf("veh-2 under way: %+v, want cancelled: ErrStopped", res)
	}
	if res := results[2]; !errors.Is(res.Err, reconcile.ErrStopped) || !strings.Contains(res.Err.Error(), "not polled") {
		t.Errorf("veh-3 never started: %+v, want not polled: ErrStopped", res)
	}
}

func TestVehiclesRecordOtherFailures(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 3)
	// veh-gone is unknown to the API (404); veh-2 belongs to another user
	// there (403).
	f.webhook(t, "wh-gone", "veh-gone", "user-gone", odometer, "100", at(1))
	f.srv.AddVehicle("veh-2", smartcarapitest.Vehicle{UserID: "someone-else"})
	ids = []string{ids[0], "veh-gone", ids[1], ids[2]}

	results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{Rate: 100, Concurrency: 2})
	if err != nil {
		t.Fatalf("err = %v, want failures recorded per vehicle", err)
	}
	want := map[string]error{"veh-gone": smartcarapi.ErrVehicleNotFound, "veh-2": smartcarapi.ErrPermission}
	if len(results) != len(ids) {
		t.Fatalf("%d results for %d vehicles", len(results), len(ids))
	}
	for i, res := range results {
		if res.VehicleID != ids[i] {
			t.Errorf("results[%d] is %s, want %s", i, res.VehicleID, ids[i])
		}
		if w := want[res.VehicleID]; w != nil {
			if !errors.Is(res.Err, w) || res.Updated != 0 {
				t.Errorf("%+v, want %v", res, w)
			}
			continue
		}
		if res.Err != nil || res.Updated != 1 {
			t.Errorf("%+v, want healed", res)
		}
	}
}

func TestVehiclesDryRun(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 2)
	f.webhook(t, "wh-anon", "veh-anon", "", odometer, "100", at(1))
	ids = append(ids, "veh-anon", "veh-1") // a repeat is reconciled once
	writes := f.store.Writes()

	results, err := f.rec.Vehicles(context.Background(), ids, reconcile.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := f.srv.Counts(); c.TokenCalls != 0 || c.SignalCalls != 0 {
		t.Errorf("API calls = %+v, want none", c)
	}
	if f.store.Writes() != writes {
		t.Errorf("a dry run wrote %d times", f.store.Writes()-writes)
	}
	if len(results) != 3 {
		t.Fatalf("results = %+v, want 3", results)
	}
	for _, res := range results[:2] {
		if res.Err != nil || res.Calls != 1 || res.Polled != 0 || res.Updated != 0 {
			t.Errorf("%+v, want would poll with 1 call", res)
		}
	}
	if res := results[2]; !errors.Is(res.Err, reconcile.ErrNoUserID) || res.Calls != 0 {
		t.Errorf("%+v, want would not poll: ErrNoUserID", res)
	}
	if v, _ := f.stored(t, "veh-1", odometer); v != "100" {
		t.Errorf("odometer = %s, want 100 untouched", v)
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"wouldPoll":2`) {
		t.Errorf("no dry-run summary:\n%s", logs)
	}
}

func TestVehiclesCancelled(t *testing.T) {
	f := newFixture(t)
	ids := f.addVehicles(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	results, err := f.rec.Vehicles(ctx, ids, reconcile.Options{})
	if !errors.Is(err, reconcile.ErrStopped) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrStopped: context canceled", err)
	}
	for _, res := range results {
		if res.Err == nil {
			t.Errorf("%+v, want not polled", res)
		}
	}
	if c := f.srv.Counts(); c.SignalCalls != 0 {
		t.Errorf("signal calls = %d, want none", c.SignalCalls)
	}
}
