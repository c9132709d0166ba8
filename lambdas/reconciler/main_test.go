package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// The example vehicle of events/bodies and its user.
const (
	vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	userID    = "5e2b8d4f-7a1c-4e9b-b3d6-0c8f2a4e6b13"
	// oemUpdatedAt is vehicle_state.json's signals' meta.oemUpdatedAt.
	oemUpdatedAt = 1767225590000
)

const (
	soc        = "tractionbattery-stateofcharge"
	isCharging = "charge-ischarging"
	odometer   = "odometer-traveleddistance"
)

// stack is the tables, the credentials secret and the fake Smartcar API
// of one test, with the example vehicle stored from vehicle_state.json.
type stack struct {
	ddb        *dynamodb.Client
	events     string
	state      string
	secretName string
	api        *smartcarapitest.Server
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	s := &stack{ddb: dynamodb.NewFromConfig(cfg), events: awstest.Name(t, "events"), state: awstest.Name(t, "state"),
		secretName: awstest.Name(t, "smartcar-credentials"), api: smartcarapitest.NewServer(t)}
	if err := dynamostore.CreateTables(ctx, s.ddb, s.events, s.state); err != nil {
		t.Fatal(err)
	}
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(s.secretName), SecretString: aws.String(s.api.SecretString()),
	}); err != nil {
		t.Fatal(err)
	}
	ev, err := smartcar.ParseEvent(samples.MustRead("bodies/vehicle_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	store := dynamostore.New(s.ddb, s.events, s.state)
	if err := processor.NewStateFinisher(store, nil, nil).Finish(ctx, ev, processor.Claim{}); err != nil {
		t.Fatal(err)
	}
	// What Smartcar's API says now, after webhooks were lost: the state of
	// charge fell since the stored webhook, and the odometer was never
	// received; its charging flag is an older reading than the webhook's.
	s.api.AddVehicle(vehicleID, smartcarapitest.Vehicle{UserID: userID, Signals: []smartcarapi.Signal{
		{Signal: smartcar.Signal{Code: soc, Status: "SUCCESS", Body: map[string]any{"value": 58.0, "unit": "percent"}, OEMUpdatedAt: oemUpdatedAt + 3600_000}},
		{Signal: smartcar.Signal{Code: isCharging, Status: "SUCCESS", Body: map[string]any{"value": false}, OEMUpdatedAt: oemUpdatedAt - 3600_000}},
		{Signal: smartcar.Signal{Code: odometer, Status: "SUCCESS", Body: map[string]any{"value": 12345.6, "unit": "km"}, OEMUpdatedAt: oemUpdatedAt + 3600_000}},
	}})
	return s
}

func (s *stack) env() map[string]string {
	return map[string]string{
		"STATE_TABLE": s.state, "EVENTS_TABLE": s.events, "SMARTCAR_CREDENTIALS_SECRET": s.secretName,
		"SMARTCAR_API_BASE": s.api.APIBase(), "SMARTCAR_TOKEN_URL": s.api.TokenURL(),
	}
}

func (s *stack) stored(t *testing.T) map[string]string {
	t.Helper()
	st, err := dynamostore.New(s.ddb, s.events, s.state).GetVehicle(context.Background(), vehicleID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for code, sg := range st.Signals {
		out[code] = fmt.Sprint(sg.Body["value"])
	}
	out["mode"] = st.Mode
	return out
}

// TestBootstrap runs the real binary under the Lambda Runtime Interface
// Emulator, as `sam local invoke` does, against the AWS emulator and a
// fake of Smartcar's API, with each events/reconciler file in turn:
// vehicle.json heals the gap (the state of charge and the odometer the
// lost webhooks carried) and keeps the newer webhook value (charging);
// the dry run calls nothing; the schedule's stale.json finds the vehicle
// fresh; since.json picks it as written since.
func TestBootstrap(t *testing.T) {
	bin, size := awstest.BuildBootstrap(t, ".")
	t.Logf("reconciler bootstrap: %d bytes (linux, host architecture)", size)
	healed := map[string]string{soc: "58", isCharging: "true", odometer: "12345.6", "location-isathome": "<nil>", "mode": "LIVE"}
	untouched := map[string]string{soc: "63", isCharging: "true", "location-isathome": "<nil>", "mode": "LIVE"}
	tests := map[string]struct {
		report      reconcile.Report
		signalCalls int
		state       map[string]string
		metrics     []string // in the function's output
	}{
		"vehicle.json": {reconcile.Report{Selected: 1, Reconciled: 1, SignalsPolled: 3, SignalsHealed: 2, APICalls: 1}, 1, healed,
			[]string{`"VehiclesReconciled":1`, `"SignalsHealed":2`}},
		"since.json":   {reconcile.Report{Selected: 1, Reconciled: 1, SignalsPolled: 3, SignalsHealed: 2, APICalls: 1}, 1, healed, nil},
		"dry-run.json": {reconcile.Report{DryRun: true, Selected: 1, Reconciled: 1, APICalls: 1}, 0, untouched, nil},
		// Written moments ago: not stale.
		"stale.json": {reconcile.Report{Skipped: 1}, 0, untouched, nil},
	}
	files, err := os.ReadDir("../../events/reconciler")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Name(), func(t *testing.T) {
			tt, ok := tests[f.Name()]
			if !ok {
				t.Fatalf("events/reconciler/%s: no documented outcome in TestBootstrap", f.Name())
			}
			s := newStack(t)
			fn := awstest.StartFunction(t, bin, "reconciler", awstest.FunctionEnv(awstest.Endpoint(t), s.env()))
			id := "invoke-" + strings.TrimSuffix(f.Name(), ".json")
			out := fn.Invoke(t, id, samples.MustRead("reconciler/"+f.Name()))
			if out.Status != 200 || out.FunctionError != "" {
				t.Fatalf("emulator answered %d (%s): %s\n%s", out.Status, out.FunctionError, out.Payload, fn.Output)
			}
			fn.AwaitOutput(t, "REPORT RequestId: "+id)
			var rep reconcile.Report
			if err := json.Unmarshal(out.Payload, &rep); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", rep) != fmt.Sprintf("%+v", tt.report) {
				t.Errorf("report\n  %s\nwant\n  %+v\n%s", out.Payload, tt.report, fn.Output)
			}
			if c := s.api.Counts(); c.SignalCalls != tt.signalCalls {
				t.Errorf("signals requests = %d, want %d", c.SignalCalls, tt.signalCalls)
			}
			if got := s.stored(t); fmt.Sprint(got) != fmt.Sprint(tt.state) {
				t.Errorf("stored %v, want %v", got, tt.state)
			}
			for _, m := range tt.metrics {
				if !strings.Contains(fn.Output.String(), m) {
					t.Errorf("no %s metric in the output:\n%s", m, fn.Output)
				}
			}
			if creds := s.api.Credentials(); strings.Contains(fn.Output.String(), creds.ClientSecret) {
				t.Errorf("the client secret is in the output:\n%s", fn.Output)
			}
		})
	}
}

// TestBootstrapStopsOnAuthentication: credentials Smartcar refuses fail
// the invocation with the reason and what to do, and the ReconcileStopped
// metric the stack alarms on.
func TestBootstrapStopsOnAuthentication(t *testing.T) {
	bin, _ := awstest.BuildBootstrap(t, ".")
	s := newStack(t)
	s.api.InjectToken(10, smartcarapitest.Unauthorized())
	fn := awstest.StartFunction(t, bin, "reconciler", awstest.FunctionEnv(awstest.Endpoint(t), s.env()))
	out := fn.Invoke(t, "invoke-refused", samples.MustRead("reconciler/vehicle.json"))
	if out.FunctionError == "" || !strings.Contains(string(out.Payload), "fix the client id and secret") {
		t.Fatalf("emulator answered %d (%s): %s, want a function error saying to fix the credentials\n%s", out.Status, out.FunctionError, out.Payload, fn.Output)
	}
	fn.AwaitOutput(t, "REPORT RequestId: invoke-refused")
	if !strings.Contains(fn.Output.String(), `"ReconcileStopped":1`) {
		t.Errorf("no ReconcileStopped metric in the output:\n%s", fn.Output)
	}
	if got := s.stored(t)[soc]; got != "63" {
		t.Errorf("state of charge = %s, want 63 untouched", got)
	}
}

// TestBootstrapInitError: without its credentials secret the function
// does not start, and says which variable is missing.
func TestBootstrapInitError(t *testing.T) {
	bin, _ := awstest.BuildBootstrap(t, ".")
	fn := awstest.StartFunction(t, bin, "reconciler", awstest.FunctionEnv("", map[string]string{"STATE_TABLE": "vehicles", "EVENTS_TABLE": "events"}))
	res := fn.Invoke(t, "invoke-init-error", samples.MustRead("reconciler/vehicle.json"))
	if res.Status != 502 || res.FunctionError != "Runtime.InitError" || !strings.Contains(string(res.Payload), "SMARTCAR_CREDENTIALS_SECRET") {
		t.Fatalf("emulator answered %d (%s): %s, want 502 Runtime.InitError naming SMARTCAR_CREDENTIALS_SECRET\n%s", res.Status, res.FunctionError, res.Payload, fn.Output)
	}
}
