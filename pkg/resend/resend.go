// Package resend sends a batch to a service that may accept part of it
// (Firehose PutRecordBatch, EventBridge PutEvents): the items it refuses,
// and only those, are sent again after a jittered, doubling wait, a
// bounded number of times, and each item gets its own outcome.
package resend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// MaxWait bounds the wait before a resend, however many attempts.
const MaxWait = time.Second

// Refusal is an item the service refused: its index in the batch sent,
// and the service's reason. Permanent marks a refusal no resend can
// change (the service said the fault is the sender's).
type Refusal struct {
	Index         int
	Code, Message string
	Permanent     bool
}

// Error is an item refused in every attempt made.
type Error struct {
	// Service names what refused it: "firehose", "eventbridge".
	Service       string
	Code, Message string
	Attempts      int // made, the last refused
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s refused it (attempt %d): %s: %s", e.Service, e.Attempts, e.Code, e.Message)
}

// Policy says how a batch is resent.
type Policy struct {
	Service  string        // for Error and the call's errors
	Attempts int           // in all; at least 1
	Backoff  time.Duration // the first wait, doubled each time up to MaxWait
	// Permanent, if set, marks codes no resend can change: such an item
	// fails at once.
	Permanent func(code string) bool
}

// Defaults of a Policy made by NewPolicy.
const (
	DefaultAttempts = 3
	DefaultBackoff  = 50 * time.Millisecond
)

// Option changes a Policy: the options of the adapters built on Send.
type Option func(*Policy)

// WithAttempts sets how many times, in all, an item the service refuses
// is sent (DefaultAttempts; at least 1).
func WithAttempts(n int) Option { return func(p *Policy) { p.Attempts = max(n, 1) } }

// WithBackoff sets the wait before the first resend (DefaultBackoff),
// doubled before each next one up to MaxWait; each wait is jittered
// between half and all of it.
func WithBackoff(d time.Duration) Option { return func(p *Policy) { p.Backoff = max(d, 0) } }

// NewPolicy returns the Policy of service's resends, with DefaultAttempts
// and DefaultBackoff unless opts change them; permanent may be nil.
func NewPolicy(service string, permanent func(code string) bool, opts ...Option) Policy {
	p := Policy{Service: service, Attempts: DefaultAttempts, Backoff: DefaultBackoff, Permanent: permanent}
	for _, opt := range opts {
		opt(&p)
	}
	return p
}

// Send sends batch with send, which makes one call and returns the items
// refused (an error: none accepted, as far as is known), resends what was
// refused, and sets errs[index(item)] for each item not accepted in the
// end; accepted items' errors are left nil.
func Send[T any](ctx context.Context, p Policy, batch []T, index func(T) int, errs []error,
	send func(context.Context, []T) ([]Refusal, error)) {
	fail := func(items []T, err error) {
		for _, it := range items {
			errs[index(it)] = err
		}
	}
	todo := batch
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			fail(todo, fmt.Errorf("%s: %w", p.Service, err))
			return
		}
		refused, err := send(ctx, todo)
		if err != nil {
			fail(todo, err)
			return
		}
		var next []T
		var last []*Error
		for _, r := range refused {
			e := &Error{Service: p.Service, Code: r.Code, Message: r.Message, Attempts: attempt}
			if r.Permanent || p.Permanent != nil && p.Permanent(r.Code) {
				errs[index(todo[r.Index])] = e
				continue
			}
			next = append(next, todo[r.Index])
			last = append(last, e)
		}
		todo = next
		if len(todo) == 0 {
			return
		}
		if attempt >= p.Attempts {
			for j, it := range todo {
				errs[index(it)] = last[j]
			}
			return
		}
		if err := Sleep(ctx, p.wait(attempt)); err != nil {
			for j, it := range todo {
				errs[index(it)] = fmt.Errorf("%s resend: %w: %w", p.Service, err, last[j])
			}
			return
		}
	}
}

// wait returns the jittered wait before resend number attempt (1 for the
// first).
func (p Policy) wait(attempt int) time.Duration { return Backoff(p.Backoff, MaxWait, attempt) }

// Backoff returns the wait after attempt number attempt (1 for the first)
// failed: between half and all of base doubled attempt-1 times, at most
// maxWait.
func Backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2)
}

// Sleep waits d or until ctx is done, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Answer is what a service said of one item it was sent: the id it gave
// an item it took, or the code and message of its refusal.
type Answer struct{ ID, Code, Message string }

// Refusals returns the refusals among answers, one per item sent, in
// order. An answer that neither gives an id nor refuses is refused with
// the code missing: nothing shows the item was taken, so it is sent again.
func Refusals(answers []Answer, missing string) []Refusal {
	var refused []Refusal
	for i, a := range answers {
		code, message := a.Code, a.Message
		if code == "" && a.ID == "" {
			code, message = missing, "no id in the answer"
		}
		if code != "" {
			refused = append(refused, Refusal{Index: i, Code: code, Message: message})
		}
	}
	return refused
}
