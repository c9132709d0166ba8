package receiver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// hugeBody is a body of about 250 KB (under the default 256 KiB limit)
// whose logged fields are each about 40 KB of characters that JSON logs
// escape, so that echoing any one whole would show.
func hugeBody(eventType string) []byte {
	field := func(c string) string { return strings.Repeat(c, 6<<10) } // 6 KiB of escapes: 36 KB in a log line
	var sb strings.Builder
	sb.WriteString(`{"eventId":"` + field(`\u0001`) + `","eventType":"` + eventType + `","vehicleId":"` + field(`\"`) + `",`)
	sb.WriteString(`"data":{"challenge":"` + field(`\u2028`) + `"},`)
	sb.WriteString(`"meta":{"deliveryId":"` + field(`\u0002`) + `","mode":"` + field(`\\`) + `","version":"` + field(`\u0003`) + `"},`)
	sb.WriteString(`"pad":"`)
	for sb.Len() < 250<<10-2 {
		sb.WriteByte('x')
	}
	sb.WriteString(`"}`)
	return []byte(sb.String())
}

// TestUnauthenticatedLogsAreBounded posts 250 KB forged requests whose
// every logged string (ids, mode, version, User-Agent, the parse error) is
// huge: whatever the body, the receiver writes at most 2 KB of logs for a
// request it does not authenticate.
func TestUnauthenticatedLogsAreBounded(t *testing.T) {
	userAgent := "Smartcar/4.0 " + strings.Repeat("\x01é\"", 60<<10)
	state := hugeBody("VEHICLE_STATE")
	if _, err := smartcar.ParseEnvelope(state); err != nil {
		t.Fatalf("the test body must parse: %v", err)
	}
	notJSON := []byte(strings.Repeat("\x00not json\u2028", 250<<10/12))
	const unauthenticated = 2048
	tests := []struct {
		name       string
		req        receiver.Request
		wantStatus int
		wantLine   string
		maxBytes   int
	}{
		{"bad signature", post(state, "SC-Signature", smartcar.Sign("attacker", state), "User-Agent", userAgent), 401, "signature.failed", unauthenticated},
		{"malformed signature", post(state, "SC-Signature", strings.Repeat("\x01", 64<<10), "User-Agent", userAgent), 401, "signature.failed", unauthenticated},
		{"missing signature", post(state, "User-Agent", userAgent), 401, "signature.failed", unauthenticated},
		{"body not JSON, bad signature", post(notJSON, "SC-Signature", smartcar.Sign("attacker", notJSON), "User-Agent", userAgent), 401, "signature.failed", unauthenticated},
		{"body not JSON, missing signature", post(notJSON, "User-Agent", userAgent), 401, "signature.failed", unauthenticated},
		{"unsigned VERIFY with an unsafe challenge", post(hugeBody("VERIFY"), "User-Agent", userAgent), 400, "verify.rejected", unauthenticated},
		// Signed with an accepted token: three lines (received, verified,
		// rejected), each clipped.
		{"VERIFY signed with the previous token", signed("old-token", hugeBody("VERIFY")), 401, "verify.rejected", 3 * 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, receiver.Options{}, testToken, "old-token")
			resp := f.h.Handle(context.Background(), tt.req)
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.wantStatus, resp.Body)
			}
			if len(f.logLines(t, tt.wantLine)) != 1 {
				t.Fatalf("no %s line: %.500s", tt.wantLine, f.logs.String())
			}
			if n := f.logs.Len(); n > tt.maxBytes {
				t.Errorf("logged %d bytes for one request, want at most %d: %.300s…", n, tt.maxBytes, f.logs.String())
			}
			if !strings.Contains(f.logs.String(), logging.ClipMark) {
				t.Error("no clipped value marked as cut")
			}
		})
	}
}
