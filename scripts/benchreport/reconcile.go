package main

import (
	"fmt"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/cost"
)

// Reconciliation's fleet model: a fleet of reconcileFleet vehicles of 85
// signals, its stale runs scheduled every hour or every 6 hours.
const (
	reconcileFleet = 10_000
	hoursPerMonth  = 730
)

// printReconcile reports BenchmarkReconcile: the DynamoDB capacity of one
// vehicle's reconciliation and of choosing the vehicles, and what a
// fleet's scheduled runs cost.
func printReconcile(results []result) {
	m := median(results, "BenchmarkReconcile")
	if len(m) == 0 {
		return
	}
	p := cost.ListPrices()
	fmt.Println("### Reconciliation (85-signal vehicle, DynamoDB capacity sized as AWS bills it)")
	fmt.Println()
	fmt.Println("| Poll | RRU | WRU | DynamoDB requests | DynamoDB cost per 1,000 vehicles |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range []struct{ key, what string }{
		{"nogap", "nothing newer than stored"},
		{"gap1", "1 signal healed"},
		{"gap10", "10 signals healed"},
	} {
		rru, wru := m[s.key+"-RCU"], m[s.key+"-WCU"]
		fmt.Printf("| %s | %s | %s | %s | %s |\n", s.what, units(rru), units(wru), units(m[s.key+"-requests"]),
			dollars(1000*(rru*p.DynamoDBRRUPerMillion+wru*p.DynamoDBWRUPerMillion)/1e6))
	}
	scan, mark := m["scan-RCU-per-vehicle"], m["mark-check-RCU"]
	fmt.Printf("\nSmartcar API: %s signals requests per vehicle (pages of 50) and one token request per run. "+
		"Choosing stale vehicles: the state table's scan reads %s RRU per vehicle, and each stale candidate's last "+
		"reconciliation %s RRU.\n\n", units(m["api-calls-per-vehicle"]), units(scan), units(mark))
	for _, every := range []float64{1, 6} {
		runs := hoursPerMonth / every
		fmt.Printf("- `reconcileEvery=%gh`, %s vehicles: the scans cost %s a month (%s RRU).\n", every, num(reconcileFleet),
			dollars(runs*reconcileFleet*scan*p.DynamoDBRRUPerMillion/1e6), num(runs*reconcileFleet*scan))
	}
	fmt.Println()
}
