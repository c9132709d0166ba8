package functions

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// ReceiverConfig is the receiver's environment.
type ReceiverConfig struct {
	QueueURL         string        // QUEUE_URL, required
	SecretID         string        // AMT_SECRET_ID: secret name or ARN, required
	MaxBodyBytes     int           // MAX_BODY_BYTES, default 256 KiB
	SecretCacheTTL   time.Duration // SECRET_CACHE_TTL, default 5m
	LogLevel         slog.Level    // LOG_LEVEL, default INFO
	MetricsNamespace string        // METRICS_NAMESPACE, default SmartcarWebhooks
	// MaxDeliveryAge is MAX_DELIVERY_AGE, default 1h: a signed event whose
	// meta.deliveredAt is older is refused as a replay. "0" turns the
	// check off (receiver.NoMaxDeliveryAge).
	MaxDeliveryAge time.Duration
}

// LoadReceiverConfig reads and validates the environment; the error names every
// missing or invalid variable.
func LoadReceiverConfig(getenv func(string) string) (ReceiverConfig, error) {
	env := envconfig.New(getenv)
	cfg := ReceiverConfig{
		QueueURL:         env.Required("QUEUE_URL"),
		SecretID:         env.Required("AMT_SECRET_ID"),
		MaxBodyBytes:     env.PositiveInt("MAX_BODY_BYTES", receiver.DefaultMaxBodyBytes),
		SecretCacheTTL:   env.Duration("SECRET_CACHE_TTL", amtsecret.DefaultTTL),
		LogLevel:         env.Level("LOG_LEVEL", slog.LevelInfo),
		MetricsNamespace: env.String("METRICS_NAMESPACE", emf.DefaultNamespace),
		MaxDeliveryAge:   maxDeliveryAge(env),
	}
	if err := env.Err(); err != nil {
		return cfg, err
	}
	if cfg.MaxBodyBytes > sqsqueue.MaxBodyBytes {
		return cfg, fmt.Errorf("MAX_BODY_BYTES: %d is more than a queue message can carry base64-encoded (at most %d)",
			cfg.MaxBodyBytes, sqsqueue.MaxBodyBytes)
	}
	return cfg, nil
}

// maxDeliveryAge reads MAX_DELIVERY_AGE: a positive duration as
// envconfig.Duration takes it, or zero ("0", "0s") to turn the replay
// check off.
func maxDeliveryAge(env *envconfig.Reader) time.Duration {
	const name = "MAX_DELIVERY_AGE"
	if d, err := time.ParseDuration(env.String(name, "")); err == nil && d == 0 {
		return receiver.NoMaxDeliveryAge
	}
	return env.Duration(name, receiver.DefaultMaxDeliveryAge)
}
