// Package sqslambda adapts the processor to Lambda's SQS event source: it
// turns an SQS event into records and the failed records into the partial
// batch response (ReportBatchItemFailures), so one bad record never fails
// the whole batch.
package sqslambda

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// BatchProcessor is the processor as this adapter uses it.
type BatchProcessor interface {
	ProcessBatch(ctx context.Context, records []processor.Record) (failedMessageIDs []string)
}

// Handler returns the Lambda handler function for p, for lambda.Start.
func Handler(p BatchProcessor) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		records := make([]processor.Record, len(ev.Records))
		for i, m := range ev.Records {
			records[i] = Record(m)
		}
		var resp events.SQSEventResponse
		for _, id := range p.ProcessBatch(ctx, records) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		return resp, nil
	}
}

// Record converts one SQS message, with when it was sent (the
// receiver's enqueue), restoring the exact body and attribute
// values the sender could not send as text (see sqsqueue.EncodeBody and
// sqsqueue.TextAttribute). A body whose encoding cannot be undone is kept
// as received, with its bodyEncoding attribute, for the processor to
// dead-letter as it stands.
func Record(m events.SQSMessage) processor.Record {
	rec := processor.Record{MessageID: m.MessageId, Attributes: map[string]string{}}
	rec.ReceiveCount, _ = strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	if ms, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64); err == nil {
		rec.SentAt = time.UnixMilli(ms).UTC()
	}
	for k, v := range m.MessageAttributes {
		if text, ok := sqsqueue.AttributeText(v.DataType, v.StringValue, v.BinaryValue); ok {
			rec.Attributes[k] = text
		}
	}
	rec.Body, _ = sqsqueue.RestoreBody(m.Body, rec.Attributes)
	return rec
}
