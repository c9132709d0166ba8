package receiver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Routes served by the receiver. Smartcar's optional "vehicle error callback
// URI" can point at PathErrors; it behaves exactly like PathWebhook.
const (
	PathWebhook = "/webhooks/smartcar"
	PathErrors  = "/webhooks/smartcar/errors"
	PathHealth  = "/health"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes    = 256 << 10
	DefaultEnqueueTimeout  = 5 * time.Second
	DefaultRefreshInterval = 30 * time.Second
	DefaultMaxDeliveryAge  = time.Hour
)

// Bounds of meta.deliveredAt on a signed event other than VERIFY.
const (
	// NoMaxDeliveryAge, as Options.MaxDeliveryAge, turns the check of
	// meta.deliveredAt off (MAX_DELIVERY_AGE=0).
	NoMaxDeliveryAge time.Duration = -1
	// MaxDeliveryFutureSkew is how far ahead of the receiver's clock a
	// deliveredAt may be: clocks differ, but not by more.
	MaxDeliveryFutureSkew = 5 * time.Minute
	// minDeliveredAt (2020-01-01T00:00:00Z) is the earliest plausible
	// delivery time: an earlier deliveredAt is a bad field, not an old
	// delivery, and reads as unreadable.
	minDeliveredAt smartcar.Millis = 1577836800000
)

// Metric names, emitted as CloudWatch Embedded Metric Format lines.
const (
	MetricWebhooksReceived  = "WebhooksReceived"
	MetricWebhooksEnqueued  = "WebhooksEnqueued"
	MetricSignatureFailures = "SignatureFailures"
	MetricEnqueueFailures   = "EnqueueFailures"
	MetricVerifyAnswered    = "VerifyAnswered"
	// MetricReplaysRejected counts signed events refused because their
	// meta.deliveredAt is too old or too far ahead.
	MetricReplaysRejected = "ReplaysRejected"
	// MetricDeliveredAtUnreadable counts signed events accepted without a
	// replay check, as their meta.deliveredAt is absent or unreadable.
	MetricDeliveredAtUnreadable = "DeliveredAtUnreadable"
)

// Request is an HTTP request as the receiver sees it.
type Request struct {
	Method string
	Path   string
	// Headers in any letter case.
	Headers map[string]string
	// Body is the raw body, exactly as Smartcar signed it. The receiver
	// never modifies it, so an adapter may share its memory.
	Body []byte
}

// Header returns the value of the named header, ignoring letter case.
func (r Request) Header(name string) (string, bool) {
	if v, ok := r.Headers[name]; ok {
		return v, true
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// Response is the receiver's answer. Body is JSON.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// Queue persists an event for the processor.
type Queue interface {
	// Enqueue stores body unchanged, labelled with env's fields, and
	// returns the queue's id for the message. It returns only once the
	// message is durably stored, or with an error.
	Enqueue(ctx context.Context, body []byte, env smartcar.Envelope) (messageID string, err error)
}

// TokenSource supplies the Application Management Tokens. The first token is
// current: it answers VERIFY, and only a VERIFY signed with it (or unsigned)
// is answered. Every token is accepted for other events' signatures.
type TokenSource interface {
	// Tokens returns the tokens, from a cache where there is one.
	Tokens(ctx context.Context) ([]string, error)
	// Refresh bypasses any cache, for when a signature fails because the
	// token may have been rotated.
	Refresh(ctx context.Context) ([]string, error)
}

// MetricsWriter emits a request's metrics.
type MetricsWriter interface {
	Emit(metrics ...emf.Metric) error
}

// Options tune a Handler. Zero values take the defaults.
type Options struct {
	// MaxBodyBytes caps the body; larger bodies get 413. Smartcar documents
	// 50 KB as its largest payload.
	MaxBodyBytes int
	// EnqueueTimeout bounds Queue.Enqueue, retries included, so that a
	// failing queue gets a 503 well inside Smartcar's 15 s.
	EnqueueTimeout time.Duration
	// RefreshInterval is the least time between two forced token refreshes
	// on a signature mismatch.
	RefreshInterval time.Duration
	// MaxDeliveryAge is the oldest meta.deliveredAt accepted on a signed
	// event other than VERIFY: Smartcar sets it anew on every delivery
	// attempt, inside the signed body, so an older one is a replay and gets
	// 401. Zero takes DefaultMaxDeliveryAge; NoMaxDeliveryAge (any negative
	// value) turns the check off. A deliveredAt more than
	// MaxDeliveryFutureSkew ahead is refused too; an absent or unreadable
	// one (or one before 2020) is accepted and counted.
	MaxDeliveryAge time.Duration
	Logger         *slog.Logger
	Metrics        MetricsWriter
	// Now is the clock, for tests.
	Now func() time.Time
}

// Handler is the receiver. It is safe for concurrent use.
type Handler struct {
	queue  Queue
	tokens TokenSource
	opts   Options

	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// New returns a Handler that persists events to queue and checks signatures
// with the tokens from tokens.
func New(queue Queue, tokens TokenSource, opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.EnqueueTimeout <= 0 {
		opts.EnqueueTimeout = DefaultEnqueueTimeout
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.MaxDeliveryAge == 0 {
		opts.MaxDeliveryAge = DefaultMaxDeliveryAge
	}
	opts.Logger = logging.OrDiscard(opts.Logger)
	if opts.Metrics == nil {
		opts.Metrics = emf.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{queue: queue, tokens: tokens, opts: opts}
}

// Handle answers one request.
func (h *Handler) Handle(ctx context.Context, req Request) Response {
	path := req.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	switch path {
	case PathHealth:
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			return methodNotAllowed("GET, HEAD")
		}
		return jsonResponse(http.StatusOK, statusBody{Status: "ok"})
	case PathWebhook, PathErrors:
		if req.Method != http.MethodPost {
			return methodNotAllowed(http.MethodPost)
		}
		return h.webhook(ctx, req)
	}
	return ErrorResponse(http.StatusNotFound, "not found")
}

// delivery is the state of one webhook request.
type delivery struct {
	req     Request
	log     *slog.Logger
	metrics []emf.Metric
	// deliveredAt, for webhook.enqueued, is the delivery's age
	// (deliveryAgeMs) or the mark of an unreadable deliveredAt; empty when
	// unchecked.
	deliveredAt slog.Attr
}

func (d *delivery) count(name string) {
	d.metrics = append(d.metrics, emf.Metric{Name: name, Value: 1, Unit: emf.Count})
}

// webhook does the work in order: size, signature, parse, then VERIFY answer,
// or replay check and enqueue.
func (h *Handler) webhook(ctx context.Context, req Request) Response {
	d := &delivery{req: req, log: h.opts.Logger}
	d.count(MetricWebhooksReceived)
	defer func() {
		if err := h.opts.Metrics.Emit(d.metrics...); err != nil {
			h.opts.Logger.WarnContext(ctx, "metrics.emit_failed", "error", err)
		}
	}()

	if len(req.Body) > h.opts.MaxBodyBytes {
		d.log.WarnContext(ctx, "webhook.rejected", "reason", "body too large",
			"bodyBytes", len(req.Body), "maxBodyBytes", h.opts.MaxBodyBytes)
		return ErrorResponse(http.StatusRequestEntityTooLarge, "body exceeds the receiver's size limit")
	}

	signature, signed := req.Header(smartcar.SignatureHeader)
	if !signed {
		return h.unsigned(ctx, d)
	}
	tokens, match, err := h.checkSignature(ctx, req.Body, signature)
	if err != nil {
		d.log.ErrorContext(ctx, "secret.unavailable", "error", err)
		return ErrorResponse(http.StatusServiceUnavailable, "signing token unavailable; retry later")
	}
	if match < 0 {
		return h.signatureFailed(ctx, d, "signature mismatch", signature, len(tokens))
	}

	env, err := smartcar.ParseEnvelope(req.Body)
	if err != nil {
		d.log.WarnContext(ctx, "webhook.rejected", "reason", "body is not a JSON object",
			"error", logging.Clip(err.Error()), "bodyBytes", len(req.Body))
		return ErrorResponse(http.StatusBadRequest, "body is not a JSON object")
	}
	// The request's fields label every later line: the step lines are
	// DEBUG, so the outcome (webhook.enqueued, a rejection) says it all.
	// tokenIndex labels them only when a previous token signed, which
	// ends once a rotation is complete.
	attrs := requestAttrs(env, req)
	if match > 0 {
		attrs = append(attrs, "tokenIndex", match)
	}
	d.log = d.log.With(attrs...)
	d.log.DebugContext(ctx, "webhook.received", "path", req.Path)
	if match == 0 {
		d.log.DebugContext(ctx, "signature.verified", "tokenIndex", match)
	} else {
		d.log.DebugContext(ctx, "signature.verified")
	}

	if env.IsVerify() {
		if env.Challenge == "" {
			d.log.WarnContext(ctx, "verify.rejected", "reason", "no challenge")
			return ErrorResponse(http.StatusBadRequest, "VERIFY without a challenge")
		}
		if match != 0 {
			// The answer is an HMAC under the current token: for a holder of
			// an older token it would sign any "challenge", a forged body
			// included.
			d.log.WarnContext(ctx, "verify.rejected", "reason", "signed with a previous token, not the current one")
			return ErrorResponse(http.StatusUnauthorized, "VERIFY must be signed with the current token")
		}
		return h.answerVerify(ctx, d, env, tokens[0])
	}
	if !h.fresh(ctx, d, env) {
		return ErrorResponse(http.StatusUnauthorized,
			"meta.deliveredAt is outside the accepted window: a stale or replayed delivery")
	}
	return h.enqueue(ctx, d, env)
}

// fresh reports whether a signed event may be a current delivery attempt:
// Smartcar sets meta.deliveredAt anew on each one, inside the signed body,
// so a deliveredAt older than MaxDeliveryAge (or too far ahead) marks a
// replay of a captured request. A deliveredAt that cannot be read proves
// nothing either way; refusing it could lose a genuine event for good
// (Smartcar gives up after 3 retries), so it is accepted and counted.
func (h *Handler) fresh(ctx context.Context, d *delivery, env smartcar.Envelope) bool {
	if h.opts.MaxDeliveryAge < 0 {
		return true
	}
	if env.DeliveredAt < minDeliveredAt {
		d.count(MetricDeliveredAtUnreadable)
		d.deliveredAt = slog.Bool("deliveredAtUnreadable", true)
		return true
	}
	age := h.opts.Now().Sub(env.DeliveredAt.Time())
	var reason string
	switch {
	case age > h.opts.MaxDeliveryAge:
		reason = "deliveredAt older than the maximum delivery age"
	case age < -MaxDeliveryFutureSkew:
		reason = "deliveredAt too far in the future"
	default:
		d.deliveredAt = slog.Int64("deliveryAgeMs", age.Milliseconds())
		return true
	}
	d.count(MetricReplaysRejected)
	d.log.WarnContext(ctx, "replay.rejected", "reason", reason,
		"ageMs", age.Milliseconds(), "deliveredAt", env.DeliveredAt.Time().Format(time.RFC3339Nano),
		"maxAgeMs", h.opts.MaxDeliveryAge.Milliseconds(), "maxFutureSkewMs", MaxDeliveryFutureSkew.Milliseconds())
	return false
}

// unsigned handles a request without SC-Signature: only a VERIFY with a
// safe challenge is answered.
func (h *Handler) unsigned(ctx context.Context, d *delivery) Response {
	env, err := smartcar.ParseEnvelope(d.req.Body)
	if err != nil || !env.IsVerify() {
		return h.signatureFailed(ctx, d, "missing signature", "", 0)
	}
	d.log = d.log.With(append(requestAttrs(env, d.req), "signed", false)...)
	d.log.DebugContext(ctx, "webhook.received", "path", d.req.Path)
	if !smartcar.SafeUnsignedChallenge(env.Challenge) {
		d.log.WarnContext(ctx, "verify.rejected", "reason", "unsigned challenge outside [A-Za-z0-9._~-]{1,256}",
			"challengeBytes", len(env.Challenge))
		return ErrorResponse(http.StatusBadRequest,
			"unsigned VERIFY challenge must be 1 to 256 characters of [A-Za-z0-9._~-]")
	}
	tokens, err := h.tokens.Tokens(ctx)
	if err != nil {
		d.log.ErrorContext(ctx, "secret.unavailable", "error", err)
		return ErrorResponse(http.StatusServiceUnavailable, "signing token unavailable; retry later")
	}
	return h.answerVerify(ctx, d, env, tokens[0])
}

func (h *Handler) answerVerify(ctx context.Context, d *delivery, env smartcar.Envelope, token string) Response {
	d.count(MetricVerifyAnswered)
	d.log.InfoContext(ctx, "verify.answered")
	return jsonResponse(http.StatusOK, challengeBody{Challenge: smartcar.HashChallenge(token, env.Challenge)})
}

func (h *Handler) enqueue(ctx context.Context, d *delivery, env smartcar.Envelope) Response {
	ctx, cancel := context.WithTimeout(ctx, h.opts.EnqueueTimeout)
	defer cancel()
	start := h.opts.Now()
	messageID, err := h.queue.Enqueue(ctx, d.req.Body, env)
	elapsed := h.opts.Now().Sub(start)
	if err != nil {
		d.count(MetricEnqueueFailures)
		d.log.ErrorContext(ctx, "webhook.enqueue_failed", "error", err, "elapsedMs", elapsed.Milliseconds())
		return ErrorResponse(http.StatusServiceUnavailable, "could not persist the event; retry later")
	}
	d.count(MetricWebhooksEnqueued)
	d.log.InfoContext(ctx, "webhook.enqueued", "messageId", messageID, "elapsedMs", elapsed.Milliseconds(), d.deliveredAt)
	return jsonResponse(http.StatusOK, receivedBody{Status: "received", EventID: env.EventID})
}

// checkSignature verifies signature over body. On a mismatch it refreshes
// the tokens, at most once per RefreshInterval, in case the token was
// rotated since it was cached. It returns the tokens it checked against and
// the index among them of the token that signed, or -1.
func (h *Handler) checkSignature(ctx context.Context, body []byte, signature string) ([]string, int, error) {
	tokens, err := h.tokens.Tokens(ctx)
	if err != nil {
		return nil, -1, err
	}
	if match := smartcar.MatchSignature(body, signature, tokens); match >= 0 {
		return tokens, match, nil
	}
	if !smartcar.ValidSignatureFormat(signature) || !h.mayRefresh() {
		return tokens, -1, nil
	}
	tokens, err = h.tokens.Refresh(ctx)
	if err != nil {
		return nil, -1, err
	}
	return tokens, smartcar.MatchSignature(body, signature, tokens), nil
}

func (h *Handler) mayRefresh() bool {
	h.refreshMu.Lock()
	defer h.refreshMu.Unlock()
	now := h.opts.Now()
	if !h.lastRefresh.IsZero() && now.Sub(h.lastRefresh) < h.opts.RefreshInterval {
		return false
	}
	h.lastRefresh = now
	return true
}

// signatureFailed logs what helps diagnose a signature failure (Smartcar's
// known "LIVE fails, TEST passes" family) without the body, the token or
// the whole signature, and answers 401. Every string from the request is
// clipped: the request is unauthenticated.
func (h *Handler) signatureFailed(ctx context.Context, d *delivery, reason, signature string, tokensTried int) Response {
	d.count(MetricSignatureFailures)
	attrs := []any{
		"reason", reason,
		"bodyBytes", len(d.req.Body),
		"path", d.req.Path,
		"tokensTried", tokensTried,
	}
	if env, err := smartcar.ParseEnvelope(d.req.Body); err == nil {
		attrs = append(attrs, envelopeAttrs(env)...)
		attrs = append(attrs, "version", logging.Clip(env.Version))
	} else {
		attrs = append(attrs, "parseError", logging.Clip(err.Error()))
	}
	if signature != "" {
		attrs = append(attrs, "signatureLength", len(signature), "signaturePrefix", prefix(signature, 8))
	}
	if ua, ok := d.req.Header("User-Agent"); ok {
		attrs = append(attrs, "userAgent", logging.Clip(ua))
	}
	d.log.WarnContext(ctx, "signature.failed", attrs...)
	return ErrorResponse(http.StatusUnauthorized, "invalid or missing SC-Signature")
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// requestAttrs label the lines logged once a request's body is read: its
// envelope's fields and its size.
func requestAttrs(env smartcar.Envelope, req Request) []any {
	return append(envelopeAttrs(env), "bodyBytes", len(req.Body))
}

// envelopeAttrs are the fields that label a request's log lines, each
// clipped (logging.Clip): they come from the body, signed or not.
func envelopeAttrs(env smartcar.Envelope) []any {
	return []any{
		"eventId", logging.Clip(env.EventID),
		"eventType", logging.Clip(env.Type()),
		"vehicleId", logging.Clip(env.VehicleID),
		"deliveryId", logging.Clip(env.DeliveryID),
		"mode", logging.Clip(env.Mode),
	}
}

type statusBody struct {
	Status string `json:"status"`
}

type receivedBody struct {
	Status  string `json:"status"`
	EventID string `json:"eventId"`
}

type challengeBody struct {
	Challenge string `json:"challenge"`
}

type errorBody struct {
	Error string `json:"error"`
}

func jsonResponse(status int, v any) Response {
	b, _ := json.Marshal(v) // only this package's structs of strings reach here
	return Response{Status: status, Body: b}
}

// ErrorResponse is the receiver's answer for a failed request: status with
// the JSON body {"error": msg}.
func ErrorResponse(status int, msg string) Response {
	return jsonResponse(status, errorBody{Error: msg})
}

func methodNotAllowed(allow string) Response {
	r := ErrorResponse(http.StatusMethodNotAllowed, "method not allowed")
	r.Headers = map[string]string{"Allow": allow}
	return r
}
