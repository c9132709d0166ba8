package receiver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

// stateAt is a small VEHICLE_STATE whose meta.deliveredAt is the JSON text
// at ("" leaves it out).
func stateAt(at string) []byte {
	meta := `"deliveryId":"d-1","mode":"LIVE"`
	if at != "" {
		meta += `,"deliveredAt":` + at
	}
	return []byte(`{"eventId":"e-1","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v-1"},"signals":[]},"meta":{` + meta + `}}`)
}

// ms is t in epoch milliseconds, as JSON text.
func ms(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }

func TestReplayWindow(t *testing.T) {
	now := fixtureTime
	const (
		accepted   = "accepted"
		unreadable = "accepted, deliveredAt unreadable"
		replay     = "refused as a replay"
		unchecked  = "accepted, unchecked"
	)
	tests := []struct {
		name   string
		at     string
		maxAge time.Duration
		want   string
	}{
		{"epoch ms, just now", ms(now.Add(-1470 * time.Millisecond)), 0, accepted},
		{"epoch seconds", fmt.Sprint(now.Add(-30 * time.Second).Unix()), 0, accepted},
		{"ISO-8601 string", `"` + now.Add(-10*time.Minute).Format(time.RFC3339Nano) + `"`, 0, accepted},
		{"ISO-8601 without a zone", `"` + now.Add(-10*time.Minute).Format("2006-01-02T15:04:05.000") + `"`, 0, accepted},
		{"numeric string", `"` + ms(now.Add(-time.Minute)) + `"`, 0, accepted},
		{"missing", "", 0, unreadable},
		{"null", "null", 0, unreadable},
		{"garbage string", `"yesterday"`, 0, unreadable},
		{"object", `{"ms":` + ms(now) + `}`, 0, unreadable},
		{"negative", "-" + ms(now), 0, unreadable},
		{"1969", `"1969-12-31T23:59:59Z"`, 0, unreadable},
		{"2019, implausible as a delivery time", ms(time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)), 0, unreadable},
		{"the last millisecond of 2019", ms(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond)), 0, unreadable},
		{"2020-01-01, plausible and stale", ms(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)), 0, replay},
		{"2 hours old", ms(now.Add(-2 * time.Hour)), 0, replay},
		{"2 hours old, ISO-8601", `"` + now.Add(-2*time.Hour).Format(time.RFC3339) + `"`, 0, replay},
		{"2 hours old, epoch seconds", fmt.Sprint(now.Add(-2 * time.Hour).Unix()), 0, replay},
		{"exactly the maximum age", ms(now.Add(-time.Hour)), 0, accepted},
		{"a millisecond past the maximum age", ms(now.Add(-time.Hour - time.Millisecond)), 0, replay},
		{"10 minutes in the future", ms(now.Add(10 * time.Minute)), 0, replay},
		{"exactly the future skew", ms(now.Add(5 * time.Minute)), 0, accepted},
		{"a millisecond past the future skew", ms(now.Add(5*time.Minute + time.Millisecond)), 0, replay},
		{"after year 9999", "253402300800000", 0, unreadable},
		{"2 hours old, maximum age 3h", ms(now.Add(-2 * time.Hour)), 3 * time.Hour, accepted},
		{"2 minutes old, maximum age 1m", ms(now.Add(-2 * time.Minute)), time.Minute, replay},
		{"2 hours old, check disabled", ms(now.Add(-2 * time.Hour)), receiver.NoMaxDeliveryAge, unchecked},
		{"10 minutes in the future, check disabled", ms(now.Add(10 * time.Minute)), receiver.NoMaxDeliveryAge, unchecked},
		{"missing, check disabled", "", receiver.NoMaxDeliveryAge, unchecked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, receiver.Options{MaxDeliveryAge: tt.maxAge})
			resp := f.h.Handle(context.Background(), signed(testToken, stateAt(tt.at)))
			wantStatus, wantQueued := 200, 1
			if tt.want == replay {
				wantStatus, wantQueued = 401, 0
			}
			if resp.Status != wantStatus {
				t.Fatalf("status %d, want %d (%s): %s", resp.Status, wantStatus, tt.want, resp.Body)
			}
			if n := len(f.queue.Messages()); n != wantQueued {
				t.Errorf("enqueued %d, want %d", n, wantQueued)
			}
			metrics := f.metrics.String()
			if got := strings.Contains(metrics, `"ReplaysRejected":1`); got != (tt.want == replay) {
				t.Errorf("ReplaysRejected metric emitted: %v, want %v: %s", got, tt.want == replay, metrics)
			}
			if got := strings.Contains(metrics, `"DeliveredAtUnreadable":1`); got != (tt.want == unreadable) {
				t.Errorf("DeliveredAtUnreadable metric emitted: %v, want %v: %s", got, tt.want == unreadable, metrics)
			}
			rejected := f.logLines(t, "replay.rejected")
			if (len(rejected) == 1) != (tt.want == replay) {
				t.Fatalf("%d replay.rejected lines, want %s", len(rejected), tt.want)
			}
			if tt.want == replay {
				if rejected[0]["ageMs"] == nil || rejected[0]["reason"] == nil || rejected[0]["eventId"] != "e-1" {
					t.Errorf("replay.rejected line lacks the age, reason or eventId: %v", rejected[0])
				}
				return
			}
			enqueued := f.logLines(t, "webhook.enqueued")
			if len(enqueued) != 1 {
				t.Fatalf("%d webhook.enqueued lines", len(enqueued))
			}
			if got := enqueued[0]["deliveredAtUnreadable"] == true; got != (tt.want == unreadable) {
				t.Errorf("webhook.enqueued deliveredAtUnreadable: %v, want %v: %v", got, tt.want == unreadable, enqueued[0])
			}
			if got := enqueued[0]["deliveryAgeMs"] != nil; got != (tt.want == accepted) {
				t.Errorf("webhook.enqueued deliveryAgeMs present: %v, want %v: %v", got, tt.want == accepted, enqueued[0])
			}
		})
	}
}

// TestReplayOfCapturedDelivery replays a genuine, signed delivery two hours
// after it was accepted, byte for byte: the signature still verifies, but
// the delivery is refused and nothing reaches the queue.
func TestReplayOfCapturedDelivery(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	ctx := context.Background()
	captured := post(events.MustRead("bodies/vehicle_state.json"), "SC-Signature", stateSignature)
	if resp := f.h.Handle(ctx, captured); resp.Status != 200 {
		t.Fatalf("genuine delivery: status %d: %s", resp.Status, resp.Body)
	}
	f.advance(2 * time.Hour)
	resp := f.h.Handle(ctx, captured)
	if resp.Status != 401 {
		t.Fatalf("replay two hours later: status %d, want 401: %s", resp.Status, resp.Body)
	}
	if m := decode(t, resp); !strings.Contains(m["error"], "deliveredAt") {
		t.Errorf("error = %q, want one naming deliveredAt", m["error"])
	}
	if n := len(f.queue.Messages()); n != 1 {
		t.Errorf("queue holds %d messages, want only the genuine delivery", n)
	}
	if !strings.Contains(f.metrics.String(), `"ReplaysRejected":1`) {
		t.Errorf("no ReplaysRejected metric: %s", f.metrics.String())
	}
	lines := f.logLines(t, "replay.rejected")
	if len(lines) != 1 {
		t.Fatalf("%d replay.rejected lines", len(lines))
	}
	// 2 h less the 1.47 s by which deliveredAt precedes fixtureTime.
	if got, want := lines[0]["ageMs"], float64(2*time.Hour/time.Millisecond+1470); got != want {
		t.Errorf("ageMs = %v, want %v", got, want)
	}
}

// TestReplayCheckSparesVerify: a VERIFY is not an event to replay; a signed
// one is answered whatever its deliveredAt.
func TestReplayCheckSparesVerify(t *testing.T) {
	f := newFixture(t, receiver.Options{})
	f.advance(48 * time.Hour)
	resp := f.h.Handle(context.Background(), signed(testToken, events.MustRead("bodies/verify.json")))
	if resp.Status != 200 || decode(t, resp)["challenge"] != verifyAnswer {
		t.Fatalf("stale signed VERIFY: %d %s", resp.Status, resp.Body)
	}
}
