// Package dlq inspects and redrives the dead-letter queue: what the `dlq`
// tool does, against the deployed stack or the local one.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
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
	BodyEncoding string
	Attributes   map[string]string // message attributes, exact (see sqsqueue.AttributeText)
	// ReceiveCount is how many times the processor received the message
	// before it was parked. When the processor parked it, that is the
	// count it stored (ReceiveCountExact). When the queue's redrive policy
	// moved it, it is SQS's ApproximateReceiveCount less this listing's
	// own receive: the source queue's receives, plus any earlier peeks at
	// the DLQ (dlq list, show, redrive), which SQS counts too.
	ReceiveCount      int
	ReceiveCountExact bool
	// ApproximateReceiveCount is SQS's count when this listing received
	// the message, its own receive included.
	ApproximateReceiveCount int
	SentAt                  time.Time // when it entered the DLQ (for a message the queue moved, when it entered the queue)
	FailureReason           string    // set when the processor parked it; empty if the queue's redrive policy moved it
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
	// Peek is how long a scan hides each message it receives, at most:
	// it makes every one visible again as soon as it has read them all,
	// and an interrupted scan leaves them hidden no longer. 0 means
	// DefaultPeek.
	Peek time.Duration
	// HiddenWait bounds how long a scan waits for messages that SQS counts
	// but no receive returns (another reader holds them, hidden). 0 means
	// Peek plus 5 s, time enough for those an interrupted scan hid.
	HiddenWait time.Duration
	// Waiting, if set, is told when a scan starts waiting for hidden
	// messages, and how many.
	Waiting func(hidden int)
}

// DefaultPeek is how long a scan hides what it has received, at most.
const DefaultPeek = 30 * time.Second

// maxRounds bounds how many receives one scan makes.
const maxRounds = 1000

// HiddenError says that a scan ended without having seen every message
// SQS counts in the DLQ: others kept them hidden past HiddenWait.
type HiddenError struct{ Hidden int }

func (e *HiddenError) Error() string {
	return fmt.Sprintf("%d more message(s) in the DLQ stayed hidden, held by another reader (a dlq command still running, "+
		"a message move task) or not yet counted by SQS: run the command again shortly", e.Hidden)
}

// List returns the messages in the DLQ, up to limit (0: all). It receives
// until it has seen every message SQS counts there, waiting up to
// HiddenWait for any another reader holds (a *HiddenError then says how
// many it could not see, with the messages it did). Each message is hidden
// while it reads them and made visible again, all at once, before it
// returns.
func (q Queue) List(ctx context.Context, limit int) ([]Message, error) {
	var all []Message
	err := q.scan(ctx, func(m Message) (keep, stop bool, err error) {
		all = append(all, m)
		return false, limit > 0 && len(all) >= limit, nil
	})
	return all, err
}

// scan receives DLQ messages one batch at a time and calls visit with each
// new one, until visit says stop or it has seen every message in the DLQ.
// A message visit keeps stays hidden for the caller to delete; every other
// one received is made visible again before scan returns, in batches.
//
// A receive that brings nothing new does not end the scan while SQS counts
// messages the scan does not hold: messages another reader has hidden come
// back when their visibility timeout ends, and are waited for, up to
// HiddenWait.
func (q Queue) scan(ctx context.Context, visit func(Message) (keep, stop bool, err error)) (err error) {
	peek := q.peek()
	hiddenWait := q.HiddenWait
	if hiddenWait <= 0 {
		hiddenWait = peek + 5*time.Second
	}
	seen := map[string]bool{}
	held := map[string]string{} // message id -> latest receipt handle, of messages to make visible again
	defer func() {
		if rerr := q.release(context.WithoutCancel(ctx), held); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	var waitingSince time.Time
	for round := 0; round < maxRounds; round++ {
		out, err := q.API.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.DLQURL),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           int32(max(1, peek/time.Second)),
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
				// Back after Peek: hidden again now, under this handle.
				held[m.MessageID] = m.ReceiptHandle
				continue
			}
			seen[m.MessageID] = true
			fresh++
			keep, stop, err := visit(m)
			if !keep {
				held[m.MessageID] = m.ReceiptHandle
			}
			if err != nil || stop {
				// The rest of the batch was received, hence hidden, too.
				for _, rest := range out.Messages[i+1:] {
					held[aws.ToString(rest.MessageId)] = aws.ToString(rest.ReceiptHandle)
				}
				return err
			}
		}
		if fresh > 0 {
			waitingSince = time.Time{}
			continue
		}
		// Nothing new. Done, unless SQS counts messages this scan does not
		// hold: hidden by another reader, or not yet received.
		others, err := q.unheld(ctx, len(held))
		if err != nil {
			return err
		}
		if others <= 0 {
			return nil
		}
		if waitingSince.IsZero() {
			waitingSince = time.Now()
			if q.Waiting != nil {
				q.Waiting(others)
			}
		} else if time.Since(waitingSince) >= hiddenWait {
			return &HiddenError{Hidden: others}
		}
	}
	return fmt.Errorf("DLQ scan stopped after %d receives", maxRounds)
}

// unheld returns how many messages SQS counts in the DLQ beyond the held
// ones this scan hides.
func (q Queue) unheld(ctx context.Context, held int) (int, error) {
	out, err := q.API.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.DLQURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		return 0, fmt.Errorf("count the DLQ's messages: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		c, _ := strconv.Atoi(v)
		n += c
	}
	return n - held, nil
}

// release makes the held messages visible again, ten to a request,
// retrying those that fail. A message deleted meanwhile (by a redrive
// elsewhere) has nothing to release.
func (q Queue) release(ctx context.Context, held map[string]string) error {
	handles := make([]string, 0, len(held))
	for _, h := range held {
		handles = append(handles, h)
	}
	var lastErr error
	for attempt := 0; attempt < 4 && len(handles) > 0; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		var failed []string
		for batch := range slices.Chunk(handles, 10) {
			entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
			for i, h := range batch {
				entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h), VisibilityTimeout: 0}
			}
			out, err := q.API.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.DLQURL), Entries: entries})
			if err != nil {
				lastErr = err
				failed = append(failed, batch...)
				continue
			}
			for _, f := range out.Failed {
				if code := aws.ToString(f.Code); code == "ReceiptHandleIsInvalid" || code == "MessageNotInflight" ||
					code == "AWS.SimpleQueueService.MessageNotInflight" {
					continue // deleted meanwhile, or visible already
				}
				i, _ := strconv.Atoi(aws.ToString(f.Id))
				lastErr = fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
				failed = append(failed, batch[i])
			}
		}
		handles = failed
	}
	if len(handles) > 0 {
		return fmt.Errorf("%d DLQ message(s) could not be made visible again (they reappear within %v): %w", len(handles), q.peek(), lastErr)
	}
	return nil
}

func (q Queue) peek() time.Duration {
	if q.Peek <= 0 {
		return DefaultPeek
	}
	return q.Peek
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
	// A body that cannot be decoded stays as it is, labelled.
	body, enc := sqsqueue.RestoreBody(msg.Body, msg.Attributes)
	msg.Body, msg.BodyEncoding = string(body), enc
	msg.ApproximateReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if n, err := strconv.Atoi(msg.Attributes[sqsqueue.AttrReceiveCount]); err == nil {
		// The processor parked it and stored its count.
		msg.ReceiveCount, msg.ReceiveCountExact = n, true
	} else {
		// The queue's redrive policy moved it: SQS's count goes on from
		// the source queue's; this receive is one more.
		msg.ReceiveCount = max(0, msg.ApproximateReceiveCount-1)
	}
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
	var hidden *HiddenError
	if err != nil && !errors.As(err, &hidden) {
		return RedriveResult{}, err
	}
	// Messages another reader hid are left for a later redrive; hidden
	// says so at the end.
	todo := map[string]bool{}
	for _, m := range present {
		if id == "" || m.Matches(id) {
			todo[m.MessageID] = true
		}
	}
	var res RedriveResult
	if len(todo) == 0 {
		return res, hiddenErr(hidden)
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
	return res, errors.Join(err, hiddenErr(hidden))
}

// hiddenErr is h as an error, nil when h is.
func hiddenErr(h *HiddenError) error {
	if h == nil {
		return nil
	}
	return h
}

// sendBack sends m to the queue with its original attributes, body and
// attributes carried as the receiver carries them.
func (q Queue) sendBack(ctx context.Context, m Message) error {
	attrs := map[string]types.MessageAttributeValue{}
	for _, k := range sqsqueue.Labels {
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
