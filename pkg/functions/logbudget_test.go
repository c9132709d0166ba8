package functions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// What CloudWatch Logs bills besides the functions' own lines: assumptions,
// as no emulator writes or bills them.
const (
	// lambdaPlatformBytes are Lambda's lines of one invocation in the text
	// log format (the stack's): START (71 bytes with the request id), END
	// (52) and REPORT (141 with durations and memory; 24 more on a cold
	// start), 270 rounded up. The processor counts one invocation per
	// webhook, as at low traffic; batches of up to 10 records share theirs.
	lambdaPlatformBytes = 270
	lambdaPlatformLines = 3
	// logEventOverhead is counted for every log event besides its message
	// (PutLogEvents sizes a batch so), erring on the dear side.
	logEventOverhead = 26
	// logBudgetPerWebhook is the most a webhook may cost in CloudWatch Logs
	// at the default level: both functions' lines, EMF included, and
	// Lambda's.
	logBudgetPerWebhook = 2048
)

// billedLogBytes is what one invocation that wrote out adds to CloudWatch
// Logs, Lambda's lines included.
func billedLogBytes(out string) int {
	lines := strings.Count(out, "\n") + lambdaPlatformLines
	return len(out) + lambdaPlatformBytes + lines*logEventOverhead
}

// TestLogBytesPerWebhook runs genuine deliveries through the receiver and,
// from its queue, the processor, as Lambda runs them, and holds what both
// write to stdout at the default level, plus Lambda's lines, to the log
// budget per webhook. At DEBUG the step lines come back.
func TestLogBytesPerWebhook(t *testing.T) {
	steps := []string{"webhook.received", "signature.verified", "processing.started"}
	outcomes := []string{"webhook.enqueued", "processing.succeeded"}
	tests := []struct {
		request string // under events/receiver
		level   string
		// budget is the most the webhook may cost; 0 means none.
		budget int
		// want and absent are log messages that must appear exactly once,
		// and not at all.
		want, absent []string
	}{
		{"httpapi-vehicle-state.json", "", logBudgetPerWebhook, outcomes, steps},
		{"httpapi-vehicle-error.json", "", logBudgetPerWebhook, outcomes, steps},
		{"httpapi-vehicle-state.json", "INFO", logBudgetPerWebhook, outcomes, steps},
		{"httpapi-vehicle-state.json", "DEBUG", 0, append(steps, outcomes...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.request+"/LOG_LEVEL="+tt.level, func(t *testing.T) {
			recv, proc := runWebhook(t, tt.request, tt.level)
			for _, msg := range tt.want {
				if n := recv.Count(msg) + proc.Count(msg); n != 1 {
					t.Errorf("%d %s lines, want 1:\n%s%s", n, msg, recv, proc)
				}
			}
			for _, msg := range tt.absent {
				if n := recv.Count(msg) + proc.Count(msg); n != 0 {
					t.Errorf("%d %s lines, want none at this level", n, msg)
				}
			}
			r, p := billedLogBytes(recv.String()), billedLogBytes(proc.String())
			total := r + p
			t.Logf("LOG_LEVEL=%q: receiver %d lines, %d bytes (%d billed); processor %d lines, %d bytes (%d billed); %d bytes per webhook",
				tt.level, strings.Count(recv.String(), "\n"), recv.Len(), r, strings.Count(proc.String(), "\n"), proc.Len(), p, total)
			if tt.budget > 0 && total > tt.budget {
				t.Errorf("a webhook costs %d bytes of logs, want at most %d:\n%s%s", total, tt.budget, recv, proc)
			}
		})
	}
}

// runWebhook delivers the recorded API Gateway request through both
// functions with LOG_LEVEL=level, as Smartcar would deliver it now, and
// returns what each wrote to stdout.
func runWebhook(t *testing.T, request, level string) (recv, proc *loggingtest.Buffer) {
	t.Helper()
	ctx := context.Background()
	rs := newReceiverStack(t)
	ps := newProcessorStack(t)
	rs.env["LOG_LEVEL"], ps.env["LOG_LEVEL"] = level, level
	rs.now = time.Now()

	var req map[string]any
	if err := json.Unmarshal(samples.MustRead("receiver/"+request), &req); err != nil {
		t.Fatal(err)
	}
	body := delivery.Rewrite{DeliveredAt: rs.now.Add(-300 * time.Millisecond)}.Apply([]byte(req["body"].(string)))
	req["body"] = string(body)
	req["headers"].(map[string]any)["sc-signature"] = smartcar.Sign(testToken, body)
	payload, _ := json.Marshal(req)
	out, err := rs.handler(t).Invoke(lambdaContext(ctx), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp apigw.Response
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("receiver answered %s, %v\n%s", out, err, rs.stdout)
	}

	// The queued message, as Lambda's SQS event source hands it over.
	msgs, err := rs.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(rs.queueURL), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil || len(msgs.Messages) != 1 {
		t.Fatalf("queue gave %d messages, %v", len(msgs.Messages), err)
	}
	m := msgs.Messages[0]
	rec := events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Attributes: m.Attributes, EventSource: "aws:sqs", AWSRegion: "us-east-1",
		MessageAttributes: map[string]events.SQSMessageAttribute{},
	}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	batch, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{rec}})
	h, err := NewProcessor(func(k string) string { return ps.env[k] }, ps.awsCfg, ps.logs)
	if err != nil {
		t.Fatal(err)
	}
	out, err = lambda.NewHandler(h).Invoke(lambdaContext(ctx), batch)
	if err != nil {
		t.Fatal(err)
	}
	var sqsResp events.SQSEventResponse
	if err := json.Unmarshal(out, &sqsResp); err != nil || len(sqsResp.BatchItemFailures) != 0 {
		t.Fatalf("processor answered %s, %v\n%s", out, err, ps.logs)
	}
	return rs.stdout, ps.logs
}

// lambdaContext is an invocation's context, whose request id the logs carry.
func lambdaContext(ctx context.Context) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "2f9c4b7a-6d1e-4a3b-9c8d-5e7f1a2b3c4d"})
}
