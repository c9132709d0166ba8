// Command receiver is the webhook receiver Lambda, behind API Gateway. It
// loads the AWS config and starts the handler that pkg/functions wires from
// the environment; the logic is in pkg/receiver.
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
		functions.FailInit("receiver", fmt.Errorf("aws config: %w", err))
	}
	handler, err := functions.NewReceiver(os.Getenv, awsCfg, os.Stdout)
	if err != nil {
		functions.FailInit("receiver", err)
	}
	lambda.Start(handler)
}
