// Package processor is the processing core: it takes the receiver's queued
// webhooks in batches and applies each event's effects exactly once.
//
// For every record it decodes the event and has the Finisher (by default
// the vehicle-state merge) store its effects. Those writes are idempotent
// and commutative: each lands only over an older entry, so applying an
// event again, or two events in any order, leaves the same state. An event
// is therefore applied exactly once without any bookkeeping, and a
// redelivery is recognised from the state itself (ErrAlreadyApplied).
//
// The user's Handlers may have effects that are not idempotent (a
// notification, a charge), so when any are registered the processor
// claims each eventId in a Ledger (a conditional write) first, runs the
// handlers, stores the effects and marks the event completed: a duplicate
// of a completed event is acknowledged without effects; one whose event is
// still in progress under another message's claim is retried later, never
// acknowledged, as nothing proves that the holder will finish. The claim
// costs two writes per event, paid only by those who need it.
//
// A body that can never be processed goes to the dead-letter queue at
// once, with its reason; any other failure fails only its own record, so
// the queue retries it and, after its redrive limit, dead-letters it.
//
// With an Archiver, every record's raw body is archived before it is
// processed, a batch at a time; a record whose archive write failed is
// not processed and fails, so it is retried like any other failure.
//
// A replayed record (one carrying AttrReplayGeneration) is history run
// again: it is not archived again, its claim and its applied record are
// keyed by its event and generation (EventKey), so it runs the handlers
// once per generation, and it is counted as EventsReplayed, never as a
// duplicate.
//
// It knows nothing of Lambda, SQS or DynamoDB: adapters provide Ledger,
// VehicleStore and DeadLetterQueue.
package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Metric names, emitted as CloudWatch Embedded Metric Format lines.
const (
	MetricEventsProcessed     = "EventsProcessed"
	MetricProcessingErrors    = "ProcessingErrors"
	MetricDuplicatesSkipped   = "DuplicatesSkipped"
	MetricDuplicatesDeferred  = "DuplicatesDeferred"
	MetricStaleSignalsIgnored = "StaleSignalsIgnored"
	MetricPermanentFailures   = "PermanentFailures"
	MetricEndToEndLatency     = "EndToEndLatency"
	// MetricArchiveFailures counts records whose archive write failed:
	// each is retried, unprocessed, as a processing error is.
	MetricArchiveFailures = "ArchiveFailures"
	// MetricEventsReplayed counts replayed records done, whether they
	// changed anything or not.
	MetricEventsReplayed = "EventsReplayed"

	// MetricFutureTimestampsClamped counts reported times later than the
	// processing time plus vehicle.MaxClockSkew, ordered at that bound.
	MetricFutureTimestampsClamped = "FutureTimestampsClamped"
)

// Defaults for Options.
const (
	DefaultLease           = 15 * time.Second
	DefaultIdempotencyTTL  = pipeline.DLQRetention + pipeline.IdempotencyMargin // a redriven dead letter is still a duplicate
	DefaultMaxReceiveCount = 4
	DefaultConcurrency     = 4
	// DefaultArchiveTimeout bounds a batch's archive write (and never
	// more than half the invocation's remaining time).
	DefaultArchiveTimeout = 2 * time.Second
)

// Record is one queued webhook.
type Record struct {
	MessageID    string
	Body         []byte
	ReceiveCount int               // deliveries so far, this one included
	Attributes   map[string]string // message attributes set by the receiver
	// SentAt is when this copy of the message was sent (by the receiver,
	// or by a redrive from the DLQ); zero if unknown. See ReceivedAt.
	SentAt time.Time
}

// Message attributes the processor reads. AttrReplayGeneration marks a
// replayed record with its generation (see ValidGeneration);
// AttrReceivedAt is when the receiver queued the webhook, in Unix
// milliseconds; AttrEventID labels a record with its event's id, for logs
// and for scheduling a batch (see ProcessBatch).
const (
	AttrReplayGeneration = "replayGeneration"
	AttrReceivedAt       = "receivedAt"
	AttrEventID          = "eventId"
)

// ReceivedAt returns when the receiver queued rec: AttrReceivedAt, which
// stays with a webhook redriven from the DLQ, else when this copy was
// sent (SentAt).
func (rec Record) ReceivedAt() time.Time {
	if ms, err := strconv.ParseInt(rec.Attributes[AttrReceivedAt], 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	return rec.SentAt
}

// Generation returns the replay generation rec carries; "" for a live
// webhook.
func (rec Record) Generation() string { return rec.Attributes[AttrReplayGeneration] }

// maxGenerationBytes bounds a generation, which lengthens the events
// table's key.
const maxGenerationBytes = 64

// ValidGeneration checks a replay generation: 1 to 64 letters, digits,
// '.', '_' or '-', such as "replay-20261130-fix-odometer".
func ValidGeneration(g string) error {
	if g == "" || len(g) > maxGenerationBytes {
		return fmt.Errorf("replay generation %q: want 1 to %d characters", logging.Clip(g), maxGenerationBytes)
	}
	for _, c := range []byte(g) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("replay generation %q: want only letters, digits, '.', '_' and '-'", logging.Clip(g))
		}
	}
	return nil
}

// EventKey is the key an event is claimed and recorded under: its eventId,
// or for a replay eventId#generation, so that each generation runs once.
// A replay's key that would be longer than a key may be (2048 bytes, as
// DynamoDB's partition keys) names the eventId by its SHA-256 instead.
func EventKey(eventID, generation string) string {
	if generation == "" {
		return eventID
	}
	if len(eventID)+1+len(generation) > maxKeyBytes {
		sum := sha256.Sum256([]byte(eventID))
		eventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return eventID + "#" + generation
}

// maxKeyBytes is the longest key EventKey makes of a replay's.
const maxKeyBytes = 2048

// Claim is a worker's hold on an event. Token fences it: once the lease
// expires and another worker takes the event over, writes made with the old
// token are refused.
type Claim struct {
	// EventID is the key the event is claimed under: EventKey of its
	// eventId and Generation.
	EventID string
	Token   string
	// Generation is the replay's generation for a replayed event, "" for a
	// live one: handlers can tell a replay by it (Replayed).
	Generation string
}

// Replayed reports whether the claim is for a replay of history.
func (c Claim) Replayed() bool { return c.Generation != "" }

// Outcome is the result of trying to claim an event.
type Outcome int

// Claim outcomes.
const (
	Claimed          Outcome = iota // the caller holds the event
	AlreadyCompleted                // its effects were applied before
	HeldElsewhere                   // another worker holds a live lease
)

// ClaimRequest describes the event being claimed.
type ClaimRequest struct {
	EventID   string // the key: EventKey of the eventId and the replay generation
	EventType string
	VehicleID string
	// MessageID is the queue message being processed. A claim made for the
	// same message is taken over at once: the queue hands a message out
	// again only once its earlier attempt is over, and the new token fences
	// that attempt should it still be writing. Empty matches nothing.
	MessageID string
	Now       time.Time
	Lease     time.Duration // how long the claim holds before another may take over
	TTL       time.Duration // how long the record of the event is kept
}

// ErrFenceLost is returned by a write whose claim was taken over.
var ErrFenceLost = errors.New("claim was taken over by another worker")

// ErrInProgress is returned by Process for a record whose event another
// message holds under a live lease. The record is retried: if the holder
// finishes, the retry is a duplicate; if it died, its lease has expired and
// the retry takes the event over.
var ErrInProgress = errors.New("event in progress under another message's claim")

// Ledger records which events have been processed.
type Ledger interface {
	// Claim takes the event unless it is completed or held under a live
	// lease for another message. A released or expired claim, or one made
	// for the same message, is taken over with a new token.
	Claim(ctx context.Context, req ClaimRequest) (Claim, Outcome, error)
	// Complete marks the event done; ErrFenceLost if c no longer holds it.
	// Completing again under the same token succeeds.
	Complete(ctx context.Context, c Claim, now time.Time) error
	// Release gives the event up after a failure, so the next attempt runs
	// at once instead of waiting for the lease to expire.
	Release(ctx context.Context, c Claim) error
}

// Handler is business logic run for each event after it is claimed and
// before its effects are stored, so that its effects happen once per
// event. If a later write fails after a handler succeeded, the event is
// retried and the handler runs again: make side effects idempotent by
// eventId where that matters.
//
// A replay of history (`make replay`) runs the handlers again, once per
// replay generation: claim.Replayed() tells such a run from a live event,
// for a handler that should, say, recompute but not notify.
type Handler interface {
	Handle(ctx context.Context, ev smartcar.Event, claim Claim) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev smartcar.Event, claim Claim) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev smartcar.Event, claim Claim) error {
	return f(ctx, ev, claim)
}

// Finisher stores an event's effects. Its writes must be idempotent and
// commutative (the StateFinisher's store each entry only over an older
// one): without handlers nothing else keeps an event from being applied
// twice or out of order, and with them an event may be finished again
// after a crash before its completion, or by a worker whose claim was
// taken over. claim is the zero Claim when no handlers are registered.
// It returns ErrAlreadyApplied when the event's effects were stored
// before and it stored nothing.
type Finisher interface {
	Finish(ctx context.Context, ev smartcar.Event, claim Claim) error
}

// ErrAlreadyApplied is returned by a Finisher for an event whose effects
// were stored before: a redelivery. The processor counts it as a
// duplicate.
var ErrAlreadyApplied = errors.New("event already applied")

// NoEffects is the Finisher of a processor whose handlers are all its
// effects.
type NoEffects struct{}

// Finish implements Finisher.
func (NoEffects) Finish(context.Context, smartcar.Event, Claim) error { return nil }

// Archiver keeps raw webhooks before they are processed.
type Archiver interface {
	// Archive stores the entries and returns one error per entry: nil
	// where it is stored durably, so that it may be processed.
	Archive(ctx context.Context, entries []archive.Entry) []error
}

// DeadLetterQueue parks records that can never be processed.
type DeadLetterQueue interface {
	// SendDeadLetter stores rec's body unchanged with the reason.
	SendDeadLetter(ctx context.Context, rec Record, reason string, failedAt time.Time) error
}

// MetricsWriter emits metrics.
type MetricsWriter interface {
	Emit(metrics ...emf.Metric) error
}

// Options tune a Processor. Zero values take the defaults.
type Options struct {
	// Lease bounds how long a crashed worker blocks an event. Keep it well
	// inside the queue's visibility timeout (30 s).
	Lease time.Duration
	// IdempotencyTTL is how long processed eventIds are remembered. Keep
	// it beyond the dead-letter queue's retention, or a redriven message
	// runs its event's handlers again.
	IdempotencyTTL time.Duration
	// MaxReceiveCount is the queue's redrive limit: a record failing on
	// that delivery is the queue's to dead-letter, and is logged so.
	MaxReceiveCount int
	// Concurrency bounds the records of a batch processed at once.
	Concurrency int
	// Archive, if set, keeps every live record's body before it is
	// processed, within ArchiveTimeout (DefaultArchiveTimeout if zero, and
	// at most half the time the context has left): a record not archived
	// by then fails alone, where a timed-out invocation fails its batch.
	Archive        Archiver
	ArchiveTimeout time.Duration
	Logger         *slog.Logger
	Metrics        MetricsWriter
	Now            func() time.Time
}

// Processor processes batches of records. It is safe for concurrent use.
type Processor struct {
	ledger   Ledger
	finisher Finisher
	dlq      DeadLetterQueue
	handlers []Handler
	opts     Options
}

// New returns a Processor that, for every event, runs handlers in order and
// then finisher (NoEffects if nil). With handlers, each event is claimed
// in ledger first and completed there last; without, ledger is not used
// and may be nil.
func New(ledger Ledger, finisher Finisher, dlq DeadLetterQueue, handlers []Handler, opts Options) *Processor {
	if finisher == nil {
		finisher = NoEffects{}
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if opts.MaxReceiveCount <= 0 {
		opts.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	opts.Logger = logging.OrDiscard(opts.Logger)
	if opts.Metrics == nil {
		opts.Metrics = emf.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ArchiveTimeout <= 0 {
		opts.ArchiveTimeout = DefaultArchiveTimeout
	}
	return &Processor{ledger: ledger, finisher: finisher, dlq: dlq, handlers: handlers, opts: opts}
}

// ProcessBatch archives the records, then processes them concurrently up
// to Options.Concurrency, and returns the message ids of the records that
// failed and must be retried. The others are done: processed, duplicates,
// or dead-lettered.
//
// Copies of one event in a batch (the same AttrEventID label and replay
// generation) are processed one after another, in order: a copy then
// finds the event completed and is acknowledged as a duplicate, where run
// beside the original it would find it in progress and wait a visibility
// timeout for its retry.
func (p *Processor) ProcessBatch(ctx context.Context, records []Record) []string {
	archived := p.archive(ctx, records)
	failed := make([]bool, len(records))
	sem := make(chan struct{}, p.opts.Concurrency)
	var wg sync.WaitGroup
	for _, copies := range sameEvent(records) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, i := range copies {
				failed[i] = p.process(ctx, records[i], archived[i]) != nil
			}
		}()
	}
	wg.Wait()
	var ids []string
	for i, f := range failed {
		if f {
			ids = append(ids, records[i].MessageID)
		}
	}
	return ids
}

// sameEvent groups the indexes of records by event, each group and the
// groups in the order of the batch. The labels only schedule: a record
// without one is a group of its own, and a wrong one can delay a record
// but not change its outcome, which the body decides.
func sameEvent(records []Record) [][]int {
	var groups [][]int
	at := map[[2]string]int{}
	for i, rec := range records {
		id := rec.Attributes[AttrEventID]
		if id == "" {
			groups = append(groups, []int{i})
			continue
		}
		key := [2]string{id, rec.Generation()}
		if g, ok := at[key]; ok {
			groups[g] = append(groups[g], i)
			continue
		}
		at[key] = len(groups)
		groups = append(groups, []int{i})
	}
	return groups
}

// permanentError marks a failure no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry can fix: a Handler, a Ledger's
// Claim or a Finisher returns it to send the event to the dead-letter queue
// at once.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var pe permanentError
	return errors.As(err, &pe)
}

// record is the state of one record's processing.
type record struct {
	Record
	log *slog.Logger
	// outcome labels the INFO outcome lines (processing.succeeded,
	// processing.duplicate, processing.deferred): log without eventType
	// and the delivery's fields, which webhook.enqueued of the same
	// messageId carries. Every other line has them all.
	outcome *slog.Logger
	metrics []emf.Metric
}

func (r *record) count(name string, n int) {
	if n > 0 {
		r.metrics = append(r.metrics, emf.Metric{Name: name, Value: float64(n), Unit: emf.Count})
	}
}

// archive archives the live records among records and returns, for each
// record, the error of its archive write (nil when archived, replayed, or
// when there is no archive).
func (p *Processor) archive(ctx context.Context, records []Record) []error {
	errs := make([]error, len(records))
	if p.opts.Archive == nil {
		return errs
	}
	var entries []archive.Entry
	var index []int
	for i, rec := range records {
		if rec.Generation() == "" { // a replay comes from the archive
			entries = append(entries, archive.NewEntry(rec.Body, rec.Attributes, rec.MessageID, rec.ReceivedAt()))
			index = append(index, i)
		}
	}
	if len(entries) == 0 {
		return errs
	}
	timeout := p.opts.ArchiveTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := p.opts.Archive.Archive(ctx, entries)
	for j, i := range index {
		switch {
		case len(results) != len(entries): // nothing says which were stored
			errs[i] = fmt.Errorf("archive: %d results for %d entries", len(results), len(entries))
		case results[j] != nil:
			errs[i] = fmt.Errorf("archive: %w", results[j])
		}
	}
	return errs
}

// Process archives and processes one record. A nil error means the record
// is done and may be deleted from the queue; an error means it must be
// retried.
func (p *Processor) Process(ctx context.Context, rec Record) error {
	return p.process(ctx, rec, p.archive(ctx, []Record{rec})[0])
}

// process processes a record whose archive write returned archived.
func (p *Processor) process(ctx context.Context, rec Record, archived error) (err error) {
	// Ids come from the body: clipped, so that an id too long to store (a
	// permanent failure) cannot write kilobytes into every line.
	attrs := []any{"messageId", rec.MessageID, "receiveCount", rec.ReceiveCount}
	generation := rec.Generation()
	if generation != "" {
		attrs = append(attrs, "replayGeneration", logging.Clip(generation))
	}
	r := &record{Record: rec, log: p.opts.Logger.With(slices.Concat(attrs, []any{"eventId", logging.Clip(rec.Attributes[AttrEventID]),
		"eventType", logging.Clip(rec.Attributes["eventType"]), "vehicleId", logging.Clip(rec.Attributes["vehicleId"])})...)}
	r.outcome = r.log
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
			r.log.ErrorContext(ctx, "processing.panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		switch {
		case errors.Is(err, ErrInProgress):
			r.count(MetricDuplicatesDeferred, 1)
			r.outcome.InfoContext(ctx, "processing.deferred", "status", "in progress elsewhere")
		case err != nil:
			r.count(MetricProcessingErrors, 1)
			r.log.ErrorContext(ctx, "processing.failed", "error", err.Error())
		}
		if err != nil {
			if rec.ReceiveCount >= p.opts.MaxReceiveCount {
				r.log.ErrorContext(ctx, "processing.dead_lettered", "reason", err.Error(), "permanent", false,
					"maxReceiveCount", p.opts.MaxReceiveCount)
			}
		}
		if emitErr := p.opts.Metrics.Emit(r.metrics...); emitErr != nil {
			r.log.WarnContext(ctx, "metrics.emit_failed", "error", emitErr)
		}
	}()

	if archived != nil {
		r.count(MetricArchiveFailures, 1)
		return archived
	}
	if generation != "" {
		if err := ValidGeneration(generation); err != nil {
			return p.deadLetter(ctx, r, err)
		}
	}
	ev, err := smartcar.ParseEvent(rec.Body)
	if err != nil {
		return p.deadLetter(ctx, r, err)
	}
	r.outcome = p.opts.Logger.With(slices.Concat(attrs, []any{"eventId", logging.Clip(ev.EventID), "vehicleId", logging.Clip(ev.VehicleID)})...)
	r.log = r.outcome.With("eventType", ev.EventType, "deliveryId", logging.Clip(ev.Meta.DeliveryID), "mode", logging.Clip(ev.Meta.Mode))
	// DEBUG: the outcome line, processing.succeeded or a failure, says it.
	r.log.DebugContext(ctx, "processing.started")

	now := p.opts.Now()
	claim := Claim{Generation: generation}
	if p.claims() {
		var outcome Outcome
		claim, outcome, err = p.ledger.Claim(ctx, ClaimRequest{
			EventID: EventKey(ev.EventID, generation), EventType: ev.EventType, VehicleID: ev.VehicleID, MessageID: rec.MessageID,
			Now: now, Lease: p.opts.Lease, TTL: p.opts.IdempotencyTTL,
		})
		claim.Generation = generation
		switch {
		case err != nil && IsPermanent(err): // e.g. an eventId the ledger can never store
			return p.deadLetter(ctx, r, fmt.Errorf("claim: %w", err))
		case err != nil:
			return fmt.Errorf("claim: %w", err)
		case outcome == AlreadyCompleted:
			return p.duplicate(ctx, r, generation)
		case outcome == HeldElsewhere:
			// Acknowledging it is safe only while the holder's message
			// outlives its claim, which nothing here can check: a message
			// redriven from the DLQ comes back under a new id, and a claim
			// made long after its receive outlives the visibility timeout.
			return ErrInProgress
		}
	}

	err = p.run(ctx, ev, claim)
	again := errors.Is(err, ErrAlreadyApplied)
	if again {
		err = nil
	}
	if err == nil && p.claims() {
		// Completed even when already applied: the claim's own handlers ran.
		if err = p.ledger.Complete(ctx, claim, p.opts.Now()); err != nil {
			err = fmt.Errorf("complete: %w", err)
		}
	}
	if err != nil {
		if p.claims() && !errors.Is(err, ErrFenceLost) {
			p.release(ctx, r, claim)
		}
		if IsPermanent(err) {
			return p.deadLetter(ctx, r, err)
		}
		return err
	}
	if generation != "" {
		r.count(MetricEventsReplayed, 1)
		r.outcome.InfoContext(ctx, "processing.replayed", "changed", !again, "elapsedMs", p.opts.Now().Sub(now).Milliseconds())
		return nil
	}
	if again && !p.claims() {
		return p.duplicate(ctx, r, "")
	}
	r.count(MetricEventsProcessed, 1)
	done := []any{"elapsedMs", p.opts.Now().Sub(now).Milliseconds()}
	// A delivery time in the future (a sender's clock) measures nothing.
	if latency := p.opts.Now().UnixMilli() - int64(ev.Meta.DeliveredAt); ev.Meta.DeliveredAt > 0 && latency >= 0 {
		r.metrics = append(r.metrics, emf.Metric{Name: MetricEndToEndLatency, Value: float64(latency), Unit: emf.Milliseconds})
		done = append(done, "endToEndMs", latency)
	}
	r.outcome.InfoContext(ctx, "processing.succeeded", done...)
	return nil
}

// claims reports whether events are claimed in the ledger: only when
// handlers, whose effects need not be idempotent, are registered.
func (p *Processor) claims() bool { return len(p.handlers) > 0 }

// duplicate acknowledges a record whose event was applied before. A
// replay run twice under one generation is a replay, not a duplicate
// delivery: it would set off the duplicates alarm.
func (p *Processor) duplicate(ctx context.Context, r *record, generation string) error {
	if generation != "" {
		r.count(MetricEventsReplayed, 1)
		r.outcome.InfoContext(ctx, "processing.replayed", "changed", false, "status", "completed")
		return nil
	}
	r.count(MetricDuplicatesSkipped, 1)
	r.outcome.InfoContext(ctx, "processing.duplicate", "status", "completed")
	return nil
}

// run runs the handlers in order and then the finisher, turning a panic
// into an error so the claim is released.
func (p *Processor) run(ctx context.Context, ev smartcar.Event, claim Claim) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panic: %v", v)
			p.opts.Logger.ErrorContext(ctx, "processing.panic", "eventId", ev.EventID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	for _, h := range p.handlers {
		if err := h.Handle(ctx, ev, claim); err != nil {
			return err
		}
	}
	err = p.finisher.Finish(ctx, ev, claim)
	if err != nil && !errors.Is(err, ErrAlreadyApplied) {
		return fmt.Errorf("finish: %w", err)
	}
	return err
}

func (p *Processor) release(ctx context.Context, r *record, claim Claim) {
	if err := p.ledger.Release(ctx, claim); err != nil {
		// The lease expires on its own; the retry waits for it.
		r.log.WarnContext(ctx, "processing.release_failed", "error", err.Error())
	}
}

// deadLetter sends a record that can never be processed to the DLQ. If the
// send fails the record fails, so the queue keeps it.
func (p *Processor) deadLetter(ctx context.Context, r *record, cause error) error {
	reason := cause.Error()
	if err := p.dlq.SendDeadLetter(ctx, r.Record, reason, p.opts.Now()); err != nil {
		return fmt.Errorf("dead-letter (%s): %w", reason, err)
	}
	r.count(MetricPermanentFailures, 1)
	r.log.ErrorContext(ctx, "processing.dead_lettered", "reason", reason, "permanent", true)
	return nil
}
