// Package dlq inspects and redrives the dead-letter queue: what the `dlq`
// tool does, against the deployed stack or the local one.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

// API is the part of the SQS client the operations use.
type API interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, optFns ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
}

// Message is one dead-lettered message.
type Message struct {
	MessageID     string
	ReceiptHandle string
	// Body is the body exactly as it was received, decoded if SQS carried
	// it base64-encoded (see sqsqueue.EncodeBody): it may hold bytes that
	// are not text.
	Body string
	// BodyEncoding is how SQS carried the body ("" as text; see
	// sqsqueue.AttrBodyEncoding). Redrive encodes it again as needed.
	BodyEncoding  string
	Attributes    map[string]string // message attributes, exact (see sqsqueue.AttributeText)
	ReceiveCount  int               // receives of this DLQ copy
	SentAt        time.Time         // when it entered the DLQ
	FailureReason string            // set when the processor parked it; empty if the queue redrove it
}

// EventID is the message's eventId: its attribute, else read from the body.
func (m Message) EventID() string {
	if id := m.Attributes[sqsqueue.AttrEventID]; id != "" {
		return id
	}
	env, _ := smartcar.ParseEnvelope([]byte(m.Body))
	return env.EventID
}

// Matches reports whether id names the message (eventId or message id).
func (m Message) Matches(id string) bool {
	return id == m.MessageID || id == m.EventID() || id == m.Attributes[sqsqueue.AttrOriginalMessageID]
}

// Queue is a dead-letter queue and the queue it redrives to.
type Queue struct {
	API      API
	DLQURL   string
	DLQARN   string
	QueueURL string
	QueueARN string
}

// maxRounds bounds how many receives one scan makes.
const maxRounds = 100

// List returns the messages in the DLQ, up to limit. Messages are hidden
// while it reads them and made visible again before it returns.
func (q Queue) List(ctx context.Context, limit int) ([]Message, error) {
	var all []Message
	err := q.scan(ctx, func(m Message) (keep, stop bool, err error) {
		all = append(all, m)
		return false, limit > 0 && len(all) >= limit, nil
	})
	return all, err
}

// scan receives DLQ messages one batch at a time and calls visit with each
// new one, until visit says stop or a receive brings nothing new. A
// message visit keeps stays hidden for the caller to delete; every other
// one is made visible again.
func (q Queue) scan(ctx context.Context, visit func(Message) (keep, stop bool, err error)) error {
	seen := map[string]bool{}
	var release []string
	defer func() {
		for _, h := range release {
			_, _ = q.API.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(q.DLQURL), ReceiptHandle: aws.String(h), VisibilityTimeout: 0,
			})
		}
	}()
	for round := 0; round < maxRounds; round++ {
		out, err := q.API.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.DLQURL),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           60,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return fmt.Errorf("receive from DLQ: %w", err)
		}
		fresh := 0
		for i, raw := range out.Messages {
			m := toMessage(raw)
			if seen[m.MessageID] {
				release = append(release, m.ReceiptHandle)
				continue
			}
			seen[m.MessageID] = true
			fresh++
			keep, stop, err := visit(m)
			if !keep {
				release = append(release, m.ReceiptHandle)
			}
			if err != nil || stop {
				// The rest of the batch was received, hence hidden, too.
				for _, rest := range out.Messages[i+1:] {
					release = append(release, aws.ToString(rest.ReceiptHandle))
				}
				return err
			}
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

func toMessage(m types.Message) Message {
	msg := Message{
		MessageID: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Attributes: map[string]string{},
	}
	for k, v := range m.MessageAttributes {
		if text, ok := sqsqueue.AttributeText(aws.ToString(v.DataType), v.StringValue, v.BinaryValue); ok {
			msg.Attributes[k] = text
		}
	}
	if enc, ok := msg.Attributes[sqsqueue.AttrBodyEncoding]; ok {
		// A body that cannot be decoded stays as it is, labelled.
		if body, err := sqsqueue.DecodeBody(msg.Body, enc); err == nil {
			msg.Body, msg.BodyEncoding = string(body), enc
			delete(msg.Attributes, sqsqueue.AttrBodyEncoding)
		}
	}
	msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = time.UnixMilli(ms)
	}
	msg.FailureReason = msg.Attributes[sqsqueue.AttrFailureReason]
	return msg
}

// Find returns the messages id names (an eventId or a message id).
func (q Queue) Find(ctx context.Context, id string) ([]Message, error) {
	all, err := q.List(ctx, 0)
	var found []Message
	for _, m := range all {
		if m.Matches(id) {
			found = append(found, m)
		}
	}
	return found, err
}

// RedriveResult says what Redrive did.
type RedriveResult struct {
	Moved      int    // messages sent back and deleted from the DLQ
	TaskHandle string // set when an SQS message move task does the work
}

// Redrive moves messages back to the queue: all of them, or those id names.
// Moving all starts an SQS message move task where the endpoint supports
// it. Otherwise each message is sent to the queue first and deleted from
// the DLQ only once the send succeeded, so none is ever lost (at worst one
// is delivered twice, which the processor's idempotency absorbs).
func (q Queue) Redrive(ctx context.Context, id string) (RedriveResult, error) {
	if id == "" && q.DLQARN != "" && q.QueueARN != "" {
		out, err := q.API.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{
			SourceArn: aws.String(q.DLQARN), DestinationArn: aws.String(q.QueueARN),
		})
		if err == nil {
			return RedriveResult{TaskHandle: aws.ToString(out.TaskHandle)}, nil
		}
		// Not supported here (an emulator, say): move them one by one.
	}
	// Move only what is there now: a message that fails again comes back
	// to the DLQ as a new message, and must not be moved round and round.
	present, err := q.List(ctx, 0)
	if err != nil {
		return RedriveResult{}, err
	}
	todo := map[string]bool{}
	for _, m := range present {
		if id == "" || m.Matches(id) {
			todo[m.MessageID] = true
		}
	}
	var res RedriveResult
	if len(todo) == 0 {
		return res, nil
	}
	err = q.scan(ctx, func(m Message) (keep, stop bool, err error) {
		if !todo[m.MessageID] {
			return false, false, nil
		}
		if err := q.sendBack(ctx, m); err != nil {
			return false, true, err // stays in the DLQ
		}
		if _, err := q.API.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.DLQURL), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
			return false, true, fmt.Errorf("sent %s back but could not delete it from the DLQ (it may be processed twice, harmlessly): %w", m.MessageID, err)
		}
		delete(todo, m.MessageID)
		res.Moved++
		return true, len(todo) == 0, nil
	})
	if err == nil && len(todo) > 0 {
		err = fmt.Errorf("%d message(s) could not be read back from the DLQ; run redrive again", len(todo))
	}
	return res, err
}

// sendBack sends m to the queue with its original attributes, body and
// attributes carried as the receiver carries them.
func (q Queue) sendBack(ctx context.Context, m Message) error {
	attrs := map[string]types.MessageAttributeValue{}
	for _, k := range []string{sqsqueue.AttrEventID, sqsqueue.AttrEventType, sqsqueue.AttrVehicleID, sqsqueue.AttrDeliveryID, sqsqueue.AttrMode} {
		if v := m.Attributes[k]; v != "" {
			attrs[k] = sqsqueue.TextAttribute(v)
		}
	}
	body, err := sqsqueue.EncodeBody([]byte(m.Body), attrs)
	if err != nil {
		return fmt.Errorf("send %s back to the queue: %w", m.MessageID, err)
	}
	_, err = q.API.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.QueueURL), MessageBody: aws.String(body), MessageAttributes: attrs})
	if err != nil {
		return fmt.Errorf("send %s back to the queue: %w", m.MessageID, err)
	}
	return nil
}

// ErrNotConfirmed is returned by Purge without confirmation.
var ErrNotConfirmed = errors.New("purge not confirmed")

// Purge deletes every message in the DLQ.
func (q Queue) Purge(ctx context.Context, confirmed bool) error {
	if !confirmed {
		return ErrNotConfirmed
	}
	if _, err := q.API.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(q.DLQURL)}); err != nil {
		return fmt.Errorf("purge DLQ: %w", err)
	}
	return nil
}
