package dynamostore_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
)

// realisticEvent is an 85-signal VEHICLE_STATE with Smartcar-like codes,
// names, bodies and UUIDs.
func realisticEvent(eventID, vehicleID string) []byte {
	groups := []string{"TractionBattery", "Charge", "Closure", "Location", "Odometer", "Climate", "Tires", "Diagnostics", "Connectivity", "InternalCombustionEngine"}
	names := []string{"StateOfCharge", "IsCharging", "ChargingCurrent", "Range", "NominalCapacity", "IsLocked", "DoorsOpen", "TraveledDistance", "CabinTemperature"}
	var sigs []string
	for i := range 85 {
		g, n := groups[i%len(groups)], fmt.Sprintf("%s%d", names[i%len(names)], i)
		sigs = append(sigs, fmt.Sprintf(`{"code":%q,"name":%q,"group":%q,"body":{"value":%d.5,"unit":"percent"},"meta":{"oemUpdatedAt":1767225590000,"retrievedAt":1767225598412},"status":{"value":"SUCCESS"}}`,
			strings.ToLower(g+"-"+n), n, g, i))
	}
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"VEHICLE_STATE","data":{"user":{"id":"5e2b8d4f-7a1c-4e9b-b3d6-0c8f2a4e6b13"},"vehicle":{"id":%q,"make":"TESLA","model":"Model Y","year":2024},"signals":[%s]},"meta":{"deliveryId":"1c3e5a7b-9d2f-4b6a-8e0c-2d4f6b8a0c35","deliveredAt":1767225598530,"mode":"LIVE"}}`,
		eventID, vehicleID, strings.Join(sigs, ","))
}

// TestEntrySizes sizes the items of a realistic 85-signal vehicle by
// DynamoDB's rules: each signal entry stays under 1 KB (one write unit),
// and the whole vehicle under 24 KB (a strongly consistent Query of at
// most 6 read units).
func TestEntrySizes(t *testing.T) {
	store, _ := newStore(t)
	ctx := context.Background()
	vid := "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	if failed := newProcessor(store, &processortest.DLQ{}).ProcessBatch(ctx, []processor.Record{
		{MessageID: "m", Body: realisticEvent("4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02", vid), ReceiveCount: 1}}); len(failed) != 0 {
		t.Fatal(failed)
	}
	out, err := dynamodb.NewFromConfig(awstest.Config(t)).Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(store.StateTable()), KeyConditionExpression: aws.String("vehicleId = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: vid}}, ConsistentRead: aws.Bool(true),
	})
	if err != nil || len(out.Items) != 86 {
		t.Fatalf("%d items, %v", len(out.Items), err)
	}
	total, largest := 0, 0
	for _, item := range out.Items {
		n := awstest.ItemSize(wire(item))
		total += n
		if strings.HasPrefix(item[dynamostore.EntryKey].(*types.AttributeValueMemberS).Value, "signal#") {
			largest = max(largest, n)
		}
	}
	t.Logf("85-signal vehicle: %d items, %d bytes (%.0f RCU to Query), largest signal entry %d bytes", len(out.Items), total, awstest.ReadUnits(total), largest)
	if largest >= 1024 || awstest.ReadUnits(total) > 6 {
		t.Fatalf("largest signal entry %d bytes, vehicle %d bytes: want < 1 KB and at most 6 read units", largest, total)
	}
}

// wire is an item in the JSON form of DynamoDB's API.
func wire(item map[string]types.AttributeValue) map[string]any {
	m := make(map[string]any, len(item))
	for k, v := range item {
		m[k] = wireValue(v)
	}
	return m
}

func wireValue(v types.AttributeValue) any {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": x.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": x.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": base64.StdEncoding.EncodeToString(x.Value)}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": x.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberM:
		return map[string]any{"M": wire(x.Value)}
	case *types.AttributeValueMemberL:
		l := make([]any, len(x.Value))
		for i, e := range x.Value {
			l[i] = wireValue(e)
		}
		return map[string]any{"L": l}
	}
	panic(fmt.Sprintf("attribute value %T", v))
}
