package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

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

// TestBootstrap runs the real binary as Lambda does, against a local
// Runtime API and the emulator, with an SQS batch holding a poison record.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	name := awstest.Name(t, "bootstrap")
	eventsTable, stateTable := name+"-events", name+"-vehicles"
	dlq, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(cfg)
	if err := dynamostore.CreateTables(ctx, ddb, eventsTable, stateTable); err != nil {
		t.Fatal(err)
	}
	bin, size := awstest.BuildBootstrap(t, ".")
	api := awstest.NewRuntimeAPI(t)
	// One record at a time: this process cannot serialize the binary's
	// DynamoDB requests (moto.AtomicDynamoDB works in-process), and moto's
	// transactions are not atomic under concurrency. Concurrent batches are
	// tested in-process, in pkg/functions and pkg/devstack.
	fn := awstest.StartBootstrap(t, bin, api, awstest.LambdaEnv(api, "processor", awstest.Endpoint(t), map[string]string{
		"EVENTS_TABLE": eventsTable, "STATE_TABLE": stateTable, "DLQ_URL": *dlq.QueueUrl,
		"BATCH_CONCURRENCY": "1",
	}))
	t.Logf("processor bootstrap: %d bytes (host build), init %v (process start to first /next)", size, fn.Init)
	event := samples.MustRead("processor/sqs-batch-with-poison.json")
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := api.Invoke(ictx, event)
	if err != nil || res.Error {
		t.Fatalf("%v, %+v\n%s", err, res, fn.Output.String())
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("response %s, %v", res.Payload, err)
	}
	st, err := dynamostore.New(ddb, eventsTable, stateTable).GetVehicle(ctx, "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24")
	if err != nil || st.Source != vehicle.SourceEntries || len(st.Signals) != 3 || len(st.Errors) != 2 {
		t.Fatalf("vehicle = %+v, %v; want both events applied", st, err)
	}
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("DLQ holds %d messages, %v", len(out.Messages), err)
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
