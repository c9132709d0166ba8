// Command receiver is the webhook receiver Lambda, behind API Gateway. It
// wires configuration, AWS clients and the receiver core; the logic is in
// pkg/receiver.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

func main() {
	handler, err := newHandler(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "receiver: init failed: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}

// newHandler builds the Lambda handler from the environment. It does no
// network I/O: the secret is fetched on first need.
func newHandler(ctx context.Context, getenv func(string) string, stdout io.Writer) (func(context.Context, apigw.Request) (apigw.Response, error), error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	tokens, err := amtsecret.New(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretCacheTTL)
	if err != nil {
		return nil, err
	}
	queue := sqsqueue.NewPublisher(sqs.NewFromConfig(awsCfg), cfg.QueueURL)
	core := receiver.New(queue, tokens, receiver.Options{
		MaxBodyBytes: cfg.MaxBodyBytes,
		Logger:       logging.New(stdout, cfg.LogLevel).With("function", "receiver"),
		Metrics:      emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "receiver"}),
	})
	return apigw.Handler(core), nil
}
