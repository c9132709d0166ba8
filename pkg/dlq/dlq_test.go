package dlq_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

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
