package streamlambda

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Invoke calls h with records as Lambda's DynamoDB Streams event source
// does, under the request id requestID, and returns how many of the
// records, from the first, are done; an error says why the rest are not.
// A failed invocation fails the whole batch; with ReportBatchItemFailures
// the earliest record named is the checkpoint, and a name the batch does
// not hold fails it whole. The local stack's stream source and the redrive
// of the ranges the deployed publisher gave up on both call it.
func Invoke(ctx context.Context, h lambda.Handler, requestID string, records []events.DynamoDBEventRecord) (int, error) {
	payload, err := json.Marshal(events.DynamoDBEvent{Records: records})
	if err != nil {
		return 0, err
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		return 0, fmt.Errorf("invoke: %w", err)
	}
	var resp events.DynamoDBEventResponse
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, fmt.Errorf("handler response: %w", err)
		}
	}
	if len(resp.BatchItemFailures) == 0 {
		return len(records), nil
	}
	index := make(map[string]int, len(records))
	for i, r := range records {
		index[r.Change.SequenceNumber] = i
	}
	from := len(records)
	for _, f := range resp.BatchItemFailures {
		i, ok := index[f.ItemIdentifier]
		if !ok {
			return 0, fmt.Errorf("batchItemFailures names %q, no sequence number of the batch: the whole batch is retried", f.ItemIdentifier)
		}
		from = min(from, i)
	}
	return from, fmt.Errorf("batch item failure from sequence number %s", records[from].Change.SequenceNumber)
}
