package receiver_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver/receivertest"
)

// TestDefaultLevelLogsOneLinePerRequest: at INFO a request logs one line,
// its outcome, which carries what the DEBUG step lines (webhook.received,
// signature.verified) say; a failure keeps every field that explains it.
func TestDefaultLevelLogsOneLinePerRequest(t *testing.T) {
	envelope := []string{"eventId", "eventType", "vehicleId", "deliveryId", "mode"}
	state := events.MustRead("bodies/vehicle_state.json")
	verify := events.MustRead("bodies/verify.json")
	tests := []struct {
		name    string
		level   slog.Level
		req     receiver.Request
		now     time.Time
		queue   *receivertest.Queue
		tokens  []string // the token source's, current first; default testToken
		want    string   // the one line at INFO and above
		fields  []string
		absent  []string
		wantAll map[string]any
		// steps are the DEBUG lines also expected.
		steps []string
	}{
		{name: "enqueued", level: slog.LevelInfo, req: post(state, "sc-signature", stateSignature), now: fixtureTime,
			want: "webhook.enqueued", fields: append(envelope, "bodyBytes", "messageId", "elapsedMs", "deliveryAgeMs"),
			absent: []string{"tokenIndex", "timestamp", "requestId"}, wantAll: map[string]any{"bodyBytes": float64(len(state))}},
		{name: "enqueued, signed with the previous token", level: slog.LevelInfo, tokens: []string{"new-token", testToken},
			req: post(state, "sc-signature", stateSignature), now: fixtureTime,
			want: "webhook.enqueued", fields: append(envelope, "bodyBytes", "messageId"), wantAll: map[string]any{"tokenIndex": float64(1)}},
		{name: "replayed", level: slog.LevelInfo, tokens: []string{"new-token", testToken}, req: post(state, "sc-signature", stateSignature),
			now:  fixtureTime.Add(2 * time.Hour),
			want: "replay.rejected", fields: append(envelope, "bodyBytes", "tokenIndex", "reason", "ageMs", "deliveredAt", "maxAgeMs", "timestamp", "requestId")},
		{name: "enqueue failed", level: slog.LevelInfo, req: post(state, "sc-signature", stateSignature), now: fixtureTime,
			queue: &receivertest.Queue{Err: errors.New("sqs: throttled")},
			want:  "webhook.enqueue_failed", fields: append(envelope, "bodyBytes", "error", "elapsedMs", "timestamp", "requestId")},
		{name: "signed VERIFY", level: slog.LevelInfo, req: signed(testToken, verify), now: fixtureTime,
			want: "verify.answered", fields: []string{"eventType", "bodyBytes"}},
		{name: "unsigned VERIFY", level: slog.LevelInfo, req: post(verify), now: fixtureTime,
			want: "verify.answered", fields: []string{"eventType", "bodyBytes"}, wantAll: map[string]any{"signed": false}},
		{name: "enqueued at DEBUG", level: slog.LevelDebug, req: post(state, "sc-signature", stateSignature), now: fixtureTime,
			want: "webhook.enqueued", fields: append(envelope, "bodyBytes", "messageId", "timestamp", "requestId"),
			steps: []string{"webhook.received", "signature.verified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queue := tt.queue
			if queue == nil {
				queue = &receivertest.Queue{}
			}
			logs := &loggingtest.Buffer{}
			tokens := tt.tokens
			if tokens == nil {
				tokens = []string{testToken}
			}
			h := receiver.New(queue, receivertest.NewTokens(tokens...), receiver.Options{
				Logger:  logging.New(logs, tt.level),
				Metrics: emf.Discard{},
				Now:     func() time.Time { return tt.now },
			})
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
			h.Handle(ctx, tt.req)
			lines := logs.Lines(tt.want)
			if len(lines) != 1 {
				t.Fatalf("%d %s lines, want 1:\n%s", len(lines), tt.want, logs)
			}
			for _, k := range tt.fields {
				if v, ok := lines[0][k]; !ok || v == "" {
					t.Errorf("%s lacks %s: %v", tt.want, k, lines[0])
				}
			}
			for _, k := range tt.absent {
				if v, ok := lines[0][k]; ok {
					t.Errorf("%s carries %s = %v at this level", tt.want, k, v)
				}
			}
			for k, want := range tt.wantAll {
				if lines[0][k] != want {
					t.Errorf("%s: %s = %v, want %v", tt.want, k, lines[0][k], want)
				}
			}
			for _, step := range tt.steps {
				if logs.Count(step) != 1 {
					t.Errorf("no %s line at DEBUG:\n%s", step, logs)
				}
			}
			if got, want := strings.Count(logs.String(), "\n"), 1+len(tt.steps); got != want {
				t.Errorf("%d lines, want %d:\n%s", got, want, logs)
			}
		})
	}
}
