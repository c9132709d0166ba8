package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

// fakeSQS serves one batch and records deletions.
type fakeSQS struct {
	batch   []types.Message
	deleted []string
}

func (f *fakeSQS) ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return &sqs.ReceiveMessageOutput{Messages: f.batch}, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		f.deleted = append(f.deleted, aws.ToString(e.ReceiptHandle))
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func batchOf(n int) []types.Message {
	var msgs []types.Message
	for i := range n {
		msgs = append(msgs, types.Message{
			MessageId: aws.String(fmt.Sprint("m", i)), ReceiptHandle: aws.String(fmt.Sprint("r", i)), Body: aws.String("{}"),
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	return msgs
}

func TestPollerDeletesOnlySuccesses(t *testing.T) {
	tests := []struct {
		name        string
		response    string
		err         error
		wantDeleted int
	}{
		{"all succeed", `{"batchItemFailures":[]}`, nil, 3},
		{"one failure kept", `{"batchItemFailures":[{"itemIdentifier":"m1"}]}`, nil, 2},
		{"unknown id fails the batch", `{"batchItemFailures":[{"itemIdentifier":"nope"}]}`, nil, 0},
		{"handler error fails the batch", ``, errors.New("crash"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeSQS{batch: batchOf(3)}
			var got events.SQSEvent
			p := &devstack.Poller{SQS: fake, QueueURL: "q", QueueARN: "arn:q", Handler: handlerFunc(func(_ context.Context, payload []byte) ([]byte, error) {
				_ = json.Unmarshal(payload, &got)
				return []byte(tt.response), tt.err
			})}
			res, err := p.PollOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(fake.deleted) != tt.wantDeleted || res.Received != 3 || res.Failed != 3-tt.wantDeleted {
				t.Errorf("deleted %v, result %+v", fake.deleted, res)
			}
			if len(got.Records) != 3 || got.Records[0].EventSource != "aws:sqs" || got.Records[0].Attributes["ApproximateReceiveCount"] != "1" {
				t.Errorf("event = %+v", got)
			}
		})
	}
}
