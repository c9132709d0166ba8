// Command eventstail prints the domain events the publisher put on the
// local stack's EventBridge bus, read from the queue that `make dev`
// subscribes to it (a rule matching the publisher's source), one line an
// event; it deletes what it printed unless -keep. With -follow it waits
// for more until Ctrl-C.
//
// A deployed stack subscribes no queue for it: subscribe one of your own
// (the tool explains how) and pass it with -queue, or with -env
// (EVENTS_TAIL_QUEUE_URL).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

const usage = `Usage: eventstail [flags]

Prints the domain events published on this checkout's local stack's bus (make dev), one line an event:
time, detail-type, vehicleId, eventId, idempotencyKey; with -detail the event's whole detail too.
Reads them from the queue a rule on the bus sends them to, and deletes what it printed unless -keep.
Without -follow it prints what is there and exits.

`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eventstail:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eventstail", flag.ExitOnError)
	var target devstack.Target
	target.AddFlags(fs)
	var o options
	fs.BoolVar(&o.follow, "follow", false, "keep waiting for events (long polls of 10 s) until Ctrl-C")
	fs.BoolVar(&o.detail, "detail", false, "print each event's whole detail (JSON) under its line")
	fs.BoolVar(&o.keep, "keep", false, "leave the events printed on the queue (they are visible again when the tool ends)")
	queue := fs.String("queue", "", "read the SQS queue at `URL` (one a rule on the bus sends the events to), "+
		"not the local stack's; for a deployed stack, which has none ($"+devstack.EnvEventsTailQueueURL+" under -env)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	if *queue == "" {
		target.Needs = []string{devstack.EnvEventsTailQueueURL}
	}
	// Ctrl-C ends the tool cleanly: what it printed is deleted (or, with
	// -keep, made visible again) before it exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	o.queueURL = cmp.Or(*queue, res.EventsTailQueueURL)
	if o.queueURL == "" {
		return noQueue(target, res)
	}
	return tail(ctx, sqs.NewFromConfig(cfg), o, stdout, stderr)
}

// noQueue explains what to do when the target has no queue to read.
func noQueue(target devstack.Target, res devstack.Resources) error {
	if target.Stack == "" {
		return errors.New("the local stack has no events-tail queue (its make dev predates the domain events' bus): restart make dev")
	}
	if res.EventBusName == "" {
		return fmt.Errorf("stack %s has no EventBusName output: it was deployed before the domain events (deploy the current version)", target.Stack)
	}
	source := cmp.Or(res.EventSource, devstack.EventSource)
	return fmt.Errorf(`stack %[1]s puts its domain events on the EventBridge bus %[2]s (source %[3]s), but subscribes no queue for events-tail:
subscribe one of your own, then pass it with QUEUE=<url> (make) or -queue <url>:
  aws sqs create-queue --queue-name %[4]s                      # prints its QueueUrl; get its QueueArn with
  aws sqs get-queue-attributes --queue-url <url> --attribute-names QueueArn
  aws events put-rule --name %[4]s --event-bus-name %[2]s \
      --event-pattern '{"source":["%[3]s"]}'                   # prints the RuleArn
  aws events put-targets --rule %[4]s --event-bus-name %[2]s --targets Id=events-tail,Arn=<queue arn>
and give the queue a policy (aws sqs set-queue-attributes, attribute Policy) allowing the principal
events.amazonaws.com sqs:SendMessage on it, on condition ArnEquals aws:SourceArn = the rule's ARN.
Only events put after the rule exists arrive. When done: aws events remove-targets --rule %[4]s
--event-bus-name %[2]s --ids events-tail; aws events delete-rule --name %[4]s --event-bus-name %[2]s;
aws sqs delete-queue --queue-url <url>`, target.Stack, res.EventBusName, source, devstack.EventsTailQueue)
}

type options struct {
	queueURL             string
	follow, detail, keep bool
	// wait is a receive's long poll under -follow (default 10 s);
	// without, the poll that finds the queue empty (default 1 s).
	wait time.Duration
}

// SQSAPI is the part of the SQS client the tool uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// hidden is how long a received message stays hidden from other reads:
// long enough that this run does not see it twice while it works.
const hidden = 5 * time.Minute

// event is an EventBridge event as a rule delivers it to SQS.
type event struct {
	ID         string          `json:"id"`
	Time       string          `json:"time"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`

	msg  types.Message
	body string // when the message is not an EventBridge event
}

// tail prints the events on the queue, deletes them unless keep, and
// with follow waits for more until ctx ends.
func tail(ctx context.Context, api SQSAPI, o options, stdout, stderr io.Writer) error {
	t := &tailer{api: api, o: o, stdout: stdout, stderr: stderr, seen: map[string]bool{}}
	err := t.run(ctx)
	// Cleanup runs even after Ctrl-C.
	cleanup := context.WithoutCancel(ctx)
	if len(t.unprinted) > 0 {
		t.release(cleanup, t.unprinted)
	}
	if o.keep {
		t.release(cleanup, t.kept)
	}
	what := "deleted"
	if o.keep {
		what = "kept"
	}
	fmt.Fprintf(stderr, "%d event(s) from %s, %s\n", t.printed, o.queueURL, what)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

type tailer struct {
	api            SQSAPI
	o              options
	stdout, stderr io.Writer
	seen           map[string]bool // message ids printed
	kept           []types.Message // printed, to make visible again (-keep)
	unprinted      []types.Message // received, not printed (interrupted)
	printed        int
}

func (t *tailer) run(ctx context.Context) error {
	wait := t.o.wait
	if wait <= 0 {
		wait = time.Second
		if t.o.follow {
			wait = 10 * time.Second
		}
	}
	if t.o.follow {
		fmt.Fprintf(t.stderr, "following %s (Ctrl-C to stop) ...\n", t.o.queueURL)
		for {
			batch, err := t.receive(ctx, wait)
			if err != nil {
				return err
			}
			t.unprinted = batch
			if err := t.print(ctx, batch); err != nil {
				return err
			}
		}
	}
	// Everything there, then in the order of the events' times.
	for {
		batch, err := t.receive(ctx, wait)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		t.unprinted = append(t.unprinted, batch...)
	}
	return t.print(ctx, t.unprinted)
}

// receive returns the messages of one receive not printed yet.
func (t *tailer) receive(ctx context.Context, wait time.Duration) ([]types.Message, error) {
	out, err := t.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(t.o.queueURL), MaxNumberOfMessages: 10,
		WaitTimeSeconds: int32(wait.Seconds()), VisibilityTimeout: int32(hidden.Seconds()),
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, devstack.WithAWSHint(fmt.Errorf("receive from %s: %w", t.o.queueURL, err))
	}
	var fresh []types.Message
	for _, m := range out.Messages {
		if t.seen[aws.ToString(m.MessageId)] {
			// Kept, and visible again: printed already.
			continue
		}
		fresh = append(fresh, m)
	}
	return fresh, nil
}

// print prints the messages, sorted by their events' times, and deletes
// them unless keep.
func (t *tailer) print(ctx context.Context, msgs []types.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	evs := make([]event, len(msgs))
	for i, m := range msgs {
		evs[i] = parse(m)
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(eventTime(a), eventTime(b)) })
	for _, ev := range evs {
		fmt.Fprintln(t.stdout, line(ev))
		if t.o.detail {
			fmt.Fprintln(t.stdout, "  "+detail(ev))
		}
		t.seen[aws.ToString(ev.msg.MessageId)] = true
		t.printed++
	}
	t.unprinted = nil
	if t.o.keep {
		t.kept = append(t.kept, msgs...)
		return nil
	}
	return t.delete(context.WithoutCancel(ctx), msgs)
}

func (t *tailer) delete(ctx context.Context, msgs []types.Message) error {
	for batch := range slices.Chunk(msgs, 10) {
		var entries []types.DeleteMessageBatchRequestEntry
		for i, m := range batch {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
		out, err := t.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(t.o.queueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("delete from %s: %w", t.o.queueURL, err)
		}
		for _, f := range out.Failed {
			fmt.Fprintf(t.stderr, "eventstail: warning: not deleted: %s\n", aws.ToString(f.Message))
		}
	}
	return nil
}

// release makes the messages visible again at once.
func (t *tailer) release(ctx context.Context, msgs []types.Message) {
	for batch := range slices.Chunk(msgs, 10) {
		var entries []types.ChangeMessageVisibilityBatchRequestEntry
		for i, m := range batch {
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := t.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(t.o.queueURL), Entries: entries,
		}); err != nil {
			fmt.Fprintf(t.stderr, "eventstail: warning: %d message(s) stay hidden for up to %v: %v\n", len(batch), hidden, err)
		}
	}
}

// parse reads a message as an EventBridge event.
func parse(m types.Message) event {
	body := aws.ToString(m.Body)
	var ev event
	if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.DetailType == "" {
		ev = event{body: body}
	}
	ev.msg = m
	return ev
}

// eventTime is the event's time as it sorts; a message that is no event
// sorts by when it was sent.
func eventTime(ev event) string {
	if t, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil {
		return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
	}
	return ""
}

// line is an event's line: time, detail-type and the detail's ids.
func line(ev event) string {
	if ev.body != "" {
		return fmt.Sprintf("%s  (not an EventBridge event: message %s)", cmp.Or(ev.Time, "-"), aws.ToString(ev.msg.MessageId))
	}
	d, _ := decode(ev.Detail)
	fields := []string{cmp.Or(ev.Time, "-"), ev.DetailType}
	for _, key := range []string{"vehicleId", "eventId", "idempotencyKey"} {
		fields = append(fields, key+"="+cmp.Or(find(d, key, 2), "-"))
	}
	return strings.Join(fields, "  ")
}

// detail is the event's detail, as one line of JSON; the body of a
// message that is no event.
func detail(ev event) string {
	if ev.body != "" {
		return ev.body
	}
	d, err := decode(ev.Detail)
	if err != nil {
		return string(ev.Detail)
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// decode decodes JSON, keeping numbers as they are written.
func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// find returns the scalar value of key in v, a decoded JSON object: at
// its top, else in the objects within it, down to depth levels.
func find(v any, key string, depth int) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	switch x := obj[key].(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return fmt.Sprint(x)
	}
	if depth == 0 {
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if s := find(obj[k], key, depth-1); s != "" {
			return s
		}
	}
	return ""
}
