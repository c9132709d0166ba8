// Package streamlambda adapts the publisher to Lambda's DynamoDB Streams
// event source: it decodes each stream record of the vehicle-state table
// into the entry change it is (dynamostore.DecodeChange), and turns the
// first record not published into the partial batch response
// (ReportBatchItemFailures), from which Lambda retries the batch.
package streamlambda

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
)

// StreamPublisher is the publisher as this adapter uses it.
type StreamPublisher interface {
	// Publish returns the sequence number of the first record whose
	// events were not all published, "" when all were.
	Publish(ctx context.Context, records []publisher.Record) (failedFrom string)
}

// Handler returns the Lambda handler function for p, for lambda.Start. A
// record that does not decode (not an entry this project writes) fails
// the batch from it, so Lambda retries and, past its retries, sends it to
// the on-failure destination; log says which.
func Handler(p StreamPublisher, log *slog.Logger) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var resp events.DynamoDBEventResponse
		records := make([]publisher.Record, 0, len(ev.Records))
		failedFrom := ""
		for _, r := range ev.Records {
			ch, err := dynamostore.DecodeChange(AttributeValues(r.Change.Keys), AttributeValues(r.Change.OldImage), AttributeValues(r.Change.NewImage))
			if err != nil {
				log.ErrorContext(ctx, "stream.record_undecodable", "sequenceNumber", r.Change.SequenceNumber, "eventName", r.EventName, "error", err.Error())
				failedFrom = r.Change.SequenceNumber
				break
			}
			records = append(records, publisher.Record{SequenceNumber: r.Change.SequenceNumber, Change: ch})
		}
		if failed := p.Publish(ctx, records); failed != "" {
			failedFrom = failed
		}
		if failedFrom != "" {
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: failedFrom}}
		}
		return resp, nil
	}
}

// AttributeValues converts a stream image, as Lambda delivers it, into the
// SDK's attribute values; nil for an empty image.
func AttributeValues(m map[string]events.DynamoDBAttributeValue) map[string]types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = attributeValue(v)
	}
	return out
}

func attributeValue(v events.DynamoDBAttributeValue) types.AttributeValue {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}
	case events.DataTypeList:
		l := make([]types.AttributeValue, len(v.List()))
		for i, e := range v.List() {
			l[i] = attributeValue(e)
		}
		return &types.AttributeValueMemberL{Value: l}
	case events.DataTypeMap:
		return &types.AttributeValueMemberM{Value: AttributeValues(v.Map())}
	}
	return &types.AttributeValueMemberNULL{Value: true}
}
