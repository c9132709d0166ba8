package devstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

// TestReconcileHealsOutageEndToEnd runs the local pipeline through an
// outage: a webhook Smartcar gave up on never arrives, the reconciliation
// (wired as the Lambda and `make reconcile` are) reads the value from the
// API, stores it through the newest-wins merge and the publisher announces
// it; a newer webhook then wins, and a later poll of the older value loses
// and announces nothing.
func TestReconcileHealsOutageEndToEnd(t *testing.T) {
	ctx := context.Background()
	p := startPipeline(t, "reconcile")
	const veh, code = "v-gap", "odometer-traveleddistance"
	t1 := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond).UnixMilli()
	t2, t3 := t1+3600_000, t1+7200_000
	processed := 0
	send := func(eventID string, value int, oem int64) {
		t.Helper()
		p.deliver(t, stateEvent(eventID, veh, value, oem))
		processed++
		eventually(t, 30*time.Second, eventID+" processed", func() (bool, string) {
			n := p.logs.Count("processing.succeeded")
			return n >= processed, fmt.Sprintf("%d of %d processed", n, processed)
		})
	}
	stored := func() (value, eventID string) {
		t.Helper()
		st, err := dynamostore.New(dynamodb.NewFromConfig(p.cfg), p.res.EventsTable, p.res.StateTable).GetVehicle(ctx, veh)
		if err != nil {
			t.Fatal(err)
		}
		sg := st.Signals[code]
		return fmt.Sprint(sg.Body["value"]), sg.EventID
	}
	published := func(want int) []string {
		t.Helper()
		return p.published(t, "domain events", want, nil)
	}

	// Smartcar's API, and the application's credentials in the secret the
	// stack's reconciler reads.
	api := smartcarapitest.NewServer(t)
	api.AddVehicle(veh, smartcarapitest.Vehicle{UserID: "u", Signals: []smartcarapi.Signal{
		{Signal: smartcar.Signal{Code: code, Status: "SUCCESS", Body: map[string]any{"value": 150.0, "unit": "km"}, OEMUpdatedAt: smartcar.Millis(t2)}},
	}})
	secret := p.res.EventsTable + "-smartcar-credentials"
	if _, err := secretsmanager.NewFromConfig(p.cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secret), SecretString: aws.String(api.SecretString())}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STATE_TABLE": p.res.StateTable, "EVENTS_TABLE": p.res.EventsTable, "SMARTCAR_CREDENTIALS_SECRET": secret,
		"SMARTCAR_API_BASE": api.APIBase(), "SMARTCAR_TOKEN_URL": api.TokenURL(), "RECONCILE_RATE": "100"}
	logs := &loggingtest.Buffer{}
	rec, err := functions.NewReconcile(getenv(env), p.cfg, logs, nil)
	if err != nil {
		t.Fatal(err)
	}

	send("s1", 100, t1)
	published(1)
	// The outage: s2 (150 at t2) is never delivered.

	rep, err := rec.Run(ctx, reconcile.Request{VehicleIDs: []string{veh}})
	if err != nil || rep.Reconciled != 1 || rep.SignalsHealed != 1 {
		t.Fatalf("reconcile: %+v, %v; want 1 vehicle, 1 signal healed\n%s", rep, err, logs)
	}
	if v, ev := stored(); v != "150" || !strings.HasPrefix(ev, reconcile.EventIDPrefix+veh+"-") {
		t.Errorf("after the reconciliation: %s from %s, want 150 from the poll", v, ev)
	}
	if got := published(1); len(got) != 1 || !strings.HasPrefix(got[0], "vehicle.signals.changed "+reconcile.EventIDPrefix+veh+"-") {
		t.Errorf("published %v, want the healed signal's vehicle.signals.changed", got)
	}

	send("s3", 200, t3) // newer than the poll's value
	published(1)
	rep, err = rec.Run(ctx, reconcile.Request{VehicleIDs: []string{veh}})
	if err != nil || rep.Reconciled != 1 || rep.SignalsHealed != 0 {
		t.Fatalf("second reconcile: %+v, %v; want 1 vehicle, nothing healed", rep, err)
	}
	if v, ev := stored(); v != "200" || ev != "s3" {
		t.Errorf("after a stale poll: %s from %s, want 200 from s3", v, ev)
	}
	if got := published(0); len(got) != 0 {
		t.Errorf("a stale poll published %v", got)
	}
	if strings.Contains(logs.String(), api.Credentials().ClientSecret) {
		t.Errorf("the client secret is in the reconciler's output")
	}
}
