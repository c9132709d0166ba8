package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// signals are the entries the test stores, in order: one signal each.
var signals = []string{"odometer", "fuel", "location"}

// stack provisions a local stack on the emulator, stores the signals of
// vehicle v1 in its state table (one change each on its stream) and
// returns its resources, an SQS client and the stream's shard and
// sequence numbers.
func stack(t *testing.T) (devstack.Resources, *sqs.Client, string, []string) {
	t.Helper()
	ctx := context.Background()
	awstest.SetEnv(t) // the tool's AWS configuration, as -env reads it
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: awstest.Name(t, "redrive") + "-"})
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(cfg)
	for i, code := range signals {
		_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(res.StateTable), Item: map[string]ddbtypes.AttributeValue{
			dynamostore.StateKey: &ddbtypes.AttributeValueMemberS{Value: "v1"},
			dynamostore.EntryKey: &ddbtypes.AttributeValueMemberS{Value: "signal#" + code},
			"b": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
				"value": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(10 + i)},
			}},
			"s":  &ddbtypes.AttributeValueMemberS{Value: "SUCCESS"},
			"oa": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(1_780_000_000_000 + i)},
			"ua": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(1_780_000_000_000 + i)},
			"ev": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("e%d", i)},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	shard, seqs := awstest.StreamSequences(t, res.StateStreamARN, len(signals))
	return res, sqs.NewFromConfig(cfg), shard, seqs
}

// failureQueue creates a queue holding the bodies, as the publisher's
// event source would send them to PublisherFailureQueue.
func failureQueue(t *testing.T, q *sqs.Client, bodies ...string) string {
	t.Helper()
	ctx := context.Background()
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "failures"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(out.QueueUrl)
}

// description is Lambda's invocation record for the batch of shard from
// start to end.
func description(arn, shard, start, end string, size int) string {
	return fmt.Sprintf(`{"requestContext":{"requestId":"r1","functionArn":"arn:aws:lambda:us-east-1:123456789012:function:PublisherFunction",
 "condition":"RetryAttemptsExhausted","approximateInvokeCount":11},"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
 "version":"1.0","timestamp":"2026-11-30T18:00:00.000Z","DDBStreamBatchInfo":{"shardId":%q,"startSequenceNumber":%q,"endSequenceNumber":%q,
 "approximateArrivalOfFirstRecord":"2026-11-30T17:00:00Z","approximateArrivalOfLastRecord":"2026-11-30T17:00:00Z","batchSize":%d,"streamArn":%q}}`,
		shard, start, end, size, arn)
}

// bodies returns the bodies of the messages on the queue, sorted, and
// leaves them there.
func bodies(t *testing.T, q *sqs.Client, url string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.Messages {
		got = append(got, aws.ToString(m.Body))
		// Visible again at once (a ReceiveMessage VisibilityTimeout of 0 is the queue's default).
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	return got
}

// published returns the signal codes of the domain events on the bus, as
// the events-tail queue received them.
func published(t *testing.T, q *sqs.Client, url string) []string {
	t.Helper()
	var codes []string
	for _, b := range bodies(t, q, url) {
		var ev struct {
			Detail struct {
				VehicleID string `json:"vehicleId"`
				Signals   []struct {
					Code string `json:"code"`
				} `json:"signals"`
			} `json:"detail"`
		}
		if err := json.Unmarshal([]byte(b), &ev); err != nil || ev.Detail.VehicleID != "v1" {
			t.Fatalf("not a domain event of v1: %s", b)
		}
		for _, s := range ev.Detail.Signals {
			codes = append(codes, s.Code)
		}
	}
	slices.Sort(codes)
	return codes
}

// TestRedriveTheFailureQueue: a dry run lists the messages and publishes
// nothing; a run publishes the domain events of exactly the records of
// each range, deletes its message, and leaves an unreadable message on the
// queue, saying so.
func TestRedriveTheFailureQueue(t *testing.T) {
	res, q, shard, seqs := stack(t)
	failure := description(res.StateStreamARN, shard, seqs[0], seqs[1], 2)
	queue := failureQueue(t, q, failure, "not a failure record")
	env := res.PublisherEnv()
	getenv := func(k string) string { return env[k] }
	args := []string{"-env", "-queue", queue}

	var out, errOut bytes.Buffer
	if err := run(context.Background(), append(args, "-dry-run"), getenv, &out, &errOut); err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut.String())
	}
	t.Logf("dry run printed:\n%s%s", out.String(), errOut.String())
	for _, s := range []string{"shard " + shard + "  " + seqs[0] + ".." + seqs[1] + "  RetryAttemptsExhausted at 2026-11-30T18:00:00.000Z  would publish 2 records",
		"UNREADABLE: not a Lambda invocation record"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("dry run printed\n%s\nwithout %q", out.String(), s)
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("dry run printed %d lines, want one a message:\n%s", n, out.String())
	}
	if got := published(t, q, res.EventsTailQueueURL); len(got) > 0 {
		t.Errorf("dry run published %v", got)
	}
	if got := bodies(t, q, queue); len(got) != 2 {
		t.Errorf("dry run left %d messages, want 2", len(got))
	}

	out.Reset()
	errOut.Reset()
	err := run(context.Background(), args, getenv, &out, &errOut)
	t.Logf("printed:\n%s%s", out.String(), errOut.String())
	if err == nil || !strings.Contains(err.Error(), "1 message(s) not redriven") {
		t.Errorf("error %v, want one counting the unreadable message", err)
	}
	if s := "published 2 records  shard " + shard + "  " + seqs[0] + ".." + seqs[1] + "; deleted"; !strings.Contains(out.String(), s) {
		t.Errorf("printed\n%s\nwithout %q", out.String(), s)
	}
	if !strings.Contains(out.String(), "UNREADABLE") || !strings.Contains(errOut.String(), "1 redriven and deleted, 1 left") {
		t.Errorf("printed\n%s\n%s", out.String(), errOut.String())
	}
	if strings.Contains(errOut.String(), `"_aws"`) {
		t.Errorf("the publisher's metrics printed: %s", errOut.String())
	}
	if got, want := published(t, q, res.EventsTailQueueURL), []string{"fuel", "odometer"}; !slices.Equal(got, want) {
		t.Errorf("published the signals %v, want %v (the range's alone)", got, want)
	}
	if got := bodies(t, q, queue); !slices.Equal(got, []string{"not a failure record"}) {
		t.Errorf("left on the queue %q, want the unreadable message alone", got)
	}
}

// TestRedriveGoneRange: a range the stream does not hold is left on the
// queue, the line saying it can no longer be re-read.
func TestRedriveGoneRange(t *testing.T) {
	res, q, shard, seqs := stack(t)
	past := seqs[len(seqs)-1] + "000" // far past the stream's end
	failure := description(res.StateStreamARN, shard, past, past, 1)
	queue := failureQueue(t, q, failure)
	env := res.PublisherEnv()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-env", "-queue", queue}, func(k string) string { return env[k] }, &out, &errOut)
	t.Logf("printed:\n%s%s", out.String(), errOut.String())
	if err == nil || !strings.Contains(out.String(), "GONE") || !strings.Contains(out.String(), "can no longer be re-read") {
		t.Errorf("error %v, printed\n%s", err, out.String())
	}
	if got := bodies(t, q, queue); !slices.Equal(got, []string{failure}) {
		t.Errorf("left on the queue %q", got)
	}
}

// TestNoQueue: the local stack has no failure queue, which the tool
// explains; -env needs -queue.
func TestNoQueue(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), nil, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "retries a failing\nbatch until it succeeds") {
		t.Errorf("local stack: %v, %q", err, out.String())
	}
	if err := run(context.Background(), []string{"-env"}, func(string) string { return "" }, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-queue URL") {
		t.Errorf("-env: %v", err)
	}
}
