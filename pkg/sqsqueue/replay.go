package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// AttrReplayGeneration marks a replayed message with its generation.
const AttrReplayGeneration = processor.AttrReplayGeneration

// SendMessageBatchAPI is the part of the SQS client the Replayer uses.
type SendMessageBatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Replayer sends archived webhooks back to the event queue, each labelled
// as the receiver labels it plus AttrReplayGeneration (replay.Sink).
type Replayer struct {
	api      SendMessageBatchAPI
	queueURL string
	// Attempts bounds how often an entry SQS failed on its side is sent
	// (3 if zero).
	Attempts int
}

// NewReplayer returns a Replayer for the queue at queueURL.
func NewReplayer(api SendMessageBatchAPI, queueURL string) *Replayer {
	return &Replayer{api: api, queueURL: queueURL}
}

// Send sends entries with SendMessageBatch, in as few calls as SQS's
// limits allow (10 messages, MaxMessageBytes in all), and sends again
// what SQS failed on its side. It fails on the first entry SQS refuses
// (a sender fault) or still fails after Attempts.
func (r *Replayer) Send(ctx context.Context, entries []archive.Entry, generation string) error {
	var batch []types.SendMessageBatchRequestEntry
	size := 0
	for i, e := range entries {
		m, err := replayMessage(e, generation, strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("event %s: %w", e.EventID, err)
		}
		n := messageBytes(aws.ToString(m.MessageBody), m.MessageAttributes)
		if len(batch) == 10 || size+n > MaxMessageBytes {
			if err := r.sendBatch(ctx, batch); err != nil {
				return err
			}
			batch, size = nil, 0
		}
		batch = append(batch, m)
		size += n
	}
	if len(batch) == 0 {
		return nil
	}
	return r.sendBatch(ctx, batch)
}

// sendBatch sends batch, resending what SQS failed on its side; a
// message SQS refuses as the sender's fault is not resent.
func (r *Replayer) sendBatch(ctx context.Context, batch []types.SendMessageBatchRequestEntry) error {
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	items := make([]int, len(batch)) // indices into batch
	for i := range items {
		items[i] = i
	}
	errs := make([]error, len(batch))
	policy := resend.Policy{Service: "sqs", Attempts: attempts, Backoff: 100 * time.Millisecond}
	resend.Send(ctx, policy, items, func(i int) int { return i }, errs, func(ctx context.Context, sent []int) ([]resend.Refusal, error) {
		entries := make([]types.SendMessageBatchRequestEntry, len(sent))
		at := make(map[string]int, len(sent)) // entry id -> index in sent
		for j, i := range sent {
			entries[j] = batch[i]
			at[aws.ToString(batch[i].Id)] = j
		}
		out, err := r.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(r.queueURL), Entries: entries})
		if err != nil {
			return nil, fmt.Errorf("sqs send batch: %w", err)
		}
		var refused []resend.Refusal
		for _, f := range out.Failed {
			refused = append(refused, resend.Refusal{Index: at[aws.ToString(f.Id)], Code: aws.ToString(f.Code),
				Message: aws.ToString(f.Message), Permanent: f.SenderFault})
		}
		return refused, nil
	})
	return errors.Join(errs...)
}

// replayMessage is e as a batch entry: its body as Publisher sends it,
// with the labels of its envelope and the generation.
func replayMessage(e archive.Entry, generation, id string) (types.SendMessageBatchRequestEntry, error) {
	env, err := smartcar.ParseEnvelope(e.Body)
	if err != nil { // a body that is no webhook keeps its archived labels
		env = smartcar.Envelope{EventID: e.EventID, EventType: e.EventType, VehicleID: e.VehicleID}
	}
	attrs := Attributes(env)
	attrs[AttrReplayGeneration] = TextAttribute(generation)
	if !e.ReceivedAt.IsZero() {
		attrs[AttrReceivedAt] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(e.ReceivedAt.UnixMilli(), 10))}
	}
	body, err := EncodeBody(e.Body, attrs)
	if err != nil {
		return types.SendMessageBatchRequestEntry{}, err
	}
	return types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(body), MessageAttributes: attrs}, nil
}
