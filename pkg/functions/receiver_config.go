package functions

import (
	"log/slog"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

// ReceiverConfig is the receiver's environment.
type ReceiverConfig struct {
	QueueURL         string        // QUEUE_URL, required
	SecretID         string        // AMT_SECRET_ID: secret name or ARN, required
	MaxBodyBytes     int           // MAX_BODY_BYTES, default 256 KiB
	SecretCacheTTL   time.Duration // SECRET_CACHE_TTL, default 5m
	LogLevel         slog.Level    // LOG_LEVEL, default INFO
	MetricsNamespace string        // METRICS_NAMESPACE, default SmartcarWebhooks
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
	}
	return cfg, env.Err()
}
