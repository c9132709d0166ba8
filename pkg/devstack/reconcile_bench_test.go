package devstack_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

// BenchmarkReconcile meters what reconciling one vehicle of 85 signals
// costs in DynamoDB capacity (sized by DynamoDB's rules, see
// awstest.Capacity), wired as the Lambda is: a poll that brings nothing
// newer, one that heals 1 signal and one that heals 10; and what choosing
// vehicles costs: the scan, per vehicle listed, and the check of a stale
// vehicle's last reconciliation.
func BenchmarkReconcile(b *testing.B) {
	var metrics map[string]float64
	for b.Loop() {
		metrics = measureReconcile(b, 85)
	}
	for k, v := range metrics {
		b.ReportMetric(v, k)
	}
}

func measureReconcile(b *testing.B, n int) map[string]float64 {
	ctx := context.Background()
	meter := awstest.NewCapacity()
	cfg := meter.Config(awstest.Config(b))
	ddb := dynamodb.NewFromConfig(cfg)
	prefix := awstest.Name(b, "reconcile")
	eventsTable, stateTable, secret := prefix+"-events", prefix+"-state", prefix+"-smartcar-credentials"
	if err := dynamostore.CreateTables(ctx, ddb, eventsTable, stateTable); err != nil {
		b.Fatal(err)
	}
	api := smartcarapitest.NewServer(b)
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secret), SecretString: aws.String(api.SecretString())}); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"STATE_TABLE": stateTable, "EVENTS_TABLE": eventsTable, "SMARTCAR_CREDENTIALS_SECRET": secret,
		"SMARTCAR_API_BASE": api.APIBase(), "SMARTCAR_TOKEN_URL": api.TokenURL(), "RECONCILE_RATE": "1000"}
	rec, err := functions.NewReconcile(getenv(env), cfg, &loggingtest.Buffer{}, nil)
	if err != nil {
		b.Fatal(err)
	}

	// The vehicle, stored from its webhook; the API then reports its
	// signals as the webhook did, changed ones newer.
	start := time.Now().Add(-30 * time.Minute).UnixMilli()
	v := newFleetVehicle(n, start)
	store := dynamostore.New(ddb, eventsTable, stateTable)
	serve := func() {
		ev, err := smartcar.ParseEvent(v.event(start))
		if err != nil {
			b.Fatal(err)
		}
		var signals []smartcarapi.Signal
		for _, s := range ev.Signals {
			signals = append(signals, smartcarapi.Signal{Signal: s})
		}
		api.AddVehicle(v.id, smartcarapitest.Vehicle{UserID: v.userID, Signals: signals})
	}
	first, err := smartcar.ParseEvent(v.event(start))
	if err != nil {
		b.Fatal(err)
	}
	if err := processor.NewStateFinisher(store, nil, nil).Finish(ctx, first, processor.Claim{}); err != nil {
		b.Fatal(err)
	}

	metrics := map[string]float64{}
	poll := func(name string, wantHealed int) {
		b.Helper()
		serve()
		meter.Take()
		rep, err := rec.Run(ctx, reconcile.Request{VehicleIDs: []string{v.id}})
		if err != nil || rep.Reconciled != 1 || rep.SignalsHealed != wantHealed {
			b.Fatalf("%s: %+v, %v; want %d signals healed", name, rep, err, wantHealed)
		}
		u := meter.Take()
		metrics[name+"-RCU"], metrics[name+"-WCU"], metrics[name+"-requests"] = u.RCU, u.WCU, float64(u.TotalRequests())
	}
	poll("nogap", 0)
	v.change(start+60_000, 0)
	poll("gap1", 1)
	changed := make([]int, 10)
	for i := range changed {
		changed[i] = 10 + i
	}
	v.change(start+120_000, changed...)
	poll("gap10", 10)

	meter.Take()
	if _, err := dynamostore.ListActivity(ctx, ddb, stateTable); err != nil {
		b.Fatal(err)
	}
	metrics["scan-RCU-per-vehicle"] = meter.Take().RCU
	if _, err := store.Reconciled(ctx, []string{v.id}); err != nil {
		b.Fatal(err)
	}
	metrics["mark-check-RCU"] = meter.Take().RCU
	metrics["api-calls-per-vehicle"] = float64(api.Counts().SignalCalls) / 3
	return metrics
}
