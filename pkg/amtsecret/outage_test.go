package amtsecret_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret/amtsecrettest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver/receivertest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

const secretID = "smartcar/amt"

// TestFailedRefreshKeepsTokens: a refresh that cannot read a valid secret
// (Secrets Manager unreachable, or a bad value stored) leaves the cached
// tokens in use.
func TestFailedRefreshKeepsTokens(t *testing.T) {
	ctx := context.Background()
	client := amtsecrettest.NewClient(secretID, "token-1")
	src, err := amtsecret.New(client, secretID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src.Tokens(ctx); err != nil || !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("Tokens = %v, %v", got, err)
	}

	client.SetDown(true)
	if _, err := src.Refresh(ctx); !errors.Is(err, amtsecrettest.ErrUnavailable) {
		t.Fatalf("Refresh during an outage: err = %v, want ErrUnavailable", err)
	}
	if got, err := src.Tokens(ctx); err != nil || !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("Tokens after a failed Refresh = %v, %v; want the cached [token-1]", got, err)
	}

	client.SetDown(false)
	client.Put(" ")
	if _, err := src.Refresh(ctx); !errors.Is(err, smartcar.ErrNoToken) {
		t.Fatalf("Refresh of an empty secret: err = %v, want ErrNoToken", err)
	}
	if got, err := src.Tokens(ctx); err != nil || !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("Tokens after reading an empty secret = %v, %v; want the cached [token-1]", got, err)
	}

	// Once a read succeeds, the new value replaces the old.
	client.Put(`{"tokens":["token-2","token-1"]}`)
	if got, err := src.Refresh(ctx); err != nil || !slices.Equal(got, []string{"token-2", "token-1"}) {
		t.Fatalf("Refresh after the outage = %v, %v", got, err)
	}
	client.SetDown(true)
	if got, err := src.Tokens(ctx); err != nil || !slices.Equal(got, []string{"token-2", "token-1"}) {
		t.Fatalf("Tokens = %v, %v; want the refreshed tokens, from the cache", got, err)
	}
}

// TestOutageForgedRequestKeepsGenuineDeliveries drives the receiver with a
// real Source: a forged request during a Secrets Manager outage forces a
// refresh, which fails; the next genuine delivery must still be accepted
// with the cached token.
func TestOutageForgedRequestKeepsGenuineDeliveries(t *testing.T) {
	const token = events.TestToken
	ctx := context.Background()
	client := amtsecrettest.NewClient(secretID, token)
	src, err := amtsecret.New(client, secretID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	queue := &receivertest.Queue{}
	h := receiver.New(queue, src, receiver.Options{
		// The sample bodies were delivered at about this time.
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	deliver := func(body []byte, signWith string) receiver.Response {
		return h.Handle(ctx, receiver.Request{
			Method: "POST", Path: receiver.PathWebhook, Body: body,
			Headers: map[string]string{smartcar.SignatureHeader: smartcar.Sign(signWith, body)},
		})
	}
	state, errEvent := events.MustRead("bodies/vehicle_state.json"), events.MustRead("bodies/vehicle_error.json")

	if resp := deliver(state, token); resp.Status != 200 {
		t.Fatalf("genuine delivery before the outage: status %d: %s", resp.Status, resp.Body)
	}
	client.SetDown(true)
	calls := client.Calls()
	if resp := deliver(state, "attacker"); resp.Status != 401 && resp.Status != 503 {
		t.Fatalf("forged delivery during the outage: status %d, want 401 or 503", resp.Status)
	}
	if client.Calls() == calls {
		t.Fatal("the forged delivery did not try to refresh the secret; the test proves nothing")
	}
	if resp := deliver(errEvent, token); resp.Status != 200 {
		t.Fatalf("genuine delivery after a forged one, during the outage: status %d, want 200: %s", resp.Status, resp.Body)
	}
	verify := events.MustRead("bodies/verify.json")
	resp := h.Handle(ctx, receiver.Request{Method: "POST", Path: receiver.PathWebhook, Body: verify})
	if resp.Status != 200 {
		t.Fatalf("unsigned VERIFY during the outage: status %d: %s", resp.Status, resp.Body)
	}
	if n := len(queue.Messages()); n != 2 {
		t.Errorf("queue holds %d messages, want the 2 genuine deliveries", n)
	}
}
