// Command state prints a vehicle's stored state as JSON, from the local
// stack or, with -stack, a deployed one, or with -env the one the Lambdas'
// environment variables name.
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
	target := devstack.Target{Needs: []string{devstack.EnvStateTable}}
	target.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: state [flags] VEHICLE_ID\n\nPrints the vehicle's state, assembled from its entries in the vehicle-state table, as JSON.\n"+
			"Exits 1 when nothing is stored for it.\n\n")
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
	// A vehicle not yet moved out of the legacy one-item table is shown from it.
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable, dynamostore.WithLegacyTable(res.LegacyStateTable))
	st, err := store.GetVehicle(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "state:", err)
		os.Exit(1)
	}
	if !st.Exists() {
		fmt.Fprintf(os.Stderr, "state: vehicle %s is unknown: nothing is stored for it in %s\n", fs.Arg(0), tables(res))
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(out))
}

// tables names the tables a vehicle was looked up in.
func tables(res devstack.Resources) string {
	if res.LegacyStateTable != "" {
		return res.StateTable + " or " + res.LegacyStateTable
	}
	return res.StateTable
}
