package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver/receivertest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

const testToken = events.TestToken

// Signatures published with the example bodies (protocol reference §7).
const (
	stateSignature = "8cc7e9b5830d472bf999da77b3994e28dda82317018b7c0bc2d9dd0ace4e81fd"
	errorSignature = "d3ebbfac5aa540bdaa4f03fe99f689d04ba232355bb02b354d246b69c68124c4"
	verifyAnswer   = "68cab7c41890d97b920bb3448a8c98973a7ce1a68976a0685fad825f98f39123"
)

// fixtureTime is the fixtures' clock: the sample bodies were delivered
// within two minutes of it (meta.deliveredAt).
var fixtureTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	h       *receiver.Handler
	queue   *receivertest.Queue
	tokens  *receivertest.Tokens
	logs    *bytes.Buffer
	metrics *bytes.Buffer
	now     time.Time
	mu      sync.Mutex
}

// newFixture returns a receiver at fixtureTime whose token source holds
// tokens, by default the test token.
func newFixture(t testing.TB, opts receiver.Options, tokens ...string) *fixture {
	if len(tokens) == 0 {
		tokens = []string{testToken}
	}
	f := &fixture{
		queue:   &receivertest.Queue{},
		tokens:  receivertest.NewTokens(tokens...),
		logs:    &bytes.Buffer{},
		metrics: &bytes.Buffer{},
		now:     fixtureTime,
	}
	opts.Logger = logging.New(f.logs, slog.LevelDebug)
	opts.Metrics = emf.NewWriter(f.metrics, "SmartcarWebhooks", map[string]string{"Service": "receiver"})
	opts.Now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	f.h = receiver.New(f.queue, f.tokens, opts)
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func post(b []byte, headers ...string) receiver.Request {
	h := map[string]string{"content-type": "application/json"}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return receiver.Request{Method: http.MethodPost, Path: receiver.PathWebhook, Headers: h, Body: b}
}

func signed(token string, b []byte) receiver.Request {
	return post(b, "sc-signature", smartcar.Sign(token, b))
}

func decode(t *testing.T, r receiver.Response) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body %q is not a JSON object of strings: %v", r.Body, err)
	}
	return m
}

// logLines returns the logged lines whose message is msg.
func (f *fixture) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(f.logs.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestHandleStatuses(t *testing.T) {
	state := events.MustRead("bodies/vehicle_state.json")
	verify := events.MustRead("bodies/verify.json")
	tests := []struct {
		name       string
		req        receiver.Request
		want       int
		wantQueued int
	}{
		{"health", receiver.Request{Method: http.MethodGet, Path: receiver.PathHealth}, 200, 0},
		{"health HEAD", receiver.Request{Method: http.MethodHead, Path: receiver.PathHealth}, 200, 0},
		{"health POST", receiver.Request{Method: http.MethodPost, Path: receiver.PathHealth}, 405, 0},
		{"unknown path", receiver.Request{Method: http.MethodPost, Path: "/webhooks/other", Body: state}, 404, 0},
		{"root", receiver.Request{Method: http.MethodGet, Path: "/"}, 404, 0},
		{"GET webhook", receiver.Request{Method: http.MethodGet, Path: receiver.PathWebhook}, 405, 0},
		{"PUT errors route", receiver.Request{Method: http.MethodPut, Path: receiver.PathErrors}, 405, 0},
		{"state, published signature", post(state, "SC-Signature", stateSignature), 200, 1},
		{"state on errors route", func() receiver.Request {
			r := post(state, "sc-signature", stateSignature)
			r.Path = receiver.PathErrors
			return r
		}(), 200, 1},
		{"trailing slash", func() receiver.Request {
			r := post(state, "sc-signature", stateSignature)
			r.Path += "/"
			return r
		}(), 200, 1},
		{"error event, published signature", post(events.MustRead("bodies/vehicle_error.json"), "Sc-Signature", errorSignature), 200, 1},
		{"signature header upper case", post(state, "SC-SIGNATURE", stateSignature), 200, 1},
		{"signature header lower case", post(state, "sc-signature", stateSignature), 200, 1},
		{"missing signature", post(state), 401, 0},
		{"wrong token", signed("another-token", state), 401, 0},
		{"signature of another body", post(state, "sc-signature", errorSignature), 401, 0},
		{"malformed signature", post(state, "sc-signature", "not-hex"), 401, 0},
		{"empty signature", post(state, "sc-signature", ""), 401, 0},
		{"signed array", signed(testToken, []byte(`[{"eventId":"x"}]`)), 400, 0},
		{"signed string", signed(testToken, []byte(`"x"`)), 400, 0},
		{"signed truncated object", signed(testToken, state[:len(state)-1]), 400, 0},
		{"signed empty body", signed(testToken, nil), 400, 0},
		{"signed unknown event type", signed(testToken, []byte(`{"eventId":"u1","eventType":"VEHICLE_TELEPORTED"}`)), 200, 1},
		{"signed object without fields", signed(testToken, []byte(`{}`)), 200, 1},
		{"signed VERIFY", signed(testToken, verify), 200, 0},
		{"unsigned VERIFY", post(verify), 200, 0},
		{"unsigned legacy VERIFY", post([]byte(`{"version":"2.0","webhookId":"w","eventName":"verify","payload":{"challenge":"abc-123"}}`)), 200, 0},
		{"signed VERIFY without challenge", signed(testToken, []byte(`{"eventType":"VERIFY","data":{}}`)), 400, 0},
		{"VERIFY with bad signature", post(verify, "sc-signature", stateSignature), 401, 0},
		{"unsigned VERIFY, unsafe challenge", post([]byte(`{"eventType":"VERIFY","data":{"challenge":"a b"}}`)), 400, 0},
		{"unsigned VERIFY, empty challenge", post([]byte(`{"eventType":"VERIFY","data":{"challenge":""}}`)), 400, 0},
		{"too large", signed(testToken, append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 2048)...), `"}`...)), 413, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, receiver.Options{MaxBodyBytes: 2048})
			resp := f.h.Handle(context.Background(), tt.req)
			if resp.Status != tt.want {
				t.Fatalf("status = %d, want %d (body %s)", resp.Status, tt.want, resp.Body)
			}
			if n := len(f.queue.Messages()); n != tt.wantQueued {
				t.Errorf("enqueued %d messages, want %d", n, tt.wantQueued)
			}
			m := decode(t, resp)
			switch {
			case resp.Status == 405:
				if resp.Headers["Allow"] == "" {
					t.Error("405 without Allow header")
				}
			case resp.Status >= 400:
				if m["error"] == "" {
					t.Errorf("error response without an error message: %s", resp.Body)
				}
			}
		})
	}
}

func TestEnqueuesRawBodyWithEnvelope(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	state := events.MustRead("bodies/vehicle_state.json")
	resp := f.h.Handle(context.Background(), post(state, "SC-Signature", stateSignature))
	if resp.Status != 200 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	got := decode(t, resp)
	if got["status"] != "received" || got["eventId"] != "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02" {
		t.Errorf("response = %v", got)
	}
	msgs := f.queue.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if !bytes.Equal(msgs[0].Body, state) {
		t.Error("enqueued body differs from the received bytes")
	}
	want := smartcar.Envelope{
		EventID: "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02", EventType: "VEHICLE_STATE",
		VehicleID: "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24", DeliveryID: "1c3e5a7b-9d2f-4b6a-8e0c-2d4f6b8a0c35",
		Mode: "LIVE", Version: "4.0", DeliveredAt: 1767225598530,
	}
	if msgs[0].Envelope != want {
		t.Errorf("envelope = %+v, want %+v", msgs[0].Envelope, want)
	}
	for _, msg := range []string{"webhook.received", "signature.verified", "webhook.enqueued"} {
		lines := f.logLines(t, msg)
		if len(lines) != 1 {
			t.Errorf("%d %s lines", len(lines), msg)
			continue
		}
		for _, k := range []string{"eventId", "eventType", "vehicleId", "deliveryId"} {
			if lines[0][k] == "" || lines[0][k] == nil {
				t.Errorf("%s line lacks %s: %v", msg, k, lines[0])
			}
		}
	}
	if line := f.logLines(t, "webhook.enqueued"); len(line) == 1 && line[0]["deliveryAgeMs"] != float64(1470) {
		t.Errorf("webhook.enqueued deliveryAgeMs = %v, want 1470", line[0]["deliveryAgeMs"])
	}
	if strings.Contains(f.logs.String(), "StateOfCharge") || strings.Contains(f.logs.String(), testToken) {
		t.Error("logs contain signal data or the token")
	}
}

func TestRawBytesSurviveToTheQueue(t *testing.T) {
	// Re-serializing any of these would change them and break the signature.
	b := []byte(`{"eventId":"raw-1","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"},"signals":[{"code":"x","body":{"value":12.50,"name":"Caf\u00e9","big":9007199254740993}}]}}`)
	f := newFixture(t, receiver.Options{})
	if resp := f.h.Handle(context.Background(), signed(testToken, b)); resp.Status != 200 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if got := f.queue.Messages()[0].Body; !bytes.Equal(got, b) {
		t.Fatalf("queued %s, want %s", got, b)
	}
}

func TestVerifyAnswer(t *testing.T) {
	verify := events.MustRead("bodies/verify.json")
	for _, req := range []receiver.Request{post(verify), signed(testToken, verify)} {
		f := newFixture(t, receiver.Options{})
		resp := f.h.Handle(context.Background(), req)
		if resp.Status != 200 {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := decode(t, resp); len(got) != 1 || got["challenge"] != verifyAnswer {
			t.Errorf("answer = %s, want {\"challenge\":%q}", resp.Body, verifyAnswer)
		}
		if len(f.logLines(t, "verify.answered")) != 1 {
			t.Error("no verify.answered log line")
		}
		if !strings.Contains(f.metrics.String(), `"VerifyAnswered":1`) {
			t.Errorf("no VerifyAnswered metric: %s", f.metrics.String())
		}
	}
}

func TestVerifyUsesCurrentToken(t *testing.T) {
	f := newFixture(t, receiver.Options{}, "new-token", testToken)
	resp := f.h.Handle(context.Background(), post(events.MustRead("bodies/verify.json")))
	want := smartcar.HashChallenge("new-token", "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74")
	if got := decode(t, resp)["challenge"]; got != want {
		t.Errorf("challenge answered with %s, want the first token's %s", got, want)
	}
	// The previous token still verifies deliveries during the rotation.
	state := events.MustRead("bodies/vehicle_state.json")
	if resp := f.h.Handle(context.Background(), post(state, "sc-signature", stateSignature)); resp.Status != 200 {
		t.Errorf("previous token rejected: %d", resp.Status)
	}
}

// TestUnsignedVerifyIsNoSigningOracle posts a forged event as an unsigned
// VERIFY challenge: answering it would hand out the forged body's valid
// signature.
func TestUnsignedVerifyIsNoSigningOracle(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	forged := `{"eventId":"forged","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"},"signals":[]}}`
	challenge, _ := json.Marshal(forged)
	req := post([]byte(`{"eventId":"x","eventType":"VERIFY","data":{"challenge":` + string(challenge) + `}}`))
	resp := f.h.Handle(context.Background(), req)
	if resp.Status != 400 {
		t.Fatalf("status %d, want 400", resp.Status)
	}
	if bytes.Contains(resp.Body, []byte(smartcar.Sign(testToken, []byte(forged)))) {
		t.Fatal("response contains the forged body's signature")
	}
	// The forged body would now be rejected anyway: the oracle never answered.
	if resp := f.h.Handle(context.Background(), post([]byte(forged), "sc-signature", strings.Repeat("0", 64))); resp.Status != 401 {
		t.Fatalf("forged body status %d", resp.Status)
	}
	if len(f.queue.Messages()) != 0 {
		t.Fatal("something was enqueued")
	}
}

// TestVerifySignedWithPreviousTokenIsNoSigningOracle is the rotation form
// of the oracle: while the secret lists [new, old], whoever holds the old
// token (leaked, or the reason for the rotation) must not get a forged body
// signed under the new one by posting it as a VERIFY challenge signed with
// the old.
func TestVerifySignedWithPreviousTokenIsNoSigningOracle(t *testing.T) {
	forged := `{"eventId":"forged","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"},"signals":[]}}`
	challenge, _ := json.Marshal(forged)
	verify := []byte(`{"eventId":"x","eventType":"VERIFY","data":{"challenge":` + string(challenge) + `}}`)
	forgedSignature := smartcar.Sign("new-token", []byte(forged))
	tests := []struct {
		name          string
		cached        []string // what the cache holds
		secret        []string // what the secret holds, read on a refresh
		wantRefreshes int
	}{
		{"cache up to date", []string{"new-token", "old-token"}, []string{"new-token", "old-token"}, 0},
		// The mismatch under a stale cache refreshes it; the VERIFY is then
		// judged against the refreshed list.
		{"rotation found by a refresh", []string{"older-token"}, []string{"new-token", "old-token"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, receiver.Options{}, tt.cached...)
			f.tokens.Rotate(tt.secret...)
			resp := f.h.Handle(context.Background(), signed("old-token", verify))
			if resp.Status != 401 {
				t.Fatalf("VERIFY signed with the previous token: status %d, want 401: %s", resp.Status, resp.Body)
			}
			if bytes.Contains(resp.Body, []byte(forgedSignature)) {
				t.Fatal("response contains the forged body's signature under the new token")
			}
			if n := f.tokens.Refreshes(); n != tt.wantRefreshes {
				t.Errorf("%d refreshes, want %d", n, tt.wantRefreshes)
			}
			lines := f.logLines(t, "verify.rejected")
			if len(lines) != 1 || lines[0]["reason"] == nil || lines[0]["reason"] == "" {
				t.Errorf("verify.rejected lines = %v, want one with a reason", lines)
			}
			if len(f.logLines(t, "verify.answered")) != 0 || strings.Contains(f.metrics.String(), `"VerifyAnswered"`) {
				t.Error("the VERIFY was answered")
			}
			// Signed with the current token, the VERIFY is answered with it.
			resp = f.h.Handle(context.Background(), signed("new-token", verify))
			if got := decode(t, resp)["challenge"]; resp.Status != 200 || got != forgedSignature {
				t.Errorf("VERIFY signed with the current token: %d %s", resp.Status, resp.Body)
			}
			// Events signed with the previous token are still accepted.
			event := []byte(`{"eventId":"during-rotation","eventType":"VEHICLE_STATE"}`)
			if resp := f.h.Handle(context.Background(), signed("old-token", event)); resp.Status != 200 {
				t.Errorf("event signed with the previous token: status %d, want 200", resp.Status)
			}
			if n := len(f.queue.Messages()); n != 1 {
				t.Errorf("enqueued %d messages, want the one genuine event", n)
			}
		})
	}
}

func TestSignatureFailureLog(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	state := events.MustRead("bodies/vehicle_state.json")
	bad := smartcar.Sign("wrong-token", state)
	resp := f.h.Handle(context.Background(), post(state, "SC-Signature", bad, "User-Agent", "Smartcar/4.0"))
	if resp.Status != 401 {
		t.Fatalf("status %d", resp.Status)
	}
	lines := f.logLines(t, "signature.failed")
	if len(lines) != 1 {
		t.Fatalf("%d signature.failed lines", len(lines))
	}
	line := lines[0]
	for k, want := range map[string]any{
		"eventType": "VEHICLE_STATE", "mode": "LIVE", "deliveryId": "1c3e5a7b-9d2f-4b6a-8e0c-2d4f6b8a0c35",
		"bodyBytes": float64(len(state)), "signaturePrefix": bad[:8], "userAgent": "Smartcar/4.0",
	} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
	logs := f.logs.String()
	for _, secret := range []string{bad, testToken, "StateOfCharge", "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24\",\"make"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(f.metrics.String(), `"SignatureFailures":1`) {
		t.Errorf("no SignatureFailures metric: %s", f.metrics.String())
	}
}

func TestEnqueueFailureIs503(t *testing.T) {
	state := events.MustRead("bodies/vehicle_state.json")
	for _, tt := range []struct {
		name  string
		queue *receivertest.Queue
	}{
		{"error", &receivertest.Queue{Err: errors.New("sqs: throttled")}},
		{"hangs past the timeout", &receivertest.Queue{Block: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs, metrics bytes.Buffer
			h := receiver.New(tt.queue, receivertest.NewTokens(testToken), receiver.Options{
				Now:            func() time.Time { return fixtureTime },
				EnqueueTimeout: 50 * time.Millisecond,
				Logger:         logging.New(&logs, slog.LevelInfo),
				Metrics:        emf.NewWriter(&metrics, "ns", nil),
			})
			resp := h.Handle(context.Background(), post(state, "sc-signature", stateSignature))
			if resp.Status != 503 {
				t.Fatalf("status %d, want 503", resp.Status)
			}
			if !strings.Contains(logs.String(), "webhook.enqueue_failed") {
				t.Error("no webhook.enqueue_failed line")
			}
			if strings.Contains(logs.String(), "webhook.enqueued") {
				t.Error("logged webhook.enqueued for a failed send")
			}
			if !strings.Contains(metrics.String(), `"EnqueueFailures":1`) {
				t.Errorf("no EnqueueFailures metric: %s", metrics.String())
			}
		})
	}
}

func TestTokenUnavailableIs503(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	f.tokens.Err = errors.New("secretsmanager: unavailable")
	for _, req := range []receiver.Request{
		post(events.MustRead("bodies/vehicle_state.json"), "sc-signature", stateSignature),
		post(events.MustRead("bodies/verify.json")),
	} {
		if resp := f.h.Handle(context.Background(), req); resp.Status != 503 {
			t.Errorf("status %d, want 503", resp.Status)
		}
	}
}

func TestRotatedTokenPickedUpWithoutColdStart(t *testing.T) {
	f := newFixture(t, receiver.Options{RefreshInterval: 30 * time.Second})
	ctx := context.Background()
	first := []byte(`{"eventId":"e1","eventType":"VEHICLE_STATE"}`)
	if resp := f.h.Handle(ctx, signed(testToken, first)); resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}

	f.tokens.Rotate("rotated-token")
	second := []byte(`{"eventId":"e2","eventType":"VEHICLE_STATE"}`)
	if resp := f.h.Handle(ctx, signed("rotated-token", second)); resp.Status != 200 {
		t.Fatalf("rotated token rejected: %d", resp.Status)
	}
	if n := f.tokens.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}

	// Forged signatures do not hammer Secrets Manager: at most one refresh
	// per interval.
	for range 5 {
		if resp := f.h.Handle(ctx, signed("attacker", second)); resp.Status != 401 {
			t.Fatalf("forged status %d", resp.Status)
		}
	}
	if n := f.tokens.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes after forged requests inside the interval, want 1", n)
	}
	f.advance(31 * time.Second)
	f.h.Handle(ctx, signed("attacker", second))
	if n := f.tokens.Refreshes(); n != 2 {
		t.Fatalf("%d refreshes after the interval, want 2", n)
	}
	// A malformed header never triggers a refresh.
	f.advance(31 * time.Second)
	f.h.Handle(ctx, post(second, "sc-signature", "zz"))
	if n := f.tokens.Refreshes(); n != 2 {
		t.Fatalf("malformed signature caused a refresh")
	}
}

func TestConcurrentHandle(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	state := events.MustRead("bodies/vehicle_state.json")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := post(state, "sc-signature", stateSignature)
			if i%2 == 1 {
				req = signed("bad", state)
			}
			f.h.Handle(context.Background(), req)
		}()
	}
	wg.Wait()
	if n := len(f.queue.Messages()); n != 25 {
		t.Fatalf("%d enqueued, want 25", n)
	}
}
