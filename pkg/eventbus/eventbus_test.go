package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/eventbus"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const source = "smartcar-webhook-receiver"

// fakeEvents records the calls it gets, by each entry's DetailType, which
// the tests make unique, and answers them with answer.
type fakeEvents struct {
	// answer returns, for call number call (0 for the first), the
	// ErrorCode of each entry ("" to accept it, "-" to answer neither an
	// EventId nor an ErrorCode), or an error for the call.
	answer func(call int, ids []string) ([]string, error)
	// cancel, if set, is called during the first call.
	cancel context.CancelFunc
	// short, if set, answers the first call with a result too few.
	short bool

	mu       sync.Mutex
	calls    [][]string // DetailTypes of each call's entries
	sizes    []int      // EntrySize of each call's entries together
	entries  map[string]types.PutEventsRequestEntry
	accepted map[string]int
	limits   []string // PutEvents' limits broken
}

func newFake(answer func(int, []string) ([]string, error)) *fakeEvents {
	return &fakeEvents{answer: answer, entries: map[string]types.PutEventsRequestEntry{}, accepted: map[string]int{}}
}

func (f *fakeEvents) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	size := 0
	for _, e := range in.Entries {
		if aws.ToString(e.EventBusName) != "bus" || aws.ToString(e.Source) != source {
			return nil, fmt.Errorf("entry to bus %q from %q", aws.ToString(e.EventBusName), aws.ToString(e.Source))
		}
		id := aws.ToString(e.DetailType)
		ids = append(ids, id)
		f.entries[id] = e
		size += sizeOf(e)
	}
	if len(in.Entries) == 0 || len(in.Entries) > eventbus.MaxBatchEntries || size > eventbus.MaxBatchBytes {
		f.limits = append(f.limits, fmt.Sprintf("%d entries of %d bytes", len(in.Entries), size))
		return nil, errors.New("ValidationException")
	}
	call := len(f.calls)
	f.calls = append(f.calls, ids)
	f.sizes = append(f.sizes, size)
	if call == 0 && f.cancel != nil {
		f.cancel()
	}
	codes, err := f.answer(call, ids)
	if err != nil {
		return nil, err
	}
	out := &eventbridge.PutEventsOutput{}
	for i, id := range ids {
		var code string
		if i < len(codes) {
			code = codes[i]
		}
		switch code {
		case "":
			f.accepted[id]++
			out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String(fmt.Sprintf("ev-%d-%d", call, i))})
		case "-":
			out.Entries = append(out.Entries, types.PutEventsResultEntry{})
		default:
			out.FailedEntryCount++
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("Slow down.")})
		}
	}
	if call == 0 && f.short {
		out.Entries = out.Entries[:len(out.Entries)-1]
	}
	return out, nil
}

// sizeOf is a request entry's size by AWS's formula, computed apart from
// the package's.
func sizeOf(e types.PutEventsRequestEntry) int {
	n := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	if e.Time != nil {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// refuse answers with code for the entries of ids, on calls before until.
func refuse(code string, until int, refused ...string) func(int, []string) ([]string, error) {
	return func(call int, ids []string) ([]string, error) {
		codes := make([]string, len(ids))
		for i, id := range ids {
			if call < until && slices.Contains(refused, id) {
				codes[i] = code
			}
		}
		return codes, nil
	}
}

// refuseOnce answers with code for the entries of ids the first time each
// is sent.
func refuseOnce(code string, refused ...string) func(int, []string) ([]string, error) {
	seen := map[string]bool{}
	return func(_ int, ids []string) ([]string, error) {
		codes := make([]string, len(ids))
		for i, id := range ids {
			if slices.Contains(refused, id) && !seen[id] {
				codes[i], seen[id] = code, true
			}
		}
		return codes, nil
	}
}

func acceptAll(int, []string) ([]string, error) { return nil, nil }

var at = time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)

// entries returns n entries with detail types e-0, e-1, ... and small
// details.
func entries(n int) []eventbus.Entry {
	out := make([]eventbus.Entry, n)
	for i := range out {
		out[i] = eventbus.Entry{DetailType: fmt.Sprintf("e-%d", i), Detail: fmt.Appendf(nil, `{"n":%d}`, i), Time: at}
	}
	return out
}

// sized returns entries with detail types e-0, e-1, ..., each of the size
// given as EventBridge counts it.
func sized(sizes ...int) []eventbus.Entry {
	out := entries(len(sizes))
	for i, n := range sizes {
		pad := n - len(source) - len(out[i].DetailType) - 14 - len(`{"p":""}`)
		out[i].Detail = []byte(`{"p":"` + strings.Repeat("x", pad) + `"}`)
		if got := eventbus.EntrySize(source, out[i]); got != n {
			panic(fmt.Sprintf("sized %d: %d", n, got))
		}
	}
	return out
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("e-%d", i))
	}
	return out
}

func TestPublish(t *testing.T) {
	const throttled = "ThrottlingException"
	internal := func(int, []string) ([]string, error) {
		return nil, &types.InternalException{Message: aws.String("Slow down.")}
	}
	tooLarge := sized(100, eventbus.MaxEntryBytes+1, 100)
	tests := []struct {
		name    string
		entries []eventbus.Entry
		answer  func(int, []string) ([]string, error)
		short   bool
		cancel  string // "before": ctx cancelled before Publish; "during": during the first call
		opts    []eventbus.Option
		// wantCalls are the detail types sent in each call.
		wantCalls [][]string
		// wantErr maps detail types to a check of their error; the others
		// must be nil.
		wantErr map[string]func(error) bool
	}{
		{
			name: "all accepted", entries: entries(3), answer: acceptAll,
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
		},
		{
			name: "no entry, no call", entries: nil, answer: acceptAll,
		},
		{
			name: "partial failure recovered on retry", entries: entries(4),
			answer:    refuse(throttled, 1, "e-1", "e-3"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2", "e-3"}, {"e-1", "e-3"}},
		},
		{
			name: "partial failure recovered on the last attempt", entries: entries(3),
			answer:    refuse("InternalFailure", 2, "e-2"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-2"}, {"e-2"}},
		},
		{
			name: "persistent partial failure fails exactly those entries", entries: entries(4),
			answer:    refuse(throttled, 99, "e-0", "e-2"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2", "e-3"}, {"e-0", "e-2"}, {"e-0", "e-2"}},
			wantErr: map[string]func(error) bool{
				"e-0": isEntryError(throttled, 3),
				"e-2": isEntryError(throttled, 3),
			},
		},
		{
			name: "one attempt: no resend", entries: entries(2), opts: []eventbus.Option{eventbus.WithAttempts(1)},
			answer:    refuse(throttled, 99, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1"}},
			wantErr:   map[string]func(error) bool{"e-1": isEntryError(throttled, 1)},
		},
		{
			name: "permanent refusal not resent", entries: entries(3),
			answer: func(call int, ids []string) ([]string, error) {
				codes := make([]string, len(ids))
				for i, id := range ids {
					switch {
					case id == "e-0":
						codes[i] = "MalformedDetail"
					case id == "e-2" && call == 0:
						codes[i] = throttled
					}
				}
				return codes, nil
			},
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-2"}},
			wantErr:   map[string]func(error) bool{"e-0": isEntryError("MalformedDetail", 1)},
		},
		{
			name: "entry neither accepted nor refused is resent", entries: entries(2),
			answer:    refuse("-", 1, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1"}, {"e-1"}},
		},
		{
			name: "entry never accepted nor refused fails", entries: entries(2),
			answer:    refuse("-", 99, "e-0"),
			wantCalls: [][]string{{"e-0", "e-1"}, {"e-0"}, {"e-0"}},
			wantErr: map[string]func(error) bool{"e-0": func(err error) bool {
				var ee *eventbus.EntryError
				return errors.As(err, &ee) && ee.Code == "MissingEventId" && ee.Attempts == 3
			}},
		},
		{
			name: "whole-call error fails the call's entries", entries: entries(3), answer: internal,
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			wantErr:   map[string]func(error) bool{"e-0": isInternal, "e-1": isInternal, "e-2": isInternal},
		},
		{
			name: "answer without a result per entry fails them all", entries: entries(2), answer: acceptAll, short: true,
			wantCalls: [][]string{{"e-0", "e-1"}},
			wantErr:   map[string]func(error) bool{"e-0": contains("1 results for 2 entries"), "e-1": contains("1 results for 2 entries")},
		},
		{
			name: "chunks of 10 entries, a whole-call error fails only its chunk", entries: entries(23),
			answer: func(call int, _ []string) ([]string, error) {
				if call == 1 {
					return nil, errors.New("connection reset")
				}
				return nil, nil
			},
			wantCalls: [][]string{ids(0, 10), ids(10, 20), ids(20, 23)},
			wantErr: func() map[string]func(error) bool {
				m := map[string]func(error) bool{}
				for _, id := range ids(10, 20) {
					m[id] = contains("connection reset")
				}
				return m
			}(),
		},
		{
			name: "resends stay within their chunk", entries: entries(12),
			answer:    refuseOnce(throttled, "e-3", "e-11"),
			wantCalls: [][]string{ids(0, 10), {"e-3"}, {"e-10", "e-11"}, {"e-11"}},
		},
		{
			name: "chunks of 256 KB: exactly full", entries: sized(100<<10, 100<<10, 56<<10, 100, 200<<10),
			answer:    acceptAll,
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-3", "e-4"}},
		},
		{
			name: "chunks of 256 KB: a byte over", entries: sized(100<<10, 100<<10, 56<<10+1, 200<<10-1),
			answer:    acceptAll,
			wantCalls: [][]string{{"e-0", "e-1"}, {"e-2", "e-3"}},
		},
		{
			name: "entries of 256 KB, one a call", entries: sized(eventbus.MaxEntryBytes, 100, eventbus.MaxEntryBytes),
			answer:    acceptAll,
			wantCalls: [][]string{{"e-0"}, {"e-1"}, {"e-2"}},
		},
		{
			name: "oversized entry refused without a call", entries: tooLarge, answer: acceptAll,
			wantCalls: [][]string{{"e-0", "e-2"}},
			wantErr:   map[string]func(error) bool{"e-1": isTooLarge},
		},
		{
			name: "oversized entry alone: no call", entries: sized(eventbus.MaxEntryBytes + 1), answer: acceptAll,
			wantErr: map[string]func(error) bool{"e-0": isTooLarge},
		},
		{
			name: "ctx cancelled before", entries: entries(2), answer: acceptAll, cancel: "before",
			wantErr: map[string]func(error) bool{"e-0": isCanceled, "e-1": isCanceled},
		},
		{
			name: "ctx cancelled during the backoff", entries: entries(3), cancel: "during",
			answer:    refuse(throttled, 99, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			wantErr: map[string]func(error) bool{"e-1": func(err error) bool {
				return isCanceled(err) && isEntryError(throttled, 1)(err)
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := newFake(tt.answer)
			f.short = tt.short
			switch tt.cancel {
			case "before":
				cancel()
			case "during":
				f.cancel = cancel
			}
			// An hour's backoff: only a cancelled ctx ends it in time.
			backoff := time.Millisecond
			if tt.cancel == "during" {
				backoff = time.Hour
			}
			p := eventbus.New(f, "bus", source, append([]eventbus.Option{eventbus.WithBackoff(backoff)}, tt.opts...)...)
			start := time.Now()
			errs := p.Publish(ctx, tt.entries)
			if d := time.Since(start); tt.cancel != "" && d > 5*time.Second {
				t.Errorf("Publish took %v after ctx was cancelled", d)
			}
			if len(errs) != len(tt.entries) {
				t.Fatalf("%d errors for %d entries", len(errs), len(tt.entries))
			}
			if len(f.limits) > 0 {
				t.Errorf("calls over PutEvents' limits: %v", f.limits)
			}
			if !slices.EqualFunc(f.calls, tt.wantCalls, slices.Equal) {
				t.Errorf("calls:\n got %.300v\nwant %.300v", f.calls, tt.wantCalls)
			}
			for i, e := range tt.entries {
				check := tt.wantErr[e.DetailType]
				switch {
				case check == nil && errs[i] != nil:
					t.Errorf("%s: %v, want published", e.DetailType, errs[i])
				case check != nil && (errs[i] == nil || !check(errs[i])):
					t.Errorf("%s: error %v, not the one expected", e.DetailType, errs[i])
				}
				// Never nil for an entry EventBridge did not accept.
				if errs[i] == nil && f.accepted[e.DetailType] != 1 {
					t.Errorf("%s: reported published, accepted %d times", e.DetailType, f.accepted[e.DetailType])
				}
			}
		})
	}
}

func isEntryError(code string, attempts int) func(error) bool {
	return func(err error) bool {
		var ee *eventbus.EntryError
		return errors.As(err, &ee) && ee.Code == code && ee.Message == "Slow down." && ee.Attempts == attempts &&
			strings.Contains(err.Error(), code) && strings.Contains(err.Error(), "Slow down.")
	}
}

func isInternal(err error) bool {
	var ie *types.InternalException
	return errors.As(err, &ie)
}

func isTooLarge(err error) bool { return errors.Is(err, eventbus.ErrTooLarge) }

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

func contains(s string) func(error) bool {
	return func(err error) bool { return strings.Contains(err.Error(), s) }
}

// TestPublishRequest checks what each entry is sent as: the bus, the
// source, the detail type and detail as given, and a Time only if set.
func TestPublishRequest(t *testing.T) {
	f := newFake(acceptAll)
	in := []eventbus.Entry{
		{DetailType: "with-time", Detail: []byte(`{"s":"ünïcode 😀"}`), Time: at.Add(1500 * time.Millisecond)},
		{DetailType: "without-time", Detail: []byte(`{}`)},
	}
	p := eventbus.New(f, "bus", source)
	if p.Bus() != "bus" || p.Source() != source {
		t.Errorf("Bus, Source = %q, %q", p.Bus(), p.Source())
	}
	for i, err := range p.Publish(context.Background(), in) {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	for _, e := range in {
		got := f.entries[e.DetailType]
		if aws.ToString(got.Detail) != string(e.Detail) || got.Resources != nil || got.TraceHeader != nil {
			t.Errorf("%s sent as %+v", e.DetailType, got)
		}
		switch {
		case e.Time.IsZero() && got.Time != nil:
			t.Errorf("%s: Time %v sent, want none", e.DetailType, got.Time)
		case !e.Time.IsZero() && (got.Time == nil || !got.Time.Equal(e.Time)):
			t.Errorf("%s: Time %v, want %v", e.DetailType, got.Time, e.Time)
		}
	}
}

// TestEntrySize follows AWS's "Calculating PutEvents event entry size".
func TestEntrySize(t *testing.T) {
	tests := []struct {
		name   string
		source string
		entry  eventbus.Entry
		want   int
	}{
		{"no Time", "src", eventbus.Entry{DetailType: "type", Detail: []byte(`{}`)}, 3 + 4 + 2},
		{"Time: 14 bytes", "src", eventbus.Entry{DetailType: "type", Detail: []byte(`{}`), Time: at}, 3 + 4 + 2 + 14},
		{"no Detail", "src", eventbus.Entry{DetailType: "type"}, 7},
		{"UTF-8 bytes, not characters", "sré", eventbus.Entry{DetailType: "tÿpe", Detail: []byte(`{"v":"😀"}`)}, 4 + 5 + 12},
		{"bytes not UTF-8 are sent as U+FFFD", "src", eventbus.Entry{DetailType: "t\xff", Detail: []byte("{\"v\":\"\xfe\xff\"}")}, 3 + 4 + 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventbus.EntrySize(tt.source, tt.entry); got != tt.want {
				t.Errorf("EntrySize = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	for code, want := range map[string]bool{
		"MalformedDetail": true, "InvalidArgument": true, "AccessDeniedException": true,
		"NotAuthorizedForSourceException": true, "NotAuthorizedForDetailTypeException": true, "InvalidAccountIdException": true,
		"ThrottlingException": false, "InternalFailure": false, "MissingEventId": false, "SomethingNew": false,
	} {
		if got := eventbus.Permanent(code); got != want {
			t.Errorf("Permanent(%q) = %v, want %v", code, got, want)
		}
	}
}

// TestPublishThroughMoto publishes to a custom bus of the emulator, through
// the strict layer, whose rule sends the bus's events to a queue, and reads
// them back from it.
func TestPublishThroughMoto(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	eb := eventbridge.NewFromConfig(cfg)
	sq := sqs.NewFromConfig(cfg)

	bus := awstest.Name(t, "bus")
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	queue, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "events"))})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	rule := awstest.Name(t, "rule")
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name: aws.String(rule), EventBusName: aws.String(bus), EventPattern: aws.String(`{"source":["` + source + `"]}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []types.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}},
	}); err != nil {
		t.Fatal(err)
	}

	in := []eventbus.Entry{
		{DetailType: "VehicleStateChanged", Detail: []byte(`{"vehicleId":"v-1","odometer":{"distance":12.5},"note":"ünïcode 😀"}`), Time: at.Add(1500 * time.Millisecond)},
		{DetailType: "VehicleReauthRequired", Detail: []byte(`{"vehicleId":"v-2"}`), Time: at.Add(time.Hour)},
	}
	for i, err := range eventbus.New(eb, bus, source).Publish(ctx, in) {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}

	type event struct {
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Time       string          `json:"time"`
		Detail     json.RawMessage `json:"detail"`
	}
	got := map[string]event{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(in) && time.Now().Before(deadline) {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var e event
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
			}
			if _, dup := got[e.DetailType]; dup {
				t.Errorf("%s received twice", e.DetailType)
			}
			got[e.DetailType] = e
		}
	}
	for _, want := range in {
		e, ok := got[want.DetailType]
		if !ok {
			t.Errorf("%s not received", want.DetailType)
			continue
		}
		// EventBridge gives an event's time to the second.
		if wantTime := want.Time.UTC().Truncate(time.Second).Format(time.RFC3339); e.Source != source || e.Time != wantTime {
			t.Errorf("%s: source %q, time %q, want %q, %q", want.DetailType, e.Source, e.Time, source, wantTime)
		}
		if !sameJSON(e.Detail, want.Detail) {
			t.Errorf("%s: detail %s, want %s", want.DetailType, e.Detail, want.Detail)
		}
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
