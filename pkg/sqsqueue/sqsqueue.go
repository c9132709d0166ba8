// Package sqsqueue is the Amazon SQS adapter: it sends received webhooks to
// the processing queue and defines the message attributes that label them.
package sqsqueue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Message attribute names set by the receiver. They label a message for
// people and tools (the DLQ listing, CloudWatch); the processor reads the
// body itself, and AttrEventID only to run a batch's copies of an event
// one after another (processor.ProcessBatch).
const (
	AttrEventID    = processor.AttrEventID
	AttrEventType  = "eventType"
	AttrVehicleID  = "vehicleId"
	AttrDeliveryID = "deliveryId"
	AttrMode       = "mode"
	// AttrReceivedAt is when the receiver queued the webhook, in Unix
	// milliseconds: it stays with the webhook through the DLQ and its
	// redrives, where SQS's SentTimestamp is the copy's.
	AttrReceivedAt = processor.AttrReceivedAt
)

// Labels are the attributes that stay with a webhook wherever it is
// moved: to the DLQ and back to the queue.
var Labels = []string{AttrEventID, AttrEventType, AttrVehicleID, AttrDeliveryID, AttrMode, AttrReceivedAt, AttrReplayGeneration}

// SendMessageAPI is the part of the SQS client the Publisher uses.
type SendMessageAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Publisher sends webhook bodies to one queue.
type Publisher struct {
	api      SendMessageAPI
	queueURL string
	now      func() time.Time
}

// NewPublisher returns a Publisher for the queue at queueURL.
func NewPublisher(api SendMessageAPI, queueURL string) *Publisher {
	return &Publisher{api: api, queueURL: queueURL, now: time.Now}
}

// Enqueue sends body unchanged, with env's fields and the time it was
// received (AttrReceivedAt, now) as message attributes.
// A body SQS cannot carry as text is sent base64-encoded (see EncodeBody);
// readers restore its bytes.
func (p *Publisher) Enqueue(ctx context.Context, body []byte, env smartcar.Envelope) (string, error) {
	attrs := Attributes(env)
	attrs[AttrReceivedAt] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(p.now().UnixMilli(), 10))}
	text, err := EncodeBody(body, attrs)
	if err != nil {
		return "", err
	}
	out, err := p.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(p.queueURL),
		MessageBody:       aws.String(text),
		MessageAttributes: attrs,
	})
	if err != nil {
		return "", fmt.Errorf("sqs send: %w", err)
	}
	return aws.ToString(out.MessageId), nil
}

// Attributes returns env's non-empty fields as message attributes (SQS
// rejects empty values), each as TextAttribute carries it.
func Attributes(env smartcar.Envelope) map[string]types.MessageAttributeValue {
	attrs := make(map[string]types.MessageAttributeValue, 5)
	for name, v := range map[string]string{
		AttrEventID:    env.EventID,
		AttrEventType:  env.Type(),
		AttrVehicleID:  env.VehicleID,
		AttrDeliveryID: env.DeliveryID,
		AttrMode:       env.Mode,
	} {
		if v != "" {
			attrs[name] = TextAttribute(v)
		}
	}
	return attrs
}
