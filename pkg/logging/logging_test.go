package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
)

// TestNewRequestIDAndTimestamp: a line costs what explains it. The
// timestamp and the request id (90 bytes) are on WARN and ERROR lines, and
// on every line of a DEBUG logger; an INFO line of an INFO logger goes
// without, as CloudWatch stamps each log event. Timestamps have
// milliseconds, as CloudWatch's own.
func TestNewRequestIDAndTimestamp(t *testing.T) {
	tests := []struct {
		name        string
		loggerLevel slog.Level
		lineLevel   slog.Level
		wantDetail  bool // timestamp and requestId
	}{
		{"INFO line at INFO", slog.LevelInfo, slog.LevelInfo, false},
		{"WARN line at INFO", slog.LevelInfo, slog.LevelWarn, true},
		{"ERROR line at INFO", slog.LevelInfo, slog.LevelError, true},
		{"INFO line at DEBUG", slog.LevelDebug, slog.LevelInfo, true},
		{"DEBUG line at DEBUG", slog.LevelDebug, slog.LevelDebug, true},
		{"ERROR line at ERROR", slog.LevelError, slog.LevelError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := logging.New(&buf, tt.loggerLevel).With("function", "receiver")
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
			log.Log(ctx, tt.lineLevel, "webhook.received", "eventId", "e1")
			log.Log(ctx, tt.loggerLevel-4, "hidden")

			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			for k, want := range map[string]any{"message": "webhook.received", "level": tt.lineLevel.String(), "eventId": "e1", "function": "receiver"} {
				if line[k] != want {
					t.Errorf("%s = %v, want %v", k, line[k], want)
				}
			}
			if id, ok := line["requestId"]; ok != tt.wantDetail || (ok && id != "req-1") {
				t.Errorf("requestId = %v (present %v), want present %v", id, ok, tt.wantDetail)
			}
			ts, ok := line["timestamp"].(string)
			if !tt.wantDetail {
				if ok {
					t.Errorf("timestamp %q on an INFO line at INFO", ts)
				}
				return
			}
			if at, err := time.Parse(logging.TimeFormat, ts); err != nil || len(ts) != len("2026-01-01T00:00:00.000Z") ||
				time.Since(at) > time.Minute || time.Since(at) < -time.Second {
				t.Errorf("timestamp %q: %v, want the time now as %s", ts, err, logging.TimeFormat)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"DEBUG", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{" warn ", slog.LevelWarn, false},
		{"ERROR", slog.LevelError, false},
		{"verbose", 0, true},
	}
	for _, tt := range tests {
		got, err := logging.ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestOrDiscard(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	if logging.OrDiscard(l) != l {
		t.Error("OrDiscard(l) is not l")
	}
	d := logging.OrDiscard(nil)
	if d == nil || d.Enabled(context.Background(), slog.LevelError) {
		t.Errorf("OrDiscard(nil) = %v, want a logger that discards everything", d)
	}
}
