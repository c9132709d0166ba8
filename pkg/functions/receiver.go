package functions

import (
	"context"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// ReceiverHandler is the receiver Lambda's handler function.
type ReceiverHandler = func(context.Context, apigw.Request) (apigw.Response, error)

// NewReceiver builds the receiver's handler from its environment. It does
// no network I/O: the secret is fetched on first need.
func NewReceiver(getenv func(string) string, awsCfg aws.Config, stdout io.Writer) (ReceiverHandler, error) {
	return newReceiver(getenv, awsCfg, stdout, time.Now)
}

// newReceiver is NewReceiver with the receiver's clock, which tests set to
// the time of the recorded events/ files.
func newReceiver(getenv func(string) string, awsCfg aws.Config, stdout io.Writer, now func() time.Time) (ReceiverHandler, error) {
	cfg, err := LoadReceiverConfig(getenv)
	if err != nil {
		return nil, err
	}
	tokens, err := amtsecret.New(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretCacheTTL)
	if err != nil {
		return nil, err
	}
	queue := sqsqueue.NewPublisher(sqs.NewFromConfig(awsCfg), cfg.QueueURL)
	core := receiver.New(queue, tokens, receiver.Options{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxDeliveryAge: cfg.MaxDeliveryAge,
		Logger:         logging.New(stdout, cfg.LogLevel), // its own log group says which function
		Metrics:        emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "receiver"}),
		Now:            now,
	})
	return apigw.Handler(core), nil
}
