package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// QueueBodies receives up to 10 messages of the queue at queueURL, with the
// emulator's configuration, and returns their bodies.
func QueueBodies(tb testing.TB, queueURL string) []string {
	tb.Helper()
	out, err := sqs.NewFromConfig(Config(tb)).ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
	})
	if err != nil {
		tb.Fatal(err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	return bodies
}
