package functions

import (
	"context"
	"io"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// ProcessorHandler is the processor Lambda's handler function.
type ProcessorHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// NewProcessor builds the processor's handler from its environment.
//
// Business logic beyond the stored vehicle state plugs in here: pass your
// processor.Handler values as extra. They run after the claim and before
// the state merge, which completes the event.
func NewProcessor(getenv func(string) string, awsCfg aws.Config, stdout io.Writer, extra ...processor.Handler) (ProcessorHandler, error) {
	cfg, err := LoadProcessorConfig(getenv)
	if err != nil {
		return nil, err
	}
	log := logging.New(stdout, cfg.LogLevel) // its own log group says which function
	metrics := emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "processor"})
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.EventsTable, cfg.StateTable, dynamostore.WithLegacyTable(cfg.LegacyStateTable))
	dlq := sqsqueue.NewDeadLetters(sqs.NewFromConfig(awsCfg), cfg.DLQURL)
	p := processor.New(store, processor.NewStateFinisher(store, log, metrics), dlq, extra, processor.Options{
		Lease:           cfg.Lease,
		IdempotencyTTL:  cfg.IdempotencyTTL,
		MaxReceiveCount: cfg.MaxReceiveCount,
		Concurrency:     cfg.Concurrency,
		Logger:          log,
		Metrics:         metrics,
	})
	return sqslambda.Handler(p), nil
}
