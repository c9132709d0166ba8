// Package replay runs archived webhooks through processing again: to
// apply history to new processing logic (a fixed merge rule, a new
// handler) or to rebuild vehicle state into an empty table.
//
// A Selection picks entries from the archive by when they were received,
// and optionally by event type, vehicle or eventId. Run reads them from a
// Source (the archive bucket), keeps the first archived copy of each
// eventId (the archive holds every delivery, retries included), and hands
// them to a Sink (the event queue, or a processor writing to a rebuild
// table) in batches at a bounded rate, marked with a generation: the
// processor claims a replayed event under its eventId and generation, so a
// generation runs each event's handlers once, and an interrupted replay
// is resumed by running it again with the same generation.
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
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

// Match reports whether e is selected.
func (s Selection) Match(e archive.Entry) bool {
	if e.ReceivedAt.Before(s.From) || !e.ReceivedAt.Before(s.To) {
		return false
	}
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(s.EventTypes, e.EventType) && in(s.VehicleIDs, e.VehicleID) && in(s.EventIDs, e.EventID)
}

// hours returns the range of the archive's hours to read.
func (s Selection) hours() (from, to time.Time) {
	late := s.Late
	if late == 0 {
		late = DefaultLate
	}
	return s.From, s.To.Add(late)
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
	Sent       int // events handed to the sink
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
		opts.Sleep = sleep
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

// scan calls fn for the first archived copy of each selected event.
func scan(ctx context.Context, src Source, sel Selection, st *Stats, fn func(archive.Entry) error) error {
	if err := sel.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	from, to := sel.hours()
	return src.Entries(ctx, from, to, func(e archive.Entry) error {
		st.Read++
		if !sel.Match(e) {
			return nil
		}
		// A body without an eventId (one the processor dead-lettered) is
		// sent as it is: new logic may make sense of it.
		if e.EventID != "" {
			if seen[e.EventID] {
				st.Duplicates++
				return nil
			}
			seen[e.EventID] = true
		}
		st.Selected++
		return fn(e)
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
