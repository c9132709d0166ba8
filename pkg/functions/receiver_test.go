package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

const testToken = events.TestToken

// eventsTime is when the events/ files were recorded: their bodies'
// meta.deliveredAt are within two minutes of it.
var eventsTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type receiverStack struct {
	env      map[string]string
	queueURL string
	secretID string
	sqs      *sqs.Client
	secrets  *secretsmanager.Client
	// now is the receiver's clock, eventsTime unless a test moves it.
	now    time.Time
	stdout *loggingtest.Buffer
}

// newStack creates a secret and a queue in the emulator and returns the
// receiver's environment for them. The SDK finds the emulator only through
// AWS_ENDPOINT_URL, as a deployed function finds AWS.
func newReceiverStack(t *testing.T) *receiverStack {
	t.Helper()
	awstest.SetEnv(t)
	ctx := context.Background()
	cfg := awstest.Config(t)
	s := &receiverStack{
		sqs: sqs.NewFromConfig(cfg), secrets: secretsmanager.NewFromConfig(cfg), secretID: awstest.Name(t, "receiver"),
		now: eventsTime, stdout: &loggingtest.Buffer{},
	}
	q, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "receiver"))})
	if err != nil {
		t.Fatal(err)
	}
	s.queueURL = *q.QueueUrl
	if _, err := s.secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.secretID), SecretString: aws.String(testToken)}); err != nil {
		t.Fatal(err)
	}
	s.env = map[string]string{"QUEUE_URL": s.queueURL, "AMT_SECRET_ID": s.secretID}
	return s
}

func (s *receiverStack) handler(t *testing.T) lambda.Handler {
	t.Helper()
	// As main does: the AWS config comes only from the environment, where
	// AWS_ENDPOINT_URL points at the emulator.
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, err := newReceiver(func(k string) string { return s.env[k] }, awsCfg, s.stdout, func() time.Time { return s.now })
	if err != nil {
		t.Fatal(err)
	}
	return lambda.NewHandler(h)
}

func invokeReceiver(t *testing.T, h lambda.Handler, event []byte) apigw.Response {
	t.Helper()
	out, err := h.Invoke(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	var resp apigw.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *receiverStack) receiveAll(t *testing.T) []string {
	t.Helper()
	return awstest.QueueBodies(t, s.queueURL)
}

func TestEventFilesAgainstEmulator(t *testing.T) {
	s := newReceiverStack(t)
	h := s.handler(t)
	tests := []struct {
		file string
		want int
	}{
		{"httpapi-verify.json", 200},
		{"rest-verify.json", 200},
		{"httpapi-bad-signature.json", 401},
		{"rest-bad-signature.json", 401},
		{"httpapi-vehicle-state.json", 200},
		{"rest-vehicle-error.json", 200},
	}
	for _, tt := range tests {
		if resp := invokeReceiver(t, h, events.MustRead("receiver/"+tt.file)); resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d: %s", tt.file, resp.StatusCode, tt.want, resp.Body)
		}
	}
	state := events.MustRead("bodies/vehicle_state.json")
	errEvent := events.MustRead("bodies/vehicle_error.json")
	got := s.receiveAll(t)
	if len(got) != 2 {
		t.Fatalf("queue holds %d messages, want 2", len(got))
	}
	for _, want := range [][]byte{state, errEvent} {
		if got[0] != string(want) && got[1] != string(want) {
			t.Errorf("queue lacks the byte-identical body %.60s...", want)
		}
	}
}

func TestUnreachableQueueIs503(t *testing.T) {
	s := newReceiverStack(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, url := range []string{
		strings.Replace(s.queueURL, "/receiver-", "/missing-", 1), // the queue does not exist
		"http://" + closed + "/123456789012/queue",                // nothing listens there
	} {
		s.env["QUEUE_URL"] = url
		if resp := invokeReceiver(t, s.handler(t), events.MustRead("receiver/httpapi-vehicle-state.json")); resp.StatusCode != 503 {
			t.Errorf("QUEUE_URL %s: status %d, want 503: %s", url, resp.StatusCode, resp.Body)
		}
	}
}

func TestRotatedSecretPickedUp(t *testing.T) {
	s := newReceiverStack(t)
	h := s.handler(t)
	if resp := invokeReceiver(t, h, events.MustRead("receiver/httpapi-vehicle-state.json")); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Rotate: the new token first, the old one still accepted.
	if _, err := s.secrets.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.secretID), SecretString: aws.String(`{"tokens":["rotated-token","` + testToken + `"]}`),
	}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"eventId":"after-rotation","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"}}}`)
	event, _ := json.Marshal(map[string]any{
		"version": "2.0", "rawPath": "/webhooks/smartcar",
		"requestContext": map[string]any{"http": map[string]any{"method": "POST"}},
		"headers":        map[string]string{"sc-signature": smartcar.Sign("rotated-token", body)},
		"body":           string(body),
	})
	if resp := invokeReceiver(t, h, event); resp.StatusCode != 200 {
		t.Fatalf("signature under the rotated token: status %d, want 200: %s", resp.StatusCode, resp.Body)
	}
	if resp := invokeReceiver(t, h, events.MustRead("receiver/httpapi-vehicle-state.json")); resp.StatusCode != 200 {
		t.Fatalf("previous token after rotation: status %d", resp.StatusCode)
	}
	// VERIFY now answers with the new, first token.
	resp := invokeReceiver(t, h, events.MustRead("receiver/httpapi-verify.json"))
	want := smartcar.HashChallenge("rotated-token", "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74")
	if !strings.Contains(resp.Body, want) {
		t.Errorf("VERIFY answered %s, want the rotated token's %s", resp.Body, want)
	}
}

// TestMaxDeliveryAge checks MAX_DELIVERY_AGE's way from the environment to
// the receiver: two hours after a recorded delivery, its replay is refused
// by default, and accepted with a larger maximum age or with the check off.
func TestMaxDeliveryAge(t *testing.T) {
	s := newReceiverStack(t)
	s.now = eventsTime.Add(2 * time.Hour)
	event := events.MustRead("receiver/httpapi-vehicle-state.json")
	tests := []struct {
		value string
		want  int
	}{
		{"", 401},
		{"90m", 401},
		{"3h", 200},
		{"0", 200},
	}
	for _, tt := range tests {
		s.env["MAX_DELIVERY_AGE"] = tt.value
		before := s.stdout.Count("replay.rejected")
		if resp := invokeReceiver(t, s.handler(t), event); resp.StatusCode != tt.want {
			t.Errorf("MAX_DELIVERY_AGE=%q: status %d, want %d: %s", tt.value, resp.StatusCode, tt.want, resp.Body)
		}
		wantRejected := 0
		if tt.want == 401 {
			wantRejected = 1
		}
		if rejected := s.stdout.Count("replay.rejected") - before; rejected != wantRejected {
			t.Errorf("MAX_DELIVERY_AGE=%q: %d replay.rejected lines, want %d", tt.value, rejected, wantRejected)
		}
	}
	if !strings.Contains(s.stdout.String(), `"ReplaysRejected":1`) {
		t.Error("no ReplaysRejected metric on stdout")
	}
	if n := len(s.receiveAll(t)); n != 2 {
		t.Errorf("queue holds %d messages, want the 2 accepted", n)
	}
}

func TestLoadReceiverConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{"complete", map[string]string{"QUEUE_URL": "q", "AMT_SECRET_ID": "s"}, nil},
		{"nothing set", map[string]string{}, []string{"QUEUE_URL", "AMT_SECRET_ID"}},
		{"bad optional values", map[string]string{"QUEUE_URL": "q", "AMT_SECRET_ID": "s", "MAX_BODY_BYTES": "big", "SECRET_CACHE_TTL": "-1s", "LOG_LEVEL": "chatty", "MAX_DELIVERY_AGE": "-1h"},
			[]string{"MAX_BODY_BYTES", "SECRET_CACHE_TTL", "LOG_LEVEL", "MAX_DELIVERY_AGE"}},
		{"MAX_DELIVERY_AGE not a duration", map[string]string{"QUEUE_URL": "q", "AMT_SECRET_ID": "s", "MAX_DELIVERY_AGE": "soon"}, []string{"MAX_DELIVERY_AGE"}},
		// A body SQS cannot carry as text travels base64-encoded, a third
		// larger: beyond this it could never be enqueued.
		{"MAX_BODY_BYTES beyond a queue message", map[string]string{"QUEUE_URL": "q", "AMT_SECRET_ID": "s", "MAX_BODY_BYTES": "800000"}, []string{"MAX_BODY_BYTES", "780288"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadReceiverConfig(func(k string) string { return tt.env[k] })
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MaxBodyBytes != 256<<10 || cfg.SecretCacheTTL.Minutes() != 5 || cfg.MaxDeliveryAge != time.Hour {
					t.Errorf("defaults: %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, name := range tt.wantErr {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error does not name %s: %v", name, err)
				}
			}
		})
	}
}

func TestLoadReceiverConfigMaxDeliveryAge(t *testing.T) {
	for value, want := range map[string]time.Duration{
		"":     time.Hour,
		"90m":  90 * time.Minute,
		"7200": 2 * time.Hour,
		"0":    receiver.NoMaxDeliveryAge,
		"0s":   receiver.NoMaxDeliveryAge,
		" 0 ":  receiver.NoMaxDeliveryAge,
	} {
		cfg, err := LoadReceiverConfig(func(k string) string {
			return map[string]string{"QUEUE_URL": "q", "AMT_SECRET_ID": "s", "MAX_DELIVERY_AGE": value}[k]
		})
		if err != nil || cfg.MaxDeliveryAge != want {
			t.Errorf("MAX_DELIVERY_AGE=%q: %v, %v; want %v", value, cfg.MaxDeliveryAge, err, want)
		}
	}
}

func TestNewReceiverFailsOnBadConfig(t *testing.T) {
	_, err := NewReceiver(func(string) string { return "" }, aws.Config{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "QUEUE_URL") {
		t.Fatalf("err = %v, want one naming QUEUE_URL", err)
	}
}
