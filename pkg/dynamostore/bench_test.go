package dynamostore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
)

// BenchmarkEventAgainstDynamoDB processes 85-signal events against the
// emulator and reports the DynamoDB requests each costs. Its time is the
// emulator's, not DynamoDB's.
func BenchmarkEventAgainstDynamoDB(b *testing.B) {
	store, counter := newStoreTB(b)
	p := newProcessor(store, &processortest.DLQ{})
	signals := map[string]int{}
	for i := range 85 {
		signals[fmt.Sprintf("group%d-signal", i)] = i
	}
	n := 0
	for b.Loop() {
		n++
		rec := processor.Record{MessageID: "m", Body: body(fmt.Sprint("bench-", n), "bench-vehicle", int64(1000+n), signals), ReceiveCount: 1}
		if err := p.Process(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
	ops := counter.reset()
	writes := ops["UpdateItem"] + ops["PutItem"] + ops["TransactWriteItems"] + ops["DeleteItem"] + ops["BatchWriteItem"]
	b.ReportMetric(float64(writes)/float64(n), "writes/event")
	b.ReportMetric(float64(ops["Query"]+ops["GetItem"])/float64(n), "reads/event")
}
