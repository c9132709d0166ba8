// Package delivery sends webhook deliveries the way Smartcar does: a JSON
// body POSTed with its SC-Signature, a Smartcar User-Agent, and on each
// attempt a new deliveryId and deliveredAt. The send tool and the tests use
// it to drive a receiver.
package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// UserAgent is what deliveries announce themselves as.
const UserAgent = "Smartcar/4.0 (smartcar-webhook-receiver send)"

// NewID returns a random UUID (version 4).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Rewrite is a change to a body's identity fields. Empty fields are kept.
type Rewrite struct {
	EventID    string
	VehicleID  string
	DeliveryID string
	// DeliveredAt, when non-zero, replaces every meta.deliveredAt.
	DeliveredAt time.Time
}

var deliveredAt = regexp.MustCompile(`"deliveredAt"\s*:\s*("[^"]*"|\d+)`)

// Apply returns body with the rewrite applied. It edits the bytes in place
// of the old values rather than re-encoding, so the body keeps its exact
// shape; the result must be signed afresh.
func (rw Rewrite) Apply(body []byte) []byte {
	env, _ := smartcar.ParseEnvelope(body)
	out := body
	for _, r := range []struct{ old, new string }{
		{env.EventID, rw.EventID}, {env.VehicleID, rw.VehicleID}, {env.DeliveryID, rw.DeliveryID},
	} {
		if r.old != "" && r.new != "" {
			out = bytes.ReplaceAll(out, []byte(strconv.Quote(r.old)), []byte(strconv.Quote(r.new)))
		}
	}
	if !rw.DeliveredAt.IsZero() {
		out = deliveredAt.ReplaceAll(out, []byte(`"deliveredAt":`+strconv.FormatInt(rw.DeliveredAt.UnixMilli(), 10)))
	}
	return out
}

// Result is the receiver's answer to one delivery.
type Result struct {
	Status  int
	Body    []byte
	Latency time.Duration
}

// OK reports whether Smartcar would count the delivery as delivered.
func (r Result) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Send POSTs body to url, signed with token (unsigned when token is "").
func Send(ctx context.Context, client *http.Client, url, token string, body []byte) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if token != "" {
		req.Header.Set(smartcar.SignatureHeader, smartcar.Sign(token, body))
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Result{Latency: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return Result{Status: resp.StatusCode, Body: b, Latency: time.Since(start)}, err
}
