// Command publisher is the domain-event Lambda, triggered by the DynamoDB
// Stream of the vehicle-state table with ReportBatchItemFailures. It loads
// the AWS config and starts the handler that pkg/functions wires from the
// environment; the logic is in pkg/publisher and pkg/domainevents.
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
		functions.FailInit("publisher", fmt.Errorf("aws config: %w", err))
	}
	handler, err := functions.NewPublisher(os.Getenv, awsCfg, os.Stdout)
	if err != nil {
		functions.FailInit("publisher", err)
	}
	lambda.Start(handler)
}
