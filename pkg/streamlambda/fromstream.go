package streamlambda

import (
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// FromStream converts a record that DynamoDB Streams' GetRecords
// returned, from the stream streamARN, into the record of the
// events.DynamoDBEvent that Lambda's DynamoDB event source delivers: its
// JSON is Lambda's ("dynamodb" with Keys, NewImage, OldImage,
// SequenceNumber..., "eventSourceARN" the stream's), attribute values in
// Lambda's {"S": ...} form, the approximate creation time in whole
// seconds. The local stack's stream source (devstack.StreamPoller) and the
// redrive of the ranges the deployed publisher gave up on (package
// streamredrive) deliver what it returns.
func FromStream(streamARN string, r types.Record) events.DynamoDBEventRecord {
	rec := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: streamARN,
	}
	if rec.AWSRegion == "" {
		rec.AWSRegion = arnRegion(streamARN)
	}
	if r.UserIdentity != nil {
		rec.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(r.UserIdentity.Type), PrincipalID: aws.ToString(r.UserIdentity.PrincipalId)}
	}
	if d := r.Dynamodb; d != nil {
		rec.Change = events.DynamoDBStreamRecord{
			Keys: lambdaImage(d.Keys), NewImage: lambdaImage(d.NewImage), OldImage: lambdaImage(d.OldImage),
			SequenceNumber: aws.ToString(d.SequenceNumber), SizeBytes: aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		}
		if d.ApproximateCreationDateTime != nil {
			// Whole seconds, as the stream gives them to Lambda.
			rec.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: d.ApproximateCreationDateTime.Truncate(time.Second)}
		}
	}
	return rec
}

// arnRegion is the region of an ARN (arn:aws:dynamodb:REGION:...).
func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// lambdaImage converts an item (keys or image) of the stream into the
// attribute values Lambda delivers; nil for none.
func lambdaImage(item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if len(item) == 0 {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		out[k] = lambdaValue(v)
	}
	return out
}

// lambdaValue converts one attribute value; {"S": ...}, {"N": ...},
// {"M": {...}} and so on in JSON.
func lambdaValue(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = lambdaValue(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		m := make(map[string]events.DynamoDBAttributeValue, len(v.Value))
		for k, e := range v.Value {
			m[k] = lambdaValue(e)
		}
		return events.NewMapAttribute(m)
	}
	// An attribute type this SDK does not know: NULL rather than a
	// value that fails the whole event's decoding.
	return events.NewNullAttribute()
}
