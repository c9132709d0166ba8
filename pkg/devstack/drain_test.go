package devstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// drainWatch decides when a pipeline under test has drained, and when it has
// stalled. Its deadline follows progress: it fails only once nothing has
// moved (neither the queue's counts nor the functions' output) for Stall,
// so a loaded machine slows a test down instead of failing it. Limit still
// bounds the whole wait.
type drainWatch struct {
	Stall, Limit time.Duration
	// QuietPolls is how many polls in a row must find the queue empty.
	QuietPolls int

	start, moved time.Time
	last         drainSample
	quiet        int
}

// drainSample is what one poll saw: the queue's visible and in-flight
// messages, and how much the functions had written (their progress).
type drainSample struct {
	visible, inFlight string
	output            int
}

// observe records a poll at now and reports whether the queue has drained;
// err says why waiting must stop.
func (w *drainWatch) observe(now time.Time, s drainSample) (drained bool, err error) {
	if w.start.IsZero() {
		w.start, w.moved, w.last = now, now, s
	}
	if s != w.last {
		w.moved, w.last = now, s
	}
	if s.visible == "0" && s.inFlight == "0" {
		w.quiet++
	} else {
		w.quiet = 0
	}
	switch {
	case w.quiet >= w.QuietPolls:
		return true, nil
	case now.Sub(w.moved) >= w.Stall:
		return false, fmt.Errorf("the queue stalled: nothing moved for %v (%s visible, %s in flight)", w.Stall, s.visible, s.inFlight)
	case now.Sub(w.start) >= w.Limit:
		return false, fmt.Errorf("the queue did not drain within %v though it kept moving (%s visible, %s in flight)", w.Limit, s.visible, s.inFlight)
	}
	return false, nil
}

// waitDrained polls queueURL until it has drained; output reports how much
// the pipeline has written so far.
func waitDrained(ctx context.Context, t *testing.T, client *sqs.Client, queueURL string, output func() int) {
	t.Helper()
	w := drainWatch{Stall: 60 * time.Second, Limit: 8 * time.Minute, QuietPolls: 3}
	for {
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		drained, err := w.observe(time.Now(), drainSample{
			visible:  out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)],
			inFlight: out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)],
			output:   output(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if drained {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestDrainWatchFollowsProgress: a slow drain that keeps moving is waited
// for past the old fixed 120 s deadline (which failed the ledger twice on a
// loaded machine); one that stops moving fails after Stall.
func TestDrainWatchFollowsProgress(t *testing.T) {
	const poll = 500 * time.Millisecond
	type step = drainSample
	// slow: the queue shrinks by one message every 10 s, from 30, while the
	// functions keep writing: 300 s in all.
	slow := func(i int) step {
		left := max(30-i/20, 0)
		return step{fmt.Sprint(left), "1", i}
	}
	tests := []struct {
		name    string
		sample  func(i int) step
		drained bool
		errLike string
	}{
		{"slow but moving", func(i int) step {
			s := slow(i)
			if s.visible == "0" {
				s.inFlight = "0"
			}
			return s
		}, true, ""},
		{"in flight, output growing", func(i int) step {
			if i > 400 {
				return step{"0", "0", 400}
			}
			return step{"0", "2", i}
		}, true, ""},
		{"stuck", func(i int) step { return step{"3", "1", 7} }, false, "stalled: nothing moved for 1m0s"},
		{"moving forever", func(i int) step { return step{fmt.Sprint(i % 7), "1", i} }, false, "did not drain within 8m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := drainWatch{Stall: 60 * time.Second, Limit: 8 * time.Minute, QuietPolls: 3}
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			for i := 0; i < 2000; i++ {
				s := tt.sample(i)
				drained, err := w.observe(now, s)
				if err != nil || drained {
					if drained != tt.drained || (err == nil) != (tt.errLike == "") ||
						(err != nil && !strings.Contains(err.Error(), tt.errLike)) {
						t.Fatalf("after %v: drained %v, err %v; want drained %v, error like %q", now.Sub(w.start), drained, err, tt.drained, tt.errLike)
					}
					if tt.drained && now.Sub(w.start) <= 120*time.Second && tt.name == "slow but moving" {
						t.Fatalf("the slow drain took only %v: the case no longer exercises the old 120 s deadline", now.Sub(w.start))
					}
					return
				}
				now = now.Add(poll)
			}
			t.Fatal("the watch never decided")
		})
	}
}
