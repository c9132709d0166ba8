package receiver_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver/receivertest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

var benchSizes = []int{1 << 10, 16 << 10, 50 << 10}

// stateBody builds a compact VEHICLE_STATE body of about size bytes, with
// signals shaped like real ones.
func stateBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"eventId":"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02","eventType":"VEHICLE_STATE","data":{"user":{"id":"5e2b8d4f-7a1c-4e9b-b3d6-0c8f2a4e6b13"},"vehicle":{"id":"9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24","make":"TESLA","model":"Model Y","year":2024},"signals":[`)
	tail := `]},"meta":{"deliveryId":"1c3e5a7b-9d2f-4b6a-8e0c-2d4f6b8a0c35","deliveredAt":1767225598530,"version":"4.0","mode":"LIVE"}}`
	for i := 0; sb.Len()+len(tail) < size-200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"code":"group%d-signal","name":"Signal%d","group":"Group%d","body":{"value":%d.125,"unit":"percent"},"meta":{"oemUpdatedAt":1767225590000,"retrievedAt":1767225598412},"status":{"value":"SUCCESS"}}`, i, i, i, i)
	}
	sb.WriteString(tail)
	return []byte(sb.String())
}

// BenchmarkReceiver measures the receiver core on a signed VEHICLE_STATE
// with an in-memory queue and real JSON logs and metrics to io.Discard.
func BenchmarkReceiver(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := stateBody(size)
			h := receiver.New(&receivertest.Queue{Discard: true}, receivertest.NewTokens(testToken), receiver.Options{
				Logger:  logging.New(io.Discard, slog.LevelInfo),
				Metrics: emf.NewWriter(io.Discard, "SmartcarWebhooks", map[string]string{"Service": "receiver"}),
				// The body's meta.deliveredAt is 1.47 s before fixtureTime.
				Now: func() time.Time { return fixtureTime },
			})
			req := post(body, "sc-signature", smartcar.Sign(testToken, body))
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Handle(ctx, req); resp.Status != 200 {
					b.Fatalf("status %d", resp.Status)
				}
			}
		})
	}
}

// BenchmarkHMACFloor is the least any receiver must do: one HMAC-SHA256
// over the same bytes.
func BenchmarkHMACFloor(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := stateBody(size)
			key := []byte(testToken)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				mac := hmac.New(sha256.New, key)
				mac.Write(body)
				mac.Sum(nil)
			}
		})
	}
}

// BenchmarkParseEnvelope isolates the envelope scan.
func BenchmarkParseEnvelope(b *testing.B) {
	body := stateBody(50 << 10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := smartcar.ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}
