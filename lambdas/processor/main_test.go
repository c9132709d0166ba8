package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"

// processorEvents is the documented outcome of each events/processor file
// on an empty stack: no batchItemFailures (a poison record is dead-lettered
// with its reason and acknowledged; a duplicate of a completed event is
// skipped), the events applied, what the vehicle then holds, and the DLQ.
var processorEvents = map[string]struct {
	succeeded, duplicates int // processing.succeeded and processing.duplicate lines
	signals, errors       int // the vehicle's entries
	deadLetters           int
}{
	"sqs-vehicle-state.json":        {succeeded: 1, signals: 3},
	"sqs-vehicle-error.json":        {succeeded: 1, errors: 2},
	"sqs-batch-with-poison.json":    {succeeded: 2, signals: 3, errors: 2, deadLetters: 1},
	"sqs-duplicate-deliveries.json": {succeeded: 1, duplicates: 1, signals: 3},
}

// TestBootstrap runs the real binary (linux, this machine's architecture)
// under the Lambda Runtime Interface Emulator, as `sam local invoke` does,
// against the AWS emulator: each events/processor file on a stack of its
// own.
func TestBootstrap(t *testing.T) {
	bin, size := awstest.BuildBootstrap(t, ".")
	t.Logf("processor bootstrap: %d bytes (linux, host architecture)", size)
	files, err := os.ReadDir("../../events/processor")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Name(), func(t *testing.T) {
			want, ok := processorEvents[f.Name()]
			if !ok {
				t.Fatalf("events/processor/%s: no documented outcome in processorEvents", f.Name())
			}
			ctx := context.Background()
			cfg := awstest.Config(t)
			stk := newStack(t)
			ddb, eventsTable, stateTable, dlq := dynamodb.NewFromConfig(cfg), stk.eventsTable, stk.stateTable, stk.dlq
			fn := stk.start(t, bin)
			event := samples.MustRead("processor/" + f.Name())
			id := "invoke-" + strings.TrimSuffix(f.Name(), ".json")
			res := fn.Invoke(t, id, event)
			if res.Status != 200 || res.FunctionError != "" {
				t.Fatalf("emulator answered %d (%s): %s\n%s", res.Status, res.FunctionError, res.Payload, fn.Output)
			}
			var resp events.SQSEventResponse
			if err := json.Unmarshal(res.Payload, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("response %s (%v), want no batchItemFailures\n%s", res.Payload, err, fn.Output)
			}
			fn.AwaitOutput(t, "REPORT RequestId: "+id)
			if got := strings.Count(fn.Output.String(), `"message":"processing.succeeded"`); got != want.succeeded {
				t.Errorf("%d processing.succeeded lines, want %d\n%s", got, want.succeeded, fn.Output)
			}
			if got := strings.Count(fn.Output.String(), `"message":"processing.duplicate"`); got != want.duplicates {
				t.Errorf("%d processing.duplicate lines, want %d\n%s", got, want.duplicates, fn.Output)
			}

			st, err := dynamostore.New(ddb, eventsTable, stateTable).GetVehicle(ctx, vehicleID)
			if err != nil || st.Source != vehicle.SourceEntries || len(st.Signals) != want.signals || len(st.Errors) != want.errors {
				t.Errorf("vehicle = %+v, %v; want %d signals and %d errors", st, err, want.signals, want.errors)
			}

			var batch events.SQSEvent
			if err := json.Unmarshal(event, &batch); err != nil {
				t.Fatal(err)
			}
			out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10})
			if err != nil || len(out.Messages) != want.deadLetters {
				t.Fatalf("DLQ holds %d messages (%v), want %d", len(out.Messages), err, want.deadLetters)
			}
			// The poison record is the batch's last, dead-lettered byte for byte.
			for _, m := range out.Messages {
				if last := batch.Records[len(batch.Records)-1].Body; aws.ToString(m.Body) != last {
					t.Errorf("dead letter %q, want the poison record %q", aws.ToString(m.Body), last)
				}
			}
		})
	}
}

// stack is one test's tables and DLQ on the AWS emulator.
type stack struct{ eventsTable, stateTable, dlq string }

func newStack(t *testing.T) stack {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	name := awstest.Name(t, "bootstrap")
	st := stack{eventsTable: name + "-events", stateTable: name + "-vehicles"}
	dlq, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	st.dlq = aws.ToString(dlq.QueueUrl)
	if err := dynamostore.CreateTables(ctx, dynamodb.NewFromConfig(cfg), st.eventsTable, st.stateTable); err != nil {
		t.Fatal(err)
	}
	return st
}

// start runs bin under the Lambda Runtime Interface Emulator on the stack.
// One record at a time: this process cannot serialize the binary's
// DynamoDB requests (moto.AtomicDynamoDB works in-process), and moto's
// transactions are not atomic under concurrency. Concurrent batches are
// tested in-process, in pkg/functions and pkg/devstack.
func (st stack) start(t *testing.T, bin string) *awstest.Function {
	t.Helper()
	return awstest.StartFunction(t, bin, "processor", awstest.FunctionEnv(awstest.Endpoint(t), map[string]string{
		"EVENTS_TABLE": st.eventsTable, "STATE_TABLE": st.stateTable, "DLQ_URL": st.dlq, "BATCH_CONCURRENCY": "1",
	}))
}

// TestBootstrapRunsRegisteredHandlers: a handler registered in
// pkg/handlers runs in the Lambda. Built with -tags handlertest, Register
// adds a probe that logs handler.probe_ran for each event; the Lambda's
// bootstrap, under the emulator, must log it for the event it applies.
func TestBootstrapRunsRegisteredHandlers(t *testing.T) {
	bin, _ := awstest.BuildBootstrap(t, ".", "handlertest")
	fn := newStack(t).start(t, bin)
	res := fn.Invoke(t, "invoke-probe", samples.MustRead("processor/sqs-vehicle-state.json"))
	if res.Status != 200 || res.FunctionError != "" {
		t.Fatalf("emulator answered %d (%s): %s\n%s", res.Status, res.FunctionError, res.Payload, fn.Output)
	}
	fn.AwaitOutput(t, "REPORT RequestId: invoke-probe")
	if !strings.Contains(fn.Output.String(), `"message":"handler.probe_ran","eventId":"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"`) {
		t.Errorf("the registered handler did not run in the Lambda:\n%s", fn.Output)
	}
}

// BenchmarkColdStart measures the function's init, which builds its
// clients but does no network I/O.
func BenchmarkColdStart(b *testing.B) {
	awstest.BenchmarkColdStart(b, ".", map[string]string{
		"QUEUE_URL": "http://127.0.0.1:1/q", "AMT_SECRET_ID": "s",
		"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "http://127.0.0.1:1/d",
	})
}
