// Package receivertest provides hand-written fakes of the receiver's
// dependencies for tests and benchmarks.
package receivertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Message is what Queue stored.
type Message struct {
	Body     []byte
	Envelope smartcar.Envelope
}

// Queue is an in-memory receiver.Queue. Set Err to make Enqueue fail, or
// Block to make it wait for its context.
type Queue struct {
	mu       sync.Mutex
	messages []Message
	Err      error
	Block    bool
	// Discard keeps only the count, for benchmarks.
	Discard bool
	count   int
}

// Enqueue stores a copy of body.
func (q *Queue) Enqueue(ctx context.Context, body []byte, env smartcar.Envelope) (string, error) {
	if q.Block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Err != nil {
		return "", q.Err
	}
	q.count++
	if !q.Discard {
		q.messages = append(q.messages, Message{Body: append([]byte(nil), body...), Envelope: env})
	}
	return fmt.Sprintf("msg-%d", q.count), nil
}

// Messages returns what was enqueued, oldest first.
func (q *Queue) Messages() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Message(nil), q.messages...)
}

// Tokens is a receiver.TokenSource whose secret can be rotated. Tokens
// returns the cached list; Refresh loads the current one.
type Tokens struct {
	mu        sync.Mutex
	cached    []string
	current   []string
	Err       error
	refreshes int
}

// NewTokens returns a source whose secret and cache both hold tokens.
func NewTokens(tokens ...string) *Tokens {
	return &Tokens{cached: tokens, current: tokens}
}

// Rotate changes the secret; the cache keeps the old tokens until Refresh.
func (t *Tokens) Rotate(tokens ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.current = tokens
}

// Tokens returns the cached tokens.
func (t *Tokens) Tokens(context.Context) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Err != nil {
		return nil, t.Err
	}
	return t.cached, nil
}

// Refresh loads the secret's current tokens into the cache.
func (t *Tokens) Refresh(context.Context) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refreshes++
	if t.Err != nil {
		return nil, t.Err
	}
	t.cached = t.current
	return t.cached, nil
}

// Refreshes counts the calls to Refresh.
func (t *Tokens) Refreshes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refreshes
}
