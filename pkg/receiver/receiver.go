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
)

// Metric names, emitted as CloudWatch Embedded Metric Format lines.
const (
	MetricWebhooksReceived  = "WebhooksReceived"
	MetricWebhooksEnqueued  = "WebhooksEnqueued"
	MetricSignatureFailures = "SignatureFailures"
	MetricEnqueueFailures   = "EnqueueFailures"
	MetricVerifyAnswered    = "VerifyAnswered"
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
// current and answers VERIFY; every token is accepted for signatures.
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
	Logger          *slog.Logger
	Metrics         MetricsWriter
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
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
}

func (d *delivery) count(name string) {
	d.metrics = append(d.metrics, emf.Metric{Name: name, Value: 1, Unit: emf.Count})
}

// webhook does the work in order: size, signature, parse, then VERIFY answer
// or enqueue.
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
	tokens, ok, err := h.checkSignature(ctx, req.Body, signature)
	if err != nil {
		d.log.ErrorContext(ctx, "secret.unavailable", "error", err)
		return ErrorResponse(http.StatusServiceUnavailable, "signing token unavailable; retry later")
	}
	if !ok {
		return h.signatureFailed(ctx, d, "signature mismatch", signature, len(tokens))
	}

	env, err := smartcar.ParseEnvelope(req.Body)
	if err != nil {
		d.log.WarnContext(ctx, "webhook.rejected", "reason", "body is not a JSON object",
			"error", err, "bodyBytes", len(req.Body))
		return ErrorResponse(http.StatusBadRequest, "body is not a JSON object")
	}
	d.log = d.log.With(envelopeAttrs(env)...)
	d.log.InfoContext(ctx, "webhook.received", "bodyBytes", len(req.Body), "path", req.Path)
	d.log.InfoContext(ctx, "signature.verified")

	if env.IsVerify() {
		if env.Challenge == "" {
			d.log.WarnContext(ctx, "verify.rejected", "reason", "no challenge")
			return ErrorResponse(http.StatusBadRequest, "VERIFY without a challenge")
		}
		return h.answerVerify(ctx, d, env, tokens[0])
	}
	return h.enqueue(ctx, d, env)
}

// unsigned handles a request without SC-Signature: only a VERIFY with a
// safe challenge is answered.
func (h *Handler) unsigned(ctx context.Context, d *delivery) Response {
	env, err := smartcar.ParseEnvelope(d.req.Body)
	if err != nil || !env.IsVerify() {
		return h.signatureFailed(ctx, d, "missing signature", "", 0)
	}
	d.log = d.log.With(envelopeAttrs(env)...)
	d.log.InfoContext(ctx, "webhook.received", "bodyBytes", len(d.req.Body), "path", d.req.Path, "signed", false)
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
	d.log.InfoContext(ctx, "webhook.enqueued", "messageId", messageID, "elapsedMs", elapsed.Milliseconds())
	return jsonResponse(http.StatusOK, receivedBody{Status: "received", EventID: env.EventID})
}

// checkSignature verifies signature over body. On a mismatch it refreshes
// the tokens, at most once per RefreshInterval, in case the token was
// rotated since it was cached. It returns the tokens it checked against.
func (h *Handler) checkSignature(ctx context.Context, body []byte, signature string) ([]string, bool, error) {
	tokens, err := h.tokens.Tokens(ctx)
	if err != nil {
		return nil, false, err
	}
	if smartcar.VerifySignature(body, signature, tokens) {
		return tokens, true, nil
	}
	if !smartcar.ValidSignatureFormat(signature) || !h.mayRefresh() {
		return tokens, false, nil
	}
	tokens, err = h.tokens.Refresh(ctx)
	if err != nil {
		return nil, false, err
	}
	return tokens, smartcar.VerifySignature(body, signature, tokens), nil
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
// the whole signature, and answers 401.
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
		attrs = append(attrs, "version", env.Version)
	} else {
		attrs = append(attrs, "parseError", err.Error())
	}
	if signature != "" {
		attrs = append(attrs, "signatureLength", len(signature), "signaturePrefix", prefix(signature, 8))
	}
	if ua, ok := d.req.Header("User-Agent"); ok {
		attrs = append(attrs, "userAgent", ua)
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

func envelopeAttrs(env smartcar.Envelope) []any {
	return []any{
		"eventId", env.EventID,
		"eventType", env.Type(),
		"vehicleId", env.VehicleID,
		"deliveryId", env.DeliveryID,
		"mode", env.Mode,
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
