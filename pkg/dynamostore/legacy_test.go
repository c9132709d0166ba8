package dynamostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// legacyState is a vehicle as the legacy layout stored it: every kind of
// signal (exact and huge numbers, one in error that kept its body, an
// unsupported one, a stub a COMPATIBILITY error created), errors (one
// stored before orderedAt existed), details, and the flags the merge kept
// in the item.
func legacyState(id string, signals int) *vehicle.State {
	s := vehicle.New(id)
	s.Make, s.Model, s.Year, s.UserID, s.Mode = "TESLA", "Model Y", 2024, "u1", "LIVE"
	s.LastDeliveredAt, s.UpdatedAt, s.NeedsReauth = 1767225712907, 1767225713000, true
	for i := range signals {
		s.Signals[fmt.Sprintf("group%d-signal%d", i, i)] = vehicle.Signal{Name: fmt.Sprint("Signal", i), Group: fmt.Sprint("Group", i),
			Status: "SUCCESS", Body: map[string]any{"value": json.Number(fmt.Sprintf("%d.50", i)), "unit": "percent"},
			OEMUpdatedAt: 1767225590000, RetrievedAt: 1767225598412, OrderedAt: 1767225590000, EventID: "e-old"}
	}
	s.Signals["tractionbattery-stateofcharge"] = vehicle.Signal{Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS",
		Body:         map[string]any{"value": json.Number("63.50"), "big": json.Number("9007199254740993"), "huge": json.Number("1e300")},
		OEMUpdatedAt: 1767225590000, RetrievedAt: 1767225598412, OrderedAt: 1767225590000, EventID: "e1"}
	s.Signals["closure-islocked"] = vehicle.Signal{Name: "IsLocked", Group: "Closure", Status: "ERROR", ErrorType: "VEHICLE_STATE", ErrorCode: "ASLEEP",
		Body: map[string]any{"value": true}, RetrievedAt: 1767225600000, OrderedAt: 1767225600000, EventID: "e2"}
	s.Signals["location-isathome"] = vehicle.Signal{Name: "IsAtHome", Group: "Location", Status: "SUCCESS", Unsupported: true,
		Body: map[string]any{"value": false}, OrderedAt: 1767225500000, EventID: "e1"}
	s.Signals["charge-ischarging"] = vehicle.Signal{Name: "IsCharging", Group: "Charge", Unsupported: true} // a stub
	s.Errors["COMPATIBILITY:VEHICLE_NOT_CAPABLE"] = vehicle.Error{Type: "COMPATIBILITY", Code: "VEHICLE_NOT_CAPABLE", State: "ERROR",
		Signals: []string{"location-isathome", "charge-ischarging"}, UpdatedAt: 1767225700000, OrderedAt: 1767225700000, EventID: "e3", Description: "not capable"}
	s.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", ResolutionType: "REAUTHENTICATE",
		Signals: []string{"closure-islocked"}, UpdatedAt: 1767225712907, EventID: "e4"} // stored before orderedAt existed
	return s
}

// putLegacy stores s in the legacy table in the legacy item format.
func putLegacy(t *testing.T, client *dynamodb.Client, table string, s *vehicle.State, version int64) {
	t.Helper()
	item, err := dynamostore.EncodeLegacy(s, version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// view is what a user reads of a vehicle: the JSON of its state.
func view(t *testing.T, s *vehicle.State) string {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// moved is the view of a legacy vehicle once moved: the same, but an error
// stored before orderedAt existed is ordered by its delivery, as it was.
func moved(s *vehicle.State) *vehicle.State {
	s = s.Clone()
	for key, e := range s.Errors {
		e.OrderedAt = e.Ordered()
		s.Errors[key] = e
	}
	return s
}

// legacyStore returns a store over fresh tables and a legacy table.
func legacyStore(t *testing.T) (*dynamostore.Store, *dynamodb.Client, *requestCounter) {
	base, counter := newStore(t)
	client := dynamodb.NewFromConfig(func() aws.Config { c := awstest.Config(t); c.HTTPClient = counter; return c }())
	legacy := base.StateTable() + "-legacy"
	if err := dynamostore.CreateLegacyTable(context.Background(), client, legacy); err != nil {
		t.Fatal(err)
	}
	return dynamostore.New(client, base.EventsTable(), base.StateTable(), dynamostore.WithLegacyTable(legacy)), client, counter
}

// TestLegacyVehicleMovedOnNextEvent: a vehicle stored in today's one-item
// format is shown from it until its next event, which moves all of it
// into the entry layout before merging; nothing is lost and the legacy
// item is left as it was.
func TestLegacyVehicleMovedOnNextEvent(t *testing.T) {
	store, client, counter := legacyStore(t)
	ctx := context.Background()
	old := legacyState("v-legacy", 85)
	putLegacy(t, client, store.LegacyTable(), old, 41)
	want := moved(old)
	want.Derive()

	before, err := store.GetVehicle(ctx, "v-legacy")
	if err != nil || before.Source != vehicle.SourceLegacy {
		t.Fatalf("before its next event: source %v, %v; want the legacy item", before.Source, err)
	}
	if got, w := view(t, before), view(t, old); got != w {
		t.Fatalf("legacy vehicle shown as\n%s\nwant\n%s", got, w)
	}

	// The next event: one signal newer, one older than stored.
	next := []byte(`{"eventId":"e-next","eventType":"VEHICLE_STATE","data":{"user":{"id":"u1"},"vehicle":{"id":"v-legacy","make":"TESLA","model":"Model Y","year":2024},"signals":[` +
		`{"code":"group3-signal3","name":"Signal3","group":"Group3","body":{"value":99},"meta":{"oemUpdatedAt":1767225800000},"status":{"value":"SUCCESS"}},` +
		`{"code":"group4-signal4","name":"Signal4","group":"Group4","body":{"value":-1},"meta":{"oemUpdatedAt":1767225000000},"status":{"value":"SUCCESS"}}` +
		`]},"meta":{"deliveredAt":1767225800500,"mode":"LIVE"}}`)
	counter.reset()
	if failed := newProcessor(store, &processortest.DLQ{}).ProcessBatch(ctx, []processor.Record{{MessageID: "m", Body: next, ReceiveCount: 1}}); len(failed) != 0 {
		t.Fatal(failed)
	}
	t.Logf("requests of the moving event: %v", counter.reset())
	after, err := store.GetVehicle(ctx, "v-legacy")
	if err != nil || after.Source != vehicle.SourceEntries {
		t.Fatalf("after its next event: source %v, %v; want the entry layout", after.Source, err)
	}
	sg := want.Signals["group3-signal3"]
	sg.Body, sg.OEMUpdatedAt, sg.RetrievedAt, sg.OrderedAt, sg.EventID = map[string]any{"value": json.Number("99")}, 1767225800000, 0, 1767225800000, "e-next"
	want.Signals["group3-signal3"] = sg
	want.UpdatedAt = after.UpdatedAt // the moving write's time
	if got, w := view(t, after), view(t, want); got != w {
		t.Fatalf("moved vehicle is\n%s\nwant\n%s", got, w)
	}
	// The legacy item is untouched.
	raw, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(store.LegacyTable()),
		Key: map[string]typesAV{dynamostore.StateKey: strAV("v-legacy")}})
	if err != nil || raw.Item["version"] == nil || raw.Item["version"].(*numAV).Value != "41" {
		t.Fatalf("legacy item changed: %v, %v", raw.Item["version"], err)
	}
	// Later events read the entries alone, and the tool finds nothing to move.
	counter.reset()
	if _, err := store.GetVehicle(ctx, "v-legacy"); err != nil {
		t.Fatal(err)
	}
	if ops := counter.reset(); ops["GetItem"] != 0 || ops["Query"] != 1 {
		t.Errorf("a moved vehicle read with %v, want one Query", ops)
	}
	m, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{})
	if err != nil || m.Vehicles != 1 || m.Current != 1 || m.Stored != 0 || m.Skipped != 0 {
		t.Fatalf("migration after the move = %+v, %v; want the vehicle current, nothing written", m, err)
	}
}

// TestMigrateLegacy: the one-off tool moves every legacy vehicle, keeps
// what the entry layout already holds newer, writes nothing on a second
// run, and resumes after a given vehicle.
func TestMigrateLegacy(t *testing.T) {
	store, client, _ := legacyStore(t)
	ctx := context.Background()
	olds := map[string]*vehicle.State{}
	for i, n := range []int{0, 3, 85} {
		id := fmt.Sprint("v-migrate-", i)
		olds[id] = legacyState(id, n)
		putLegacy(t, client, store.LegacyTable(), olds[id], int64(i+1))
	}
	// One vehicle already has a newer signal in the entry layout (an event
	// processed by a processor that was not told of the legacy table).
	newer := vehicle.New("v-migrate-1")
	newer.Signals["group1-signal1"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": json.Number("7")}, OrderedAt: 1767225900000, EventID: "e-new"}
	newer.UpdatedAt = 1767225900001
	if _, err := store.WriteEntries(ctx, newer, vehicle.Changes{Signals: []string{"group1-signal1"}}); err != nil {
		t.Fatal(err)
	}

	dry, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{DryRun: true})
	entries := 0
	for _, s := range olds {
		entries += len(s.Signals) + len(s.Errors) + 1
	}
	if err != nil || dry.Vehicles != 3 || dry.Stored != entries-1 {
		t.Fatalf("dry run = %+v, %v; want %d entries to store", dry, err, entries-1)
	}
	if st, _ := store.GetVehicle(ctx, "v-migrate-2"); st.Source != vehicle.SourceLegacy {
		t.Fatal("the dry run wrote")
	}

	m, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{})
	if err != nil || m.Vehicles != 3 || m.Moved != 3 || m.Failed != 0 || m.Stored != entries-1 {
		t.Fatalf("migration = %+v, %v; want 3 vehicles moved, %d entries", m, err, entries-1)
	}
	for id, old := range olds {
		want := moved(old)
		if id == "v-migrate-1" {
			want.Signals["group1-signal1"] = newer.Signals["group1-signal1"]
		}
		want.Derive()
		got, err := store.GetVehicle(ctx, id)
		if err != nil || got.Source != vehicle.SourceEntries {
			t.Fatalf("%s: source %v, %v", id, got.Source, err)
		}
		want.UpdatedAt = got.UpdatedAt
		if g, w := view(t, got), view(t, want); g != w {
			t.Errorf("%s moved as\n%s\nwant\n%s", id, g, w)
		}
	}

	again, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{})
	if err != nil || again.Current != 3 || again.Stored != 0 || again.Skipped != 0 {
		t.Fatalf("second run = %+v, %v; want nothing written", again, err)
	}
	resumed, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{StartAfter: m.LastVehicle})
	if err != nil || resumed.Vehicles != 0 {
		t.Fatalf("resumed after the last vehicle = %+v, %v; want nothing left", resumed, err)
	}
}

type (
	typesAV = types.AttributeValue
	numAV   = types.AttributeValueMemberN
)

func strAV(s string) typesAV { return &types.AttributeValueMemberS{Value: s} }
