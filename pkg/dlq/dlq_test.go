package dlq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dlq"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func queue(t *testing.T, client *sqs.Client, base string) string {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, base))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// TestDeadLettersKeepBytesExact dead-letters records whose body and labels
// SQS cannot carry as text, lists them decoded and redrives them: the
// processor gets the original bytes back.
func TestDeadLettersKeepBytesExact(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q := dlq.Queue{API: client, DLQURL: queue(t, client, "dlq"), QueueURL: queue(t, client, "queue")}
	tests := []struct {
		name         string
		rec          processor.Record
		reason       string
		wantEncoding string
	}{
		{"binary body and labels", processor.Record{MessageID: "m-1", ReceiveCount: 1,
			Body:       []byte("{\"eventId\":\"e-\uffff\",\"x\":\"\xff\x00\"}"),
			Attributes: map[string]string{"eventId": "e-\uffff", "eventType": "VEHICLE_STATE", "vehicleId": "v\x01"}},
			"claim: eventId e-\uffff refused", sqsqueue.BodyEncodingBase64},
		{"text", processor.Record{MessageID: "m-2", ReceiveCount: 4, Body: []byte(`{"eventId":"e-2","v":"é"}`),
			Attributes: map[string]string{"eventId": "e-2", "mode": "LIVE"}},
			"invalid event", ""},
		// A replay keeps its generation, and every webhook when it was
		// received: redriven, it is still that replay, still of that day.
		{"a replay", processor.Record{MessageID: "m-3", ReceiveCount: 4, Body: []byte(`{"eventId":"e-3"}`),
			Attributes: map[string]string{"eventId": "e-3", sqsqueue.AttrReceivedAt: "1764460800000", sqsqueue.AttrReplayGeneration: "replay-x"}},
			"handler: not enrolled", ""},
	}
	letters := sqsqueue.NewDeadLetters(client, q.DLQURL)
	for _, tt := range tests {
		if err := letters.SendDeadLetter(ctx, tt.rec, tt.reason, time.Now()); err != nil {
			t.Fatalf("%s: SendDeadLetter: %v", tt.name, err)
		}
	}
	listed, err := q.List(ctx, 0)
	if err != nil || len(listed) != len(tests) {
		t.Fatalf("List = %d messages, %v", len(listed), err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.rec.Attributes["eventId"]
			found, err := q.Find(ctx, id)
			if err != nil || len(found) != 1 {
				t.Fatalf("Find(%q) = %d messages, %v", id, len(found), err)
			}
			m := found[0]
			if m.Body != string(tt.rec.Body) || m.BodyEncoding != tt.wantEncoding || m.FailureReason != tt.reason ||
				m.Attributes[sqsqueue.AttrOriginalMessageID] != tt.rec.MessageID {
				t.Errorf("listed body %q (encoding %q), reason %q, attributes %q", m.Body, m.BodyEncoding, m.FailureReason, m.Attributes)
			}
			for k, v := range tt.rec.Attributes {
				if m.Attributes[k] != v {
					t.Errorf("listed attribute %s = %q, want %q", k, m.Attributes[k], v)
				}
			}
			if _, ok := m.Attributes[sqsqueue.AttrBodyEncoding]; ok {
				t.Errorf("bodyEncoding listed among the attributes")
			}
			res, err := q.Redrive(ctx, id)
			if err != nil || res.Moved != 1 {
				t.Fatalf("Redrive(%q) = %+v, %v", id, res, err)
			}
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.QueueURL), MessageAttributeNames: []string{"All"}})
			if err != nil || len(out.Messages) != 1 {
				t.Fatalf("receive redriven: %d messages, %v", len(out.Messages), err)
			}
			raw := out.Messages[0]
			_, _ = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.QueueURL), ReceiptHandle: raw.ReceiptHandle})
			msg := events.SQSMessage{MessageId: aws.ToString(raw.MessageId), Body: aws.ToString(raw.Body), MessageAttributes: map[string]events.SQSMessageAttribute{}}
			for k, v := range raw.MessageAttributes {
				msg.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
			}
			rec := sqslambda.Record(msg)
			if !bytes.Equal(rec.Body, tt.rec.Body) {
				t.Errorf("redriven body arrived as %q, want %q", rec.Body, tt.rec.Body)
			}
			for k, v := range tt.rec.Attributes {
				if rec.Attributes[k] != v {
					t.Errorf("redriven attribute %s = %q, want %q", k, rec.Attributes[k], v)
				}
			}
		})
	}
}

// deadLetter parks a body the way the processor does, as if received
// receives times.
func deadLetter(t *testing.T, client *sqs.Client, dlqURL, eventID string, receives int) {
	t.Helper()
	rec := processor.Record{MessageID: "m-" + eventID, ReceiveCount: receives, Body: []byte(`{"eventId":"` + eventID + `"}`),
		Attributes: map[string]string{"eventId": eventID}}
	if err := sqsqueue.NewDeadLetters(client, dlqURL).SendDeadLetter(context.Background(), rec, "invalid event", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// counts returns the DLQ's visible and hidden (in flight) message counts.
func counts(t *testing.T, client *sqs.Client, url string) (visible, hidden int) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	hidden, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, hidden
}

// TestListShowsEveryMessageAndHidesNone: a listing shows every message in
// the DLQ, including one another reader's peek still hides when it starts
// (it waits for it), and more than one receive's worth; when it returns,
// none is left hidden. The listing before lost the hidden one and showed
// 1 of 2 until that peek's visibility timeout ended.
func TestListShowsEveryMessageAndHidesNone(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	for _, n := range []int{2, 23} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			q := dlq.Queue{API: client, DLQURL: queue(t, client, "dlq")}
			for i := range n {
				deadLetter(t, client, q.DLQURL, fmt.Sprintf("e-%d", i), 4)
			}
			// Another reader (a listing interrupted, a second operator)
			// holds one message for 3 s.
			peek, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.DLQURL), MaxNumberOfMessages: 1, VisibilityTimeout: 3})
			if err != nil || len(peek.Messages) != 1 {
				t.Fatalf("peek: %d messages, %v", len(peek.Messages), err)
			}
			start := time.Now()
			listed, err := q.List(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, m := range listed {
				ids[m.EventID()] = true
			}
			if len(listed) != n || len(ids) != n {
				t.Errorf("listed %d messages (%d distinct), want all %d, %v after it started", len(listed), len(ids), n, time.Since(start).Round(time.Millisecond))
			}
			if visible, hidden := counts(t, client, q.DLQURL); visible != n || hidden != 0 {
				t.Errorf("after the listing: %d visible, %d hidden; want %d visible, none hidden", visible, hidden, n)
			}
		})
	}
}

// flakyRelease fails the first request that makes messages visible again,
// as a throttled or dropped request would.
type flakyRelease struct {
	*sqs.Client
	failed bool
}

func (f *flakyRelease) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("throttled")
	}
	return f.Client.ChangeMessageVisibility(ctx, in, opts...)
}

func (f *flakyRelease) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("throttled")
	}
	return f.Client.ChangeMessageVisibilityBatch(ctx, in, opts...)
}

// TestListReleasesDespiteAFailedRequest: a request that fails to make the
// messages visible again is retried; none is left hidden (before, the
// failure was ignored and the message stayed hidden for a minute).
func TestListReleasesDespiteAFailedRequest(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q := dlq.Queue{API: &flakyRelease{Client: client}, DLQURL: queue(t, client, "dlq")}
	deadLetter(t, client, q.DLQURL, "e-1", 1)
	deadLetter(t, client, q.DLQURL, "e-2", 1)
	listed, err := q.List(ctx, 0)
	if err != nil || len(listed) != 2 {
		t.Fatalf("List = %d messages, %v", len(listed), err)
	}
	if visible, hidden := counts(t, client, q.DLQURL); visible != 2 || hidden != 0 {
		t.Errorf("after the listing: %d visible, %d hidden; want 2 visible, none hidden", visible, hidden)
	}
}

// TestReceiveCount: the count shown is the processor's receives before the
// message was parked, not the DLQ's own receives, which every listing
// raises: the count the processor stored when it parked the message, or,
// for a message the queue's redrive policy moved, SQS's count less the
// listing's own receive.
func TestReceiveCount(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))

	t.Run("parked by the processor", func(t *testing.T) {
		q := dlq.Queue{API: client, DLQURL: queue(t, client, "dlq")}
		deadLetter(t, client, q.DLQURL, "e-1", 1)
		for listing := 1; listing <= 3; listing++ {
			listed, err := q.List(ctx, 0)
			if err != nil || len(listed) != 1 {
				t.Fatalf("List = %d messages, %v", len(listed), err)
			}
			if m := listed[0]; m.ReceiveCount != 1 || !m.ReceiveCountExact || m.ApproximateReceiveCount != listing {
				t.Errorf("listing %d: receive count %d (exact %v, approximate %d), want the processor's 1 (exact, approximate %d)",
					listing, m.ReceiveCount, m.ReceiveCountExact, m.ApproximateReceiveCount, listing)
			}
		}
	})

	t.Run("moved by the redrive policy", func(t *testing.T) {
		dlqURL := queue(t, client, "dlq")
		arn, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlqURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		// Visibility timeout 0: a received message is at once visible again,
		// as if its processing had failed.
		src, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "queue")), Attributes: map[string]string{
			"VisibilityTimeout": "0", "RedrivePolicy": `{"deadLetterTargetArn":"` + arn.Attributes["QueueArn"] + `","maxReceiveCount":2}`}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: src.QueueUrl, MessageBody: aws.String(`{"eventId":"e-moved"}`)}); err != nil {
			t.Fatal(err)
		}
		// Two receives, each failing; the third finds the redrive limit
		// reached and the message moved.
		for range 3 {
			if _, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: src.QueueUrl}); err != nil {
				t.Fatal(err)
			}
		}
		q := dlq.Queue{API: client, DLQURL: dlqURL}
		listed, err := q.List(ctx, 0)
		if err != nil || len(listed) != 1 {
			t.Fatalf("List = %d messages, %v", len(listed), err)
		}
		if m := listed[0]; m.ReceiveCount != 2 || m.ReceiveCountExact || m.FailureReason != "" {
			t.Errorf("receive count %d (exact %v), want 2 from SQS's count, not exact", m.ReceiveCount, m.ReceiveCountExact)
		}
	})
}
