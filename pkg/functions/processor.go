package functions

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/firehosearchive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/handlers"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// ProcessorHandler is the processor Lambda's handler function.
type ProcessorHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// NewProcessor builds the processor's handler from its environment, with
// the handlers pkg/handlers registers (your business logic: every path
// that runs a processor builds it here), then extra ones (tests).
func NewProcessor(getenv func(string) string, awsCfg aws.Config, stdout io.Writer, extra ...processor.Handler) (ProcessorHandler, error) {
	cfg, err := LoadProcessorConfig(getenv)
	if err != nil {
		return nil, err
	}
	log := logging.New(stdout, cfg.LogLevel) // its own log group says which function
	metrics := emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "processor"})
	registered, err := handlers.Register(handlers.Deps{AWS: awsCfg, Getenv: getenv, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}
	var archiver processor.Archiver
	if cfg.ArchiveStream != "" {
		// Bounded well inside the function's timeout: a record not
		// archived in time fails alone and is retried; a timed-out
		// invocation would fail its whole batch.
		api := firehose.NewFromConfig(awsCfg, func(o *firehose.Options) {
			o.Retryer = retry.NewStandard(func(r *retry.StandardOptions) { r.MaxAttempts, r.MaxBackoff = 2, 200*time.Millisecond })
		})
		archiver = firehosearchive.New(api, cfg.ArchiveStream)
	}
	dlq := sqsqueue.NewDeadLetters(sqs.NewFromConfig(awsCfg), cfg.DLQURL)
	p := newProcessor(cfg, awsCfg, append(registered, extra...), dlq, archiver, log, metrics)
	return sqslambda.Handler(p), nil
}

// NewRebuilder builds the processor a rebuild runs in the operator's
// process (`make replay REBUILD=table`): the processor's, from its
// environment with STATE_TABLE naming the table rebuilt, but without
// handlers (history replayed into a new table must not repeat side
// effects) or archive (its records come from the archive), and with dlq
// for what it cannot process. It logs to stdout and emits no metrics.
func NewRebuilder(getenv func(string) string, awsCfg aws.Config, stdout io.Writer, dlq processor.DeadLetterQueue) (*processor.Processor, error) {
	cfg, err := LoadProcessorConfig(getenv)
	if err != nil {
		return nil, err
	}
	return newProcessor(cfg, awsCfg, nil, dlq, nil, logging.New(stdout, cfg.LogLevel), emf.Discard{}), nil
}

// newProcessor is the processor over cfg's tables: the one wiring of the
// store, the state merge and the processor's options.
func newProcessor(cfg ProcessorConfig, awsCfg aws.Config, hs []processor.Handler, dlq processor.DeadLetterQueue, archiver processor.Archiver,
	log *slog.Logger, metrics processor.MetricsWriter) *processor.Processor {
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.EventsTable, cfg.StateTable, dynamostore.WithLegacyTable(cfg.LegacyStateTable))
	finisher := processor.NewStateFinisher(store, log, metrics)
	finisher.TTL = cfg.IdempotencyTTL
	return processor.New(store, finisher, dlq, hs, processor.Options{
		Archive:         archiver,
		Lease:           cfg.Lease,
		IdempotencyTTL:  cfg.IdempotencyTTL,
		MaxReceiveCount: cfg.MaxReceiveCount,
		Concurrency:     cfg.Concurrency,
		Logger:          log,
		Metrics:         metrics,
	})
}
