package dynamostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// The upgrade runs beside the live processor: these tests put the legacy
// table, the processor and the migration in each other's way.

// legacyAt is a legacy vehicle whose every time is at (ms): signal x = 1,
// an unresolved PERMISSION error, make OLDMAKE.
func legacyAt(id string, at int64) *vehicle.State {
	s := vehicle.New(id)
	s.Make, s.Mode, s.LastDeliveredAt, s.UpdatedAt = "OLDMAKE", "LIVE", at, at
	s.Signals["x"] = vehicle.Signal{Name: "X", Group: "G", Status: "SUCCESS", Body: map[string]any{"value": json.Number("1")}, OEMUpdatedAt: at, OrderedAt: at, EventID: "legacy"}
	s.Errors["PERMISSION:null"] = vehicle.Error{Type: "PERMISSION", State: "ERROR", UpdatedAt: at, OrderedAt: at, EventID: "legacy"}
	return s
}

// process runs one event body through a processor over store.
func process(t *testing.T, store *dynamostore.Store, body string) {
	t.Helper()
	if failed := newProcessor(store, &processortest.DLQ{}).ProcessBatch(context.Background(),
		[]processor.Record{{MessageID: fmt.Sprint("m-", time.Now().UnixNano()), Body: []byte(body), ReceiveCount: 1}}); len(failed) != 0 {
		t.Fatalf("record failed: %v", failed)
	}
}

// TestMigrationKeepsNewerEntries: a migration that has run for a while
// (its clock read minutes ago) must not put legacy values back over what
// the processor stored since. It did, when entries later than the run's
// clock-skew bound counted as "stored before the bound existed".
func TestMigrationKeepsNewerEntries(t *testing.T) {
	store, client, _ := legacyStore(t)
	ctx := context.Background()
	now := time.Now()
	putLegacy(t, client, store.LegacyTable(), legacyAt("v-a", now.Add(-time.Hour).UnixMilli()), 1)
	fresh := now.Add(-time.Minute).UnixMilli()
	process(t, store, fmt.Sprintf(`{"eventId":"e-fresh","eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v-a","make":"NEWMAKE"},
	  "signals":[{"code":"x","body":{"value":2},"meta":{"oemUpdatedAt":%d},"status":{"value":"SUCCESS"}}],
	  "errors":[{"type":"PERMISSION","state":"RESOLVED"}]},"meta":{"deliveredAt":%d,"mode":"LIVE"}}`, fresh, fresh))
	runStarted := now.Add(-10 * time.Minute)
	if _, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{Now: func() time.Time { return runStarted }}); err != nil {
		t.Fatal(err)
	}
	st, err := store.GetVehicle(ctx, "v-a")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Signals["x"].Body["value"]) != "2" || st.NeedsReauth || st.Make != "NEWMAKE" {
		t.Errorf("after the migration x = %v, needsReauth %v, make %s: the legacy values replaced newer ones", st.Signals["x"].Body["value"], st.NeedsReauth, st.Make)
	}
}

// TestLegacyFutureTimesForgotten: a legacy item written before times were
// bounded may hold a report dated 2100. It must not win over newer
// entries, on the lazy path or in the migration, and the migration must
// converge (a second run finds the vehicle current).
func TestLegacyFutureTimesForgotten(t *testing.T) {
	const year2100 = 4102444800000
	store, client, _ := legacyStore(t)
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"v-lazy", "v-migrate"} {
		l := legacyAt(id, now.Add(-time.Hour).UnixMilli())
		sg := l.Signals["x"]
		sg.OrderedAt, sg.OEMUpdatedAt, sg.Body = year2100, year2100, map[string]any{"value": "from-2100"}
		l.Signals["x"] = sg
		putLegacy(t, client, store.LegacyTable(), l, 1)
	}
	fresh := now.Add(-time.Minute).UnixMilli()
	freshX := func(id string) string {
		return fmt.Sprintf(`{"eventId":"fresh-%s","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":%q},
		  "signals":[{"code":"x","body":{"value":"fresh"},"meta":{"oemUpdatedAt":%d},"status":{"value":"SUCCESS"}}]},"meta":{"deliveredAt":%d,"mode":"LIVE"}}`, id, id, fresh, fresh)
	}
	x := func(id string) string {
		st, err := store.GetVehicle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(st.Signals["x"].Body["value"])
	}

	// Lazy: a first write that stored x and died before its vehicle entry,
	// then the vehicle's next event.
	fx := vehicle.New("v-lazy")
	fx.Signals["x"] = vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": "fresh"}, OrderedAt: fresh, OEMUpdatedAt: fresh}
	if _, err := store.WriteEntries(ctx, fx, vehicle.Changes{Signals: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if got := x("v-lazy"); got != "fresh" {
		t.Errorf("v-lazy read x = %s, want the newer entry, not the legacy 2100 report", got)
	}
	process(t, store, fmt.Sprintf(`{"eventId":"e-y","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v-lazy"},
	  "signals":[{"code":"y","body":{"value":1},"meta":{"oemUpdatedAt":%d},"status":{"value":"SUCCESS"}}]},"meta":{"deliveredAt":%d}}`, now.UnixMilli(), now.UnixMilli()))
	if got := x("v-lazy"); got != "fresh" {
		t.Errorf("v-lazy x = %s after its next event, want fresh", got)
	}

	// Migration: run, a newer report, run again twice.
	if _, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{StartAfter: "v-lazy"}); err != nil {
		t.Fatal(err)
	}
	process(t, store, freshX("v-migrate"))
	if _, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{StartAfter: "v-lazy"}); err != nil {
		t.Fatal(err)
	}
	m, err := dynamostore.MigrateLegacy(ctx, client, store, dynamostore.MigrateOptions{StartAfter: "v-lazy"})
	if err != nil {
		t.Fatal(err)
	}
	if got := x("v-migrate"); got != "fresh" || m.Current != 1 || m.Moved != 0 {
		t.Errorf("v-migrate x = %s, last run %+v: want fresh, and the vehicle current", got, m)
	}
}

// cancellingScan cancels the run once it has handed out its first page.
type cancellingScan struct {
	dynamostore.ScanAPI
	cancel context.CancelFunc
}

func (c cancellingScan) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.ScanAPI.Scan(ctx, in, optFns...)
	c.cancel()
	return out, err
}

// TestMigrationStopsWhenCancelled: an interrupted run says where to resume
// from, and that is never past a vehicle it did not attempt (it used to
// name the last vehicle of the page while failing every one after the
// interruption).
func TestMigrationStopsWhenCancelled(t *testing.T) {
	store, client, _ := legacyStore(t)
	for i := range 3 {
		putLegacy(t, client, store.LegacyTable(), legacyAt(fmt.Sprint("v-cancel-", i), 1767225600000), 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := dynamostore.MigrateLegacy(ctx, cancellingScan{client, cancel}, store, dynamostore.MigrateOptions{})
	if err == nil || m.LastVehicle != "" || m.Failed != 0 || m.Vehicles != 0 {
		t.Errorf("cancelled run: %+v, %v; want it stopped before any vehicle, resuming from the start", m, err)
	}
}

// failFirstWrite fails the first entry write, as a throttled or dropped
// request does, and lets the others through.
type failFirstWrite struct {
	*dynamodb.Client
	once sync.Once
}

func (f *failFirstWrite) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	failed := false
	f.once.Do(func() { failed = true })
	if failed {
		return nil, errors.New("injected write failure")
	}
	return f.Client.UpdateItem(ctx, in, optFns...)
}

// TestMigrationResumePointPrecedesFailures: the resume point of a run
// comes before its first failed vehicle, so a resumed run retries it (it
// used to name the last vehicle read, and a resumed run skipped every
// vehicle that had failed before it).
func TestMigrationResumePointPrecedesFailures(t *testing.T) {
	store, client, _ := legacyStore(t)
	for i := range 3 {
		putLegacy(t, client, store.LegacyTable(), legacyAt(fmt.Sprint("v-resume-", i), 1767225600000), 1)
	}
	flaky := dynamostore.New(&failFirstWrite{Client: client}, store.EventsTable(), store.StateTable(), dynamostore.WithLegacyTable(store.LegacyTable()))
	m, err := dynamostore.MigrateLegacy(context.Background(), client, flaky, dynamostore.MigrateOptions{})
	if err != nil || m.Failed != 1 || m.Vehicles != 3 {
		t.Fatalf("run with one failing write: %+v, %v", m, err)
	}
	resumed, err := dynamostore.MigrateLegacy(context.Background(), client, store, dynamostore.MigrateOptions{StartAfter: m.LastVehicle})
	if err != nil || resumed.Failed != 0 {
		t.Fatalf("resumed run: %+v, %v", resumed, err)
	}
	for i := range 3 {
		st, err := store.GetVehicle(context.Background(), fmt.Sprint("v-resume-", i))
		if err != nil {
			t.Fatal(err)
		}
		if st.Source != vehicle.SourceEntries {
			t.Errorf("v-resume-%d still read from %v after the resumed run (resumed from %q)", i, st.Source, m.LastVehicle)
		}
	}
}

// TestBodyNestedTooDeepDeadLetteredAtOnce: DynamoDB refuses maps and lists
// nested more than 32 levels, on every retry; such a signal body parks its
// event in the DLQ at once, with the reason.
func TestBodyNestedTooDeepDeadLetteredAtOnce(t *testing.T) {
	store, _ := newStore(t)
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	dlq := &processortest.DLQ{}
	body := fmt.Sprintf(`{"eventId":"e-deep","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v-deep"},
	  "signals":[{"code":"x","body":%s,"meta":{"oemUpdatedAt":1767225600000},"status":{"value":"SUCCESS"}}]},"meta":{"deliveredAt":1767225600000}}`, deep)
	failed := newProcessor(store, dlq).ProcessBatch(context.Background(), []processor.Record{{MessageID: "m-deep", Body: []byte(body), ReceiveCount: 1}})
	if len(failed) != 0 {
		t.Fatalf("record failed, to be retried: a body DynamoDB can never store must be dead-lettered at once")
	}
	if letters := dlq.Letters(); len(letters) != 1 || !strings.Contains(letters[0].Reason, "nested deeper") {
		t.Fatalf("dead letters %+v, want one saying the body is nested too deep", letters)
	}
}
