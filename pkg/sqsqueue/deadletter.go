package sqsqueue

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

// Attributes the processor adds to a message it dead-letters.
const (
	AttrFailureReason     = "failureReason"
	AttrFailedAt          = "failedAt"
	AttrOriginalMessageID = "originalMessageId"
	AttrReceiveCount      = "receiveCount"
)

// maxReasonBytes keeps a failure reason readable and well inside SQS limits.
const maxReasonBytes = 1024

// DeadLetters sends records that can never be processed to the DLQ.
type DeadLetters struct {
	api      SendMessageAPI
	queueURL string
}

// NewDeadLetters returns a DeadLetters for the queue at queueURL.
func NewDeadLetters(api SendMessageAPI, queueURL string) *DeadLetters {
	return &DeadLetters{api: api, queueURL: queueURL}
}

// SendDeadLetter sends rec's body unchanged, with its original attributes
// and the reason, time and original message id. Body and attributes are
// carried exactly as Publisher carries them (see EncodeBody and
// TextAttribute).
func (d *DeadLetters) SendDeadLetter(ctx context.Context, rec processor.Record, reason string, failedAt time.Time) error {
	attrs := make(map[string]types.MessageAttributeValue, 10)
	for _, k := range Labels {
		if v := rec.Attributes[k]; v != "" {
			attrs[k] = TextAttribute(v)
		}
	}
	if reason = truncate(reason, maxReasonBytes); reason != "" {
		attrs[AttrFailureReason] = TextAttribute(reason)
	}
	attrs[AttrFailedAt] = TextAttribute(failedAt.UTC().Format(time.RFC3339Nano))
	if rec.MessageID != "" {
		attrs[AttrOriginalMessageID] = TextAttribute(rec.MessageID)
	}
	attrs[AttrReceiveCount] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(rec.ReceiveCount))}
	body, err := EncodeBody(rec.Body, attrs)
	if err != nil {
		return fmt.Errorf("send to DLQ: %w", err)
	}
	_, err = d.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(d.queueURL),
		MessageBody:       aws.String(body),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("sqs send to DLQ: %w", err)
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
