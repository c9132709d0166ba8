package processor_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// TestDefaultLevelLogsOutcomes: at INFO a record logs its outcome only,
// labelled with the ids that find it (eventType and the delivery's fields
// are on the receiver's webhook.enqueued line of the same messageId); a
// failure line carries every field, the delivery's, a timestamp and the
// requestId included. At DEBUG the step line processing.started comes
// back.
func TestDefaultLevelLogsOutcomes(t *testing.T) {
	ids := []string{"messageId", "receiveCount", "eventId", "vehicleId"}
	delivery := []string{"eventType", "deliveryId", "mode", "timestamp", "requestId"}
	transient := processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error {
		return errors.New("downstream timed out")
	})
	permanent := processor.HandlerFunc(func(context.Context, smartcar.Event, processor.Claim) error {
		return processor.Permanent(errors.New("unknown fleet"))
	})
	tests := []struct {
		name         string
		level        slog.Level
		handler      processor.Handler
		receiveCount int
		// want are the lines logged, in order, each with ids; those in
		// detailed also with the delivery's fields, those in brief without.
		want     []string
		detailed []string
		brief    []string
	}{
		{"succeeded", slog.LevelInfo, nil, 1,
			[]string{"processing.succeeded"}, nil, []string{"processing.succeeded"}},
		{"failed, to be retried", slog.LevelInfo, transient, 1,
			[]string{"processing.failed"}, []string{"processing.failed"}, nil},
		{"failed on the last receive", slog.LevelInfo, transient, processor.DefaultMaxReceiveCount,
			[]string{"processing.failed", "processing.dead_lettered"}, []string{"processing.failed", "processing.dead_lettered"}, nil},
		{"permanent failure", slog.LevelInfo, permanent, 1,
			[]string{"processing.dead_lettered"}, []string{"processing.dead_lettered"}, nil},
		{"succeeded at DEBUG", slog.LevelDebug, nil, 1,
			[]string{"processing.started", "processing.succeeded"}, []string{"processing.started"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &loggingtest.Buffer{}
			var handlers []processor.Handler
			if tt.handler != nil {
				handlers = append(handlers, tt.handler)
			}
			store := processortest.NewStore()
			p := processor.New(store, nil, &processortest.DLQ{}, handlers, processor.Options{
				Logger: logging.New(logs, tt.level), Metrics: emf.Discard{},
			})
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
			rec := processor.Record{MessageID: "m1", Body: events.MustRead("bodies/vehicle_state.json"), ReceiveCount: tt.receiveCount}
			_ = p.Process(ctx, rec)

			var got []string
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if m := messageOf(line); m != "" {
					got = append(got, m)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("lines %v, want %v:\n%s", got, tt.want, logs)
			}
			for _, msg := range tt.want {
				line := logs.Lines(msg)[0]
				for _, k := range ids {
					if v, ok := line[k]; !ok || v == "" {
						t.Errorf("%s lacks %s: %v", msg, k, line)
					}
				}
			}
			for _, msg := range tt.detailed {
				line := logs.Lines(msg)[0]
				for _, k := range delivery {
					if v, ok := line[k]; !ok || v == "" {
						t.Errorf("%s lacks %s: %v", msg, k, line)
					}
				}
			}
			for _, msg := range tt.brief {
				line := logs.Lines(msg)[0]
				for _, k := range delivery {
					if _, ok := line[k]; ok {
						t.Errorf("%s carries %s at INFO: %v", msg, k, line)
					}
				}
			}
		})
	}
}

// messageOf returns the message of a JSON log line, or "".
func messageOf(line string) string {
	_, rest, ok := strings.Cut(line, `"message":"`)
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, `"`)
	return msg
}
