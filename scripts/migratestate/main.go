// Command migratestate moves every vehicle of the legacy one-item
// vehicle-state table into the entry layout the processor now writes, on
// the local stack or, with -stack, a deployed one, or with -env the one the
// Lambdas' environment variables name.
//
// It is idempotent (a second run writes nothing), safe beside a running
// processor (each entry is written only over an older one) and resumable
// (-start-after the last vehicle it printed). It never writes the legacy
// table.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
)

func main() {
	fs := flag.NewFlagSet("migratestate", flag.ExitOnError)
	target := devstack.Target{Needs: []string{devstack.EnvStateTable}}
	target.AddFlags(fs)
	legacy := fs.String("legacy-table", "", "the legacy one-item `table` (default: the stack's LegacyStateTableName, or LEGACY_STATE_TABLE)")
	startAfter := fs.String("start-after", "", "resume after this `vehicleId` (the last one an interrupted run printed)")
	dryRun := fs.Bool("dry-run", false, "count what would be written, write nothing")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: migratestate [flags]\n\nMoves every vehicle of the legacy vehicle-state table into the entry layout.\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		fail(err)
	}
	table := cmp.Or(*legacy, res.LegacyStateTable, os.Getenv(devstack.EnvLegacyStateTable))
	if table == "" {
		fail(fmt.Errorf("no legacy table: pass -legacy-table, or set LEGACY_STATE_TABLE"))
	}
	client := dynamodb.NewFromConfig(cfg)
	store := dynamostore.New(client, res.EventsTable, res.StateTable, dynamostore.WithLegacyTable(table))
	fmt.Fprintf(os.Stderr, "migratestate: %s -> %s%s\n", table, res.StateTable, map[bool]string{true: " (dry run)"}[*dryRun])
	m, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{
		StartAfter: *startAfter, DryRun: *dryRun,
		Progress: func(m dynamostore.Migration) {
			fmt.Fprintf(os.Stderr, "  %d vehicles read, %d moved, %d failed; last %s\n", m.Vehicles, m.Moved, m.Failed, m.LastVehicle)
		},
	})
	report(m, *dryRun)
	for _, e := range m.Errors[:min(len(m.Errors), 20)] {
		fmt.Fprintln(os.Stderr, "  failed:", e)
	}
	if err != nil {
		fail(fmt.Errorf("%w (resume with -start-after %q)", err, m.LastVehicle))
	}
	if m.Failed > 0 {
		fail(fmt.Errorf("%d vehicles not moved: run again to retry them", m.Failed))
	}
}

func report(m dynamostore.Migration, dryRun bool) {
	verb := "stored"
	if dryRun {
		verb = "to store"
	}
	fmt.Printf("vehicles read: %d\nmoved: %d\nalready current: %d\nfailed: %d\nentries %s: %d\nentries kept newer: %d\n",
		m.Vehicles, m.Moved, m.Current, m.Failed, verb, m.Stored, m.Skipped)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "migratestate:", err)
	os.Exit(1)
}
