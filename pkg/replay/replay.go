// Package replay runs archived webhooks through processing again: to
// apply history to new processing logic (a fixed merge rule, a new
// handler) or to rebuild vehicle state into an empty table.
//
// A Selection picks entries from the archive by when they were received,
// and optionally by event type, vehicle or eventId. Run reads them from a
// Source (the archive bucket), keeps one copy of each eventId (the archive
// holds every delivery, retries included: the one Smartcar delivered
// first), and hands them to a Sink (the event queue, or a processor writing to a rebuild
// table) in batches at a bounded rate, marked with a generation: the
// processor claims a replayed event under its eventId and generation, so a
// generation runs each event's handlers once, and an interrupted replay
// is resumed by running it again with the same generation.
package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// Defaults for Options and Selection.
const (
	// DefaultRate is how many events a second a replay sends: gentle on
	// the processor's concurrency, so that live webhooks keep flowing.
	DefaultRate = 20
	// DefaultLate is how long after its receipt an entry may reach the
	// archive and still be found: the archive is partitioned by when the
	// delivery stream got the entry, normally seconds after its receipt.
	DefaultLate = time.Hour
	// Early is how much earlier than From the archive is read: Firehose
	// files an object under the hour its oldest record arrived, so an
	// entry received at 10:05 may be in an object of 09:52, filed under
	// 09.
	Early = pipeline.ArchiveBufferInterval + 15*time.Minute
	// DedupeWindow is how long after the first copy of an event other
	// copies are awaited, to keep the one delivered first: Smartcar
	// retries within minutes, and the archive's objects overlap by up to
	// its buffer interval. Entries are held in memory that long (about
	// rate × 20 minutes × the body size).
	DedupeWindow = pipeline.ArchiveBufferInterval + 5*time.Minute
	// RememberFor is how long an event sent is remembered, so that a later
	// copy (a redrive from the DLQ) is not sent again.
	RememberFor = 6 * time.Hour
	// BatchSize is the most entries handed to the Sink at once (SQS's
	// batch limit).
	BatchSize = 10
)

// Selection picks archived entries.
type Selection struct {
	// From and To bound when the webhook was received: From ≤ receivedAt <
	// To. Both are required.
	From, To time.Time
	// EventTypes, VehicleIDs and EventIDs, when not empty, keep only the
	// entries whose field is among them.
	EventTypes, VehicleIDs, EventIDs []string
	// Late widens the archive's hours read past To (DefaultLate if zero):
	// an entry archived later than that after its receipt, such as one
	// redriven from the dead-letter queue days later, needs a larger one.
	Late time.Duration
}

// Validate reports what is wrong with s.
func (s Selection) Validate() error {
	switch {
	case s.From.IsZero() || s.To.IsZero():
		return errors.New("selection: a time range (from and to) is required")
	case !s.From.Before(s.To):
		return fmt.Errorf("selection: from %s is not before to %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	case s.Late < 0:
		return fmt.Errorf("selection: late %v is negative", s.Late)
	}
	return nil
}

// matcher is s with its lists as sets.
func (s Selection) matcher() matcher {
	set := func(list []string) map[string]bool {
		if len(list) == 0 {
			return nil
		}
		m := make(map[string]bool, len(list))
		for _, v := range list {
			m[v] = true
		}
		return m
	}
	return matcher{s, set(s.EventTypes), set(s.VehicleIDs), set(s.EventIDs)}
}

type matcher struct {
	Selection
	types, vehicles, ids map[string]bool
}

func (m matcher) match(e archive.Entry) bool {
	if e.ReceivedAt.Before(m.From) || !e.ReceivedAt.Before(m.To) {
		return false
	}
	in := func(set map[string]bool, v string) bool { return set == nil || set[v] }
	return in(m.types, e.EventType) && in(m.vehicles, e.VehicleID) && in(m.ids, e.EventID)
}

// hours returns the range of the archive's hours to read.
func (s Selection) hours() (from, to time.Time) {
	late := s.Late
	if late == 0 {
		late = DefaultLate
	}
	return s.From.Add(-Early), s.To.Add(late)
}

// Source reads the archive.
type Source interface {
	// Entries calls fn for every entry archived in the hours from the one
	// holding from to the one holding to, in the order archived.
	Entries(ctx context.Context, from, to time.Time, fn func(archive.Entry) error) error
}

// Sink re-drives entries into processing.
type Sink interface {
	// Send hands over up to BatchSize entries marked with generation; an
	// error means some may not have been handed over (sending them again
	// is safe: the generation dedupes them).
	Send(ctx context.Context, entries []archive.Entry, generation string) error
}

// Stats counts a replay's entries.
type Stats struct {
	Read       int // entries read from the archive
	Selected   int // distinct events selected
	Duplicates int // further copies (deliveries) of a selected event, left out
	// NoEventID counts selected entries without an eventId: bodies the
	// processor could never process (it parked them when they came), left
	// out.
	NoEventID int
	Sent      int // events handed to the sink
}

// Progress is reported after each batch.
type Progress struct {
	Stats
	Elapsed time.Duration
}

// Options tune Run.
type Options struct {
	// Generation marks the replay: required, see processor.ValidGeneration.
	Generation string
	// Rate bounds the events sent per second (DefaultRate if zero).
	Rate float64
	// Progress, if set, is called after each batch sent.
	Progress func(Progress)
	// Now and Sleep are the clock; time.Now and a context-aware sleep if
	// nil.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewGeneration returns a generation for a replay started at t:
// "replay-20261130T172324Z".
func NewGeneration(t time.Time) string { return "replay-" + t.UTC().Format("20060102T150405Z") }

// Count reads the selection without sending anything: the dry run.
func Count(ctx context.Context, src Source, sel Selection) (Stats, error) {
	var st Stats
	err := scan(ctx, src, sel, &st, func(archive.Entry) error { return nil })
	return st, err
}

// Run sends the selected events to sink, BatchSize at a time and at most
// opts.Rate a second, and returns what it did, also when it stopped on an
// error: run it again with the same generation to finish.
func Run(ctx context.Context, src Source, sink Sink, sel Selection, opts Options) (Stats, error) {
	if err := processor.ValidGeneration(opts.Generation); err != nil {
		return Stats{}, err
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = resend.Sleep
	}
	var st Stats
	start := opts.Now()
	var batch []archive.Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// Paced from the start, so the average never exceeds the rate.
		due := start.Add(time.Duration(float64(st.Sent+len(batch)) / opts.Rate * float64(time.Second)))
		if wait := due.Sub(opts.Now()); wait > 0 {
			if err := opts.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		if err := sink.Send(ctx, batch, opts.Generation); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		st.Sent += len(batch)
		batch = batch[:0]
		if opts.Progress != nil {
			opts.Progress(Progress{Stats: st, Elapsed: opts.Now().Sub(start)})
		}
		return nil
	}
	err := scan(ctx, src, sel, &st, func(e archive.Entry) error {
		batch = append(batch, e)
		if len(batch) == BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return st, err
}

// scan calls fn for one copy of each selected event, the one Smartcar
// delivered first among those the dedupe window sees, in the order their
// first copies were read.
func scan(ctx context.Context, src Source, sel Selection, st *Stats, fn func(archive.Entry) error) error {
	if err := sel.Validate(); err != nil {
		return err
	}
	m := sel.matcher()
	d := newDeduper()
	emit := func(all bool) error {
		for _, e := range d.ready(all) {
			st.Selected++
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	from, to := sel.hours()
	err := src.Entries(ctx, from, to, func(e archive.Entry) error {
		st.Read++
		if !m.match(e) {
			return nil
		}
		if e.EventID == "" {
			st.NoEventID++
			return nil
		}
		if !d.add(e) {
			st.Duplicates++
		}
		return emit(false)
	})
	if err != nil {
		return err
	}
	return emit(true)
}

// deduper keeps one copy of each event: of the copies read within
// DedupeWindow of its first, the one with the earliest deliveredAt (what
// the processor applied when they came: Smartcar's retries carry later
// ones). Events sent are remembered for RememberFor.
type deduper struct {
	clock   time.Time                 // the latest receipt read
	pending map[string]*archive.Entry // eventId -> the copy kept so far
	order   []string                  // pending eventIds, by first read
	first   map[string]time.Time      // pending eventId -> its first copy's receipt
	sent    map[string]time.Time      // eventId -> receipt of the copy sent
	pruned  time.Time
}

func newDeduper() *deduper {
	return &deduper{pending: map[string]*archive.Entry{}, first: map[string]time.Time{}, sent: map[string]time.Time{}}
}

// add takes a copy of an event and reports whether it is the first.
func (d *deduper) add(e archive.Entry) bool {
	if e.ReceivedAt.After(d.clock) {
		d.clock = e.ReceivedAt
	}
	if _, done := d.sent[e.EventID]; done {
		return false
	}
	if kept, ok := d.pending[e.EventID]; ok {
		if e.DeliveredAt != 0 && (kept.DeliveredAt == 0 || e.DeliveredAt < kept.DeliveredAt) {
			d.pending[e.EventID] = &e
		}
		return false
	}
	d.pending[e.EventID] = &e
	d.first[e.EventID] = e.ReceivedAt
	d.order = append(d.order, e.EventID)
	return true
}

// ready returns the events whose window has passed (all of them at the
// end), in the order first read, and forgets events sent long ago.
func (d *deduper) ready(all bool) []archive.Entry {
	var out []archive.Entry
	n := 0
	for _, id := range d.order {
		if !all && !d.first[id].Before(d.clock.Add(-DedupeWindow)) {
			break
		}
		out = append(out, *d.pending[id])
		d.sent[id] = d.first[id]
		delete(d.pending, id)
		delete(d.first, id)
		n++
	}
	d.order = d.order[n:]
	if d.clock.Sub(d.pruned) > time.Hour {
		for id, at := range d.sent {
			if at.Before(d.clock.Add(-RememberFor)) {
				delete(d.sent, id)
			}
		}
		d.pruned = d.clock
	}
	return out
}
