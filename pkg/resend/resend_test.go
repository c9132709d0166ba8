package resend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// service refuses, per call, the items its script names (by item).
type service struct {
	script [][]int // refused items, per call
	calls  [][]int
}

func (s *service) send(_ context.Context, items []int) ([]resend.Refusal, error) {
	s.calls = append(s.calls, items)
	var refused []resend.Refusal
	if n := len(s.calls) - 1; n < len(s.script) {
		for i, it := range items {
			for _, r := range s.script[n] {
				if it == r {
					refused = append(refused, resend.Refusal{Index: i, Code: fmt.Sprint("C", it), Message: "no"})
				}
			}
		}
	}
	return refused, nil
}

func TestSend(t *testing.T) {
	tests := []struct {
		name      string
		script    [][]int
		permanent bool
		calls     string
		failed    string // the items that failed, with their attempts
	}{
		{"all accepted", nil, false, "[[0 1 2]]", ""},
		{"the refused resent alone", [][]int{{1, 2}, {2}}, false, "[[0 1 2] [1 2] [2]]", ""},
		{"refused every time", [][]int{{1}, {1}, {1}}, false, "[[0 1 2] [1] [1]]", "1@3"},
		{"a permanent refusal not resent", [][]int{{1, 2}}, true, "[[0 1 2]]", "1@1 2@1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &service{script: tt.script}
			errs := make([]error, 3)
			p := resend.Policy{Service: "svc", Attempts: 3}
			if tt.permanent {
				p.Permanent = func(string) bool { return true }
			}
			resend.Send(context.Background(), p, []int{0, 1, 2}, func(i int) int { return i }, errs, s.send)
			if got := fmt.Sprint(s.calls); got != tt.calls {
				t.Errorf("calls %s, want %s", got, tt.calls)
			}
			failed := ""
			for i, err := range errs {
				var re *resend.Error
				if errors.As(err, &re) {
					failed += fmt.Sprintf(" %d@%d", i, re.Attempts)
				} else if err != nil {
					t.Errorf("item %d: %v", i, err)
				}
			}
			if failed != "" {
				failed = failed[1:]
			}
			if failed != tt.failed {
				t.Errorf("failed %q, want %q", failed, tt.failed)
			}
		})
	}
	// A call that fails whole fails every item it carried.
	errs := make([]error, 2)
	boom := errors.New("boom")
	resend.Send(context.Background(), resend.Policy{Service: "svc", Attempts: 3}, []int{0, 1}, func(i int) int { return i }, errs,
		func(context.Context, []int) ([]resend.Refusal, error) { return nil, boom })
	if !errors.Is(errs[0], boom) || !errors.Is(errs[1], boom) {
		t.Errorf("errs %v", errs)
	}
}

func TestRefusals(t *testing.T) {
	got := resend.Refusals([]resend.Answer{{ID: "a"}, {Code: "Throttled", Message: "slow down"}, {}, {ID: "d"}}, "MissingId")
	want := "[{1 Throttled slow down false} {2 MissingId no id in the answer false}]"
	if fmt.Sprint(got) != want {
		t.Errorf("refusals %v, want %s: an answer with neither id nor code is refused", got, want)
	}
}

// TestNewPolicy: the defaults, the options, and their floors (an item is
// sent at least once; a wait is never negative).
func TestNewPolicy(t *testing.T) {
	tests := []struct {
		name         string
		opts         []resend.Option
		wantAttempts int
		wantBackoff  time.Duration
	}{
		{"defaults", nil, resend.DefaultAttempts, resend.DefaultBackoff},
		{"set", []resend.Option{resend.WithAttempts(5), resend.WithBackoff(time.Second)}, 5, time.Second},
		{"floors", []resend.Option{resend.WithAttempts(0), resend.WithBackoff(-time.Second)}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := resend.NewPolicy("svc", nil, tt.opts...)
			if p.Service != "svc" || p.Attempts != tt.wantAttempts || p.Backoff != tt.wantBackoff || p.Permanent != nil {
				t.Errorf("NewPolicy = %+v, want %d attempts, backoff %v", p, tt.wantAttempts, tt.wantBackoff)
			}
		})
	}
}

// TestBackoff: each wait lies between half and all of base doubled once
// per earlier attempt, capped at maxWait.
func TestBackoff(t *testing.T) {
	for attempt, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceiling *= time.Millisecond
		for range 20 {
			if got := resend.Backoff(100*time.Millisecond, time.Second, attempt+1); got < ceiling/2 || got > ceiling {
				t.Fatalf("Backoff(100ms, 1s, %d) = %v, want in [%v, %v]", attempt+1, got, ceiling/2, ceiling)
			}
		}
	}
	if got := resend.Backoff(0, time.Second, 3); got != 0 {
		t.Errorf("Backoff(0, 1s, 3) = %v, want 0", got)
	}
}
