package smartcarapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The kinds of failure, for errors.Is. Those of an answer Smartcar gave
// come wrapped in an *APIError carrying its details; a rate limit given up
// on is a *RateLimitedError.
var (
	// ErrAuthentication: the token endpoint refused the credentials, or the
	// API refused a freshly fetched token (a 401 twice in a row). Permanent
	// until the credentials are fixed.
	ErrAuthentication = errors.New("authentication failed")
	// ErrBilling: the application's plan forbids the call (HTTP 402 or 430,
	// or an error of type BILLING). Never retried: polling must stop.
	ErrBilling = errors.New("billing limit")
	// ErrPermission: the application or the user has not granted access to
	// the vehicle or its signals (HTTP 403, or an error of type
	// PERMISSION). Never retried.
	ErrPermission = errors.New("permission denied")
	// ErrVehicleNotFound: the API does not know the vehicle (HTTP 404).
	ErrVehicleNotFound = errors.New("vehicle not found")
	// ErrRateLimited is what a *RateLimitedError is.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: every attempt failed with a server error (5xx), a
	// timeout or a transport error.
	ErrUnavailable = errors.New("unavailable")
	// ErrMalformed: a 2xx answer that is not what the API documents (not
	// JSON, no data array, no access_token, too large).
	ErrMalformed = errors.New("malformed answer")
	// ErrTooManyPages: the answer still announced more signals after the
	// client's maximum number of pages.
	ErrTooManyPages = errors.New("too many pages")
)

// APIError is an error answer of Smartcar's, with what its body said.
// Smartcar's errors are {"type", "code", "description", "statusCode",
// "requestId", "resolution": {"type"}}; the token endpoint's are OAuth 2's
// {"error", "error_description"}, read into Code and Description.
type APIError struct {
	Status      int    // the HTTP status
	Type        string // e.g. BILLING, PERMISSION, RESOURCE_NOT_FOUND; "" if none
	Code        string // e.g. VEHICLE_REQUEST_LIMIT, invalid_client; "" if none or null
	Description string
	Resolution  string // resolution.type: RETRY_LATER, REAUTHENTICATE, CONTACT_SUPPORT
	RequestID   string
	// Kind is the sentinel the error is (ErrBilling, ErrPermission...), or
	// nil for another refusal (a 400, say).
	Kind error
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Type != "" || e.Code != "" {
		b.WriteString(" ")
		b.WriteString(strings.Trim(e.Type+"/"+e.Code, "/"))
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap returns Kind.
func (e *APIError) Unwrap() error { return e.Kind }

// RateLimitedError is a rate limit (HTTP 429) the client stopped waiting
// out: its retry-after was over the maximum wait or beyond the context's
// deadline, or the attempts ran out.
type RateLimitedError struct {
	// Wait is what the last answer asked to wait (its retry-after, else the
	// client's backoff): the earliest worth calling again.
	Wait       time.Duration
	Attempts   int    // made, all rate limited
	Reason     string // why the client gave up
	Type, Code string // the answer's, e.g. RATE_LIMIT/VEHICLE
}

func (e *RateLimitedError) Error() string {
	s := fmt.Sprintf("%v after %d attempt", ErrRateLimited, e.Attempts)
	if e.Attempts != 1 {
		s += "s"
	}
	if e.Type != "" || e.Code != "" {
		s += " (" + strings.Trim(e.Type+"/"+e.Code, "/") + ")"
	}
	return fmt.Sprintf("%s: retry after %v: %s", s, e.Wait, e.Reason)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// maxDescription bounds the text of an error body kept in an error.
const maxDescription = 300

// parseAPIError reads an error answer's body tolerantly: Smartcar's error
// object, OAuth 2's, or a JSON:API {"errors": [...]} list (its first
// element); anything else leaves the fields empty. The body's text is
// never kept beyond these fields.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return e
	}
	if list, ok := v["errors"].([]any); ok && len(list) > 0 {
		if first, ok := list[0].(map[string]any); ok {
			e.Type, e.Code = text(first["type"]), text(first["code"])
			e.Description = firstText(first["detail"], first["title"], first["description"])
			e.RequestID = text(first["requestId"])
		}
	}
	if t := text(v["type"]); t != "" {
		e.Type = t
	}
	if c := firstText(v["code"], v["error"]); c != "" {
		e.Code = c
	}
	if d := firstText(v["description"], v["error_description"], v["message"]); d != "" {
		e.Description = d
	}
	if id := text(v["requestId"]); id != "" {
		e.RequestID = id
	}
	if r, ok := v["resolution"].(map[string]any); ok {
		e.Resolution = text(r["type"])
	}
	e.Type, e.Code = clip(e.Type, 64), clip(e.Code, 64)
	e.Description, e.RequestID = clip(e.Description, maxDescription), clip(e.RequestID, 64)
	return e
}

// kind returns the sentinel of an error answer from the signals endpoint
// (Smartcar's type first, then the status).
func (e *APIError) kind() error {
	switch {
	case strings.EqualFold(e.Type, "BILLING") || e.Status == http.StatusPaymentRequired || e.Status == 430:
		return ErrBilling
	case strings.EqualFold(e.Type, "AUTHENTICATION") || e.Status == http.StatusUnauthorized:
		return ErrAuthentication
	case strings.EqualFold(e.Type, "PERMISSION") || e.Status == http.StatusForbidden:
		return ErrPermission
	case e.Status == http.StatusNotFound:
		return ErrVehicleNotFound
	}
	return nil
}

// rateLimited reports whether the answer is a rate limit.
func (e *APIError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || strings.EqualFold(e.Type, "RATE_LIMIT")
}

// retryable reports whether another attempt may succeed: a server error
// but 501 (Smartcar's COMPATIBILITY errors: the vehicle cannot, whatever
// the attempt), or 408.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status >= 500 && status != http.StatusNotImplemented
}

// retryAfter reads a retry-after header: delay-seconds (a decimal fraction
// is tolerated) or an HTTP date, taken from now. ok is false when absent or
// unreadable.
func retryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || secs < 0 {
			return 0, false
		}
		if secs > float64(24*time.Hour/time.Second) {
			return 24 * time.Hour, true // far beyond any max wait; no overflow
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// text returns a JSON scalar's text (a string, a number); "" otherwise.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

func firstText(vs ...any) string {
	for _, v := range vs {
		if s := text(v); s != "" {
			return s
		}
	}
	return ""
}

// clip cuts s to n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ErrorKind names the kind of err for metrics and logs: authentication,
// billing, permission, vehicle_not_found, rate_limited, unavailable,
// malformed or too_many_pages; "refused" for another error answer of
// Smartcar's (a 400, a 501), "other" for any other error (a context
// cancelled, say), "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	var api *APIError
	if errors.As(err, &api) {
		return "refused"
	}
	return "other"
}

// ErrorKinds lists every name ErrorKind returns for an error.
func ErrorKinds() []string {
	names := make([]string, 0, len(errorKinds)+2)
	for _, k := range errorKinds {
		names = append(names, k.name)
	}
	return append(names, "refused", "other")
}

var errorKinds = []struct {
	err  error
	name string
}{
	{ErrAuthentication, "authentication"},
	{ErrBilling, "billing"},
	{ErrPermission, "permission"},
	{ErrVehicleNotFound, "vehicle_not_found"},
	{ErrRateLimited, "rate_limited"},
	{ErrUnavailable, "unavailable"},
	{ErrMalformed, "malformed"},
	{ErrTooManyPages, "too_many_pages"},
}
