// Command reconciler is the reconciliation Lambda: it polls Smartcar's API
// for the vehicles its event chooses ({"vehicleIds": [...]}, {"since":
// time} or, from its schedule, {"stale": true}) and merges what it reads
// into the stored state, newest wins. The stack deploys it only with a
// Smartcar credentials secret. It loads the AWS config and starts the
// handler pkg/functions wires from the environment; the logic is in
// pkg/reconcile.
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
		functions.FailInit("reconciler", fmt.Errorf("aws config: %w", err))
	}
	handler, err := functions.NewReconciler(os.Getenv, awsCfg, os.Stdout)
	if err != nil {
		functions.FailInit("reconciler", err)
	}
	lambda.Start(handler)
}
