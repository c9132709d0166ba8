package sqsqueue_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func TestEnqueueIsByteIdentical(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "sqsqueue"))})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"eventId":"e-1","v":12.50,"n":"Caf\u00e9","big":9007199254740993,"s":"\u2028 ünïcode"}`)
	env := smartcar.Envelope{EventID: "e-1", EventType: "VEHICLE_STATE", VehicleID: "v-1", Mode: "TEST"}
	id, err := sqsqueue.NewPublisher(client, *q.QueueUrl).Enqueue(ctx, body, env)
	if err != nil || id == "" {
		t.Fatalf("Enqueue = %q, %v", id, err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: q.QueueUrl, MessageAttributeNames: []string{"All"}, MaxNumberOfMessages: 10,
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	msg := out.Messages[0]
	if aws.ToString(msg.Body) != string(body) {
		t.Errorf("body changed in transit:\n got %s\nwant %s", aws.ToString(msg.Body), body)
	}
	want := map[string]string{"eventId": "e-1", "eventType": "VEHICLE_STATE", "vehicleId": "v-1", "mode": "TEST"}
	if len(msg.MessageAttributes) != len(want) {
		t.Errorf("attributes %v, want %v (empty deliveryId omitted)", msg.MessageAttributes, want)
	}
	for k, v := range want {
		if got := aws.ToString(msg.MessageAttributes[k].StringValue); got != v {
			t.Errorf("attribute %s = %q, want %q", k, got, v)
		}
	}
}

func TestEnqueueToMissingQueueFails(t *testing.T) {
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	url := awstest.Endpoint(t) + "/123456789012/no-such-queue"
	_, err := sqsqueue.NewPublisher(client, url).Enqueue(context.Background(), []byte(`{}`), smartcar.Envelope{})
	var notFound *types.QueueDoesNotExist
	if !errors.As(err, &notFound) {
		t.Fatalf("err = %v, want QueueDoesNotExist", err)
	}
}
