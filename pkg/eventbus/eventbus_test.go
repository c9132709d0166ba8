package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend/resendtest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const source = "smartcar-webhook-receiver"

// fakeEvents is EventBridge's PutEvents over a resendtest.Service, which
// answers each call and records it by each entry's DetailType (which the
// tests make unique).
type fakeEvents struct {
	svc *resendtest.Service

	mu      sync.Mutex
	entries map[string]types.PutEventsRequestEntry // the last sent of each DetailType
}

func newFake(svc *resendtest.Service) *fakeEvents {
	return &fakeEvents{svc: svc, entries: map[string]types.PutEventsRequestEntry{}}
}

func (f *fakeEvents) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	var ids []string
	size := 0
	f.mu.Lock()
	for _, e := range in.Entries {
		if aws.ToString(e.EventBusName) != "bus" || aws.ToString(e.Source) != source {
			f.mu.Unlock()
			return nil, fmt.Errorf("entry to bus %q from %q", aws.ToString(e.EventBusName), aws.ToString(e.Source))
		}
		id := aws.ToString(e.DetailType)
		ids = append(ids, id)
		f.entries[id] = e
		size += sizeOf(e)
	}
	f.mu.Unlock()
	if len(in.Entries) == 0 || len(in.Entries) > eventbus.MaxBatchEntries || size > eventbus.MaxBatchBytes {
		f.svc.Broke(fmt.Sprintf("%d entries of %d bytes", len(in.Entries), size))
		return nil, errors.New("ValidationException")
	}
	codes, short, err := f.svc.Call(ids)
	if err != nil {
		return nil, err
	}
	out := &eventbridge.PutEventsOutput{}
	for i, code := range codes {
		switch code {
		case "":
			out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String("ev-" + ids[i])})
		case resendtest.Neither:
			out.Entries = append(out.Entries, types.PutEventsResultEntry{})
		default:
			out.FailedEntryCount++
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String(resendtest.Message)})
		}
	}
	if short {
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

// publisher is the Publisher under the resend contract, over a fake of
// EventBridge.
var publisher = resendtest.Adapter[eventbus.Entry]{
	ID:      func(e eventbus.Entry) string { return e.DetailType },
	Entries: entries,
	Send: func(ctx context.Context, svc *resendtest.Service, opts []resend.Option, entries []eventbus.Entry) []error {
		return eventbus.New(newFake(svc), "bus", source, opts...).Publish(ctx, entries)
	},
	Retryable:  "ThrottlingException",
	Missing:    "MissingEventId",
	CallError:  &types.InternalException{Message: aws.String("Slow down.")},
	ShortError: "1 results for 2 entries",
}

func TestPublishContract(t *testing.T) { resendtest.Contract(t, publisher) }

// TestPublish: what EventBridge's own rules ask beyond the contract:
// codes no resend can change, and calls of at most 10 entries and 256 KB.
func TestPublish(t *testing.T) {
	const throttled = "ThrottlingException"
	tooLarge := sized(100, eventbus.MaxEntryBytes+1, 100)
	isTooLarge := resendtest.IsError(eventbus.ErrTooLarge)
	resendtest.Run(t, publisher, []resendtest.Case[eventbus.Entry]{
		{
			Name: "permanent refusal not resent", Entries: entries(3),
			Answer: func(call int, ids []string) ([]string, error) {
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
			WantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-2"}},
			WantErr:   map[string]func(error) bool{"e-0": resendtest.IsRefused("MalformedDetail", 1)},
		},
		{
			Name: "chunks of 10 entries, a whole-call error fails only its chunk", Entries: entries(23),
			Answer: func(call int, _ []string) ([]string, error) {
				if call == 1 {
					return nil, errors.New("connection reset")
				}
				return nil, nil
			},
			WantCalls: [][]string{resendtest.IDs(0, 10), resendtest.IDs(10, 20), resendtest.IDs(20, 23)},
			WantErr: func() map[string]func(error) bool {
				m := map[string]func(error) bool{}
				for _, id := range resendtest.IDs(10, 20) {
					m[id] = resendtest.Contains("connection reset")
				}
				return m
			}(),
		},
		{
			Name: "resends stay within their chunk", Entries: entries(12),
			Answer:    resendtest.RefuseOnce(throttled, "e-3", "e-11"),
			WantCalls: [][]string{resendtest.IDs(0, 10), {"e-3"}, {"e-10", "e-11"}, {"e-11"}},
		},
		{
			Name: "chunks of 256 KB: exactly full", Entries: sized(100<<10, 100<<10, 56<<10, 100, 200<<10),
			Answer:    resendtest.AcceptAll,
			WantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-3", "e-4"}},
		},
		{
			Name: "chunks of 256 KB: a byte over", Entries: sized(100<<10, 100<<10, 56<<10+1, 200<<10-1),
			Answer:    resendtest.AcceptAll,
			WantCalls: [][]string{{"e-0", "e-1"}, {"e-2", "e-3"}},
		},
		{
			Name: "entries of 256 KB, one a call", Entries: sized(eventbus.MaxEntryBytes, 100, eventbus.MaxEntryBytes),
			Answer:    resendtest.AcceptAll,
			WantCalls: [][]string{{"e-0"}, {"e-1"}, {"e-2"}},
		},
		{
			Name: "oversized entry refused without a call", Entries: tooLarge, Answer: resendtest.AcceptAll,
			WantCalls: [][]string{{"e-0", "e-2"}},
			WantErr:   map[string]func(error) bool{"e-1": isTooLarge},
		},
		{
			Name: "oversized entry alone: no call", Entries: sized(eventbus.MaxEntryBytes + 1), Answer: resendtest.AcceptAll,
			WantErr: map[string]func(error) bool{"e-0": isTooLarge},
		},
	})
}

// TestPublishRequest checks what each entry is sent as: the bus, the
// source, the detail type and detail as given, and a Time only if set.
func TestPublishRequest(t *testing.T) {
	f := newFake(resendtest.NewService(resendtest.AcceptAll))
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
