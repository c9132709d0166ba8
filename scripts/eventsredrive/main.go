// Command eventsredrive publishes again the stream ranges the deployed
// publisher gave up on.
//
// When the publisher's DynamoDB event source runs out of retries on a batch
// of the vehicle-state table's stream (or finds a record in it older than
// its maximum age), it sends PublisherFailureQueue a description of the
// batch: its shard and first and last sequence numbers, not the records.
// For each such message the tool reads the range from the stream again,
// runs it through the publisher's handler in this process (with the
// stack's bus and state table: functions.NewPublisher) and deletes the
// message once every record of the range was published (package
// streamredrive). A message it could not redrive is left on the queue and
// said why. With -dry-run it lists the messages and whether the stream
// still holds their ranges, and publishes nothing.
//
// The stream keeps a record 24 hours from when it was written: a range
// redriven later is gone, and the vehicles' current state is in the state
// table. Records before the one that failed may be published a second
// time: consumers drop the repeats by their idempotency keys.
//
// The deployed stack (-stack, make's AWS=1) names the queue in its output
// PublisherFailureQueueUrl; -queue names any. The local stack of `make
// dev` has no failure queue: its stream poller retries a failing batch
// until it succeeds.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamredrive"
)

const usage = `Usage: eventsredrive [-stack NAME | -env] [-queue URL] [-dry-run]

Reads the publisher's failure queue (PublisherFailureQueue): each message describes a batch of the
vehicle-state table's stream the publisher gave up on. Reads each batch's records from the stream
again, publishes their domain events with the publisher (in this process, on the stack's bus) and
deletes the message once all were published; prints a line per message. A message it could not
redrive stays on the queue. The stream keeps records 24 hours from when they were written.

  make events-redrive AWS=1 DRY_RUN=1    list the failures, and whether the stream still holds them
  make events-redrive AWS=1              publish them

`

// FailureQueueOutput is the deployed stack's output naming the queue.
const FailureQueueOutput = "PublisherFailureQueueUrl"

// localStack explains why the local stack has nothing to redrive.
const localStack = `the local stack (make dev) has no publisher failure queue: its stream poller retries a failing
batch until it succeeds, never giving it up (the publisher's errors are in make dev's output).
Redrive the deployed stack's failures with AWS=1 (-stack NAME), or name a queue with -queue URL.`

// hidden is how long a received message stays hidden from other reads:
// longer than a range's redrive with its retries.
const hidden = 15 * time.Minute

func main() {
	if err := run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eventsredrive:", devstack.WithAWSHint(err))
		os.Exit(1)
	}
}

// run is the tool; getenv (nil: os.Getenv) reads -env's variables.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var target devstack.Target
	target.Getenv = getenv
	fs := devstack.NewFlagSet("eventsredrive", usage, stderr, &target)
	queue := fs.String("queue", "", "read the failure queue at `URL` (default: the deployed stack's output "+FailureQueueOutput+")")
	dryRun := fs.Bool("dry-run", false, "list the messages and whether the stream still holds their ranges; publish and delete nothing")
	if err := devstack.ParseFlags(fs, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	switch {
	case *queue == "" && target.Env:
		return errors.New("-env: pass the failure queue with -queue URL (the stack's output " + FailureQueueOutput + ")")
	case *queue == "" && target.Stack == "":
		fmt.Fprintln(stdout, localStack)
		return nil
	}
	if !*dryRun {
		target.Needs = []string{devstack.EnvEventBusName, devstack.EnvStateTable}
	}
	// Ctrl-C ends the tool between messages' steps: what it has not
	// redriven is made visible again on the queue.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	queueURL := *queue
	if queueURL == "" {
		outputs, _, err := target.StackOutputs(ctx)
		if err != nil {
			return err
		}
		if queueURL = outputs[FailureQueueOutput]; queueURL == "" {
			return fmt.Errorf("stack %s has no %s output: it was deployed before the publisher's failure queue (deploy the current version), "+
				"or pass the queue with -queue URL", target.Stack, FailureQueueOutput)
		}
	}
	var handler lambda.Handler
	if !*dryRun {
		if res.EventBusName == "" {
			return errors.New("the stack names no domain events' bus (output EventBusName): it was deployed before the publisher")
		}
		env := res.PublisherEnv()
		env["LOG_LEVEL"] = devstack.ToolLogLevel()
		h, err := functions.NewPublisher(func(k string) string { return env[k] }, cfg, emf.WithoutMetrics(stderr))
		if err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		handler = lambda.NewHandler(h)
	}
	return redrive(ctx, sqs.NewFromConfig(cfg), dynamodbstreams.NewFromConfig(cfg), handler, queueURL, stdout, stderr)
}

// SQSAPI is the part of the SQS client the tool uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// redrive reads every message of the queue and redrives each with handler
// (nil: a dry run, which lists them), printing a line per message; those
// it does not delete it makes visible again before it returns. The error
// counts the messages left.
func redrive(ctx context.Context, q SQSAPI, streams streamredrive.StreamsAPI, handler lambda.Handler, queueURL string, stdout, stderr io.Writer) error {
	var kept []types.Message
	defer func() {
		// Visible again at once, for the next run or another reader.
		for _, m := range kept {
			_, _ = q.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			})
		}
	}()
	r := streamredrive.Redriver{Streams: streams, Handler: handler}
	seen := map[string]bool{}
	deleted, left := 0, 0
	for ctx.Err() == nil {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: int32(hidden.Seconds()),
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", queueURL, err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				kept = append(kept, m)
				continue
			}
			seen[id] = true
			if handler == nil {
				fmt.Fprintln(stdout, id+"  "+list(ctx, r, m))
				kept = append(kept, m)
				continue
			}
			line, ok := one(ctx, r, m)
			if ok {
				_, err := q.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle})
				if err != nil {
					line += fmt.Sprintf("; but not deleted (%v): a next run publishes it again", err)
					ok = false
				} else {
					line += "; deleted"
				}
			}
			if !ok {
				kept = append(kept, m)
				left++
			} else {
				deleted++
			}
			fmt.Fprintln(stdout, id+"  "+line)
		}
	}
	switch {
	case handler == nil:
		fmt.Fprintf(stderr, "%d message(s) in %s (dry run: nothing published, nothing deleted)\n", len(seen), queueURL)
	default:
		fmt.Fprintf(stderr, "%d message(s) in %s: %d redriven and deleted, %d left\n", len(seen), queueURL, deleted, left)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d message(s) not redriven, left on the queue: see the lines above", left)
	}
	return nil
}

// one redrives a message and says how that went; ok when every record
// of its range was published.
func one(ctx context.Context, r streamredrive.Redriver, m types.Message) (line string, ok bool) {
	body := []byte(aws.ToString(m.Body))
	if _, err := streamredrive.ParseFailure(body); err != nil {
		return "UNREADABLE: " + err.Error() + " (left on the queue)", false
	}
	res, err := r.Redrive(ctx, body)
	b := res.Failure.Batch
	switch {
	case errors.Is(err, streamredrive.ErrGone):
		return "GONE: " + err.Error() + " (make state VEHICLE=<vehicleId> shows one; the message is left on the queue: delete it once dealt with)", false
	case err != nil:
		return fmt.Sprintf("FAILED: %d of the %d records of %s published: %v (left on the queue)", res.Delivered, res.Read, b, err), false
	}
	line = fmt.Sprintf("published %d records  shard %s  %s..%s", res.Delivered, b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber)
	if res.Retries > 0 {
		line += fmt.Sprintf("  (%d retries)", res.Retries)
	}
	if b.BatchSize > 0 && b.BatchSize != res.Read {
		line += fmt.Sprintf("  (the failure counted %d)", b.BatchSize)
	}
	return line, true
}

// list describes a message: the range, why it was given up on, and
// whether the stream still holds it.
func list(ctx context.Context, r streamredrive.Redriver, m types.Message) string {
	f, err := streamredrive.ParseFailure([]byte(aws.ToString(m.Body)))
	if err != nil {
		return "UNREADABLE: " + err.Error()
	}
	b := f.Batch
	line := fmt.Sprintf("shard %s  %s..%s  %s at %s", b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber,
		cmp.Or(f.RequestContext.Condition, "given up"), cmp.Or(f.Timestamp, "?"))
	records, err := r.Read(ctx, b)
	switch {
	case errors.Is(err, streamredrive.ErrGone):
		return line + "  GONE: " + err.Error()
	case err != nil:
		return line + "  UNREAD: " + err.Error()
	}
	line += fmt.Sprintf("  would publish %d records", len(records))
	if exp, ok := b.Expires(); ok {
		line += fmt.Sprintf("  (the stream keeps them until about %s)", exp.UTC().Format(time.RFC3339))
	}
	return line
}
