package smartcarapi_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

const (
	vehicleID = "veh-9d4f1b7e"
	userID    = "user-5e2b8d4f"
	// retrieved is the retrievedAt of the fake's signals: whole seconds,
	// so that they read the same written in seconds.
	retrieved = smartcar.Millis(1767225600000)
	attempts  = 3
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleeps records the waits instead of sleeping.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

type fixture struct {
	srv    *smartcarapitest.Server
	clock  *clock
	sleeps *sleeps
	client *smartcarapi.Client
}

// newFixture serves vehicleID with n signals to a client that retries
// attempts times, each attempt bounded to 2 s (opts may shorten it), and
// records its waits.
func newFixture(t *testing.T, n int, opts ...smartcarapi.Option) *fixture {
	t.Helper()
	f := &fixture{
		srv:    smartcarapitest.NewServer(t),
		clock:  &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		sleeps: &sleeps{},
	}
	f.srv.AddVehicle(vehicleID, smartcarapitest.Vehicle{UserID: userID, Signals: smartcarapitest.MakeSignals(n, retrieved)})
	f.client = f.newClient(f.srv.Credentials(), opts...)
	return f
}

// timeout is the option of an attempt's timeout d, if set.
func timeout(d time.Duration) []smartcarapi.Option {
	if d == 0 {
		return nil
	}
	return []smartcarapi.Option{smartcarapi.WithTimeout(d)}
}

func (f *fixture) newClient(creds smartcarapi.Credentials, opts ...smartcarapi.Option) *smartcarapi.Client {
	base := []smartcarapi.Option{
		smartcarapi.WithTokenURL(f.srv.TokenURL()),
		smartcarapi.WithAPIBase(f.srv.APIBase()),
		smartcarapi.WithClock(f.clock.Now),
		smartcarapi.WithSleep(f.sleeps.Sleep),
		smartcarapi.WithRetry(attempts, 100*time.Millisecond, 30*time.Second),
		smartcarapi.WithTimeout(2 * time.Second),
		smartcarapi.WithPageSize(10),
	}
	return smartcarapi.New(creds, append(base, opts...)...)
}

// signals calls Signals for vehicleID and checks that no error shows a
// secret or a token.
func (f *fixture) signals(t *testing.T) ([]smartcarapi.Signal, smartcarapi.Stats, error) {
	t.Helper()
	got, st, err := f.client.Signals(context.Background(), vehicleID, userID)
	noSecrets(t, err)
	return got, st, err
}

func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{smartcarapitest.ClientSecret, "fake-token-", "Bearer"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q shows %q", err, s)
		}
	}
}

func TestTokenFetchedOnceAndCached(t *testing.T) {
	f := newFixture(t, 3)
	for i := range 3 {
		got, st, err := f.signals(t)
		if err != nil || len(got) != 3 {
			t.Fatalf("call %d: %d signals, %v", i, len(got), err)
		}
		wantTokenCalls := 0
		if i == 0 {
			wantTokenCalls = 1
		}
		if st.TokenCalls != wantTokenCalls || st.Calls != 1 || st.Pages != 1 || st.Retries != 0 {
			t.Errorf("call %d: stats %+v", i, st)
		}
		f.clock.Advance(10 * time.Minute)
	}
	if c := f.srv.Counts(); c.TokensIssued != 1 || c.TokenCalls != 1 || c.SignalCalls != 3 {
		t.Errorf("counts %+v, want one token for three calls", c)
	}
	if reqs := f.srv.Requests(); !reqs[0].Token || !reqs[0].Basic {
		t.Errorf("first request %+v, want the token endpoint with HTTP Basic auth", reqs[0])
	}
}

func TestTokenRefreshed(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int                                 // 0: the default hour
		between   func(*fixture)                      // between the two calls
		wantToken int                                 // tokens issued after both calls
		check     func(*testing.T, smartcarapi.Stats) // of the second call
	}{
		{name: "kept before 55 minutes", between: func(f *fixture) { f.clock.Advance(55*time.Minute - time.Second) }, wantToken: 1},
		{name: "after 55 minutes", between: func(f *fixture) { f.clock.Advance(55 * time.Minute) }, wantToken: 2},
		{name: "after 55 minutes though it lasts 2 hours", expiresIn: 7200, between: func(f *fixture) { f.clock.Advance(55 * time.Minute) }, wantToken: 2},
		{name: "kept before expires_in less 5 minutes", expiresIn: 600, between: func(f *fixture) { f.clock.Advance(5*time.Minute - time.Second) }, wantToken: 1},
		{name: "after expires_in less 5 minutes", expiresIn: 600, between: func(f *fixture) { f.clock.Advance(5 * time.Minute) }, wantToken: 2},
		{name: "never cached when shorter than 5 minutes", expiresIn: 240, between: func(*fixture) {}, wantToken: 2},
		{
			name: "after a 401", between: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Unauthorized()) }, wantToken: 2,
			check: func(t *testing.T, st smartcarapi.Stats) {
				if st.Calls != 2 || st.TokenCalls != 1 || st.Retries != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		{name: "after the tokens were revoked", between: func(f *fixture) { f.srv.RevokeTokens() }, wantToken: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 2)
			if tt.expiresIn != 0 {
				f.srv.SetExpiresIn(tt.expiresIn)
			}
			if _, _, err := f.signals(t); err != nil {
				t.Fatal(err)
			}
			tt.between(f)
			got, st, err := f.signals(t)
			if err != nil || len(got) != 2 {
				t.Fatalf("second call: %d signals, %v", len(got), err)
			}
			if c := f.srv.Counts(); c.TokensIssued != tt.wantToken {
				t.Errorf("%d tokens issued, want %d", c.TokensIssued, tt.wantToken)
			}
			if tt.check != nil {
				tt.check(t, st)
			}
		})
	}
}

func TestConcurrentCallsShareOneToken(t *testing.T) {
	f := newFixture(t, 5)
	f.srv.InjectToken(1, smartcarapitest.Slow(50*time.Millisecond)) // callers pile up behind the fetch
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			_, _, errs[i] = f.client.Signals(context.Background(), vehicleID, userID)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := f.srv.Counts(); c.TokenCalls != 1 || c.TokensIssued != 1 || c.SignalCalls != 20 {
		t.Errorf("counts %+v, want one token fetch for 20 calls", c)
	}
}

func TestRecovers(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*fixture)
		timeout   time.Duration // of an attempt, if set
		wantCalls int           // to the signals endpoint
		wantWaits func([]time.Duration) bool
	}{
		{
			name:      "429 with retry-after 2 seconds",
			setup:     func(f *fixture) { f.srv.Inject(1, smartcarapitest.RateLimited("2")) },
			wantCalls: 2,
			wantWaits: func(w []time.Duration) bool { return slices.Equal(w, []time.Duration{2 * time.Second}) },
		},
		{
			name: "429 with retry-after an HTTP date",
			setup: func(f *fixture) {
				f.srv.Inject(1, smartcarapitest.RateLimited(f.clock.Now().Add(3*time.Second).Format(http.TimeFormat)))
			},
			wantCalls: 2,
			wantWaits: func(w []time.Duration) bool { return slices.Equal(w, []time.Duration{3 * time.Second}) },
		},
		{
			name:      "429 without retry-after waits the backoff",
			setup:     func(f *fixture) { f.srv.Inject(1, smartcarapitest.RateLimited("")) },
			wantCalls: 2,
			wantWaits: func(w []time.Duration) bool {
				return len(w) == 1 && w[0] >= 50*time.Millisecond && w[0] <= 100*time.Millisecond
			},
		},
		{
			name:      "5xx twice",
			setup:     func(f *fixture) { f.srv.Inject(2, smartcarapitest.ServerError()) },
			wantCalls: 3,
			wantWaits: func(w []time.Duration) bool {
				return len(w) == 2 && w[0] >= 50*time.Millisecond && w[0] <= 100*time.Millisecond && w[1] >= 100*time.Millisecond && w[1] <= 200*time.Millisecond
			},
		},
		{
			name: "503 once",
			setup: func(f *fixture) {
				f.srv.Inject(1, smartcarapitest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "1"})
			},
			wantCalls: 2,
			wantWaits: func(w []time.Duration) bool { return len(w) == 1 },
		},
		{
			name:      "slow answer beyond the timeout, once",
			setup:     func(f *fixture) { f.srv.Inject(1, smartcarapitest.Slow(5*time.Second)) },
			timeout:   100 * time.Millisecond,
			wantCalls: 2,
			wantWaits: func(w []time.Duration) bool { return len(w) == 1 },
		},
		{
			name:      "slow answer within the timeout",
			setup:     func(f *fixture) { f.srv.Inject(1, smartcarapitest.Slow(20*time.Millisecond)) },
			wantCalls: 1,
			wantWaits: func(w []time.Duration) bool { return len(w) == 0 },
		},
		{
			name:      "token endpoint 5xx once",
			setup:     func(f *fixture) { f.srv.InjectToken(1, smartcarapitest.ServerError()) },
			wantCalls: 1,
			wantWaits: func(w []time.Duration) bool { return len(w) == 1 },
		},
		{
			name:      "token endpoint slow once",
			setup:     func(f *fixture) { f.srv.InjectToken(1, smartcarapitest.Slow(5*time.Second)) },
			timeout:   100 * time.Millisecond,
			wantCalls: 1,
			wantWaits: func(w []time.Duration) bool { return len(w) == 1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 4, timeout(tt.timeout)...)
			tt.setup(f)
			start := time.Now()
			got, st, err := f.signals(t)
			if err != nil || len(got) != 4 {
				t.Fatalf("%d signals, %v", len(got), err)
			}
			if c := f.srv.Counts(); c.SignalCalls != tt.wantCalls || st.Calls != tt.wantCalls {
				t.Errorf("%d calls (stats %+v), want %d", c.SignalCalls, st, tt.wantCalls)
			}
			waits := f.sleeps.Waits()
			if !tt.wantWaits(waits) {
				t.Errorf("waits %v", waits)
			}
			var sum time.Duration
			for _, w := range waits {
				sum += w
			}
			if st.Waited != sum || st.Retries != len(waits) {
				t.Errorf("stats %+v, waits %v", st, waits)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(*fixture)
		vehicle    string // vehicleID if ""
		user       string // userID if ""
		creds      *smartcarapi.Credentials
		timeout    time.Duration // of an attempt, if set
		wantIs     []error
		wantStatus int // of the *APIError; 0: none expected
		wantCalls  int // to the signals endpoint
		wantTokens int // calls to the token endpoint
		wantWaits  int
		check      func(*testing.T, error)
	}{
		{
			name: "second 401", setup: func(f *fixture) { f.srv.Inject(2, smartcarapitest.Unauthorized()) },
			wantIs: []error{smartcarapi.ErrAuthentication}, wantStatus: 401, wantCalls: 2, wantTokens: 2,
		},
		{
			name: "wrong client secret", creds: &smartcarapi.Credentials{ClientID: smartcarapitest.ClientID, ClientSecret: "not-the-secret-77"},
			wantIs: []error{smartcarapi.ErrAuthentication}, wantStatus: 401, wantCalls: 0, wantTokens: 1,
			check: func(t *testing.T, err error) {
				if strings.Contains(err.Error(), "not-the-secret-77") {
					t.Errorf("error %q shows the secret", err)
				}
			},
		},
		{
			name: "no credentials", creds: &smartcarapi.Credentials{},
			wantIs: []error{smartcarapi.ErrAuthentication}, wantCalls: 0, wantTokens: 0,
		},
		{
			name: "429 beyond the max wait", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.RateLimited("120")) },
			wantIs: []error{smartcarapi.ErrRateLimited}, wantCalls: 1, wantTokens: 1,
			check: func(t *testing.T, err error) {
				var rl *smartcarapi.RateLimitedError
				if !errors.As(err, &rl) || rl.Wait != 2*time.Minute || rl.Attempts != 1 || rl.Type != "RATE_LIMIT" {
					t.Errorf("rate limit %+v", rl)
				}
			},
		},
		{
			name: "429 on every attempt", setup: func(f *fixture) { f.srv.Inject(attempts, smartcarapitest.RateLimited("2")) },
			wantIs: []error{smartcarapi.ErrRateLimited}, wantCalls: attempts, wantTokens: 1, wantWaits: attempts - 1,
			check: func(t *testing.T, err error) {
				var rl *smartcarapi.RateLimitedError
				if !errors.As(err, &rl) || rl.Wait != 2*time.Second || rl.Attempts != attempts {
					t.Errorf("rate limit %+v", rl)
				}
			},
		},
		{
			name: "5xx on every attempt", setup: func(f *fixture) { f.srv.Inject(10, smartcarapitest.ServerError()) },
			wantIs: []error{smartcarapi.ErrUnavailable}, wantStatus: 500, wantCalls: attempts, wantTokens: 1, wantWaits: attempts - 1,
		},
		{
			name: "slow beyond the timeout on every attempt", setup: func(f *fixture) { f.srv.Inject(10, smartcarapitest.Slow(5*time.Second)) },
			timeout: 100 * time.Millisecond,
			wantIs:  []error{smartcarapi.ErrUnavailable, context.DeadlineExceeded}, wantCalls: attempts, wantTokens: 1, wantWaits: attempts - 1,
		},
		{
			name: "token endpoint 5xx on every attempt", setup: func(f *fixture) { f.srv.InjectToken(10, smartcarapitest.ServerError()) },
			wantIs: []error{smartcarapi.ErrUnavailable}, wantStatus: 500, wantCalls: 0, wantTokens: attempts, wantWaits: attempts - 1,
		},
		{
			name: "malformed JSON", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Malformed()) },
			wantIs: []error{smartcarapi.ErrMalformed}, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "no data array", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Body: `{"items":[]}`}) },
			wantIs: []error{smartcarapi.ErrMalformed}, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "malformed token answer", setup: func(f *fixture) { f.srv.InjectToken(1, smartcarapitest.Malformed()) },
			wantIs: []error{smartcarapi.ErrMalformed}, wantCalls: 0, wantTokens: 1,
		},
		{
			name: "token answer without access_token", setup: func(f *fixture) { f.srv.InjectToken(1, smartcarapitest.Fault{Body: `{"token_type":"Bearer"}`}) },
			wantIs: []error{smartcarapi.ErrMalformed}, wantCalls: 0, wantTokens: 1,
		},
		{
			name: "wrong user id", user: "someone-else",
			wantIs: []error{smartcarapi.ErrPermission}, wantStatus: 403, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "unknown vehicle", vehicle: "veh-unknown",
			wantIs: []error{smartcarapi.ErrVehicleNotFound}, wantStatus: 404, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "403 permission", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Status: 403}) },
			wantIs: []error{smartcarapi.ErrPermission}, wantStatus: 403, wantCalls: 1, wantTokens: 1,
			check: func(t *testing.T, err error) {
				var e *smartcarapi.APIError
				if !errors.As(err, &e) || e.Type != "PERMISSION" || e.Resolution != "REAUTHENTICATE" || e.RequestID == "" {
					t.Errorf("API error %+v", e)
				}
			},
		},
		{
			name: "402 billing", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Status: 402}) },
			wantIs: []error{smartcarapi.ErrBilling}, wantStatus: 402, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "430 billing", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Status: 430}) },
			wantIs: []error{smartcarapi.ErrBilling}, wantStatus: 430, wantCalls: 1, wantTokens: 1,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "BILLING/VEHICLE_REQUEST_LIMIT") {
					t.Errorf("error %q does not name the code", err)
				}
			},
		},
		{
			name: "billing type on a 429", setup: func(f *fixture) {
				f.srv.Inject(1, smartcarapitest.Fault{Status: 429, RetryAfter: "1", Body: `{"type":"BILLING","code":"ACCOUNT_SUSPENDED","statusCode":429}`})
			},
			wantIs: []error{smartcarapi.ErrBilling}, wantStatus: 429, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "501 compatibility is not retried", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Status: 501}) },
			wantStatus: 501, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "409 is not retried", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Fault{Status: 409}) },
			wantStatus: 409, wantCalls: 1, wantTokens: 1,
		},
		{
			name: "an echoed secret is scrubbed", setup: func(f *fixture) {
				f.srv.Inject(1, smartcarapitest.Fault{Status: 400, Body: `{"type":"VALIDATION","description":"bad client ` + smartcarapitest.ClientSecret + `"}`})
			},
			wantStatus: 400, wantCalls: 1, wantTokens: 1,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "bad client [REDACTED]") {
					t.Errorf("error %q", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 4, timeout(tt.timeout)...)
			if tt.creds != nil {
				f.client = f.newClient(*tt.creds)
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			vehicle, user := cmp.Or(tt.vehicle, vehicleID), cmp.Or(tt.user, userID)
			got, st, err := f.client.Signals(context.Background(), vehicle, user)
			noSecrets(t, err)
			if err == nil || got != nil {
				t.Fatalf("got %d signals, error %v", len(got), err)
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %q", err, want)
				}
			}
			var apiErr *smartcarapi.APIError
			if errors.As(err, &apiErr) != (tt.wantStatus != 0) || tt.wantStatus != 0 && apiErr.Status != tt.wantStatus {
				t.Errorf("error %q: API error %+v, want status %d", err, apiErr, tt.wantStatus)
			}
			c := f.srv.Counts()
			if c.SignalCalls != tt.wantCalls || st.Calls != tt.wantCalls || c.TokenCalls != tt.wantTokens || st.TokenCalls != tt.wantTokens {
				t.Errorf("counts %+v, stats %+v; want %d calls, %d token calls", c, st, tt.wantCalls, tt.wantTokens)
			}
			if w := f.sleeps.Waits(); len(w) != tt.wantWaits {
				t.Errorf("waits %v, want %d", w, tt.wantWaits)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	tests := []struct {
		name      string
		signals   int
		layout    smartcarapitest.Layout
		opts      []smartcarapi.Option
		wantCalls int
	}{
		{name: "3 pages ended by links.next", signals: 25, wantCalls: 3},
		{name: "3 full pages ended by links.next", signals: 30, wantCalls: 3},
		{name: "3 pages ended by a short page", signals: 25, layout: smartcarapitest.Layout{NoLinks: true}, wantCalls: 3},
		{name: "3 full pages, then an empty one", signals: 30, layout: smartcarapitest.Layout{NoLinks: true, NoMeta: true}, wantCalls: 4},
		{
			name: "page size capped by the API, read from meta", signals: 25, layout: smartcarapitest.Layout{NoLinks: true, MaxPageSize: 10},
			opts: []smartcarapi.Option{smartcarapi.WithPageSize(50)}, wantCalls: 3,
		},
		{name: "times in epoch seconds", signals: 25, layout: smartcarapitest.Layout{Seconds: true}, wantCalls: 3},
		{name: "one page", signals: 3, wantCalls: 1},
		{name: "no signals", signals: 0, wantCalls: 1},
		{name: "no signals, no links", signals: 0, layout: smartcarapitest.Layout{NoLinks: true, NoMeta: true}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.signals, tt.opts...)
			f.srv.SetLayout(tt.layout)
			got, st, err := f.signals(t)
			if err != nil {
				t.Fatal(err)
			}
			want := smartcarapitest.MakeSignals(tt.signals, retrieved)
			if len(got) != len(want) {
				t.Fatalf("%d signals, want %d", len(got), len(want))
			}
			for i, s := range got {
				w := want[i]
				value, _ := s.Body["value"].(json.Number)
				if s.ID != w.ID || s.Code != w.Code || s.Name != w.Name || s.Group != w.Group || s.Status != "SUCCESS" ||
					s.RetrievedAt != w.RetrievedAt || s.OEMUpdatedAt != w.OEMUpdatedAt || value.String() != fmt.Sprint(i+1) {
					t.Fatalf("signal %d = %+v, want %+v", i, s, w)
				}
			}
			if c := f.srv.Counts(); c.SignalCalls != tt.wantCalls || st.Calls != tt.wantCalls || st.Pages != tt.wantCalls {
				t.Errorf("counts %+v, stats %+v, want %d calls", c, st, tt.wantCalls)
			}
			for i, r := range f.srv.Requests()[1:] {
				if r.Page != i+1 || r.UserID != userID || r.Status != http.StatusOK {
					t.Errorf("request %d = %+v", i, r)
				}
			}
		})
	}
}

func TestPagingBounded(t *testing.T) {
	f := newFixture(t, 45, smartcarapi.WithMaxPages(4))
	got, st, err := f.signals(t)
	if !errors.Is(err, smartcarapi.ErrTooManyPages) || got != nil || st.Pages != 4 {
		t.Fatalf("%d signals, stats %+v, error %v", len(got), st, err)
	}

	// An API that ignores page, always answering the first one with a
	// next link, is read once more, not to the bound.
	f = newFixture(t, 0, smartcarapi.WithMaxPages(100))
	page := `{"data":[{"id":"a","type":"signal","attributes":{"code":"a-b"}}],"links":{"next":"/vehicles/x/signals?page=2"}}`
	f.srv.Inject(100, smartcarapitest.Fault{Body: page})
	got, st, err = f.signals(t)
	if err != nil || len(got) != 1 || st.Calls != 2 {
		t.Fatalf("%d signals, stats %+v, error %v", len(got), st, err)
	}
}

func TestSignalItems(t *testing.T) {
	page := `{"data":[
	 {"id":"s1","type":"signal","attributes":{"code":"tractionbattery-stateofcharge","name":"StateOfCharge","group":"TractionBattery",
	   "status":{"value":"SUCCESS"},"body":{"value":63.25,"unit":"percent"}},"meta":{"retrievedAt":1696156800,"oemUpdatedAt":"2023-10-01T10:39:59Z"}},
	 {"id":"s2","type":"signal","attributes":{"name":"IsAtHome","group":"Location",
	   "status":{"value":"ERROR","error":{"type":"COMPATIBILITY","code":"VEHICLE_NOT_CAPABLE"}}},"meta":{"fetchedAt":1767225598412}},
	 {"id":"s3","type":"signal","attributes":{"code":"charge-ischarging","status":"success","body":true},"meta":{"retrievedAt":null}},
	 {"id":"v1","type":"vehicle","attributes":{"make":"TESLA"}},
	 {"id":"s4","type":"signal","attributes":{}}
	]}`
	f := newFixture(t, 0)
	f.srv.Inject(1, smartcarapitest.Fault{Body: page})
	got, st, err := f.signals(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []smartcarapi.Signal{
		{ID: "s1", Signal: smartcar.Signal{Code: "tractionbattery-stateofcharge", Name: "StateOfCharge", Group: "TractionBattery", Status: "SUCCESS",
			Body: map[string]any{"value": json.Number("63.25"), "unit": "percent"}, RetrievedAt: 1696156800000, OEMUpdatedAt: 1696156799000}},
		{ID: "s2", Signal: smartcar.Signal{Code: "location-isathome", Name: "IsAtHome", Group: "Location", Status: "ERROR", ErrorType: "COMPATIBILITY",
			ErrorCode: "VEHICLE_NOT_CAPABLE", RetrievedAt: 1767225598412}},
		{ID: "s3", Signal: smartcar.Signal{Code: "charge-ischarging", Status: "SUCCESS", Body: map[string]any{"value": true}}},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("signals\n got %+v\nwant %+v", got, want)
	}
	if st.Skipped != 2 {
		t.Errorf("stats %+v, want 2 skipped", st)
	}
	if w := got[0].Signal; w.Code != want[0].Code || w.OEMUpdatedAt != want[0].OEMUpdatedAt || w.Body["unit"] != "percent" {
		t.Errorf("Webhook() = %+v", w)
	}
}

func TestContextEnds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fixture)
	}{
		{name: "during a slow answer", setup: func(f *fixture) { f.srv.Inject(1, smartcarapitest.Slow(5*time.Second)) }},
		{name: "during a slow token fetch", setup: func(f *fixture) { f.srv.InjectToken(1, smartcarapitest.Slow(5*time.Second)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 2, smartcarapi.WithTimeout(10*time.Second))
			tt.setup(f)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, st, err := f.client.Signals(ctx, vehicleID, userID)
			if !errors.Is(err, context.DeadlineExceeded) || st.Retries != 0 {
				t.Errorf("stats %+v, error %v", st, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}

	// A retry-after beyond the context's deadline is not waited.
	f := newFixture(t, 2)
	f.srv.Inject(1, smartcarapitest.RateLimited("10"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := f.client.Signals(ctx, vehicleID, userID)
	var rl *smartcarapi.RateLimitedError
	if !errors.As(err, &rl) || rl.Wait != 10*time.Second || len(f.sleeps.Waits()) != 0 {
		t.Errorf("error %v, waits %v", err, f.sleeps.Waits())
	}
}

func TestSignalsArguments(t *testing.T) {
	f := newFixture(t, 1)
	for _, args := range [][2]string{{"", userID}, {vehicleID, ""}} {
		if _, _, err := f.client.Signals(context.Background(), args[0], args[1]); err == nil {
			t.Errorf("Signals(%q, %q) gave no error", args[0], args[1])
		}
	}
	bad := smartcarapi.New(f.srv.Credentials(), smartcarapi.WithAPIBase("not a url"))
	if _, _, err := bad.Signals(context.Background(), vehicleID, userID); err == nil {
		t.Error("a relative API base gave no error")
	}
	if c := f.srv.Counts(); c.TokenCalls != 0 || c.SignalCalls != 0 {
		t.Errorf("counts %+v, want no call", c)
	}
}
