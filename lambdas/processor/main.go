// Command processor is the processing Lambda, triggered by the receiver's
// SQS queue with ReportBatchItemFailures. It loads the AWS config and starts
// the handler that pkg/functions wires from the environment; the logic is
// in pkg/processor. Your own handlers go in pkg/handlers, which every
// processor (this one, make dev, make invoke, make bench) runs.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
)

func main() {
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		functions.FailInit("processor", fmt.Errorf("aws config: %w", err))
	}
	handler, err := functions.NewProcessor(os.Getenv, awsCfg, os.Stdout)
	if err != nil {
		functions.FailInit("processor", err)
	}
	lambda.Start(handler)
}
