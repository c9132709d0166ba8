// Command processor is the processing Lambda, triggered by the receiver's
// SQS queue with ReportBatchItemFailures. It wires configuration, AWS
// clients and the processor core; the logic is in pkg/processor.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

func main() {
	ctx := context.Background()
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "processor: init failed: %v\n", err)
		os.Exit(1)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "processor: init failed: aws config: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(newHandler(cfg, awsCfg, os.Stdout))
}

// newHandler builds the Lambda handler. Business logic beyond the stored
// vehicle state plugs in here: append your processor.Handler after the
// StateHandler (see the README).
func newHandler(cfg settings, awsCfg aws.Config, stdout io.Writer) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	log := logging.New(stdout, cfg.LogLevel).With("function", "processor")
	metrics := emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "processor"})
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.EventsTable, cfg.StateTable)
	dlq := sqsqueue.NewDeadLetters(sqs.NewFromConfig(awsCfg), cfg.DLQURL)
	handlers := []processor.Handler{
		processor.NewStateHandler(store, log, metrics),
	}
	p := processor.New(store, dlq, handlers, processor.Options{
		Lease:           cfg.Lease,
		IdempotencyTTL:  cfg.IdempotencyTTL,
		MaxReceiveCount: cfg.MaxReceiveCount,
		Concurrency:     cfg.Concurrency,
		Logger:          log,
		Metrics:         metrics,
	})
	return sqslambda.Handler(p)
}
