package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dlq"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents/domaineventstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamlambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// ledgerRun configures one run of the pipeline under test.
type ledgerRun struct {
	prefix            string
	seed              uint64
	events            int
	dynamoDB, sqsSend float64 // fault probabilities
	firehose          float64 // of the archive's PutRecordBatch: whole or partial failures
	eventBridge       float64 // of the publisher's PutEvents: whole or partial failures
	killEvery         int     // kill every n-th processor invocation mid-batch; 0 never
	// handler registers a handler, so that the processor claims events in
	// the events table; without one, applying is the state merge alone.
	handler bool
}

// generatedEvent is one VEHICLE_STATE the sender delivers.
type generatedEvent struct {
	id, vehicle string
	oem         int64
	values      map[string]int
	body        []byte
}

var signalCodes = []string{"odometer-traveleddistance", "tractionbattery-stateofcharge", "tractionbattery-range",
	"closure-islocked", "charge-ischarging", "climate-cabintemperature"}

func generate(rng *rand.Rand, prefix string, n, vehicles int) []generatedEvent {
	order := rng.Perm(n) // oemUpdatedAt order differs from generation and send order
	events := make([]generatedEvent, n)
	for i := range events {
		ev := generatedEvent{
			id: fmt.Sprintf("%sevent-%03d", prefix, i), vehicle: fmt.Sprintf("%svehicle-%d", prefix, rng.IntN(vehicles)),
			oem: 1767225600000 + int64(order[i])*1000, values: map[string]int{},
		}
		var sigs []string
		for _, j := range rng.Perm(len(signalCodes))[:1+rng.IntN(4)] {
			v := rng.IntN(100000)
			ev.values[signalCodes[j]] = v
			sigs = append(sigs, fmt.Sprintf(`{"code":%q,"name":"N","group":"G","body":{"value":%d},"meta":{"oemUpdatedAt":%d,"retrievedAt":%d},"status":{"value":"SUCCESS"}}`,
				signalCodes[j], v, ev.oem, ev.oem+50))
		}
		ev.body = []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"VEHICLE_STATE","data":{"user":{"id":"u"},"vehicle":{"id":%q,"make":"VW","model":"ID.4","year":2023},"signals":[%s]},"meta":{"deliveryId":"d","deliveredAt":%d,"mode":"LIVE","version":"4.0"}}`,
			ev.id, ev.vehicle, strings.Join(sigs, ","), ev.oem+500))
		events[i] = ev
	}
	return events
}

// killer crashes every n-th invocation part-way: the work stops at a random
// point and no response reaches the event source, as when a Lambda dies.
// The doomed invocation first stalls, as in a slow cold start, so the
// claims it leaves behind outlive their messages' visibility timeout.
type killer struct {
	next  lambda.Handler
	every int
	stall time.Duration
	n     atomic.Int64
	kills atomic.Int64
	rng   *rand.Rand
	mu    sync.Mutex
}

func (k *killer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if k.every == 0 || k.n.Add(1)%int64(k.every) != 0 {
		return k.next.Invoke(ctx, payload)
	}
	k.mu.Lock()
	after := time.Duration(1+k.rng.IntN(40)) * time.Millisecond
	k.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(k.stall):
	}
	ctx, cancel := context.WithTimeout(ctx, after)
	defer cancel()
	_, _ = k.next.Invoke(ctx, payload)
	k.kills.Add(1)
	return nil, errors.New("killed mid-batch")
}

// TestLedgerUnderFaults delivers events through the local pipeline while
// DynamoDB and SQS fail at random and the processor is killed mid-batch,
// then checks what a user relies on: nothing acknowledged is lost, nothing
// applied twice, and the state is the newest value per signal. Without
// faults, everything must be applied and the DLQ stay empty.
func TestLedgerUnderFaults(t *testing.T) {
	// In parallel: each run spends most of its time waiting for
	// visibility timeouts and stalled invocations, on stacks of its own.
	t.Run("faults", func(t *testing.T) {
		t.Parallel()
		checkLedger(t, ledgerRun{prefix: "lf-", seed: 20261123, events: 240, dynamoDB: 0.3, sqsSend: 0.1, firehose: 0.3, eventBridge: 0.3, killEvery: 6})
	})
	t.Run("faults, with a handler", func(t *testing.T) {
		t.Parallel()
		checkLedger(t, ledgerRun{prefix: "lh-", seed: 20261130, events: 160, dynamoDB: 0.3, sqsSend: 0.1, firehose: 0.3, eventBridge: 0.3, killEvery: 6, handler: true})
	})
	t.Run("no faults", func(t *testing.T) {
		t.Parallel()
		checkLedger(t, ledgerRun{prefix: "ln-", seed: 7, events: 120})
	})
}

func checkLedger(t *testing.T, run ledgerRun) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := rand.New(rand.NewPCG(run.seed, 1))
	started := time.Now()
	clean := awstest.Config(t)
	res, err := devstack.Provision(ctx, clean, token, devstack.Options{Prefix: awstest.Name(t, "ledger") + "-", VisibilityTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// Faults reach the functions' AWS calls only. The receiver's SDK makes
	// one attempt, so faults reach its answers; the processor's makes two,
	// so an applied write whose answer was lost is retried by the SDK too.
	faults := awstest.NewFaults(run.seed, run.dynamoDB, run.sqsSend)
	faults.Firehose, faults.EventBridge = run.firehose, run.eventBridge
	var enqMu sync.Mutex
	enqueued := map[string]int{} // eventId -> messages SQS accepted
	faults.Sent = func(target string, body []byte) {
		if target != "AmazonSQS.SendMessage" {
			return
		}
		var in struct {
			QueueUrl          string
			MessageAttributes map[string]struct{ StringValue string }
		}
		if json.Unmarshal(body, &in) == nil && in.QueueUrl == res.QueueURL {
			enqMu.Lock()
			enqueued[in.MessageAttributes["eventId"].StringValue]++
			enqMu.Unlock()
		}
	}
	faulty := clean.Copy()
	// The strict layer answers what AWS would refuse and moto accepts.
	faulty.HTTPClient = &http.Client{Transport: faults.Transport(awstest.StrictTransport(moto.AtomicDynamoDB(http.DefaultTransport)))}
	faulty.RetryMaxAttempts = 1
	faultyProcessor := faulty.Copy()
	faultyProcessor.RetryMaxAttempts = 0
	faultyProcessor.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.MaxBackoff = 2, 50*time.Millisecond })
	}

	logs := &loggingtest.Buffer{}
	recvEnv, procEnv := res.ReceiverEnv(), res.ProcessorEnv()
	procEnv["LEASE_DURATION"] = "2s" // below the test queue's 3 s visibility
	recv, err := functions.NewReceiver(getenv(recvEnv), faulty, logs)
	if err != nil {
		t.Fatal(err)
	}
	var handlers []processor.Handler
	var handled sync.Map // eventId -> struct{}
	if run.handler {
		handlers = append(handlers, processor.HandlerFunc(func(_ context.Context, ev smartcar.Event, _ processor.Claim) error {
			handled.Store(ev.EventID, struct{}{})
			return nil
		}))
	}
	proc, err := functions.NewProcessor(getenv(procEnv), faultyProcessor, logs, handlers...)
	if err != nil {
		t.Fatal(err)
	}
	// After the 1.5 s stall, a claim's 2 s lease ends after its message's 3 s
	// visibility timeout: the message comes back while its claim still holds.
	kill := &killer{next: lambda.NewHandler(proc), every: run.killEvery, stall: 1500 * time.Millisecond, rng: rand.New(rand.NewPCG(run.seed, 2))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- devstack.Serve(ctx, ln, lambda.NewHandler(recv)) }()
	sqsClient := sqs.NewFromConfig(clean)
	poller := &devstack.Poller{SQS: sqsClient, QueueURL: res.QueueURL, QueueARN: res.QueueARN, Handler: kill}
	polled := make(chan struct{})
	go func() { poller.Run(ctx); close(polled) }()
	// The publisher, on the state table's stream, puts through the same
	// faults and is killed as often; the stream source retries as Lambda's.
	pubEnv := res.PublisherEnv()
	pub, err := functions.NewPublisher(getenv(pubEnv), faultyProcessor, logs)
	if err != nil {
		t.Fatal(err)
	}
	pubKill := &killer{next: lambda.NewHandler(pub), every: run.killEvery, rng: rand.New(rand.NewPCG(run.seed, 3))}
	streams := &devstack.StreamPoller{Streams: dynamodbstreams.NewFromConfig(clean), StreamARN: res.StateStreamARN, Handler: pubKill,
		Backoff: 50 * time.Millisecond}
	streamed := make(chan struct{})
	streamCtx, stopStream := context.WithCancel(context.Background())
	go func() { streams.Run(streamCtx); close(streamed) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-polled; <-served }) }
	defer stop()
	defer func() { stopStream(); <-streamed }()

	// Deliver like Smartcar: every event once, some twice, in shuffled
	// order; a non-2xx answer is retried up to 3 times with the same
	// eventId and a new deliveryId and deliveredAt.
	events := generate(rng, run.prefix, run.events, 5)
	var deliveries []int
	for i := range events {
		deliveries = append(deliveries, i)
		if rng.IntN(100) < 15 {
			deliveries = append(deliveries, i)
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	url := "http://" + ln.Addr().String() + receiver.PathWebhook
	client := &http.Client{Timeout: 15 * time.Second}
	var ackMu sync.Mutex
	acked := map[string]bool{}
	var attempts, gaveUp atomic.Int64
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, i := range deliveries {
		wg.Add(1)
		sem <- struct{}{}
		go func(ev generatedEvent) {
			defer func() { <-sem; wg.Done() }()
			for attempt := 1; attempt <= 4; attempt++ {
				attempts.Add(1)
				b := delivery.Rewrite{DeliveryID: delivery.NewID(), DeliveredAt: time.Now()}.Apply(ev.body)
				r, err := delivery.Send(ctx, client, url, token, b)
				if err == nil && r.OK() {
					ackMu.Lock()
					acked[ev.id] = true
					ackMu.Unlock()
					return
				}
				time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
			}
			gaveUp.Add(1)
		}(events[i])
	}
	wg.Wait()

	// Wait until the queue is drained: nothing visible or in flight.
	waitDrained(ctx, t, sqsClient, res.QueueURL, logs.Len)
	stop()
	// Then until the publisher has published all it will: the bus's
	// subscriber queue quiet for 5 s.
	var onBus []domaineventstest.BusEvent
	for quiet := time.Now(); time.Since(quiet) < 5*time.Second; {
		got := domaineventstest.Drain(t, sqsClient, res.EventsTailQueueURL, 0)
		if len(got) > 0 {
			onBus = append(onBus, got...)
			quiet = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopStream()
	<-streamed

	// What was applied, read once the pipeline has stopped: with a
	// handler, the events the ledger completed (each handled); without,
	// the events whose every signal is stored, from them or from a newer
	// event (each event's oemUpdatedAt is its own).
	ctx = context.Background()
	ddb := dynamodb.NewFromConfig(clean)
	store := dynamostore.New(ddb, res.EventsTable, res.StateTable)
	completed := map[string]bool{}
	states := map[string]*vehicle.State{}
	for _, ev := range events {
		if !run.handler {
			st, ok := states[ev.vehicle]
			if !ok {
				if st, err = store.GetVehicle(ctx, ev.vehicle); err != nil {
					t.Fatal(err)
				}
				states[ev.vehicle] = st
			}
			applied := true
			for code := range ev.values {
				applied = applied && st.Signals[code].OrderedAt >= ev.oem
			}
			if applied {
				completed[ev.id] = true
			}
			continue
		}
		out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(res.EventsTable), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{dynamostore.EventsKey: &types.AttributeValueMemberS{Value: ev.id}}})
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := out.Item["status"].(*types.AttributeValueMemberS); ok && st.Value == dynamostore.StatusCompleted {
			completed[ev.id] = true
			if _, ok := handled.Load(ev.id); !ok {
				t.Errorf("%s completed, but its handler never ran", ev.id)
			}
		}
	}
	queue := dlq.Queue{API: sqsClient, DLQURL: res.DLQURL}
	parked, err := queue.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	logReasons := map[string]string{} // eventId -> reason logged on its last receive
	for _, l := range logs.Lines("processing.dead_lettered") {
		if id, _ := l["eventId"].(string); id != "" {
			logReasons[id], _ = l["reason"].(string)
		}
	}
	inDLQ := map[string]string{} // eventId -> reason
	for _, m := range parked {
		reason := m.FailureReason
		if reason == "" {
			reason = logReasons[m.EventID()]
		}
		inDLQ[m.EventID()] = reason
	}

	// The archive, read whole: every delivery the processor archived.
	archived := map[string]int{} // eventId -> copies
	if err := s3archive.New(s3.NewFromConfig(clean), res.ArchiveBucket).Entries(ctx, started.Add(-time.Hour), time.Now(),
		func(e archive.Entry) error {
			archived[e.EventID]++
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	copies := 0
	for _, n := range archived {
		copies += n
	}

	var violations []string
	violate := func(format string, args ...any) { violations = append(violations, fmt.Sprintf(format, args...)) }

	// The bus against what was stored: every stored change of a signal's
	// value (read from the stream itself, as the publisher reads it) is on
	// the bus at least once, and nothing is on the bus that was not
	// stored.
	stored := storedSignalChanges(t, clean, res.StateStreamARN)
	published := map[string]int{}
	for _, ev := range onBus {
		for _, sg := range ev.Detail.Signals {
			published[signalChangeKey(ev.Detail.VehicleID, ev.Detail.EventID, sg.Code, sg.Status, sg.Body)]++
		}
	}
	for change := range stored {
		if published[change] == 0 {
			violate("%s: stored but never published", change)
		}
	}
	for change := range published {
		if !stored[change] {
			violate("%s: published but never stored", change)
		}
	}
	for _, ev := range events {
		// Archived ⊇ acknowledged: whatever reached the queue was
		// archived before it was processed, or parked.
		if acked[ev.id] && archived[ev.id] == 0 {
			violate("%s: answered 2xx but missing from the archive", ev.id)
		}
		if completed[ev.id] && archived[ev.id] == 0 {
			violate("%s: applied but never archived", ev.id)
		}
		switch {
		case acked[ev.id] && enqueued[ev.id] == 0:
			violate("%s: answered 2xx but never reached the queue", ev.id)
		case acked[ev.id] && !completed[ev.id] && inDLQ[ev.id] == "":
			if _, parked := inDLQ[ev.id]; parked {
				violate("%s: in the DLQ without a reason", ev.id)
			} else {
				violate("%s: answered 2xx, neither applied nor in the DLQ: lost", ev.id)
			}
		}
	}
	// Every stored signal entry is the newest applied value. Entries are
	// written before their event completes (each only over an older one),
	// so an entry may also come from an event parked in the DLQ after its
	// writes landed: redriven, it completes and writes nothing new.
	byID := map[string]generatedEvent{}
	vehicles := map[string]bool{}
	for _, ev := range events {
		byID[ev.id] = ev
		vehicles[ev.vehicle] = true
	}
	var entries, fromParked int
	for v := range vehicles {
		want := map[string]generatedEvent{} // code -> newest applied event carrying it
		for _, ev := range events {
			if ev.vehicle != v || !completed[ev.id] {
				continue
			}
			for code := range ev.values {
				if cur, ok := want[code]; !ok || ev.oem > cur.oem {
					want[code] = ev
				}
			}
		}
		st, err := store.GetVehicle(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		for code, sig := range st.Signals {
			entries++
			got := fmt.Sprint(sig.Body["value"])
			src, known := byID[sig.EventID]
			_, parked := inDLQ[sig.EventID]
			w, applied := want[code]
			switch {
			case !known || src.vehicle != v || got != strconv.Itoa(src.values[code]) || sig.OEMUpdatedAt != src.oem:
				violate("%s/%s = %s at %d names %s, which did not send it", v, code, got, sig.OEMUpdatedAt, sig.EventID)
			case !completed[src.id] && !parked:
				violate("%s/%s = %s from %s, which was neither applied nor parked", v, code, got, src.id)
			case applied && w.oem > src.oem:
				violate("%s/%s = %s from %s; the newest applied is %d from %s", v, code, got, src.id, w.values[code], w.id)
			case !completed[src.id]:
				fromParked++
			}
		}
		for code, w := range want {
			if _, ok := st.Signals[code]; !ok {
				violate("%s/%s missing; %s applied %d", v, code, w.id, w.values[code])
			}
		}
	}

	injected, before, after := faults.Injected()
	t.Logf("ledger %s: %d events, %d deliveries (%d attempts, %d given up after 4), %d acknowledged, %d enqueued at least once, "+
		"%d applied, %d in the DLQ, %d duplicate skips, %d deferrals; %d signal entries stored, each the newest applied (%d from parked events); "+
		"%d events archived in %d copies, %d records whose archive write failed; "+
		"%d signal changes stored, published in %d bus events (%d publisher kills); "+
		"faults injected %d (%d before the call, %d after it took effect, %d of them partial Firehose or EventBridge failures), %d kills mid-batch",
		strings.TrimSuffix(run.prefix, "-"), len(events), len(deliveries), attempts.Load(), gaveUp.Load(), len(acked), len(enqueued),
		len(completed), len(inDLQ), logs.Count("processing.duplicate"), logs.Count("processing.deferred"), entries, fromParked,
		len(archived), copies, strings.Count(logs.String(), `"error":"archive: `),
		len(stored), len(onBus), pubKill.kills.Load(),
		injected, before, after, faults.Partial(), kill.kills.Load())
	if run.dynamoDB == 0 && run.sqsSend == 0 && run.killEvery == 0 {
		if len(parked) != 0 {
			violate("without faults the DLQ holds %d messages", len(parked))
		}
		for _, ev := range events {
			if !acked[ev.id] || !completed[ev.id] {
				violate("%s: without faults, acknowledged %v, applied %v", ev.id, acked[ev.id], completed[ev.id])
			}
		}
	}
	if len(violations) > 0 {
		sort.Strings(violations)
		shown := violations[:min(len(violations), 40)]
		for i, v := range shown {
			if id, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(id, run.prefix+"event-") && i < 5 {
				shown[i] += "\n" + eventTrace(logs.String(), id)
			}
		}
		t.Fatalf("%d ledger violations:\n  %s", len(violations), strings.Join(shown, "\n  "))
	}
	if run.dynamoDB > 0 && (injected == 0 || len(completed) == 0) {
		t.Fatalf("the fault run proved nothing: %d faults, %d applied", injected, len(completed))
	}
	if run.eventBridge > 0 && (logs.Count("publish.failed") == 0 || len(stored) == 0) {
		t.Fatalf("the bus's faults proved nothing: no publish failed, %d changes stored", len(stored))
	}
	if run.firehose > 0 && (faults.Partial() == 0 || !strings.Contains(logs.String(), `"error":"archive: `)) {
		t.Fatalf("the archive's faults proved nothing: %d partial failures injected, no archive write failed", faults.Partial())
	}
}

// eventTrace lists what the processor logged about one event, in order:
// the story behind a violation, for a failure CI reports.
func eventTrace(logs, id string) string {
	var b strings.Builder
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"eventId":"`+id+`"`) {
			continue
		}
		var l struct {
			Message, MessageID, Status, Error, Reason string
			ReceiveCount                              int
		}
		if json.Unmarshal([]byte(line), &l) != nil || !strings.HasPrefix(l.Message, "processing.") {
			continue
		}
		fmt.Fprintf(&b, "      message %.8s receive %d: %s %s%s%s\n", l.MessageID, l.ReceiveCount, l.Message, l.Status, l.Error, l.Reason)
	}
	if b.Len() == 0 {
		return "      (the processor logged nothing about it)"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// storedSignalChanges reads the state table's stream from its start and
// returns every stored change of a signal's value or status
// (signalChangeKey), decided here from each record's old and new images,
// not by the code under test.
func storedSignalChanges(t *testing.T, cfg aws.Config, streamARN string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range streamRecords(t, cfg, streamARN) {
		sg := r.Change.Signal
		if sg == nil || sg.New == nil {
			continue
		}
		if sg.Old != nil && sg.Old.Status == sg.New.Status && sameJSON(sg.Old.Body, sg.New.Body) {
			continue // rewritten, unchanged
		}
		out[signalChangeKey(r.Change.VehicleID, sg.New.EventID, sg.Code, sg.New.Status, sg.New.Body)] = true
	}
	return out
}

// signalChangeKey names a stored change of a signal.
func signalChangeKey(vehicleID, eventID, code, status string, body map[string]any) string {
	b, _ := json.Marshal(body)
	if len(body) == 0 {
		b = nil
	}
	return strings.Join([]string{vehicleID, eventID, code, status, string(b)}, " ")
}

// sameJSON reports whether two bodies are the same JSON value.
func sameJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

// streamEvents reads the state table's stream from its start, as the
// publisher reads it, and returns the domain events of everything stored.
func streamEvents(tb testing.TB, cfg aws.Config, streamARN string) []domainevents.Event {
	tb.Helper()
	records := streamRecords(tb, cfg, streamARN)
	changes := make([]vehicle.EntryChange, len(records))
	for i, r := range records {
		changes[i] = r.Change
	}
	evs, err := domainevents.Derive(context.Background(), changes, noReauth{})
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}

// streamRecords reads the state table's stream from its start, as the
// publisher's event source does, and decodes its records.
func streamRecords(tb testing.TB, cfg aws.Config, streamARN string) []publisher.Record {
	tb.Helper()
	var records []publisher.Record
	collect := lambda.NewHandler(func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		for _, r := range ev.Records {
			ch, err := dynamostore.DecodeChange(streamlambda.AttributeValues(r.Change.Keys),
				streamlambda.AttributeValues(r.Change.OldImage), streamlambda.AttributeValues(r.Change.NewImage))
			if err != nil {
				tb.Errorf("stream record %s: %v", r.Change.SequenceNumber, err)
				continue
			}
			records = append(records, publisher.Record{SequenceNumber: r.Change.SequenceNumber, Change: ch})
		}
		return events.DynamoDBEventResponse{}, nil
	})
	reader := &devstack.StreamPoller{Streams: dynamodbstreams.NewFromConfig(cfg), StreamARN: streamARN, Handler: collect}
	for idle := 0; idle < 3; {
		res, err := reader.PollOnce(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if res.Delivered == 0 {
			idle++
			time.Sleep(400 * time.Millisecond) // a held-back record is delivered after 1 s
		}
	}
	return records
}

// noReauth says no vehicle needs re-authentication.
type noReauth struct{}

func (noReauth) NeedsReauth(context.Context, string) (bool, error) { return false, nil }
