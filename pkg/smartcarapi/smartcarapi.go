// Package smartcarapi is a client of Smartcar's v3 vehicle API, for the
// reconciler that heals vehicle state after an outage: it reads all the
// signals of a vehicle, on behalf of the user who connected it.
//
// Authentication is OAuth 2 client credentials: a POST of
// grant_type=client_credentials to the token endpoint, the client id and
// secret in HTTP Basic auth (form-encoded first, as RFC 6749 §2.3.1 asks).
// The access token lasts expires_in (an hour) and has no refresh token; it
// is cached for at most MaxTokenTTL and never beyond expires_in minus
// TokenMargin, shared by concurrent calls, and fetched by one of them at a
// time. A 401 from the API fetches a new token and tries again once; a
// second 401 is ErrAuthentication.
//
// Signals are read with GET {apiBase}/vehicles/{vehicleId}/signals?page=N
// &pageSize=M, the user's id in the sc-user-id header. Paging ends, page by
// page, at the first of:
//   - an empty data array;
//   - a links object with a next member that is null or "" (a non-empty
//     next goes on, to page N+1: the link's own path is not followed, as
//     the reference's example omits the /v3 prefix);
//   - when the answer has no links.next, a page shorter than the page size
//     (meta.pageSize when given, as the API may cap what was asked, else
//     the size asked);
//   - a page that adds no signal not already read (an API ignoring page).
//
// meta.totalCount is not used to end paging: the reference's own example
// (totalCount 5, pageSize 10, a last link to page 5) fits neither reading,
// signals nor pages, and stopping on the wrong one would lose signals.
// Reading more than the maximum of pages (WithMaxPages) is ErrTooManyPages.
//
// Failures: 5xx (but 501), 408, timeouts of an attempt (WithTimeout) and
// transport errors are tried again after a jittered, doubling backoff, a
// bounded number of attempts in all, then fail with ErrUnavailable. A 429
// waits its retry-after (seconds or an HTTP date) when that is within the
// maximum wait and the context's deadline, else fails at once with a
// *RateLimitedError. Billing (402, 430, type BILLING), permission (403,
// type PERMISSION), 404 and other 4xx answers are never retried: they are
// *APIError values wrapping ErrBilling, ErrPermission, ErrVehicleNotFound or
// nothing. A 2xx answer that is not the documented JSON is ErrMalformed,
// not retried.
//
// No error carries the client secret or a token: the package builds none
// with them, and any text an answer echoes is scrubbed of both. The
// package does not log.
package smartcarapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// Smartcar's endpoints.
const (
	DefaultTokenURL = "https://iam.smartcar.com/oauth2/token"
	DefaultAPIBase  = "https://vehicle.api.smartcar.com/v3"
)

// UserIDHeader carries the id of the user on whose behalf the API is
// called (a webhook's data.user.id).
const UserIDHeader = "sc-user-id"

// Token lifetime.
const (
	MaxTokenTTL = 55 * time.Minute // the longest a token is used
	TokenMargin = 5 * time.Minute  // a token is dropped this long before it expires
	// defaultExpiresIn is assumed when the token answer has no expires_in:
	// the documented hour.
	defaultExpiresIn = time.Hour
)

// Defaults of the options.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 500 * time.Millisecond
	DefaultMaxWait  = 30 * time.Second
	DefaultTimeout  = 15 * time.Second
	// DefaultPageSize: Smartcar's maximum page size is not documented; 50
	// reads the 3 to 85 signals seen in webhooks in one or two calls.
	DefaultPageSize = 50
	DefaultMaxPages = 50
)

// maxAnswer bounds the bytes of an answer read.
const maxAnswer = 8 << 20

// Client calls Smartcar's v3 API with one application's credentials. It is
// safe for concurrent use.
type Client struct {
	creds    Credentials
	http     *http.Client
	tokenURL string
	apiBase  string
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
	timeout  time.Duration
	pageSize int
	maxPages int

	tokens tokenCache
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (a plain one by default: each
// attempt's time is bounded by WithTimeout instead).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithTokenURL sets the token endpoint (DefaultTokenURL).
func WithTokenURL(u string) Option { return func(c *Client) { c.tokenURL = u } }

// WithAPIBase sets the API's base URL, up to and including the version
// (DefaultAPIBase).
func WithAPIBase(u string) Option {
	return func(c *Client) { c.apiBase = strings.TrimRight(u, "/") }
}

// WithClock sets the clock tokens expire by and HTTP-date retry-afters are
// read against (time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithSleep sets how the client waits before an attempt (a timer, ended by
// the context): tests record the waits instead.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) {
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// WithRetry sets the attempts of one request in all (DefaultAttempts, at
// least 1), the wait before the second (DefaultBackoff; doubled before
// each next one and jittered between half and all of it), and the longest
// wait: the cap of the backoff and the longest retry-after honoured
// (DefaultMaxWait).
func WithRetry(attempts int, backoff, maxWait time.Duration) Option {
	return func(c *Client) {
		c.attempts, c.backoff, c.maxWait = max(attempts, 1), max(backoff, 0), max(maxWait, 0)
	}
}

// WithTimeout bounds each attempt, from sending the request to reading the
// answer (DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithPageSize sets the pageSize asked for (DefaultPageSize).
func WithPageSize(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// WithMaxPages bounds the pages read for one vehicle (DefaultMaxPages).
func WithMaxPages(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxPages = n
		}
	}
}

// New returns a Client calling Smartcar with creds.
func New(creds Credentials, opts ...Option) *Client {
	c := &Client{
		creds:    creds,
		http:     &http.Client{},
		tokenURL: DefaultTokenURL,
		apiBase:  DefaultAPIBase,
		now:      time.Now,
		sleep:    resend.Sleep,
		attempts: DefaultAttempts,
		backoff:  DefaultBackoff,
		maxWait:  DefaultMaxWait,
		timeout:  DefaultTimeout,
		pageSize: DefaultPageSize,
		maxPages: DefaultMaxPages,
	}
	for _, opt := range opts {
		opt(c)
	}
	c.tokens.refresh = make(chan struct{}, 1)
	return c
}

// String describes the client without its secret or token.
func (c *Client) String() string {
	return fmt.Sprintf("smartcarapi.Client{ClientID:%s, TokenURL:%s, APIBase:%s}", c.creds.ClientID, c.tokenURL, c.apiBase)
}

// Format prints String whatever the verb, so that printing a Client never
// shows its fields.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// Stats counts what one Signals call did.
type Stats struct {
	Calls      int           // requests to the signals endpoint, every attempt
	TokenCalls int           // requests to the token endpoint
	Retries    int           // requests sent again: after a 5xx, a timeout, a 429, a 401
	Pages      int           // pages read
	Skipped    int           // items that are not signals, or have neither code nor name
	Waited     time.Duration // slept before attempts
}

// Signals returns all the signals of the vehicle vehicleID, read on behalf
// of the user userID (a webhook's data.user.id), page after page. On error
// it returns no signals (a partial read is never mistaken for the whole);
// Stats is filled either way.
func (c *Client) Signals(ctx context.Context, vehicleID, userID string) ([]Signal, Stats, error) {
	var st Stats
	if vehicleID == "" || userID == "" {
		return nil, st, fmt.Errorf("smartcar signals: vehicle id and user id are both required")
	}
	base, err := url.Parse(c.apiBase + "/vehicles/" + url.PathEscape(vehicleID) + "/signals")
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, st, fmt.Errorf("smartcar signals: API base %q is not an absolute URL", c.apiBase)
	}
	var all []Signal
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, st, fmt.Errorf("smartcar signals: %w: more than %d of %d signals", ErrTooManyPages, c.maxPages, c.pageSize)
		}
		u := *base
		u.RawQuery = url.Values{"page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(c.pageSize)}}.Encode()
		body, err := c.send(ctx, &st, request{method: http.MethodGet, url: u.String(), userID: userID})
		if err != nil {
			return nil, st, fmt.Errorf("smartcar signals page %d: %w", page, err)
		}
		p, err := parsePage(body)
		if err != nil {
			return nil, st, fmt.Errorf("smartcar signals page %d: %w", page, err)
		}
		st.Pages++
		st.Skipped += p.skipped
		added := 0
		for _, s := range p.signals {
			key := s.ID
			if key == "" {
				key = s.Code
			}
			if !seen[key] {
				seen[key] = true
				all = append(all, s)
				added++
			}
		}
		if !p.more(c.pageSize) || added == 0 {
			return all, st, nil
		}
	}
}

// request is one HTTP request, sent anew on each attempt.
type request struct {
	method, url string
	userID      string // for the API: sends a bearer token and sc-user-id
	token       bool   // to the token endpoint
}

// answer is an HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send makes req, with retries, and returns a 2xx answer's body. A request
// to the API gets a token first, and a new one after a 401, once.
func (c *Client) send(ctx context.Context, st *Stats, req request) ([]byte, error) {
	var stale string // the token a 401 refused
	reauthed := false
	for attempt := 1; ; {
		var token string
		if req.token {
			st.TokenCalls++
		} else {
			t, err := c.token(ctx, st, stale)
			if err != nil {
				return nil, err
			}
			token = t
			st.Calls++
		}
		ans, err := c.attempt(ctx, req, token)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var failure error // of an attempt worth repeating
		var wait time.Duration
		switch {
		case err != nil:
			failure = err
		case ans.status >= 200 && ans.status < 300:
			if len(ans.body) > maxAnswer {
				return nil, fmt.Errorf("%w: answer over %d bytes", ErrMalformed, maxAnswer)
			}
			return ans.body, nil
		default:
			e := c.apiError(req, ans)
			switch {
			case !req.token && ans.status == http.StatusUnauthorized && !reauthed:
				reauthed, stale = true, token
				st.Retries++
				continue // a new token, not counted as an attempt
			case e.rateLimited() && e.Kind == nil:
				wait = resend.Backoff(c.backoff, c.maxWait, attempt)
				if d, ok := retryAfter(ans.header, c.now()); ok {
					wait = d
				}
				rl := &RateLimitedError{Wait: wait, Attempts: attempt, Type: e.Type, Code: e.Code}
				switch deadline, ok := ctx.Deadline(); {
				case wait > c.maxWait:
					rl.Reason = fmt.Sprintf("over the %v maximum wait", c.maxWait)
				case ok && time.Until(deadline) < wait:
					rl.Reason = "beyond the context's deadline"
				case attempt >= c.attempts:
					rl.Reason = "no attempt left"
				default:
					rl = nil
				}
				if rl != nil {
					return nil, rl
				}
			case e.Kind == nil && retryable(ans.status):
				failure = e
			default:
				return nil, e
			}
		}
		if failure != nil {
			if attempt >= c.attempts {
				return nil, fmt.Errorf("%w after %d attempts: %w", ErrUnavailable, attempt, failure)
			}
			wait = resend.Backoff(c.backoff, c.maxWait, attempt)
		}
		if err := c.sleep(ctx, wait); err != nil {
			if failure != nil {
				return nil, fmt.Errorf("%w (last attempt: %w)", err, failure)
			}
			return nil, err
		}
		st.Waited += wait
		st.Retries++
		attempt++
	}
}

// attempt sends req once, bounded by the client's timeout, and reads the
// answer (up to one byte over maxAnswer, to tell it is too large).
func (c *Client) attempt(ctx context.Context, req request, token string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if req.token {
		body = strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode())
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return answer{}, fmt.Errorf("new request: %w", err)
	}
	hr.Header.Set("Accept", "application/json")
	if req.token {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		hr.SetBasicAuth(url.QueryEscape(c.creds.ClientID), url.QueryEscape(c.creds.ClientSecret))
	} else {
		hr.Header.Set("Authorization", "Bearer "+token)
		hr.Header.Set(UserIDHeader, req.userID)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// apiError reads an error answer, its text scrubbed of the credentials and
// the cached token, with the kind it is.
func (c *Client) apiError(req request, ans answer) *APIError {
	e := parseAPIError(ans.status, ans.body)
	secrets := []string{c.creds.ClientSecret, c.tokens.current()}
	for _, f := range []*string{&e.Type, &e.Code, &e.Description, &e.RequestID, &e.Resolution} {
		for _, s := range secrets {
			if s != "" {
				*f = strings.ReplaceAll(*f, s, redacted)
			}
		}
	}
	if req.token {
		// OAuth 2: 400 invalid_client / invalid_grant, 401 invalid_client.
		switch ans.status {
		case http.StatusBadRequest, http.StatusUnauthorized:
			e.Kind = ErrAuthentication
		case http.StatusForbidden:
			e.Kind = ErrPermission
		}
		if k := e.kind(); k == ErrBilling {
			e.Kind = k
		}
		return e
	}
	e.Kind = e.kind()
	return e
}

// tokenCache holds the access token. refresh admits one fetch at a time.
type tokenCache struct {
	refresh chan struct{}

	mu      sync.Mutex
	token   string
	expires time.Time
}

// current returns the cached token, valid or not.
func (t *tokenCache) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.token
}

// cached returns the cached token while valid, unless it is stale.
func (c *Client) cached(stale string) (string, bool) {
	c.tokens.mu.Lock()
	defer c.tokens.mu.Unlock()
	ok := c.tokens.token != "" && c.tokens.token != stale && c.now().Before(c.tokens.expires)
	return c.tokens.token, ok
}

// token returns a valid access token other than stale (a token a 401
// refused; "" for none), fetching one if needed. Concurrent callers wait
// for the one fetching.
func (c *Client) token(ctx context.Context, st *Stats, stale string) (string, error) {
	if tok, ok := c.cached(stale); ok {
		return tok, nil
	}
	select {
	case c.tokens.refresh <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.tokens.refresh }()
	if tok, ok := c.cached(stale); ok {
		return tok, nil // fetched while this call waited
	}
	if c.creds.ClientID == "" || c.creds.ClientSecret == "" {
		return "", fmt.Errorf("token: %w: no client id or secret", ErrAuthentication)
	}
	body, err := c.send(ctx, st, request{method: http.MethodPost, url: c.tokenURL, token: true})
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	tok, ttl, err := parseToken(body)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	c.tokens.mu.Lock()
	c.tokens.token, c.tokens.expires = tok, c.now().Add(ttl)
	c.tokens.mu.Unlock()
	return tok, nil
}

// tokenTTL is how long a token that expires in expiresIn is used:
// expiresIn less TokenMargin, at most MaxTokenTTL. A token too short-lived
// for that is used for the call at hand only.
func tokenTTL(expiresIn time.Duration) time.Duration {
	return max(min(expiresIn-TokenMargin, MaxTokenTTL), 0)
}
