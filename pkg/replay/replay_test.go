package replay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/replay"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

var t0 = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)

// source is an archive in memory, in the order archived.
type source struct {
	entries  []archive.Entry
	from, to time.Time // the hours last asked for
}

func (s *source) Entries(_ context.Context, from, to time.Time, fn func(archive.Entry) error) error {
	s.from, s.to = from, to
	for _, e := range s.entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// sink records what it was sent; failAt makes the send of that batch
// (counted from 1) fail.
type sink struct {
	batches [][]string
	gens    []string
	failAt  int
}

func (s *sink) Send(_ context.Context, entries []archive.Entry, generation string) error {
	if len(s.batches)+1 == s.failAt {
		s.failAt = 0
		return errors.New("queue unavailable")
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.EventID)
	}
	s.batches = append(s.batches, ids)
	s.gens = append(s.gens, generation)
	return nil
}

func (s *sink) sent() string {
	var all []string
	for _, b := range s.batches {
		all = append(all, b...)
	}
	return strings.Join(all, " ")
}

func entry(id, typ, vehicle string, received time.Duration) archive.Entry {
	return archive.Entry{EventID: id, EventType: typ, VehicleID: vehicle, ReceivedAt: t0.Add(received), Body: []byte(`{"eventId":"` + id + `"}`)}
}

func history() *source {
	return &source{entries: []archive.Entry{
		entry("before", "VEHICLE_STATE", "v1", -time.Second),
		entry("e1", "VEHICLE_STATE", "v1", 0),
		entry("e2", "VEHICLE_ERROR", "v1", time.Hour),
		entry("e1", "VEHICLE_STATE", "v1", 2*time.Minute), // Smartcar's retry of e1
		entry("e3", "VEHICLE_STATE", "v2", 23*time.Hour),
		entry("after", "VEHICLE_STATE", "v1", 24*time.Hour), // archived in the late hour
	}}
}

func TestSelection(t *testing.T) {
	day := replay.Selection{From: t0, To: t0.Add(24 * time.Hour)}
	tests := []struct {
		name string
		sel  func(s replay.Selection) replay.Selection
		want string
	}{
		{"a day", func(s replay.Selection) replay.Selection { return s }, "e1 e2 e3"},
		{"by type", func(s replay.Selection) replay.Selection { s.EventTypes = []string{"VEHICLE_ERROR"}; return s }, "e2"},
		{"by vehicle", func(s replay.Selection) replay.Selection { s.VehicleIDs = []string{"v2"}; return s }, "e3"},
		{"by eventId", func(s replay.Selection) replay.Selection { s.EventIDs = []string{"e1", "e3", "nope"}; return s }, "e1 e3"},
		{"all filters at once", func(s replay.Selection) replay.Selection {
			s.EventTypes, s.VehicleIDs = []string{"VEHICLE_STATE"}, []string{"v1"}
			return s
		}, "e1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, out := history(), &sink{}
			st, err := replay.Run(context.Background(), src, out, tt.sel(day), replay.Options{Generation: "g1", Sleep: noSleep})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.sent(); got != tt.want {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
			if st.Read != 6 || st.Sent != st.Selected || st.Selected != len(strings.Fields(tt.want)) {
				t.Errorf("stats %+v", st)
			}
			// The archive's hours are read from before From (an object is
			// filed under its oldest record's hour) to the late margin past
			// To.
			if !src.from.Equal(t0.Add(-replay.Early)) || !src.to.Equal(t0.Add(25*time.Hour)) {
				t.Errorf("read hours %v..%v", src.from, src.to)
			}
		})
	}
}

// The copy kept is the one Smartcar delivered first, whatever the order
// the archive holds them in; a copy read after the event was sent (a
// redrive from the DLQ, archived hours later) is not sent again; a body
// without an eventId is left out.
func TestOneCopyPerEvent(t *testing.T) {
	copyOf := func(id string, received time.Duration, delivered int64, body string) archive.Entry {
		e := entry(id, "VEHICLE_ERROR", "v1", received)
		e.DeliveredAt, e.Body = smartcar.Millis(delivered), []byte(body)
		return e
	}
	noID := entry("", "VEHICLE_STATE", "v1", time.Minute)
	src := &source{entries: []archive.Entry{
		copyOf("e1", 2*time.Minute, 3000, "retry"), // in an object filed before the first delivery's
		copyOf("e1", time.Minute, 1000, "first"),
		copyOf("e2", 3*time.Minute, 2000, "e2"),
		noID,
		copyOf("e3", 40*time.Minute, 4000, "e3"), // moves the window past e1 and e2
		copyOf("e1", 45*time.Minute, 5000, "redriven"),
	}}
	var bodies []string
	st, err := replay.Run(context.Background(), src, sinkFunc(func(es []archive.Entry) {
		for _, e := range es {
			bodies = append(bodies, string(e.Body))
		}
	}), replay.Selection{From: t0, To: t0.Add(time.Hour)}, replay.Options{Generation: "g", Sleep: noSleep})
	if err != nil || fmt.Sprint(bodies) != "[first e2 e3]" {
		t.Errorf("sent %v, %v: want e1's first delivery, e2, e3", bodies, err)
	}
	if st.Selected != 3 || st.Duplicates != 2 || st.NoEventID != 1 || st.Read != 6 {
		t.Errorf("stats %+v", st)
	}
}

type sinkFunc func([]archive.Entry)

func (f sinkFunc) Send(_ context.Context, es []archive.Entry, _ string) error { f(es); return nil }

func noSleep(context.Context, time.Duration) error { return nil }

func TestRateBoundedInBatches(t *testing.T) {
	src := &source{}
	for i := range 45 {
		src.entries = append(src.entries, entry(fmt.Sprint("e", i), "VEHICLE_STATE", "v", time.Duration(i)*time.Second))
	}
	now := t0
	var slept time.Duration
	out := &sink{}
	var progress []int
	st, err := replay.Run(context.Background(), src, out, replay.Selection{From: t0, To: t0.Add(time.Hour)}, replay.Options{
		Generation: "g", Rate: 10,
		Now:      func() time.Time { return now },
		Sleep:    func(_ context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil },
		Progress: func(p replay.Progress) { progress = append(progress, p.Sent) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.batches) != 5 || len(out.batches[4]) != 5 || st.Sent != 45 {
		t.Errorf("batches %v, stats %+v: want 10 at a time", out.batches, st)
	}
	// 45 events at 10 a second take 4.5 s.
	if slept != 4500*time.Millisecond {
		t.Errorf("slept %v, want 4.5s for 45 events at 10/s", slept)
	}
	if fmt.Sprint(progress) != "[10 20 30 40 45]" {
		t.Errorf("progress %v", progress)
	}
}

func TestStopsOnSendErrorAndResumesUnderTheSameGeneration(t *testing.T) {
	src := &source{}
	for i := range 25 {
		src.entries = append(src.entries, entry(fmt.Sprint("e", i), "VEHICLE_STATE", "v", 0))
	}
	out := &sink{failAt: 2}
	sel := replay.Selection{From: t0, To: t0.Add(time.Hour)}
	st, err := replay.Run(context.Background(), src, out, sel, replay.Options{Generation: "g", Sleep: noSleep})
	if err == nil || !strings.Contains(err.Error(), "queue unavailable") || st.Sent != 10 {
		t.Fatalf("stats %+v, err %v: want a stop after the first batch", st, err)
	}
	if _, err := replay.Run(context.Background(), src, out, sel, replay.Options{Generation: "g", Sleep: noSleep}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.gens) != "[g g g g]" {
		t.Errorf("generations %v", out.gens)
	}
}

func TestRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		sel  replay.Selection
		gen  string
		want string
	}{
		{"no range", replay.Selection{}, "g", "time range"},
		{"reversed range", replay.Selection{From: t0, To: t0.Add(-time.Hour)}, "g", "not before"},
		{"no generation", replay.Selection{From: t0, To: t0.Add(time.Hour)}, "", "generation"},
		{"a generation with '#'", replay.Selection{From: t0, To: t0.Add(time.Hour)}, "a#b", "generation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &sink{}
			_, err := replay.Run(context.Background(), history(), out, tt.sel, replay.Options{Generation: tt.gen, Sleep: noSleep})
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(out.batches) != 0 {
				t.Errorf("err = %v, sent %v: want an error saying %q and nothing sent", err, out.batches, tt.want)
			}
		})
	}
}

func TestCountSendsNothing(t *testing.T) {
	st, err := replay.Count(context.Background(), history(), replay.Selection{From: t0, To: t0.Add(24 * time.Hour)})
	if err != nil || st.Selected != 3 || st.Duplicates != 1 || st.Sent != 0 {
		t.Errorf("Count = %+v, %v", st, err)
	}
}

// batchFunc is a BatchProcessor failing the message ids it returns.
type batchFunc func([]processor.Record) []string

func (f batchFunc) ProcessBatch(_ context.Context, rs []processor.Record) []string { return f(rs) }

func TestProcessorSink(t *testing.T) {
	calls := 0
	var seen []processor.Record
	p := batchFunc(func(rs []processor.Record) []string {
		calls++
		seen = append(seen, rs...)
		if calls == 1 {
			return []string{rs[1].MessageID} // throttled once
		}
		return nil
	})
	e := entry("e1", "VEHICLE_STATE", "v1", 0)
	e.MessageID = "m1"
	e2 := entry("e2", "VEHICLE_ERROR", "v1", 0)
	e2.MessageID = "m2"
	if err := (replay.ProcessorSink{P: p}).Send(context.Background(), []archive.Entry{e, e2}, "g1"); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(seen) != 3 || seen[2].MessageID != "g1/m2" || seen[2].ReceiveCount != 2 {
		t.Errorf("%d calls, records %+v: want the failed one retried alone", calls, seen)
	}
	r := seen[0]
	if r.Generation() != "g1" || r.Attributes["eventId"] != "e1" || r.Attributes["eventType"] != "VEHICLE_STATE" ||
		!r.SentAt.Equal(e.ReceivedAt) || string(r.Body) != string(e.Body) {
		t.Errorf("record %+v", r)
	}

	always := batchFunc(func(rs []processor.Record) []string { return []string{rs[0].MessageID} })
	err := (replay.ProcessorSink{P: always}).Send(context.Background(), []archive.Entry{e}, "g1")
	if err == nil || !strings.Contains(err.Error(), "1 of 1 records failed 3 times") {
		t.Errorf("err = %v", err)
	}
}
