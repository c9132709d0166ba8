package dynamostore_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// TestDecodeChange: every item the store writes decodes, as a stream
// record's image, into the entry GetVehicle reads; an old image gives the
// change's old side; keys of no entry are refused.
func TestDecodeChange(t *testing.T) {
	ctx := context.Background()
	client := dynamodb.NewFromConfig(awstest.Config(t))
	eventsTable, vehicles := createTables(t, client)
	store := dynamostore.New(client, eventsTable, vehicles)
	p := processor.New(store, processor.NewStateFinisher(store, nil, nil), &processortest.DLQ{}, nil, processor.Options{})
	for i, name := range []string{"vehicle_state", "vehicle_error"} {
		if failed := p.ProcessBatch(ctx, []processor.Record{{MessageID: name, Body: events.MustRead("bodies/" + name + ".json"), ReceiveCount: 1}}); len(failed) != 0 {
			t.Fatalf("event %d failed", i)
		}
	}
	const vid = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	want, err := store.GetVehicle(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(vehicles)})
	if err != nil {
		t.Fatal(err)
	}
	got := vehicle.New(vid)
	for _, item := range out.Items {
		keys := map[string]types.AttributeValue{dynamostore.StateKey: item[dynamostore.StateKey], dynamostore.EntryKey: item[dynamostore.EntryKey]}
		ch, err := dynamostore.DecodeChange(keys, nil, item)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ch.Signal != nil && ch.Signal.Old == nil:
			got.Signals[ch.Signal.Code] = *ch.Signal.New
		case ch.Error != nil && ch.Error.Old == nil:
			got.Errors[ch.Error.Key] = *ch.Error.New
		case ch.Details != nil && ch.Details.Old == nil:
			d := ch.Details.New
			got.Make, got.Model, got.Year, got.UserID, got.Mode, got.LastDeliveredAt = d.Make, d.Model, d.Year, d.UserID, d.Mode, d.LastDeliveredAt
		default:
			t.Fatalf("item %v decoded as %+v", item[dynamostore.EntryKey], ch)
		}
		// As an old image, the same entry is the change's old side.
		if back, err := dynamostore.DecodeChange(keys, item, nil); err != nil ||
			(back.Signal != nil && (back.Signal.New != nil || back.Signal.Old == nil)) ||
			(back.Error != nil && (back.Error.New != nil || back.Error.Old == nil)) {
			t.Errorf("as an old image: %+v, %v", back, err)
		}
	}
	got.UpdatedAt, got.Source = want.UpdatedAt, want.Source
	got.Derive()
	if len(got.Signals) == 0 || len(got.Errors) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("decoded entries:\n got %+v\nwant %+v", got, want)
	}
	bad := map[string]types.AttributeValue{dynamostore.StateKey: &types.AttributeValueMemberS{Value: vid}, dynamostore.EntryKey: &types.AttributeValueMemberS{Value: "other"}}
	if _, err := dynamostore.DecodeChange(bad, nil, nil); err == nil {
		t.Error("an unknown entry decoded")
	}
	if _, err := dynamostore.DecodeChange(nil, nil, nil); err == nil {
		t.Error("a record without keys decoded")
	}
}
