package devstack_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/replay"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// runs counts a handler's runs per event and generation.
type runs struct {
	mu sync.Mutex
	n  map[string]int // eventId/generation
}

func (r *runs) Handle(_ context.Context, ev smartcar.Event, c processor.Claim) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.Replayed() != (c.Generation != "") {
		return fmt.Errorf("claim %+v: Replayed disagrees with Generation", c)
	}
	r.n[ev.EventID+"/"+c.Generation]++
	return nil
}

func (r *runs) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

// TestReplayEndToEnd: webhooks sent over HTTP to the local stack are
// archived byte for byte; replayed, they run the handler again once per
// generation and leave the state as it was; rebuilt into an empty table
// from the archive, they give the same state.
func TestReplayEndToEnd(t *testing.T) {
	ctx := context.Background()
	handler := &runs{n: map[string]int{}}
	p := startPipeline(t, "replay", handler)
	cfg, res, logs := p.cfg, p.res, p.logs
	start := time.Now()
	var sent [][]byte
	send := func(b []byte) { sent = append(sent, p.deliver(t, b)) }
	send(events.MustRead("bodies/vehicle_state.json"))
	send(events.MustRead("bodies/vehicle_error.json"))
	send(stateEvent("newer", "v-ooo", 200, 1767300000000))
	send(stateEvent("older", "v-ooo", 100, 1767200000000))
	ids := []string{"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02", "7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57", "newer", "older"}
	// Logged once its writes are done (the handler runs before them).
	eventually(t, 30*time.Second, "every event processed", func() (bool, string) {
		n := logs.Count("processing.succeeded")
		return n == len(ids), fmt.Sprintf("%d processing.succeeded lines of %d", n, len(ids))
	})

	// Every acknowledged body is in the archive, byte for byte.
	archived := s3archive.New(s3.NewFromConfig(cfg), res.ArchiveBucket)
	bodies := map[string]bool{}
	if err := archived.Entries(ctx, start, time.Now(), func(e archive.Entry) error {
		bodies[string(e.Body)] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, b := range sent {
		if !bodies[string(b)] {
			t.Errorf("webhook %d (%s) acknowledged but not archived", i, ids[i])
		}
	}

	store := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable)
	vehicles := []string{exampleVehicle, "v-ooo"}
	snapshot := func(s *dynamostore.Store) map[string]*vehicle.State {
		t.Helper()
		out := map[string]*vehicle.State{}
		for _, v := range vehicles {
			st, err := s.GetVehicle(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			out[v] = st
		}
		return out
	}
	before := snapshot(store)

	// Replay everything into the queue, twice under one generation, then
	// under another.
	sel := replay.Selection{From: start.Add(-time.Minute), To: time.Now().Add(time.Minute)}
	replayer := sqsqueue.NewReplayer(sqs.NewFromConfig(cfg), res.QueueURL)
	for _, g := range []string{"replay-a", "replay-a", "replay-b"} {
		st, err := replay.Run(ctx, archived, replayer, sel, replay.Options{Generation: g, Rate: 1000})
		if err != nil || st.Sent != len(ids) {
			t.Fatalf("replay %s: %+v, %v", g, st, err)
		}
	}
	eventually(t, 30*time.Second, "every replay processed", func() (bool, string) {
		n := logs.Count("processing.replayed")
		return n == 3*len(ids), fmt.Sprintf("%d processing.replayed lines of %d", n, 3*len(ids))
	})
	// The poller runs one batch at a time, so copies of a replay meet only
	// inside a batch, which runs them one after another.
	if n := logs.Count("processing.deferred"); n != 0 {
		t.Errorf("%d replayed copies deferred for a visibility timeout, want none", n)
	}
	for _, id := range ids {
		for g, want := range map[string]int{"": 1, "replay-a": 1, "replay-b": 1} {
			if got := handler.count(id + "/" + g); got != want {
				t.Errorf("event %s, generation %q: handler ran %d times, want %d", id, g, got, want)
			}
		}
	}
	if after := snapshot(store); !reflect.DeepEqual(after, before) {
		t.Errorf("replays changed the state:\nbefore %+v\nafter  %+v", before, after)
	}

	// Rebuild into an empty table, from the archive, in this process.
	rebuilt := res.StateTable + "-rebuilt"
	if err := dynamostore.CreateStateTable(ctx, dynamodb.NewFromConfig(cfg), rebuilt); err != nil {
		t.Fatal(err)
	}
	penv := res.ProcessorEnv()
	penv[devstack.EnvStateTable] = rebuilt
	var parked parkedLetters
	rebuilder, err := functions.NewRebuilder(getenv(penv), cfg, &loggingtest.Buffer{}, &parked)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := replay.Run(ctx, archived, replay.ProcessorSink{P: rebuilder}, sel, replay.Options{Generation: "rebuild-1", Rate: 1000}); err != nil || st.Sent != len(ids) {
		t.Fatalf("rebuild: %+v, %v", st, err)
	}
	got := snapshot(dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, rebuilt))
	for _, v := range vehicles {
		// Written at another time, the rest is the same. LastDeliveredAt
		// records which delivery first brought details that none since
		// changed: with the events applied in another order, another one.
		got[v].UpdatedAt = before[v].UpdatedAt
		got[v].LastDeliveredAt = before[v].LastDeliveredAt
		if !reflect.DeepEqual(got[v], before[v]) {
			t.Errorf("vehicle %s rebuilt:\n got %+v\nwant %+v", v, got[v], before[v])
		}
	}
	if handler.count("newer/rebuild-1") != 0 || parked.n != 0 {
		t.Errorf("the rebuild ran handlers or parked %d events", parked.n)
	}
}

type parkedLetters struct{ n int }

func (p *parkedLetters) SendDeadLetter(context.Context, processor.Record, string, time.Time) error {
	p.n++
	return nil
}
