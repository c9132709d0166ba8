// Package smartcarapitest provides a fake of Smartcar's v3 API for tests:
// an httptest.Server on 127.0.0.1 answering the token endpoint and the
// signals endpoint over an in-memory set of vehicles, paged as the API
// reference shows, with faults a test programs for the next calls.
//
// It answers as Smartcar documents: a token for the client credentials
// (HTTP Basic auth, form-encoded per RFC 6749, or client_id and
// client_secret form fields); Smartcar's error object {"type", "code",
// "description", "statusCode", "requestId", "resolution"} from the API, and
// OAuth 2's {"error", "error_description"} from the token endpoint. Where
// the reference is silent it chooses, and says so: a missing sc-user-id is
// a 400 VALIDATION/PARAMETER, a user other than the vehicle's a 403
// PERMISSION, an unknown vehicle a 404 RESOURCE_NOT_FOUND.
package smartcarapitest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
)

// The credentials the Server accepts, unless changed with SetCredentials.
const (
	ClientID     = "fake-client-id"
	ClientSecret = "fake-client-secret-3f9a1c"
)

// Defaults of the Server.
const (
	DefaultExpiresIn   = 3600 // seconds, as Smartcar's tokens
	DefaultPageSize    = 10   // when the request has no pageSize
	DefaultMaxPageSize = 100
)

// Vehicle is a vehicle the Server knows.
type Vehicle struct {
	UserID  string // the user whose sc-user-id reads it
	Signals []smartcarapi.Signal
}

// Layout says how the Server writes a page of signals.
type Layout struct {
	NoLinks bool // no links object: paging ends with a short page
	NoMeta  bool // no meta object
	// Seconds writes times in epoch seconds, as the reference's example
	// does, instead of milliseconds, as webhooks do.
	Seconds bool
	// MaxPageSize caps the pageSize asked (DefaultMaxPageSize); the page's
	// meta.pageSize says what was used.
	MaxPageSize int
}

// Fault is an answer a test programs, in place of the normal one.
type Fault struct {
	// Status, if set, is answered with the endpoint's error body for it
	// (Smartcar's error object from the API, OAuth 2's from the token
	// endpoint), or with Body.
	Status int
	// RetryAfter, if set, is sent as the retry-after header.
	RetryAfter string
	// Delay holds the answer that long, or until the client gives up;
	// alone, the normal answer follows.
	Delay time.Duration
	// Malformed answers 200 with JSON cut short.
	Malformed bool
	// Body, if set, is the body sent (with Status, or 200).
	Body string
}

// Unauthorized is a 401, as for an expired or revoked token.
func Unauthorized() Fault { return Fault{Status: http.StatusUnauthorized} }

// RateLimited is a 429 with the retry-after header retryAfter ("" for
// none): seconds, or an HTTP date.
func RateLimited(retryAfter string) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfter}
}

// ServerError is a 500.
func ServerError() Fault { return Fault{Status: http.StatusInternalServerError} }

// Slow holds the answer d.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// Malformed is a 200 whose body is JSON cut short.
func Malformed() Fault { return Fault{Malformed: true} }

// Request is a request the Server answered.
type Request struct {
	Token     bool // to the token endpoint
	Basic     bool // token: the credentials came in HTTP Basic auth
	VehicleID string
	UserID    string // the sc-user-id header
	Page      int
	PageSize  int // as asked
	Status    int // answered; 0 when the client left first
}

// Counts counts the Server's calls.
type Counts struct {
	TokenCalls   int // requests to the token endpoint
	TokensIssued int
	SignalCalls  int // requests to the signals endpoint
}

// queued is a fault for the next n calls.
type queued struct {
	n     int
	fault Fault
}

// Server is the fake API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root: its token endpoint is TokenURL, its API
	// APIBase.
	URL string

	mu          sync.Mutex
	creds       smartcarapi.Credentials
	vehicles    map[string]Vehicle
	tokens      map[string]bool // issued and not revoked
	expiresIn   int
	layout      Layout
	faults      []queued
	tokenFaults []queued
	requests    []Request
	counts      Counts
}

// NewServer starts a Server, closed when t ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		creds:     smartcarapi.Credentials{ClientID: ClientID, ClientSecret: ClientSecret},
		vehicles:  map[string]Vehicle{},
		tokens:    map[string]bool{},
		expiresIn: DefaultExpiresIn,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("GET /v3/vehicles/{vehicleID}/signals", s.handleSignals)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// TokenURL is the token endpoint, for smartcarapi.WithTokenURL.
func (s *Server) TokenURL() string { return s.URL + "/oauth2/token" }

// APIBase is the API's base, for smartcarapi.WithAPIBase.
func (s *Server) APIBase() string { return s.URL + "/v3" }

// Credentials are the credentials the Server accepts.
func (s *Server) Credentials() smartcarapi.Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds
}

// SecretString is the credentials the Server accepts as their Secrets
// Manager secret holds them: {"clientId": …, "clientSecret": …}.
func (s *Server) SecretString() string {
	c := s.Credentials()
	b, _ := json.Marshal(map[string]string{"clientId": c.ClientID, "clientSecret": c.ClientSecret})
	return string(b)
}

// SetCredentials changes the credentials the Server accepts.
func (s *Server) SetCredentials(c smartcarapi.Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = c
}

// AddVehicle adds, or replaces, the vehicle id.
func (s *Server) AddVehicle(id string, v Vehicle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.Signals = append([]smartcarapi.Signal(nil), v.Signals...)
	s.vehicles[id] = v
}

// SetExpiresIn sets the expires_in of the tokens issued next
// (DefaultExpiresIn).
func (s *Server) SetExpiresIn(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = seconds
}

// SetLayout sets how pages are written.
func (s *Server) SetLayout(l Layout) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.layout = l
}

// RevokeTokens makes every token issued so far invalid: the API answers
// them 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Inject answers the next n calls to the signals endpoint with f, after
// any fault injected before.
func (s *Server) Inject(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, queued{n: n, fault: f})
}

// InjectToken answers the next n calls to the token endpoint with f,
// after any fault injected before.
func (s *Server) InjectToken(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFaults = append(s.tokenFaults, queued{n: n, fault: f})
}

// Counts returns the calls so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Requests returns the requests answered so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// MakeSignals returns n distinct signals, "test-signal001" onwards,
// retrieved at at and updated by the car a second apart before it.
func MakeSignals(n int, at smartcar.Millis) []smartcarapi.Signal {
	out := make([]smartcarapi.Signal, n)
	for i := range out {
		name := fmt.Sprintf("Signal%03d", i+1)
		out[i] = smartcarapi.Signal{ID: fmt.Sprintf("sig-%03d", i+1), Signal: smartcar.Signal{
			Code: "test-" + strings.ToLower(name), Name: name, Group: "Test",
			Status: "SUCCESS", Body: map[string]any{"value": i + 1, "unit": "count"},
			RetrievedAt: at, OEMUpdatedAt: at - smartcar.Millis(1000*(i+1)),
		}}
	}
	return out
}

// next takes the fault for this call off q, if any.
func next(q *[]queued) (Fault, bool) {
	if len(*q) == 0 {
		return Fault{}, false
	}
	f := (*q)[0].fault
	if (*q)[0].n--; (*q)[0].n <= 0 {
		*q = (*q)[1:]
	}
	return f, true
}

// answer records req with status and writes the answer.
func (s *Server) answer(w http.ResponseWriter, req Request, status int, header http.Header, body []byte) {
	s.mu.Lock()
	req.Status = status
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// fault applies f and reports whether it answered the request (or the
// client left during its delay).
func (s *Server) fault(w http.ResponseWriter, r *http.Request, req Request, f Fault, errorBody func(int) []byte, malformed string) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			s.mu.Lock()
			s.requests = append(s.requests, req)
			s.mu.Unlock()
			return true
		}
	}
	h := http.Header{}
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	switch {
	case f.Malformed:
		s.answer(w, req, http.StatusOK, h, []byte(malformed))
	case f.Body != "":
		s.answer(w, req, cmp.Or(f.Status, http.StatusOK), h, []byte(f.Body))
	case f.Status != 0:
		s.answer(w, req, f.Status, h, errorBody(f.Status))
	default:
		return false
	}
	return true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	req := Request{Token: true}
	s.mu.Lock()
	s.counts.TokenCalls++
	f, faulty := next(&s.tokenFaults)
	s.mu.Unlock()
	// The form is read first: until the body is read, the server does not
	// notice a client leaving during a fault's delay.
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	formErr := r.ParseForm()
	if faulty && s.fault(w, r, req, f, oauthErrorFor, `{"access_token":"`) {
		return
	}
	if formErr != nil {
		s.answer(w, req, http.StatusBadRequest, nil, oauthError("invalid_request", "The request body is not a form."))
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		req.Basic = true
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			id, secret = "", ""
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		s.answer(w, req, http.StatusBadRequest, nil, oauthError("unsupported_grant_type", "Only client_credentials is supported."))
		return
	}
	s.mu.Lock()
	creds, expiresIn := s.creds, s.expiresIn
	s.mu.Unlock()
	if id == "" || id != creds.ClientID || secret != creds.ClientSecret {
		h := http.Header{"Www-Authenticate": {`Basic realm="smartcar"`}}
		s.answer(w, req, http.StatusUnauthorized, h, oauthError("invalid_client", "Client authentication failed."))
		return
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	s.mu.Lock()
	s.counts.TokensIssued++
	tok := fmt.Sprintf("fake-token-%d-%s", s.counts.TokensIssued, hex.EncodeToString(b[:]))
	s.tokens[tok] = true
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": expiresIn})
	s.answer(w, req, http.StatusOK, http.Header{"Cache-Control": {"no-store"}}, body)
}

func (s *Server) handleSignals(w http.ResponseWriter, r *http.Request) {
	req := Request{VehicleID: r.PathValue("vehicleID"), UserID: r.Header.Get(smartcarapi.UserIDHeader)}
	q := r.URL.Query()
	req.Page, req.PageSize = atoi(q.Get("page"), 1), atoi(q.Get("pageSize"), DefaultPageSize)
	s.mu.Lock()
	s.counts.SignalCalls++
	f, faulty := next(&s.faults)
	s.mu.Unlock()
	if faulty && s.fault(w, r, req, f, smartcarErrorFor, `{"data":[{"id":"sig-001","type":"signal","attributes":{`) {
		return
	}
	fail := func(status int, typ, code, description string) {
		s.answer(w, req, status, nil, smartcarError(status, typ, code, description))
	}
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := bearer && s.tokens[tok]
	v, known := s.vehicles[req.VehicleID]
	layout := s.layout
	s.mu.Unlock()
	switch {
	case !valid:
		fail(http.StatusUnauthorized, "AUTHENTICATION", "", "The authorization header is missing or malformed, or it contains invalid or expired authentication credentials.")
		return
	case req.UserID == "":
		fail(http.StatusBadRequest, "VALIDATION", "PARAMETER", "The sc-user-id header is required.")
		return
	case req.Page < 1 || req.PageSize < 1:
		fail(http.StatusBadRequest, "VALIDATION", "PARAMETER", "page and pageSize must be positive integers.")
		return
	case !known:
		fail(http.StatusNotFound, "RESOURCE_NOT_FOUND", "PATH", "The requested resource does not exist.")
		return
	case req.UserID != v.UserID:
		fail(http.StatusForbidden, "PERMISSION", "", "Your application has insufficient permissions to access the requested resource.")
		return
	}
	size := min(req.PageSize, cmp.Or(layout.MaxPageSize, DefaultMaxPageSize))
	total := len(v.Signals)
	last := max((total+size-1)/size, 1)
	from, to := min((req.Page-1)*size, total), min(req.Page*size, total)
	data := make([]any, 0, to-from)
	for _, sig := range v.Signals[from:to] {
		data = append(data, item(req.VehicleID, sig, layout.Seconds))
	}
	doc := map[string]any{"data": data}
	if !layout.NoMeta {
		doc["meta"] = map[string]any{"page": req.Page, "pageSize": size, "totalCount": total}
	}
	if !layout.NoLinks {
		link := func(p int) any {
			if p < 1 || p > last {
				return nil
			}
			return fmt.Sprintf("/vehicles/%s/signals?page=%d&pageSize=%d", url.PathEscape(req.VehicleID), p, size)
		}
		doc["links"] = map[string]any{"self": link(req.Page), "first": link(1), "previous": link(req.Page - 1),
			"next": link(req.Page + 1), "last": link(last)}
	}
	body, _ := json.Marshal(doc)
	s.answer(w, req, http.StatusOK, nil, body)
}

// atoi reads a query parameter; fallback when absent, -1 when not an
// integer.
func atoi(s string, fallback int) int {
	if s == "" {
		return fallback
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// item writes sig as an item of data.
func item(vehicleID string, sig smartcarapi.Signal, seconds bool) map[string]any {
	status := map[string]any{"value": cmp.Or(sig.Status, "SUCCESS")}
	if sig.ErrorType != "" || sig.ErrorCode != "" {
		status["error"] = map[string]any{"type": sig.ErrorType, "code": sig.ErrorCode}
	}
	attrs := map[string]any{"code": sig.Code, "name": sig.Name, "group": sig.Group, "status": status}
	if sig.Body != nil {
		attrs["body"] = sig.Body
	}
	meta := map[string]any{}
	for k, t := range map[string]smartcar.Millis{"retrievedAt": sig.RetrievedAt, "oemUpdatedAt": sig.OEMUpdatedAt} {
		switch {
		case t == 0:
		case seconds:
			meta[k] = int64(t) / 1000
		default:
			meta[k] = int64(t)
		}
	}
	vehicle := "/vehicles/" + url.PathEscape(vehicleID)
	return map[string]any{
		"id": cmp.Or(sig.ID, sig.Code), "type": "signal", "attributes": attrs, "meta": meta,
		"links": map[string]any{"self": vehicle + "/signals/" + sig.Code, "values": vehicle + "/signals/" + sig.Code + "/values", "vehicle": vehicle},
	}
}

// smartcarError is Smartcar's error object.
func smartcarError(status int, typ, code, description string) []byte {
	var resolution any
	switch typ {
	case "RATE_LIMIT", "SERVER", "UPSTREAM", "VEHICLE_STATE":
		resolution = "RETRY_LATER"
	case "PERMISSION":
		resolution = "REAUTHENTICATE"
	case "BILLING":
		resolution = "CONTACT_SUPPORT"
	}
	var c any
	if code != "" {
		c = code
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	body, _ := json.Marshal(map[string]any{
		"type": typ, "code": c, "description": description, "statusCode": status,
		"docURL":    "https://smartcar.com/docs/errors/api-errors/" + strings.ToLower(strings.ReplaceAll(typ, "_", "-")) + "-errors",
		"requestId": "req-" + hex.EncodeToString(id[:]), "resolution": map[string]any{"type": resolution},
	})
	return body
}

// smartcarErrorFor is Smartcar's error object for a status.
func smartcarErrorFor(status int) []byte {
	switch status {
	case http.StatusBadRequest:
		return smartcarError(status, "VALIDATION", "PARAMETER", "Request invalid or malformed.")
	case http.StatusUnauthorized:
		return smartcarError(status, "AUTHENTICATION", "", "The authorization header is missing or malformed, or it contains invalid or expired authentication credentials.")
	case http.StatusPaymentRequired, 430:
		return smartcarError(status, "BILLING", "VEHICLE_REQUEST_LIMIT", "Thrown when limits have been reached based on your plan or if the feature is not available.")
	case http.StatusForbidden:
		return smartcarError(status, "PERMISSION", "", "Your application has insufficient permissions to access the requested resource.")
	case http.StatusNotFound:
		return smartcarError(status, "RESOURCE_NOT_FOUND", "PATH", "The requested resource does not exist.")
	case http.StatusConflict:
		return smartcarError(status, "VEHICLE_STATE", "ASLEEP", "The vehicle is in a sleep state.")
	case http.StatusTooManyRequests:
		return smartcarError(status, "RATE_LIMIT", "SMARTCAR_API", "You have reached the throttling rate limit for this vehicle.")
	case http.StatusNotImplemented:
		return smartcarError(status, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", "The vehicle is not capable of performing your request.")
	}
	if status >= 500 {
		return smartcarError(status, "SERVER", "INTERNAL", "Smartcar experienced an unexpected error.")
	}
	return smartcarError(status, "VALIDATION", "", "Request invalid.")
}

// oauthError is OAuth 2's error object.
func oauthError(code, description string) []byte {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	return body
}

// oauthErrorFor is OAuth 2's error object for a status.
func oauthErrorFor(status int) []byte {
	switch {
	case status == http.StatusUnauthorized:
		return oauthError("invalid_client", "Client authentication failed.")
	case status == http.StatusTooManyRequests:
		return oauthError("slow_down", "Too many token requests.")
	case status >= 500:
		return oauthError("temporarily_unavailable", "The server is temporarily unavailable.")
	}
	return oauthError("invalid_request", "The request is invalid.")
}
