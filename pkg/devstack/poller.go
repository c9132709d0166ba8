package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// SQSAPI is the part of the SQS client the Poller uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Poller feeds a handler from a queue the way Lambda's SQS event source
// does with ReportBatchItemFailures: batches of up to pipeline.BatchSize,
// successes deleted, failures left to reappear after the visibility
// timeout (and to be redriven to the DLQ by the queue).
type Poller struct {
	SQS      SQSAPI
	QueueURL string
	QueueARN string
	Handler  lambda.Handler
	// Wait is the long-poll wait of one receive; default 1 s.
	Wait time.Duration
	Log  *slog.Logger
}

// BatchResult is what one poll did.
type BatchResult struct {
	Received, Deleted, Failed int
}

// PollOnce receives one batch, invokes the handler with it and deletes the
// records it did not report as failed.
func (p *Poller) PollOnce(ctx context.Context) (BatchResult, error) {
	wait := p.Wait
	if wait <= 0 {
		wait = time.Second
	}
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         pipeline.BatchSize,
		WaitTimeSeconds:             int32(wait.Seconds()),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return BatchResult{}, fmt.Errorf("receive: %w", err)
	}
	res := BatchResult{Received: len(out.Messages)}
	if len(out.Messages) == 0 {
		return res, nil
	}
	event := events.SQSEvent{Records: make([]events.SQSMessage, len(out.Messages))}
	for i, m := range out.Messages {
		event.Records[i] = p.record(m)
	}
	failed, err := p.invoke(ctx, event)
	if err != nil {
		// A failed invocation fails the whole batch, as with Lambda.
		p.log().ErrorContext(ctx, "poller.invoke_failed", "error", err.Error(), "records", len(out.Messages))
		res.Failed = len(out.Messages)
		return res, nil
	}
	var entries []types.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if failed[aws.ToString(m.MessageId)] {
			res.Failed++
			continue
		}
		entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(entries) > 0 {
		del, err := p.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries})
		if err != nil {
			return res, fmt.Errorf("delete: %w", err)
		}
		res.Deleted = len(del.Successful)
	}
	return res, nil
}

// invoke calls the handler and returns the ids it reported as failed. An
// unknown id fails the whole batch, as Lambda does.
func (p *Poller) invoke(ctx context.Context, event events.SQSEvent) (map[string]bool, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: fmt.Sprintf("dev-sqs-%d", time.Now().UnixNano())})
	out, err := p.Handler.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("handler response: %w", err)
	}
	ids := map[string]bool{}
	for _, r := range event.Records {
		ids[r.MessageId] = true
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if !ids[f.ItemIdentifier] {
			return nil, fmt.Errorf("batchItemFailures names unknown message %q", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}

func (p *Poller) record(m types.Message) events.SQSMessage {
	r := events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, EventSource: "aws:sqs",
		EventSourceARN: p.QueueARN, AWSRegion: "us-east-1",
		MessageAttributes: map[string]events.SQSMessageAttribute{},
	}
	for k, v := range m.MessageAttributes {
		r.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return r
}

func (p *Poller) log() *slog.Logger { return logging.OrDiscard(p.Log) }

// Run polls until ctx ends, pausing briefly after an error.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := p.PollOnce(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			p.log().ErrorContext(ctx, "poller.error", "error", err.Error())
			_ = resend.Sleep(ctx, time.Second) // ctx's end ends the loop
		}
	}
}
