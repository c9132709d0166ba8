package sqsqueue_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqslambda"
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
	before := time.Now().UnixMilli()
	id, err := sqsqueue.NewPublisher(client, *q.QueueUrl).Enqueue(ctx, body, env)
	if err != nil || id == "" {
		t.Fatalf("Enqueue = %q, %v", id, err)
	}
	after := time.Now().UnixMilli()
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
	// And when it was received, which stays with it through the DLQ.
	received, err := strconv.ParseInt(aws.ToString(msg.MessageAttributes[sqsqueue.AttrReceivedAt].StringValue), 10, 64)
	if err != nil || received < before || received > after || aws.ToString(msg.MessageAttributes[sqsqueue.AttrReceivedAt].DataType) != "Number" {
		t.Errorf("receivedAt %v, %v: want a Number between %d and %d", msg.MessageAttributes[sqsqueue.AttrReceivedAt], err, before, after)
	}
	if len(msg.MessageAttributes) != len(want)+1 {
		t.Errorf("attributes %v, want %v and receivedAt (empty deliveryId omitted)", msg.MessageAttributes, want)
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

// lambdaMessage is m as Lambda's SQS event source hands it over.
func lambdaMessage(m types.Message) events.SQSMessage {
	out := events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Attributes: m.Attributes,
		MessageAttributes: map[string]events.SQSMessageAttribute{}}
	for k, v := range m.MessageAttributes {
		out.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return out
}

// TestBodiesAndLabelsSQSCannotCarryArriveExact sends signed bodies, and
// labels, that SQS refuses as text through the real publisher and the
// Lambda adapter: the processor gets them byte for byte.
func TestBodiesAndLabelsSQSCannotCarryArriveExact(t *testing.T) {
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "sqsqueue"))})
	if err != nil {
		t.Fatal(err)
	}
	sample := string(samples.MustRead("bodies/vehicle_state.json"))
	in := func(s string) []byte {
		return []byte(strings.Replace(sample, `"unit":"percent"`, `"unit":"per`+s+`cent"`, 1))
	}
	tests := []struct {
		name        string
		body        []byte
		wantEncoded bool
	}{
		{"U+FFFF", in("\uffff"), true},
		{"U+FFFE", in("\ufffe"), true},
		{"invalid UTF-8", in("\xff\xfe"), true},
		{"truncated UTF-8", in("\xe2\x82"), true},
		{"raw control character", in("\x01"), true},
		{"label with U+FFFF, body text", []byte(strings.Replace(sample, `"eventId":"`, `"eventId":"\uffff`, 1)), false},
		{"label with a control character, body text", []byte(strings.Replace(sample, `"id":"9d4f`, `"id":"\u0000\u00019d4f`, 1)), false},
		{"text", in("\u00e9 \U0001F600 \ufffd"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := smartcar.ParseEnvelope(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sqsqueue.NewPublisher(client, *q.QueueUrl).Enqueue(ctx, tt.body, env); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MessageAttributeNames: []string{"All"}})
			if err != nil || len(out.Messages) != 1 {
				t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
			}
			msg := out.Messages[0]
			_, _ = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: msg.ReceiptHandle})
			if _, encoded := msg.MessageAttributes[sqsqueue.AttrBodyEncoding]; encoded != tt.wantEncoded {
				t.Errorf("sent with bodyEncoding: %v, want %v", encoded, tt.wantEncoded)
			}
			if !tt.wantEncoded && aws.ToString(msg.Body) != string(tt.body) {
				t.Errorf("text body changed in transit")
			}
			rec := sqslambda.Record(lambdaMessage(msg))
			if !bytes.Equal(rec.Body, tt.body) {
				t.Errorf("body arrived as\n%q\nwant\n%q", rec.Body, tt.body)
			}
			want := map[string]string{"eventId": env.EventID, "eventType": env.Type(), "vehicleId": env.VehicleID, "deliveryId": env.DeliveryID, "mode": env.Mode}
			if rec.ReceivedAt().IsZero() || rec.Attributes[sqsqueue.AttrReceivedAt] == "" {
				t.Errorf("no receivedAt: %q", rec.Attributes)
			}
			delete(rec.Attributes, sqsqueue.AttrReceivedAt)
			if len(rec.Attributes) != len(want) {
				t.Errorf("attributes %q, want %q", rec.Attributes, want)
			}
			for k, v := range want {
				if rec.Attributes[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, rec.Attributes[k], v)
				}
			}
		})
	}
}

// sendRecorder records SendMessage inputs.
type sendRecorder struct{ in []*sqs.SendMessageInput }

func (r *sendRecorder) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	r.in = append(r.in, in)
	return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
}

func TestEncodedBodySize(t *testing.T) {
	env := smartcar.Envelope{EventID: "e-1", EventType: "VEHICLE_STATE", VehicleID: "v-1", Mode: "LIVE"}
	tests := []struct {
		name     string
		bodySize int
		wantSent bool
	}{
		{"50 KB", 50_000, true},
		{"the receiver's 256 KiB", 256 << 10, true},
		{"over SQS's 1 MiB once encoded", 790_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tt.bodySize)
			copy(body[tt.bodySize/2:], "\uffff")
			rec := &sendRecorder{}
			_, err := sqsqueue.NewPublisher(rec, "q").Enqueue(context.Background(), body, env)
			if sent := len(rec.in) == 1; sent != tt.wantSent || (err == nil) != tt.wantSent {
				t.Fatalf("sent %v, err %v; want sent %v", sent, err, tt.wantSent)
			}
			if !tt.wantSent {
				return
			}
			in := rec.in[0]
			sent := len(aws.ToString(in.MessageBody))
			for name, a := range in.MessageAttributes {
				sent += len(name) + len(aws.ToString(a.DataType)) + len(aws.ToString(a.StringValue)) + len(a.BinaryValue)
			}
			if want := (tt.bodySize + 2) / 3 * 4; len(aws.ToString(in.MessageBody)) != want {
				t.Errorf("encoded body %d bytes, want %d", len(aws.ToString(in.MessageBody)), want)
			}
			t.Logf("%d-byte body with one U+FFFF: %d-byte message body, %d bytes with attributes (SQS counts these; limit %d)",
				tt.bodySize, len(aws.ToString(in.MessageBody)), sent, sqsqueue.MaxMessageBytes)
		})
	}
}

// sqsAllows is SQS's character rule, rune by rune, as the API reference
// states it.
func sqsAllows(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == 0x9 || r == 0xA || r == 0xD || 0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}

var carriableSeeds = []string{
	"", "\t\n\r", "plain", "\x00", "\x08", "\x0b", "\x1f", "\x7f", "\u0085", "\ud7ff", "\ue000", "\ufffd", "\ufffe", "\uffff",
	"\U00010000", "\U0010FFFF", "\xed\xa0\x80" /* an encoded surrogate */, "\xff", "\xe2\x82", "\xef\xbf", "a\xef\xbf\xbfb",
}

func TestCarriable(t *testing.T) {
	for _, s := range carriableSeeds {
		if got, want := sqsqueue.Carriable(s), sqsAllows(s); got != want {
			t.Errorf("Carriable(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzCarriable compares Carriable with SQS's rule on any input, and
// checks that whatever it refuses is restored exactly by DecodeBody.
func FuzzCarriable(f *testing.F) {
	for _, s := range carriableSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := sqsqueue.Carriable(string(b)), sqsAllows(string(b)); got != want {
			t.Fatalf("Carriable(%q) = %v, want %v", b, got, want)
		}
		attrs := map[string]types.MessageAttributeValue{}
		text, err := sqsqueue.EncodeBody(b, attrs)
		if err != nil || !sqsAllows(text) {
			t.Fatalf("EncodeBody(%q) = %q, %v: not text SQS carries", b, text, err)
		}
		var enc string
		if a, ok := attrs[sqsqueue.AttrBodyEncoding]; ok {
			enc = aws.ToString(a.StringValue)
		}
		if back, err := sqsqueue.DecodeBody(text, enc); err != nil || !bytes.Equal(back, b) {
			t.Fatalf("DecodeBody(EncodeBody(%q)) = %q, %v", b, back, err)
		}
	})
}
