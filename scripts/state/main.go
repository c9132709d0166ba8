// Command state prints a vehicle's stored state as JSON, from the local
// stack or, with -stack, a deployed one.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
)

func main() {
	fs := flag.NewFlagSet("state", flag.ExitOnError)
	var target devstack.Target
	target.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: state [flags] VEHICLE_ID\n\nPrints the vehicle's item in the vehicle-state table.\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.Arg(0) == "" {
		fs.Usage()
		os.Exit(2)
	}
	ctx := context.Background()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "state:", err)
		os.Exit(1)
	}
	st, err := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable).GetVehicle(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "state:", err)
		os.Exit(1)
	}
	if st.Version == 0 {
		fmt.Fprintf(os.Stderr, "state: no state stored for vehicle %s\n", fs.Arg(0))
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(out))
}
