package dynamostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// TestListActivity: every vehicle once, with the newest write of any of
// its entries and whether a user id is stored, across scan pages.
func TestListActivity(t *testing.T) {
	ctx := context.Background()
	client := dynamodb.NewFromConfig(awstest.Config(t))
	eventsTable, vehicles := createTables(t, client)
	store := dynamostore.New(client, eventsTable, vehicles)
	write := func(vehicleID, user string, signals int, now time.Time) {
		t.Helper()
		f := processor.NewStateFinisher(store, nil, nil)
		f.Now = func() time.Time { return now }
		ev := smartcar.Event{EventID: fmt.Sprintf("ev-%s-%d", vehicleID, now.UnixMilli()), EventType: smartcar.EventVehicleState,
			VehicleID: vehicleID, UserID: user, Make: "M", Meta: smartcar.Meta{DeliveredAt: smartcar.Millis(now.UnixMilli())}}
		for i := range signals {
			ev.Signals = append(ev.Signals, smartcar.Signal{Code: fmt.Sprintf("code-%d", i), Status: "SUCCESS",
				Body: map[string]any{"value": float64(i)}, OEMUpdatedAt: smartcar.Millis(now.UnixMilli())})
		}
		if err := f.Finish(ctx, ev, processor.Claim{}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	write("veh-a", "user-a", 3, t0)
	write("veh-a", "", 1, t0.Add(10*time.Minute)) // a later signal only: the newest write
	write("veh-b", "", 2, t0.Add(5*time.Minute))

	// Pages of 2 items: the paginator must follow LastEvaluatedKey.
	got, err := dynamostore.ListActivity(ctx, pagedScan{client, 2}, vehicles)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]any{"veh-a", t0.Add(10 * time.Minute).UnixMilli(), true, "veh-b", t0.Add(5 * time.Minute).UnixMilli(), false})
	var gotFlat []any
	for _, a := range got {
		gotFlat = append(gotFlat, a.VehicleID, a.UpdatedAt, a.HasUser)
	}
	if fmt.Sprint(gotFlat) != want {
		t.Errorf("ListActivity = %v, want %v", gotFlat, want)
	}
}

// pagedScan limits each scan page.
type pagedScan struct {
	*dynamodb.Client
	limit int32
}

func (p pagedScan) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	in.Limit = aws.Int32(p.limit)
	return p.Client.Scan(ctx, in, optFns...)
}

// TestMarkReconciled: marks read back in batches (over BatchGetItem's
// 100 keys, and when DynamoDB leaves keys unprocessed), none for a vehicle
// never marked; a mark makes no event applied.
func TestMarkReconciled(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t)
	at := time.Now().Truncate(time.Millisecond)
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("veh-%03d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			if err := store.MarkReconciled(ctx, id, at.Add(time.Duration(i)*time.Millisecond), 24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := store.Reconciled(ctx, ids)
	if err != nil || len(got) != 75 {
		t.Fatalf("Reconciled = %d marks, %v; want 75", len(got), err)
	}
	for i, id := range ids {
		if want := at.Add(time.Duration(i) * time.Millisecond); i%2 == 0 && !got[id].Equal(want) {
			t.Errorf("%s: %v, want %v", id, got[id], want)
		}
	}
	// The mark is no event: it does not make an event of that id applied.
	if done, err := store.Applied(ctx, "veh-000"); err != nil || done {
		t.Errorf("Applied(veh-000) = %v, %v; want false", done, err)
	}
	// Keys DynamoDB leaves unprocessed are asked for again.
	cfg := awstest.Config(t)
	halving := dynamostore.New(unprocessedHalf{dynamodb.NewFromConfig(cfg)}, store.EventsTable(), store.StateTable())
	if got, err := halving.Reconciled(ctx, ids[:10]); err != nil || len(got) != 5 {
		t.Errorf("with unprocessed keys: %d marks, %v; want 5", len(got), err)
	}
	long := string(make([]byte, 2100))
	if err := store.MarkReconciled(ctx, long, at, time.Hour); !processor.IsPermanent(err) {
		t.Errorf("MarkReconciled of a 2100-byte id = %v, want a permanent key error", err)
	}
}

// unprocessedHalf answers a BatchGetItem for the first half of its keys
// and leaves the rest unprocessed, as DynamoDB may.
type unprocessedHalf struct{ *dynamodb.Client }

func (u unprocessedHalf) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for table, ka := range in.RequestItems {
		if len(ka.Keys) < 2 {
			break
		}
		half := len(ka.Keys) / 2
		rest := ka
		rest.Keys = ka.Keys[half:]
		ka.Keys = ka.Keys[:half]
		out, err := u.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: ka}}, optFns...)
		if err != nil {
			return nil, err
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
		return out, nil
	}
	return u.Client.BatchGetItem(ctx, in, optFns...)
}

// TestUserID: the user id of a vehicle stored as entries, of one in the
// legacy table only, and none for a vehicle never stored.
func TestUserID(t *testing.T) {
	ctx := context.Background()
	store, client, _ := legacyStore(t)
	st := vehicle.New("veh-entries")
	st.UserID, st.LastDeliveredAt = "user-1", 1
	if _, err := store.WriteEntries(ctx, st, vehicle.Changes{All: true}); err != nil {
		t.Fatal(err)
	}
	putLegacy(t, client, store.LegacyTable(), legacyState("veh-legacy", 2), 1)
	st = vehicle.New("veh-no-user")
	st.Make, st.LastDeliveredAt = "M", 1
	if _, err := store.WriteEntries(ctx, st, vehicle.Changes{All: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, want string
		stored   bool
	}{
		{"veh-entries", "user-1", true},
		{"veh-legacy", "u1", true},
		{"veh-no-user", "", true},
		{"veh-never", "", false},
	}
	for _, tt := range tests {
		if got, stored, err := store.UserID(ctx, tt.id); err != nil || got != tt.want || stored != tt.stored {
			t.Errorf("UserID(%s) = %q, %v, %v; want %q, %v", tt.id, got, stored, err, tt.want, tt.stored)
		}
	}
}
