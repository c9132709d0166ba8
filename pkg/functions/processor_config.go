package functions

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

// ProcessorConfig is the processor's environment.
type ProcessorConfig struct {
	EventsTable      string // EVENTS_TABLE, required
	StateTable       string // STATE_TABLE, required: the vehicle-state table (entry layout)
	LegacyStateTable string // LEGACY_STATE_TABLE, optional: the one-item table vehicles are moved from
	DLQURL           string // DLQ_URL, required
	// ArchiveStream is the Firehose delivery stream every webhook is
	// archived to before it is processed (ARCHIVE_STREAM). The stack sets
	// it; empty archives nothing.
	ArchiveStream    string
	IdempotencyTTL   time.Duration // IDEMPOTENCY_TTL, default 15 days; at least DLQRetention plus a day
	DLQRetention     time.Duration // DLQ_RETENTION of the dead-letter queue, default 14 days
	Lease            time.Duration // LEASE_DURATION, default 15s; below QueueVisibility
	QueueVisibility  time.Duration // QUEUE_VISIBILITY_TIMEOUT of the source queue, default 30s
	MaxReceiveCount  int           // MAX_RECEIVE_COUNT, the queue's redrive limit, default 4
	Concurrency      int           // BATCH_CONCURRENCY, default 4
	LogLevel         slog.Level    // LOG_LEVEL, default INFO
	MetricsNamespace string        // METRICS_NAMESPACE, default SmartcarWebhooks
}

// LoadProcessorConfig reads and validates the environment; the error names every
// missing or invalid variable.
func LoadProcessorConfig(getenv func(string) string) (ProcessorConfig, error) {
	env := envconfig.New(getenv)
	cfg := ProcessorConfig{
		EventsTable:      env.Required("EVENTS_TABLE"),
		StateTable:       env.Required("STATE_TABLE"),
		LegacyStateTable: env.String("LEGACY_STATE_TABLE", ""),
		DLQURL:           env.Required("DLQ_URL"),
		ArchiveStream:    env.String("ARCHIVE_STREAM", ""),
		IdempotencyTTL:   env.Duration("IDEMPOTENCY_TTL", processor.DefaultIdempotencyTTL),
		DLQRetention:     env.Duration("DLQ_RETENTION", pipeline.DLQRetention),
		Lease:            env.Duration("LEASE_DURATION", processor.DefaultLease),
		QueueVisibility:  env.Duration("QUEUE_VISIBILITY_TIMEOUT", pipeline.QueueVisibilityTimeout),
		MaxReceiveCount:  env.PositiveInt("MAX_RECEIVE_COUNT", processor.DefaultMaxReceiveCount),
		Concurrency:      env.PositiveInt("BATCH_CONCURRENCY", processor.DefaultConcurrency),
		LogLevel:         env.Level("LOG_LEVEL", slog.LevelInfo),
		MetricsNamespace: env.String("METRICS_NAMESPACE", emf.DefaultNamespace),
	}
	if err := env.Err(); err != nil {
		return cfg, err
	}
	var errs []error
	// A duplicate that finds its event held under another message's live
	// lease is retried after the visibility timeout; if the holder died, the
	// lease must have ended by then, or the duplicate walks toward the DLQ.
	if cfg.Lease >= cfg.QueueVisibility {
		errs = append(errs, fmt.Errorf("LEASE_DURATION: %v must stay below the queue's visibility timeout (QUEUE_VISIBILITY_TIMEOUT, %v)",
			cfg.Lease, cfg.QueueVisibility))
	}
	// A message redriven from the DLQ after its eventId was forgotten runs
	// the handlers of an event already processed.
	if least := cfg.DLQRetention + pipeline.IdempotencyMargin; cfg.IdempotencyTTL < least {
		errs = append(errs, fmt.Errorf("IDEMPOTENCY_TTL: %v is shorter than the dead-letter queue's retention (DLQ_RETENTION, %v) plus %v, "+
			"so a message redriven from it would be processed again; set at least %v", cfg.IdempotencyTTL, cfg.DLQRetention, pipeline.IdempotencyMargin, least))
	}
	return cfg, errors.Join(errs...)
}
