package replay

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

// BatchProcessor is the processor as ProcessorSink uses it.
type BatchProcessor interface {
	ProcessBatch(ctx context.Context, records []processor.Record) (failedMessageIDs []string)
}

// ProcessorSink processes entries in this process, with the processor
// given (for a rebuild: one without handlers, writing to the rebuild
// table), instead of queueing them.
type ProcessorSink struct {
	P BatchProcessor
	// Attempts bounds how often a failing record is tried (3 if zero):
	// the failures a queue would retry, such as throttling.
	Attempts int
}

// Send implements Sink.
func (s ProcessorSink) Send(ctx context.Context, entries []archive.Entry, generation string) error {
	records := make([]processor.Record, len(entries))
	for i, e := range entries {
		records[i] = Record(e, generation)
	}
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for n := 1; ; n++ {
		failed := s.P.ProcessBatch(ctx, records)
		if len(failed) == 0 {
			return nil
		}
		if n == attempts || ctx.Err() != nil {
			return fmt.Errorf("%d of %d records failed %d times (messages %s): see the processor's log lines",
				len(failed), len(entries), n, strings.Join(failed, ", "))
		}
		retry := records[:0:0]
		for _, r := range records {
			for _, id := range failed {
				if r.MessageID == id {
					r.ReceiveCount = n + 1
					retry = append(retry, r)
				}
			}
		}
		records = retry
	}
}

// Record is the processor's record of a replayed entry: its body and
// labels, marked with generation, under a message id of its own.
func Record(e archive.Entry, generation string) processor.Record {
	attrs := map[string]string{processor.AttrReplayGeneration: generation}
	for k, v := range map[string]string{"eventId": e.EventID, "eventType": e.EventType, "vehicleId": e.VehicleID} {
		if v != "" {
			attrs[k] = v
		}
	}
	return processor.Record{MessageID: generation + "/" + cmp.Or(e.MessageID, e.EventID), Body: e.Body, ReceiveCount: 1,
		Attributes: attrs, SentAt: e.ReceivedAt}
}
