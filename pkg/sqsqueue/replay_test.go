package sqsqueue_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// TestReplayerThroughStrictSQS: archived bodies go back to the queue as
// the processor reads them (exact bytes, the receiver's labels, the
// generation), in batches SQS accepts, whatever their size.
func TestReplayerThroughStrictSQS(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "replayer")),
		Attributes: map[string]string{"MaximumMessageSize": fmt.Sprint(sqsqueue.MaxMessageBytes)}})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 200<<10)
	entries := []archive.Entry{
		{EventID: "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02", Body: samples.MustRead("bodies/vehicle_state.json")},
		{EventID: "e-binary", EventType: "VEHICLE_STATE", VehicleID: "v-bin", Body: []byte("{\"eventId\":\"e-binary\",\"s\":\"\x00\xff\"}")},
	}
	// Six 200 KB bodies: more than a 1 MiB batch holds.
	for i := range 6 {
		entries = append(entries, archive.Entry{EventID: fmt.Sprint("e-big-", i), Body: append([]byte(fmt.Sprintf(`{"eventId":"e-big-%d","pad":"`, i)), append(big, `"}`...)...)})
	}
	if err := sqsqueue.NewReplayer(client, *q.QueueUrl).Send(ctx, entries, "replay-t"); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < len(entries) {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil || len(out.Messages) == 0 {
			t.Fatalf("received %d of %d: %v", len(got), len(entries), err)
		}
		for _, m := range out.Messages {
			msg := events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), MessageAttributes: map[string]events.SQSMessageAttribute{}}
			for k, v := range m.MessageAttributes {
				msg.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
			}
			rec := sqslambda.Record(msg)
			id := rec.Attributes["eventId"]
			for _, e := range entries {
				if e.EventID == id && !bytes.Equal(rec.Body, e.Body) {
					t.Errorf("%s: body changed on the way", id)
				}
			}
			if rec.Generation() != "replay-t" {
				t.Errorf("%s: generation %q", id, rec.Generation())
			}
			got[id] = true
		}
	}
	if !got["4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"] || !got["e-binary"] {
		t.Errorf("got %v", got)
	}
}

// batchAPI fails the entries it is told to, SenderFault or not, once.
type batchAPI struct {
	calls    [][]string
	failOnce map[string]bool
	sender   bool
}

func (a *batchAPI) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	var ids []string
	for _, e := range in.Entries {
		id := *e.MessageAttributes["eventId"].StringValue
		ids = append(ids, id)
		if a.failOnce[id] {
			delete(a.failOnce, id)
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: a.sender})
		}
	}
	a.calls = append(a.calls, ids)
	return out, nil
}

func TestReplayerResendsWhatSQSFailed(t *testing.T) {
	entries := []archive.Entry{{EventID: "a", Body: []byte(`{"eventId":"a"}`)}, {EventID: "b", Body: []byte(`{"eventId":"b"}`)}}
	api := &batchAPI{failOnce: map[string]bool{"b": true}}
	if err := sqsqueue.NewReplayer(api, "q").Send(context.Background(), entries, "g"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(api.calls) != "[[a b] [b]]" {
		t.Errorf("calls %v, want b sent again alone", api.calls)
	}
	refused := &batchAPI{failOnce: map[string]bool{"a": true}, sender: true}
	err := sqsqueue.NewReplayer(refused, "q").Send(context.Background(), entries, "g")
	if err == nil || !strings.Contains(err.Error(), "refused") || len(refused.calls) != 1 {
		t.Errorf("a sender fault: err %v after %d calls, want an error at once", err, len(refused.calls))
	}
}

// A replayed record the processor parks keeps its generation: redriven,
// it is still a replay.
func TestDeadLetterKeepsTheGeneration(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "dlq"))})
	if err != nil {
		t.Fatal(err)
	}
	rec := processor.Record{MessageID: "m1", Body: []byte(`{}`), Attributes: map[string]string{"eventId": "e1", processor.AttrReplayGeneration: "replay-x"}}
	if err := sqsqueue.NewDeadLetters(client, *q.QueueUrl).SendDeadLetter(ctx, rec, "no eventId", time.Now()); err != nil {
		t.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MessageAttributeNames: []string{"All"}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("%v, %v", out, err)
	}
	if g := out.Messages[0].MessageAttributes[processor.AttrReplayGeneration].StringValue; aws.ToString(g) != "replay-x" {
		t.Errorf("generation %q, want replay-x", aws.ToString(g))
	}
}
