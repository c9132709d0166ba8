// Package resendtest is the contract every batch adapter built on
// pkg/resend passes (pkg/eventbus over EventBridge's PutEvents,
// pkg/firehosearchive over Firehose's PutRecordBatch): what is resent,
// how often, what each item's outcome is, and that an item is reported
// sent only when the service accepted it, once. It also holds the service
// side of the adapters' fakes, which each adapter's test wraps in its
// service's request and answer types.
package resendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// What a fake answers for an item.
const (
	// Neither answers an item neither accepted nor refused (no id, no
	// error code).
	Neither = "-"
	// Message is the message of every refusal.
	Message = "Slow down."
)

// Answer says how the service answers call number call (0 for the first)
// of the items ids: each one's code ("" to accept it, Neither, or a
// refusal's code), or an error for the whole call.
type Answer func(call int, ids []string) ([]string, error)

// AcceptAll accepts every item.
func AcceptAll(int, []string) ([]string, error) { return nil, nil }

// Refuse refuses the items refused with code, on calls before until.
func Refuse(code string, until int, refused ...string) Answer {
	return func(call int, ids []string) ([]string, error) {
		codes := make([]string, len(ids))
		for i, id := range ids {
			if call < until && slices.Contains(refused, id) {
				codes[i] = code
			}
		}
		return codes, nil
	}
}

// RefuseOnce refuses the items refused with code the first time each is
// sent.
func RefuseOnce(code string, refused ...string) Answer {
	seen := map[string]bool{}
	return func(_ int, ids []string) ([]string, error) {
		codes := make([]string, len(ids))
		for i, id := range ids {
			if slices.Contains(refused, id) && !seen[id] {
				codes[i], seen[id] = code, true
			}
		}
		return codes, nil
	}
}

// Service is the service side of an adapter's fake: it answers each call
// as its Answer says and records the calls, the items it accepted and the
// service limits the adapter broke. It is safe for concurrent use.
type Service struct {
	answer Answer
	// cancel, if set, is called during the first call.
	cancel context.CancelFunc
	// short answers the first call with a result too few.
	short bool

	mu       sync.Mutex
	calls    [][]string
	accepted map[string]int
	broken   []string
}

// NewService returns a Service answering with answer.
func NewService(answer Answer) *Service {
	return &Service{answer: answer, accepted: map[string]int{}}
}

// Call answers a call of the items ids: one code per item (see Answer),
// and whether the fake is to leave the last result out; or an error for
// the whole call.
func (s *Service) Call(ids []string) (codes []string, short bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := len(s.calls)
	s.calls = append(s.calls, ids)
	if call == 0 && s.cancel != nil {
		s.cancel()
	}
	answered, err := s.answer(call, ids)
	if err != nil {
		return nil, false, err
	}
	codes = make([]string, len(ids))
	copy(codes, answered)
	for i, id := range ids {
		if codes[i] == "" {
			s.accepted[id]++
		}
	}
	return codes, call == 0 && s.short, nil
}

// Broke records a limit of the service a call broke; the fake answers it
// with an error, as the service would.
func (s *Service) Broke(limit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = append(s.broken, limit)
}

// Calls returns the ids of each call's items.
func (s *Service) Calls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Accepted returns how many times the item id was accepted.
func (s *Service) Accepted(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[id]
}

// Case is one batch sent through an adapter.
type Case[E any] struct {
	Name    string
	Entries []E
	Answer  Answer
	// Short answers the first call with a result too few.
	Short bool
	// Cancel is "before" to cancel the context before sending, "during"
	// to cancel it during the first call (with an hour's backoff, which
	// only the cancellation ends).
	Cancel string
	// Attempts, if not 0, is the adapter's number of attempts.
	Attempts int
	// WantCalls are the ids sent in each call.
	WantCalls [][]string
	// WantErr maps ids to a check of their error; the others must be nil.
	WantErr map[string]func(error) bool
}

// Adapter is an adapter under test.
type Adapter[E any] struct {
	// ID is an entry's id, as its fake's calls name it.
	ID func(E) string
	// Entries returns n small entries with ids e-0, e-1, ...
	Entries func(n int) []E
	// Send sends entries through a new adapter, made with opts, over a
	// fake answering from svc; one error per entry.
	Send func(ctx context.Context, svc *Service, opts []resend.Option, entries []E) []error
	// Retryable is a refusal code the adapter resends.
	Retryable string
	// Missing is the code of an item the service answered neither
	// accepted nor refused in every attempt.
	Missing string
	// CallError is an error the service may answer a whole call with.
	CallError error
	// ShortError is in the error of each item of a call answered with a
	// result too few.
	ShortError string
}

// Run sends each case's entries through the adapter and checks the calls
// made, each entry's error, that no call broke the service's limits, and
// that an entry is reported sent only if the service accepted it once.
func Run[E any](t *testing.T, a Adapter[E], cases []Case[E]) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			svc := NewService(tt.Answer)
			svc.short = tt.Short
			backoff := time.Millisecond
			switch tt.Cancel {
			case "before":
				cancel()
			case "during":
				svc.cancel = cancel
				backoff = time.Hour
			}
			start := time.Now()
			opts := []resend.Option{resend.WithBackoff(backoff)}
			if tt.Attempts > 0 {
				opts = append(opts, resend.WithAttempts(tt.Attempts))
			}
			errs := a.Send(ctx, svc, opts, tt.Entries)
			if d := time.Since(start); tt.Cancel != "" && d > 5*time.Second {
				t.Errorf("sending took %v after ctx was cancelled", d)
			}
			if len(errs) != len(tt.Entries) {
				t.Fatalf("%d errors for %d entries", len(errs), len(tt.Entries))
			}
			if len(svc.broken) > 0 {
				t.Errorf("calls over the service's limits: %v", svc.broken)
			}
			if calls := svc.Calls(); !slices.EqualFunc(calls, tt.WantCalls, slices.Equal) {
				t.Errorf("calls:\n got %.300v\nwant %.300v", calls, tt.WantCalls)
			}
			for i, e := range tt.Entries {
				id := a.ID(e)
				check := tt.WantErr[id]
				switch {
				case check == nil && errs[i] != nil:
					t.Errorf("%s: %v, want sent", id, errs[i])
				case check != nil && (errs[i] == nil || !check(errs[i])):
					t.Errorf("%s: error %v, not the one expected", id, errs[i])
				}
				// Never nil for an entry the service did not accept.
				if errs[i] == nil && svc.Accepted(id) != 1 {
					t.Errorf("%s: reported sent, accepted %d times", id, svc.Accepted(id))
				}
			}
		})
	}
}

// Contract runs the cases every adapter built on pkg/resend passes.
func Contract[E any](t *testing.T, a Adapter[E]) {
	t.Helper()
	n := resend.DefaultAttempts
	Run(t, a, []Case[E]{
		{
			Name: "all accepted", Entries: a.Entries(3), Answer: AcceptAll,
			WantCalls: [][]string{{"e-0", "e-1", "e-2"}},
		},
		{
			Name: "no entry, no call", Entries: a.Entries(0), Answer: AcceptAll,
		},
		{
			Name: "partial failure recovered on retry", Entries: a.Entries(4),
			Answer:    Refuse(a.Retryable, 1, "e-1", "e-3"),
			WantCalls: [][]string{{"e-0", "e-1", "e-2", "e-3"}, {"e-1", "e-3"}},
		},
		{
			Name: "partial failure recovered on the last attempt", Entries: a.Entries(3),
			Answer:    Refuse("InternalFailure", n-1, "e-2"),
			WantCalls: append([][]string{{"e-0", "e-1", "e-2"}}, repeat([]string{"e-2"}, n-1)...),
		},
		{
			Name: "persistent partial failure fails exactly those entries", Entries: a.Entries(4),
			Answer:    Refuse(a.Retryable, 99, "e-0", "e-2"),
			WantCalls: append([][]string{{"e-0", "e-1", "e-2", "e-3"}}, repeat([]string{"e-0", "e-2"}, n-1)...),
			WantErr:   map[string]func(error) bool{"e-0": IsRefused(a.Retryable, n), "e-2": IsRefused(a.Retryable, n)},
		},
		{
			Name: "one attempt: no resend", Entries: a.Entries(2), Attempts: 1,
			Answer:    Refuse(a.Retryable, 99, "e-1"),
			WantCalls: [][]string{{"e-0", "e-1"}},
			WantErr:   map[string]func(error) bool{"e-1": IsRefused(a.Retryable, 1)},
		},
		{
			Name: "entry neither accepted nor refused is resent", Entries: a.Entries(2),
			Answer:    Refuse(Neither, 1, "e-1"),
			WantCalls: [][]string{{"e-0", "e-1"}, {"e-1"}},
		},
		{
			Name: "entry never accepted nor refused fails", Entries: a.Entries(2),
			Answer:    Refuse(Neither, 99, "e-0"),
			WantCalls: append([][]string{{"e-0", "e-1"}}, repeat([]string{"e-0"}, n-1)...),
			WantErr: map[string]func(error) bool{"e-0": func(err error) bool {
				var re *resend.Error
				return errors.As(err, &re) && re.Code == a.Missing && re.Attempts == n
			}},
		},
		{
			Name: "whole-call error fails the call's entries", Entries: a.Entries(3),
			Answer:    func(int, []string) ([]string, error) { return nil, a.CallError },
			WantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			WantErr:   map[string]func(error) bool{"e-0": IsError(a.CallError), "e-1": IsError(a.CallError), "e-2": IsError(a.CallError)},
		},
		{
			Name: "answer without a result per entry fails them all", Entries: a.Entries(2), Answer: AcceptAll, Short: true,
			WantCalls: [][]string{{"e-0", "e-1"}},
			WantErr:   map[string]func(error) bool{"e-0": Contains(a.ShortError), "e-1": Contains(a.ShortError)},
		},
		{
			Name: "ctx cancelled before", Entries: a.Entries(2), Answer: AcceptAll, Cancel: "before",
			WantErr: map[string]func(error) bool{"e-0": IsError(context.Canceled), "e-1": IsError(context.Canceled)},
		},
		{
			Name: "ctx cancelled during the backoff", Entries: a.Entries(3), Cancel: "during",
			Answer:    Refuse(a.Retryable, 99, "e-1"),
			WantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			WantErr: map[string]func(error) bool{"e-1": func(err error) bool {
				return errors.Is(err, context.Canceled) && IsRefused(a.Retryable, 1)(err)
			}},
		},
	})
}

func repeat(ids []string, n int) [][]string {
	out := make([][]string, n)
	for i := range out {
		out[i] = ids
	}
	return out
}

// IDs returns e-from ... e-(to-1).
func IDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("e-%d", i))
	}
	return out
}

// IsRefused checks an item's error: refused with code (and Message) in
// its last of attempts, saying both.
func IsRefused(code string, attempts int) func(error) bool {
	return func(err error) bool {
		var re *resend.Error
		return errors.As(err, &re) && re.Code == code && re.Message == Message && re.Attempts == attempts &&
			strings.Contains(err.Error(), code) && strings.Contains(err.Error(), Message)
	}
}

// IsError checks that an item's error is, or wraps, target.
func IsError(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// Contains checks that an item's error says s.
func Contains(s string) func(error) bool {
	return func(err error) bool { return strings.Contains(err.Error(), s) }
}
