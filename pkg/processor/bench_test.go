package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor/processortest"
)

// benchEvent is a VEHICLE_STATE body whose eventId and signal times are
// fixed-width fields, rewritten in place so that every iteration is a new,
// newer event: the full claim, merge, write and complete path.
type benchEvent struct {
	body     []byte
	idAt     int   // offset of the 16-digit eventId suffix
	timesAt  []int // offsets of the 13-digit oemUpdatedAt values
	sequence int64
}

func newBenchEvent(signals int) *benchEvent {
	var sb strings.Builder
	sb.WriteString(`{"eventId":"bench-0000000000000000","eventType":"VEHICLE_STATE","data":{"user":{"id":"u"},"vehicle":{"id":"bench-vehicle","make":"TESLA","model":"Model Y","year":2024},"signals":[`)
	for i := range signals {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"code":"group%d-signal%d","name":"Signal%d","group":"Group%d","body":{"value":%d.5,"unit":"percent"},"meta":{"oemUpdatedAt":1000000000000,"retrievedAt":1767225598412},"status":{"value":"SUCCESS"}}`, i, i, i, i, i)
	}
	sb.WriteString(`]},"meta":{"deliveryId":"d","deliveredAt":1767225598530,"mode":"LIVE","signalCount":` + strconv.Itoa(signals) + `}}`)
	e := &benchEvent{body: []byte(sb.String())}
	e.idAt = bytes.Index(e.body, []byte("bench-0")) + len("bench-")
	for off := 0; ; {
		i := bytes.Index(e.body[off:], []byte(`"oemUpdatedAt":`))
		if i < 0 {
			break
		}
		off += i + len(`"oemUpdatedAt":`)
		e.timesAt = append(e.timesAt, off)
	}
	return e
}

// next makes the body a new event, newer than the last.
func (e *benchEvent) next() []byte {
	e.sequence++
	var digits [20]byte
	id := strconv.AppendInt(digits[:0], e.sequence, 10)
	copy(e.body[e.idAt:e.idAt+16], bytes.Repeat([]byte("0"), 16-len(id)))
	copy(e.body[e.idAt+16-len(id):], id)
	ts := strconv.AppendInt(digits[:0], 1000000000000+e.sequence, 10)
	for _, at := range e.timesAt {
		copy(e.body[at:at+13], ts)
	}
	return e.body
}

// BenchmarkProcessEvent measures the processor core per event with the
// in-memory store: decode, claim, merge, versioned write, complete.
func BenchmarkProcessEvent(b *testing.B) {
	for _, signals := range []int{3, 85} {
		b.Run(fmt.Sprintf("%dsignals", signals), func(b *testing.B) {
			store := processortest.NewStore()
			p := processor.New(store, processor.NewStateFinisher(store, nil, nil), &processortest.DLQ{}, nil, processor.Options{})
			ev := newBenchEvent(signals)
			ctx := context.Background()
			b.SetBytes(int64(len(ev.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Process(ctx, processor.Record{MessageID: "m", Body: ev.next(), ReceiveCount: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(store.Writes())/float64(ev.sequence), "writes/event")
		})
	}
}
