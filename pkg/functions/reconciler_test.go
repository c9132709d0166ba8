package functions

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
)

func TestLoadReconcilerConfig(t *testing.T) {
	_, err := LoadReconcilerConfig(func(k string) string {
		return map[string]string{"RECONCILE_RATE": "0", "RECONCILE_STALE_AFTER": "soon", "SMARTCAR_API_BASE": "vehicle.api.smartcar.com"}[k]
	})
	for _, name := range []string{"STATE_TABLE", "EVENTS_TABLE", "SMARTCAR_CREDENTIALS_SECRET", "RECONCILE_RATE", "RECONCILE_STALE_AFTER"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	required := map[string]string{"STATE_TABLE": "s", "EVENTS_TABLE": "e", "SMARTCAR_CREDENTIALS_SECRET": "c"}
	for _, bad := range []string{"vehicle.api.smartcar.com", "ftp://x", "https://"} {
		env := map[string]string{"SMARTCAR_TOKEN_URL": bad}
		for k, v := range required {
			env[k] = v
		}
		if _, err := LoadReconcilerConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "SMARTCAR_TOKEN_URL") {
			t.Errorf("SMARTCAR_TOKEN_URL=%q: %v, want it refused", bad, err)
		}
	}
	cfg, err := LoadReconcilerConfig(func(k string) string { return required[k] })
	if err != nil || cfg.APIBase != smartcarapi.DefaultAPIBase || cfg.TokenURL != smartcarapi.DefaultTokenURL ||
		cfg.StaleAfter != reconcile.DefaultStaleAfter || cfg.Rate != reconcile.DefaultRate || cfg.MaxVehicles != reconcile.DefaultMaxVehicles {
		t.Errorf("defaults = %+v, %v", cfg, err)
	}
}

// TestReconcileReadsTheSecretEachRun: the credentials are read at the
// start of a run, not before, and a malformed secret fails the run with
// its name and never its value.
func TestReconcileReadsTheSecretEachRun(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	name := awstest.Name(t, "smartcar-credentials")
	env := map[string]string{"STATE_TABLE": "s", "EVENTS_TABLE": "e", "SMARTCAR_CREDENTIALS_SECRET": name}
	rec, err := NewReconcile(func(k string) string { return env[k] }, cfg, &strings.Builder{}, nil)
	if err != nil {
		t.Fatalf("NewReconcile before the secret exists: %v", err)
	}
	if _, err := rec.Run(ctx, reconcile.Request{VehicleIDs: []string{"v"}}); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("run without the secret: %v, want an error naming %s", err, name)
	}
	const leaked = "s3cr3t-value"
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(`{"clientId": "id", "secret": "` + leaked + `"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = rec.Run(ctx, reconcile.Request{VehicleIDs: []string{"v"}})
	if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), leaked) {
		t.Errorf("run with a malformed secret: %v, want an error naming %s without its value", err, name)
	}
}
