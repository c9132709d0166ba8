// Package eventbus is the Amazon EventBridge adapter that publishes domain
// events: it puts entries, each a detail type and a JSON detail, on one
// event bus under one source.
//
// An entry is reported published only once EventBridge returned its
// EventId: entries refused within an accepted call (FailedEntryCount > 0)
// are sent again, only those, a few times with a short jittered backoff;
// whatever is still refused, or was in a call that failed whole, fails its
// entry. An entry sent twice (accepted, but the answer lost) is published
// twice: EventBridge's delivery is at least once in any case, so rules'
// targets tolerate duplicates.
//
// EventBridge's limits are applied before sending: at most MaxBatchEntries
// entries in a call, whose sizes (EntrySize, as AWS counts them) add up to
// at most MaxBatchBytes. An entry over MaxEntryBytes is never sent and
// fails alone with ErrTooLarge: callers split large details beforehand.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// PutEvents' limits, which cannot be raised. Sizes are counted by
// EntrySize.
const (
	MaxBatchEntries = 10
	MaxBatchBytes   = 256 << 10 // 262,144: the entries of a call together
	MaxEntryBytes   = 256 << 10 // one entry
)

// timeBytes is what a Time counts for in an entry's size.
const timeBytes = 14

// ErrTooLarge is the error of an entry over MaxEntryBytes, which is not
// sent.
var ErrTooLarge = errors.New("event entry over EventBridge's 256 KB")

// PutEventsAPI is the part of the EventBridge client the Publisher uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Entry is an event to publish.
type Entry struct {
	DetailType string
	Detail     []byte    // JSON, an object
	Time       time.Time // the event's time; zero for the time of the call
}

// Publisher puts entries on one event bus under one source. It is safe for
// concurrent use.
type Publisher struct {
	api    PutEventsAPI
	bus    string
	source string
	resend resend.Policy
}

// New returns a Publisher to the event bus busName (a name or an ARN),
// whose events have the source source. Entries EventBridge refuses are
// resent as opts say (resend.WithAttempts, resend.WithBackoff).
func New(api PutEventsAPI, busName, source string, opts ...resend.Option) *Publisher {
	return &Publisher{api: api, bus: busName, source: source, resend: resend.NewPolicy("eventbridge", Permanent, opts...)}
}

// Bus names the event bus.
func (p *Publisher) Bus() string { return p.bus }

// Source is the source of the events published.
func (p *Publisher) Source() string { return p.source }

// EntrySize returns the size of e, published under source, as EventBridge
// counts it against its limits ("Calculating PutEvents event entry size"
// in the EventBridge user guide): 14 bytes for Time if set, plus the UTF-8
// bytes of Source, DetailType and Detail (and of each Resources string,
// which Entry has none of). A byte that is not UTF-8 counts 3, as the SDK
// sends it U+FFFD.
func EntrySize(source string, e Entry) int {
	n := utf8Bytes(source) + utf8Bytes(e.DetailType)
	if utf8.Valid(e.Detail) {
		n += len(e.Detail)
	} else {
		n += utf8Bytes(string(e.Detail))
	}
	if !e.Time.IsZero() {
		n += timeBytes
	}
	return n
}

// utf8Bytes is the length of s as sent, each byte not UTF-8 replaced by
// U+FFFD.
func utf8Bytes(s string) int {
	n := len(s)
	if utf8.ValidString(s) {
		return n
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 2 // U+FFFD is 3 bytes
		}
		i += size
	}
	return n
}

// EntryError is the error of an entry EventBridge refused on every
// attempt, or once with a code that no resend can change (Permanent): the
// ErrorCode and ErrorMessage of its last refusal.
type EntryError = resend.Error

// Permanent reports whether EventBridge's ErrorCode code is one of the
// errors its API reference calls non-retryable (the entry, the caller's
// rights or account are wrong). An entry refused with such a code is not
// sent again; any other code, known or not, is resent.
func Permanent(code string) bool {
	switch code {
	case "AccessDeniedException", "InvalidAccountIdException", "InvalidArgument", "MalformedDetail",
		"NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException":
		return true
	}
	return false
}

// pending is an entry on its way, with its index in Publish's entries.
type pending struct {
	index int
	entry types.PutEventsRequestEntry
}

// Publish puts entries on the bus and returns one error per entry: nil
// only where EventBridge returned an EventId. An entry over MaxEntryBytes
// is not sent and fails alone with ErrTooLarge. The entries go in calls
// of at most MaxBatchEntries and MaxBatchBytes, one call at a time, in
// order; a call that fails whole (after the SDK's own retries) fails its
// entries, and an entry refused in every attempt fails with an
// *EntryError (at once, if its ErrorCode is Permanent).
func (p *Publisher) Publish(ctx context.Context, entries []Entry) []error {
	errs := make([]error, len(entries))
	var batch []pending
	size := 0
	flush := func() {
		if len(batch) > 0 {
			p.put(ctx, batch, errs)
		}
		batch, size = nil, 0
	}
	for i, e := range entries {
		n := EntrySize(p.source, e)
		if n > MaxEntryBytes {
			errs[i] = fmt.Errorf("eventbridge entry %q: %w: %d bytes, over %d", e.DetailType, ErrTooLarge, n, MaxEntryBytes)
			continue
		}
		if len(batch) == MaxBatchEntries || size+n > MaxBatchBytes {
			flush()
		}
		batch = append(batch, pending{index: i, entry: p.requestEntry(e)})
		size += n
	}
	flush()
	return errs
}

func (p *Publisher) requestEntry(e Entry) types.PutEventsRequestEntry {
	re := types.PutEventsRequestEntry{
		EventBusName: aws.String(p.bus),
		Source:       aws.String(p.source),
		DetailType:   aws.String(e.DetailType),
		Detail:       aws.String(string(e.Detail)),
	}
	if !e.Time.IsZero() {
		re.Time = aws.Time(e.Time)
	}
	return re
}

// put sends one batch, resending what was refused (resend.Send).
func (p *Publisher) put(ctx context.Context, batch []pending, errs []error) {
	resend.Send(ctx, p.resend, batch, func(b pending) int { return b.index }, errs, p.send)
}

// send makes one PutEvents call and returns the entries refused; an error
// means none was accepted, as far as is known.
func (p *Publisher) send(ctx context.Context, batch []pending) ([]resend.Refusal, error) {
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(batch))}
	for i, b := range batch {
		in.Entries[i] = b.entry
	}
	out, err := p.api.PutEvents(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("eventbridge put events: %w", err)
	}
	if len(out.Entries) != len(batch) {
		return nil, fmt.Errorf("eventbridge put events: %d results for %d entries", len(out.Entries), len(batch))
	}
	answers := make([]resend.Answer, len(out.Entries))
	for i, r := range out.Entries {
		answers[i] = resend.Answer{ID: aws.ToString(r.EventId), Code: aws.ToString(r.ErrorCode), Message: aws.ToString(r.ErrorMessage)}
	}
	return resend.Refusals(answers, "MissingEventId"), nil
}
