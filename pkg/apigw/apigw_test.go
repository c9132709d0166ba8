package apigw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver/receivertest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// recorded is the receiver's clock in these tests: when the fixtures were
// recorded (their requestContext.timeEpoch), so that the bodies'
// meta.deliveredAt are current rather than replays.
func recorded() time.Time { return time.UnixMilli(1767225600000) }

func newInvoker(queue *receivertest.Queue) lambda.Handler {
	core := receiver.New(queue, receivertest.NewTokens(testToken), receiver.Options{Now: recorded})
	return lambda.NewHandler(apigw.Handler(core))
}

func invoke(t *testing.T, h lambda.Handler, event []byte) apigw.Response {
	t.Helper()
	out, err := h.Invoke(context.Background(), event)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp apigw.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if resp.Headers["Content-Type"] != "application/json" {
		t.Errorf("Content-Type = %q", resp.Headers["Content-Type"])
	}
	return resp
}

// TestEventFiles invokes the handler, as lambda.Start would, with every
// file in events/receiver.
func TestEventFiles(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			event := samples.MustRead("receiver/" + f.file)
			queue := &receivertest.Queue{}
			resp := invoke(t, newInvoker(queue), event)
			if resp.StatusCode != f.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, f.wantStatus, resp.Body)
			}
			body := samples.MustRead("bodies/" + f.body)
			env, err := smartcar.ParseEnvelope(body)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatalf("body %q: %v", resp.Body, err)
			}
			msgs := queue.Messages()
			switch {
			case f.wantStatus != 200:
				if len(msgs) != 0 {
					t.Error("rejected event was enqueued")
				}
			case env.IsVerify():
				if want := smartcar.HashChallenge(testToken, env.Challenge); got["challenge"] != want {
					t.Errorf("challenge = %q, want %q", got["challenge"], want)
				}
				if len(msgs) != 0 {
					t.Error("VERIFY was enqueued")
				}
			default:
				if got["status"] != "received" || got["eventId"] != env.EventID {
					t.Errorf("body = %v", got)
				}
				if len(msgs) != 1 || string(msgs[0].Body) != string(body) {
					t.Fatalf("queue holds %d messages, want the exact body once", len(msgs))
				}
			}
		})
	}
}

func TestRequestMapping(t *testing.T) {
	body := samples.MustRead("bodies/vehicle_state.json")
	sig := smartcar.Sign(testToken, body)
	bodyJSON, _ := json.Marshal(string(body))
	b64JSON, _ := json.Marshal(base64.StdEncoding.EncodeToString(body))
	tests := []struct {
		name  string
		event string
		want  int
	}{
		{"2.0 named stage prefix", `{"version":"2.0","rawPath":"/prod/webhooks/smartcar","requestContext":{"stage":"prod","http":{"method":"POST"}},"headers":{"sc-signature":"` + sig + `"},"body":` + string(bodyJSON) + `}`, 200},
		{"2.0 health", `{"version":"2.0","rawPath":"/health","requestContext":{"stage":"$default","http":{"method":"GET"}}}`, 200},
		{"2.0 unknown route", `{"version":"2.0","rawPath":"/admin","requestContext":{"http":{"method":"POST"}}}`, 404},
		{"1.0 multi-value headers only", `{"httpMethod":"POST","path":"/webhooks/smartcar","multiValueHeaders":{"Sc-Signature":["` + sig + `"]},"body":` + string(bodyJSON) + `}`, 200},
		{"1.0 base64", `{"httpMethod":"POST","path":"/webhooks/smartcar","headers":{"SC-Signature":"` + sig + `"},"isBase64Encoded":true,"body":` + string(b64JSON) + `}`, 200},
		{"bad base64", `{"version":"2.0","rawPath":"/webhooks/smartcar","requestContext":{"http":{"method":"POST"}},"isBase64Encoded":true,"body":"%%%"}`, 400},
		{"not a proxy event", `{"Records":[]}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp := invoke(t, newInvoker(&receivertest.Queue{}), []byte(tt.event)); resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.want, resp.Body)
			}
		})
	}
}

// allowedStatuses are the only answers the receiver gives.
var allowedStatuses = []int{200, 400, 401, 404, 405, 413, 503}

// FuzzHandler drives the Lambda handler with arbitrary requests of both
// payload formats. It must never panic, and must answer only with an
// allowed status. Its seed corpus runs in every `go test`.
func FuzzHandler(f *testing.F) {
	for _, fx := range fixtures {
		f.Add(fx.format == "2.0", "POST", fx.path, "sc-signature", fx.signature == "valid", fx.base64, samples.MustRead("bodies/"+fx.body), false)
	}
	f.Add(true, "GET", "/health", "", false, false, []byte{}, false)
	f.Add(false, "DELETE", "/webhooks/smartcar/errors", "SC-SIGNATURE", true, false, []byte(`[]`), false)
	f.Add(true, "POST", "/webhooks/smartcar", "", false, false, []byte(`{"eventType":"VERIFY","data":{"challenge":"{\"a\":1}"}}`), false)
	f.Add(true, "POST", "/webhooks/smartcar", "sc-signature", true, false, []byte(`{"eventId":"x"}`), true)
	f.Add(false, "POST", "/webhooks/smartcar", "sc-signature", true, true, []byte(strings.Repeat("{", 300)), false)
	f.Fuzz(func(t *testing.T, v2 bool, method, path, sigHeader string, sign, b64 bool, body []byte, queueFails bool) {
		headers := map[string]string{}
		if sigHeader != "" {
			headers[sigHeader] = "deadbeef"
			if sign {
				headers[sigHeader] = smartcar.Sign(testToken, body)
			}
		}
		text := string(body)
		if b64 {
			text = base64.StdEncoding.EncodeToString(body)
		}
		var event map[string]any
		if v2 {
			event = map[string]any{"version": "2.0", "rawPath": path, "headers": headers,
				"requestContext": map[string]any{"http": map[string]any{"method": method}},
				"body":           text, "isBase64Encoded": b64}
		} else {
			event = map[string]any{"httpMethod": method, "path": path, "headers": headers, "body": text, "isBase64Encoded": b64}
		}
		raw, err := json.Marshal(event)
		if err != nil {
			t.Skip()
		}
		queue := &receivertest.Queue{}
		if queueFails {
			queue.Err = context.DeadlineExceeded
		}
		core := receiver.New(queue, receivertest.NewTokens(testToken), receiver.Options{MaxBodyBytes: 4096, Now: recorded})
		out, err := lambda.NewHandler(apigw.Handler(core)).Invoke(context.Background(), raw)
		if err != nil {
			t.Fatalf("Invoke error: %v", err)
		}
		var resp apigw.Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response %s: %v", out, err)
		}
		if !slices.Contains(allowedStatuses, resp.StatusCode) {
			t.Fatalf("status %d not in %v", resp.StatusCode, allowedStatuses)
		}
		if resp.StatusCode == 200 && len(queue.Messages()) > 1 {
			t.Fatal("more than one message for one request")
		}
	})
}
