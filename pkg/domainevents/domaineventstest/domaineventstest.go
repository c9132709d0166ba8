// Package domaineventstest reads the domain events a rule on the bus sends
// to a subscriber's SQS queue, as the tests of the publisher and of the
// local stack check them.
package domaineventstest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
)

// BusEvent is a domain event as a subscriber's queue receives it:
// EventBridge's envelope around the detail.
type BusEvent struct {
	DetailType string              `json:"detail-type"`
	Source     string              `json:"source"`
	Detail     domainevents.Detail `json:"detail"`
}

// String is the event's detail-type, eventId, then its signals' codes
// (sorted) or its error's key.
func (ev BusEvent) String() string {
	s := ev.DetailType + " " + ev.Detail.EventID
	var codes []string
	for _, sg := range ev.Detail.Signals {
		codes = append(codes, sg.Code)
	}
	if len(codes) > 0 {
		slices.Sort(codes)
		s += " " + strings.Join(codes, ",")
	}
	if ev.Detail.Error != nil {
		s += " " + ev.Detail.Error.Key
	}
	return s
}

// Drain reads and deletes the events in the queue at url. With want 0 it
// returns once the queue answers empty; otherwise it waits up to a second
// a read until it has want events and the queue then answers empty, or
// 10 s pass.
func Drain(tb testing.TB, q *sqs.Client, url string, want int) []BusEvent {
	tb.Helper()
	ctx := context.Background()
	var wait int32
	if want > 0 {
		wait = 1
	}
	var out []BusEvent
	for deadline := time.Now().Add(10 * time.Second); want == 0 || time.Now().Before(deadline); {
		res, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait})
		if err != nil {
			tb.Fatal(err)
		}
		if len(res.Messages) == 0 && len(out) >= want {
			break
		}
		for _, m := range res.Messages {
			var ev BusEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				tb.Fatalf("not an EventBridge event: %s", aws.ToString(m.Body))
			}
			out = append(out, ev)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}
