package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack/devstacktest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// The vehicle and user of the sample webhooks (events/bodies).
const (
	vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	userID    = "5e2b8d4f-7a1c-4e9b-b3d6-0c8f2a4e6b13"
	battery   = "tractionbattery-stateofcharge"
)

// TestReconcileTool runs the tool on a local stack holding three
// vehicles, against a fake Smartcar API, as an operator would: the sample
// vehicle and one without a user id, both last written 3 hours ago, and a
// vehicle written 30 minutes ago.
func TestReconcileTool(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, state := devstacktest.Local(t, "reconciletool", "token")
	// The tool reaches the emulator through a counter of table scans.
	var scans atomic.Int32
	emulator, err := url.Parse(res.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(emulator)
	counter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "DynamoDB_20120810.Scan" {
			scans.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(counter.Close)
	res.Endpoint = counter.URL
	if err := devstack.WriteState(state, res); err != nil {
		t.Fatal(err)
	}

	// The vehicles, stored through the processor's merge at chosen
	// processing times.
	now := time.Now()
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable)
	process := func(body []byte, at time.Time) {
		t.Helper()
		ev, err := smartcar.ParseEvent(body)
		if err != nil {
			t.Fatal(err)
		}
		f := processor.NewStateFinisher(store, nil, nil)
		f.Now = func() time.Time { return at }
		if err := f.Finish(ctx, ev, processor.Claim{}); err != nil {
			t.Fatalf("store %s: %v", ev.EventID, err)
		}
	}
	process(samples.MustRead("bodies/vehicle_state.json"), now.Add(-3*time.Hour))
	process(webhook("wh-nouser", "veh-nouser", "", now.Add(-4*time.Hour)), now.Add(-3*time.Hour))
	process(webhook("wh-recent", "veh-recent", "user-recent", now.Add(-time.Hour)), now.Add(-30*time.Minute))

	// The API knows a newer battery level of each vehicle with a user.
	srv := smartcarapitest.NewServer(t)
	for id, user := range map[string]string{vehicleID: userID, "veh-recent": "user-recent"} {
		srv.AddVehicle(id, smartcarapitest.Vehicle{UserID: user, Signals: []smartcarapi.Signal{{
			ID: "sig-soc", Signal: smartcar.Signal{Code: battery, Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS",
				Body:         map[string]any{"value": 80, "unit": "percent"},
				OEMUpdatedAt: smartcar.Millis(now.Add(-10 * time.Minute).UnixMilli()), RetrievedAt: smartcar.Millis(now.Add(-9 * time.Minute).UnixMilli())},
		}}})
	}
	good := srv.Credentials()
	storedBattery := func(t *testing.T, id string) string {
		t.Helper()
		st, err := store.GetVehicle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(st.Signals[battery].Body["value"])
	}

	tests := []struct {
		name, stdin  string
		args         []string
		clientSecret string // SMARTCAR_CLIENT_SECRET, with the fake's client id; "" sets neither
		wantErr      string // "" for success
		wantOut      []string
		wantPolled   []string // the vehicles whose signals were requested
		wantTokens   int      // token requests
		wantScans    int      // of the vehicle-state table: to choose, once
	}{
		{name: "dry run: no credentials needed, nothing called", args: []string{"-vehicle", vehicleID + ",veh-nouser", "-dry-run"},
			wantOut: []string{"selected 2 vehicles (listed)", "would poll 1 vehicle: " + vehicleID, "1 vehicle cannot be polled",
				"veh-nouser  would not poll: no user id stored", "at least 1 signals request (one per vehicle; more pages if a vehicle reports over 50 signals) and 1 token request"}},
		{name: "dry run: a vehicle not stored", args: []string{"-vehicle", "veh-unknown", "-dry-run"},
			wantOut: []string{"veh-unknown  would not poll: vehicle not stored", "nothing to poll"}},
		{name: "since: only the vehicles written since", args: []string{"-since", "1h", "-yes"}, clientSecret: good.ClientSecret,
			wantOut:    []string{"selected 1 vehicle whose state was written since", "reconciling 1 vehicle at 100/s", "1 signal healed"},
			wantPolled: []string{"veh-recent"}, wantTokens: 1, wantScans: 1},
		{name: "stale: the vehicles with a user quiet for -stale-after", args: []string{"-stale", "-stale-after", "2h", "-dry-run"},
			wantOut: []string{"selected 1 stale vehicle", "would poll 1 vehicle: " + vehicleID}, wantScans: 1},
		{name: "declined: nothing called", stdin: "n\n", args: []string{"-vehicle", vehicleID}, clientSecret: good.ClientSecret,
			wantErr: "not confirmed", wantOut: []string{"would poll 1 vehicle"}},
		{name: "no credentials on the local stack", args: []string{"-vehicle", vehicleID, "-yes"},
			wantErr: "set SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET"},
		{name: "credentials refused: the run stops", args: []string{"-vehicle", vehicleID, "-yes"}, clientSecret: "wrong-secret-7d1e",
			wantErr: "Smartcar refused the application's credentials", wantOut: []string{"1 vehicle failed", "authentication failed"}, wantTokens: 1},
		{name: "heals the gap", stdin: "y\n", args: []string{"-vehicle", vehicleID + ",veh-nouser"}, clientSecret: good.ClientSecret,
			wantOut: []string{"reconciling 2 vehicles at 100/s", "1 vehicle failed:", "veh-nouser  no user id stored",
				"reconciled 1 vehicle, 1 signal healed (1 polled), 1 failed, 1 API call to the signals endpoint, 0 unfinished"},
			wantPolled: []string{vehicleID}, wantTokens: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvClientID, "")
			t.Setenv(EnvClientSecret, "")
			if tt.clientSecret != "" {
				t.Setenv(EnvClientID, good.ClientID)
				t.Setenv(EnvClientSecret, tt.clientSecret)
			}
			requests := len(srv.Requests())
			scans.Store(0)
			var stdout, stderr bytes.Buffer
			args := append([]string{"-state", state, "-api-base", srv.APIBase(), "-token-url", srv.TokenURL(), "-rate", "100"}, tt.args...)
			err := run(ctx, args, strings.NewReader(tt.stdin), &stdout, &stderr, time.Now())
			t.Logf("stdout:\n%sstderr:\n%s", stdout.String(), stderr.String())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout does not say %q", want)
				}
			}
			var polled []string
			tokens := 0
			for _, r := range srv.Requests()[requests:] {
				if r.Token {
					tokens++
				} else {
					polled = append(polled, r.VehicleID)
				}
			}
			if !slices.Equal(polled, tt.wantPolled) || tokens != tt.wantTokens {
				t.Errorf("polled %q with %d token requests, want %q with %d", polled, tokens, tt.wantPolled, tt.wantTokens)
			}
			if n := int(scans.Load()); n != tt.wantScans {
				t.Errorf("%d table scans, want %d", n, tt.wantScans)
			}
			out := stdout.String() + stderr.String()
			if err != nil {
				out += err.Error()
			}
			for _, secret := range []string{good.ClientSecret, "wrong-secret-7d1e"} {
				if strings.Contains(out, secret) {
					t.Errorf("the client secret %q was printed", secret)
				}
			}
			if strings.Contains(stderr.String(), `"_aws"`) {
				t.Error("the reconciler's metrics were printed")
			}
		})
	}

	// The gaps healed: each polled vehicle holds the API's newer value; the
	// credentials the tool stored are the environment's.
	for _, id := range []string{vehicleID, "veh-recent"} {
		if got := storedBattery(t, id); got != "80" {
			t.Errorf("vehicle %s: battery %s, want the API's 80", id, got)
		}
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(devstack.SmartcarCredentialsSecret)})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := smartcarapi.ParseCredentials(aws.ToString(out.SecretString)); err != nil || c != good {
		t.Errorf("stored credentials %v, %v; want %v", c, err, good)
	}
}

// webhook is a VEHICLE_STATE webhook of the vehicle with its battery at
// 50, updated by the car at updated; userID "" sends no data.user.
func webhook(eventID, vehicleID, userID string, updated time.Time) []byte {
	user := ""
	if userID != "" {
		user = fmt.Sprintf(`"user":{"id":%q},`, userID)
	}
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"VEHICLE_STATE","data":{%s"vehicle":{"id":%q,"make":"M","model":"X","year":2024},`+
		`"signals":[{"code":%q,"name":"StateOfCharge","group":"TractionBattery","body":{"value":50},"meta":{"oemUpdatedAt":%d,"retrievedAt":%d},"status":{"value":"SUCCESS"}}]},`+
		`"meta":{"deliveryId":"d-%s","deliveredAt":%d,"mode":"LIVE"}}`,
		eventID, user, vehicleID, battery, updated.UnixMilli(), updated.UnixMilli()+500, eventID, updated.UnixMilli()+1000)
}

// TestReconcileFlags: the command lines refused before any stack is
// reached.
func TestReconcileFlags(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "choose the vehicles one way"},
		{[]string{"-vehicle", "a", "-stale"}, "choose the vehicles one way"},
		{[]string{"-since", "1h", "-stale"}, "choose the vehicles one way"},
		{[]string{"-vehicle", " , "}, "names no vehicle"},
		{[]string{"-since", "yesterday"}, "want RFC 3339"},
		{[]string{"-stale", "-rate", "0"}, "-rate 0"},
		{[]string{"-stale", "-concurrency", "0"}, "-concurrency 0"},
		{[]string{"-stale", "-max-vehicles", "-1"}, "-max-vehicles -1"},
		{[]string{"-stale", "-stale-after", "0s"}, "-stale-after 0s"},
		{[]string{"-stale", "-api-base", "vehicle.api.smartcar.com"}, "-api-base"},
		{[]string{"-stale", "-token-url", "ftp://iam.smartcar.com"}, "-token-url"},
		{[]string{"-stale", "extra"}, "unexpected arguments"},
		{[]string{"-stale", "-dry-run"}, "no local stack is running"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"-state", state}, tt.args...), strings.NewReader(""), &stdout, &stderr, time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestReconcileSampleEvents: each sample event of the reconciler
// (events/reconciler) is a valid request, as the Lambda decodes it.
func TestReconcileSampleEvents(t *testing.T) {
	want := map[string]reconcile.Request{
		"reconciler/vehicle.json": {VehicleIDs: []string{vehicleID}},
		"reconciler/stale.json":   {Stale: true},
		"reconciler/since.json":   {Since: "2026-11-29T08:00:00Z"},
		"reconciler/dry-run.json": {VehicleIDs: []string{vehicleID}, DryRun: true},
	}
	paths, err := samples.Glob("reconciler/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(want) {
		t.Errorf("samples %q, want %d", paths, len(want))
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader(samples.MustRead(path)))
			dec.DisallowUnknownFields()
			var req reconcile.Request
			if err := dec.Decode(&req); err != nil {
				t.Fatal(err)
			}
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
			w, ok := want[path]
			if !ok {
				t.Fatalf("no expectation for %s", path)
			}
			if !slices.Equal(req.VehicleIDs, w.VehicleIDs) || req.Since != w.Since || req.Stale != w.Stale || req.DryRun != w.DryRun {
				t.Errorf("request %+v, want %+v", req, w)
			}
		})
	}
}
