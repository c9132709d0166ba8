package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// ReconcilerHandler is the reconciler Lambda's handler function.
type ReconcilerHandler = func(context.Context, reconcile.Request) (reconcile.Report, error)

// ReconcilerConfig is the reconciler's environment.
type ReconcilerConfig struct {
	StateTable  string // STATE_TABLE, required
	EventsTable string // EVENTS_TABLE, required: where each vehicle's last reconciliation is remembered
	// CredentialsSecret names the Secrets Manager secret holding the
	// Smartcar application's {"clientId", "clientSecret"}
	// (SMARTCAR_CREDENTIALS_SECRET, required).
	CredentialsSecret string
	APIBase           string        // SMARTCAR_API_BASE, default smartcarapi.DefaultAPIBase
	TokenURL          string        // SMARTCAR_TOKEN_URL, default smartcarapi.DefaultTokenURL
	StaleAfter        time.Duration // RECONCILE_STALE_AFTER, default reconcile.DefaultStaleAfter
	MaxVehicles       int           // RECONCILE_MAX_VEHICLES per run, default reconcile.DefaultMaxVehicles
	Rate              float64       // RECONCILE_RATE, vehicles started per second, default reconcile.DefaultRate
	Concurrency       int           // RECONCILE_CONCURRENCY, default reconcile.DefaultConcurrency
	LogLevel          slog.Level    // LOG_LEVEL, default INFO
	MetricsNamespace  string        // METRICS_NAMESPACE, default SmartcarWebhooks
}

// LoadReconcilerConfig reads and validates the environment; the error
// names every missing or invalid variable.
func LoadReconcilerConfig(getenv func(string) string) (ReconcilerConfig, error) {
	env := envconfig.New(getenv)
	cfg := ReconcilerConfig{
		StateTable:        env.Required("STATE_TABLE"),
		EventsTable:       env.Required("EVENTS_TABLE"),
		CredentialsSecret: env.Required("SMARTCAR_CREDENTIALS_SECRET"),
		APIBase:           env.String("SMARTCAR_API_BASE", smartcarapi.DefaultAPIBase),
		TokenURL:          env.String("SMARTCAR_TOKEN_URL", smartcarapi.DefaultTokenURL),
		StaleAfter:        env.Duration("RECONCILE_STALE_AFTER", reconcile.DefaultStaleAfter),
		MaxVehicles:       env.PositiveInt("RECONCILE_MAX_VEHICLES", reconcile.DefaultMaxVehicles),
		Rate:              env.PositiveFloat("RECONCILE_RATE", reconcile.DefaultRate),
		Concurrency:       env.PositiveInt("RECONCILE_CONCURRENCY", reconcile.DefaultConcurrency),
		LogLevel:          env.Level("LOG_LEVEL", slog.LevelInfo),
		MetricsNamespace:  env.String("METRICS_NAMESPACE", emf.DefaultNamespace),
	}
	if err := env.Err(); err != nil {
		return cfg, err
	}
	return cfg, errors.Join(CheckEndpoint("SMARTCAR_API_BASE", cfg.APIBase), CheckEndpoint("SMARTCAR_TOKEN_URL", cfg.TokenURL))
}

// CheckEndpoint says what is wrong with the URL of a Smartcar endpoint,
// the setting name names, if anything: it must be an absolute http(s)
// URL.
func CheckEndpoint(name, value string) error {
	if p, err := url.Parse(value); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("%s: %q is not an absolute http(s) URL", name, value)
	}
	return nil
}

// Reconcile is a reconciliation Runner whose Smartcar credentials are read
// from their secret at the start of each run: a rotated secret is used
// from the next run on, and nothing is read before the first.
type Reconcile struct {
	Runner *reconcile.Runner
	api    *secretSignals
}

// Run reads the credentials, then runs req.
func (r *Reconcile) Run(ctx context.Context, req reconcile.Request) (reconcile.Report, error) {
	if err := req.Validate(); err != nil {
		return reconcile.Report{DryRun: req.DryRun}, err
	}
	if !req.DryRun {
		if err := r.api.load(ctx); err != nil {
			return reconcile.Report{}, err
		}
	}
	return r.Runner.Run(ctx, req)
}

// NewReconciler builds the reconciler Lambda's handler from its
// environment.
func NewReconciler(getenv func(string) string, awsCfg aws.Config, stdout io.Writer) (ReconcilerHandler, error) {
	r, err := NewReconcile(getenv, awsCfg, stdout, nil)
	if err != nil {
		return nil, err
	}
	return r.Run, nil
}

// NewReconcile builds the reconciliation the Lambda runs, and `make
// reconcile` in the operator's process (with opts, say an HTTP client):
// the one wiring of the Smartcar client, the store and the merge. It logs
// and emits its metrics to stdout.
func NewReconcile(getenv func(string) string, awsCfg aws.Config, stdout io.Writer, opts []smartcarapi.Option) (*Reconcile, error) {
	cfg, err := LoadReconcilerConfig(getenv)
	if err != nil {
		return nil, err
	}
	log := logging.New(stdout, cfg.LogLevel)
	dims := func(kind string) map[string]string {
		d := map[string]string{"Service": "reconciler"}
		if kind != "" {
			d["Kind"] = kind
		}
		return d
	}
	apiErrors := map[string]reconcile.MetricsWriter{}
	for _, kind := range smartcarapi.ErrorKinds() {
		apiErrors[kind] = emf.NewWriter(stdout, cfg.MetricsNamespace, dims(kind))
	}
	ddb := dynamodb.NewFromConfig(awsCfg)
	store := dynamostore.New(ddb, cfg.EventsTable, cfg.StateTable)
	api := &secretSignals{
		secrets: secretsmanager.NewFromConfig(awsCfg), secretID: cfg.CredentialsSecret,
		opts: append([]smartcarapi.Option{smartcarapi.WithAPIBase(cfg.APIBase), smartcarapi.WithTokenURL(cfg.TokenURL)}, opts...),
	}
	rec := &reconcile.Reconciler{
		API:       api,
		Store:     store,
		Users:     store,
		Log:       log,
		Marks:     store,
		MarkKeep:  max(reconcile.DefaultMarkKeep, 2*cfg.StaleAfter),
		Metrics:   emf.NewWriter(stdout, cfg.MetricsNamespace, dims("")),
		APIErrors: func(kind string) reconcile.MetricsWriter { return apiErrors[kind] },
	}
	return &Reconcile{
		Runner: &reconcile.Runner{
			Reconciler: rec,
			Fleet: reconcile.FleetFunc(func(ctx context.Context) ([]vehicle.Activity, error) {
				return dynamostore.ListActivity(ctx, ddb, cfg.StateTable)
			}),
			StaleAfter:  cfg.StaleAfter,
			MaxVehicles: cfg.MaxVehicles,
			Options:     reconcile.Options{Rate: cfg.Rate, Concurrency: cfg.Concurrency},
		},
		api: api,
	}, nil
}

// secretValueAPI reads a secret: *secretsmanager.Client.
type secretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// secretSignals is a Smartcar client with the credentials of a secret,
// rebuilt (and its token dropped) when the secret's value changes.
type secretSignals struct {
	secrets  secretValueAPI
	secretID string
	opts     []smartcarapi.Option

	mu     sync.Mutex
	raw    string
	client *smartcarapi.Client
}

// load reads the secret, once per run: one GetSecretValue.
func (s *secretSignals) load(ctx context.Context) error {
	out, err := s.secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.secretID)})
	if err != nil {
		return fmt.Errorf("read the Smartcar credentials secret %s: %w", s.secretID, err)
	}
	raw := aws.ToString(out.SecretString)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil && raw == s.raw {
		return nil
	}
	creds, err := smartcarapi.ParseCredentials(raw)
	if err != nil {
		return fmt.Errorf("the Smartcar credentials secret %s: %w", s.secretID, err)
	}
	s.raw, s.client = raw, smartcarapi.New(creds, s.opts...)
	return nil
}

// Signals implements reconcile.SignalsAPI.
func (s *secretSignals) Signals(ctx context.Context, vehicleID, userID string) ([]smartcarapi.Signal, smartcarapi.Stats, error) {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return nil, smartcarapi.Stats{}, errors.New("no Smartcar credentials read")
	}
	return c.Signals(ctx, vehicleID, userID)
}
