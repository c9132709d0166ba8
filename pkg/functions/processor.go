package functions

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
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
	extra = append(registered, extra...)
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.EventsTable, cfg.StateTable, dynamostore.WithLegacyTable(cfg.LegacyStateTable))
	dlq := sqsqueue.NewDeadLetters(sqs.NewFromConfig(awsCfg), cfg.DLQURL)
	finisher := processor.NewStateFinisher(store, log, metrics)
	finisher.TTL = cfg.IdempotencyTTL
	p := processor.New(store, finisher, dlq, extra, processor.Options{
		Lease:           cfg.Lease,
		IdempotencyTTL:  cfg.IdempotencyTTL,
		MaxReceiveCount: cfg.MaxReceiveCount,
		Concurrency:     cfg.Concurrency,
		Logger:          log,
		Metrics:         metrics,
	})
	return sqslambda.Handler(p), nil
}
