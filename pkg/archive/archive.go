// Package archive is the format of the archive of raw webhooks: every
// webhook the receiver queued, byte for byte, with what is needed to
// select it later (eventId, eventType, vehicleId, deliveredAt, when it was
// received).
//
// An archived webhook is an Entry. Encode makes it one NDJSON line
// compressed as one gzip member; a delivery stream concatenates members
// into objects, and a multi-member gzip stream is itself gzip, so each
// object is a .ndjson.gz that gunzip, Athena or Read can open. Objects
// sit under an hourly UTC partition (Partition).
//
// The package knows nothing of Firehose or S3: firehosearchive writes
// entries, s3archive reads them.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Entry is one archived webhook.
type Entry struct {
	EventID   string
	EventType string
	VehicleID string
	// DeliveredAt is the body's meta.deliveredAt, as signed by Smartcar:
	// each of its delivery attempts sets it anew. Zero if absent.
	DeliveredAt smartcar.Millis
	// ReceivedAt is when the receiver queued the webhook.
	ReceivedAt time.Time
	// MessageID is the queue message the entry was archived from.
	MessageID string
	// Body is the webhook's body, exactly as Smartcar sent it.
	Body []byte
}

// NewEntry returns the entry of a queued webhook: its labels read from the
// body (a body that is not a webhook keeps those of attrs, the queue
// message's), and when it was received.
func NewEntry(body []byte, attrs map[string]string, messageID string, receivedAt time.Time) Entry {
	e := Entry{EventID: attrs["eventId"], EventType: attrs["eventType"], VehicleID: attrs["vehicleId"],
		ReceivedAt: receivedAt, MessageID: messageID, Body: body}
	if env, err := smartcar.ParseEnvelope(body); err == nil {
		e.EventID, e.EventType, e.VehicleID = env.EventID, env.Type(), env.VehicleID
		e.DeliveredAt = env.DeliveredAt
	}
	return e
}

// line is an Entry as one JSON line. The body is a JSON string, which
// keeps valid UTF-8 byte for byte; any other body is base64.
type line struct {
	Version     int             `json:"v"`
	EventID     string          `json:"eventId,omitempty"`
	EventType   string          `json:"eventType,omitempty"`
	VehicleID   string          `json:"vehicleId,omitempty"`
	DeliveredAt smartcar.Millis `json:"deliveredAt,omitempty"`
	ReceivedAt  time.Time       `json:"receivedAt"`
	MessageID   string          `json:"messageId,omitempty"`
	Body        *string         `json:"body,omitempty"`
	BodyBase64  []byte          `json:"bodyBase64,omitempty"`
}

// formatVersion is written in every line, for readers to come.
const formatVersion = 1

// MaxEncodedBytes is the most an encoded entry may take: Firehose's
// record limit, 1000 KiB.
const MaxEncodedBytes = 1000 << 10

// ErrTooLarge is returned by Encode for an entry over MaxEncodedBytes
// compressed, which no webhook the receiver accepts comes near.
var ErrTooLarge = errors.New("archive entry too large")

// writers are gzip writers to Reset and reuse: a new one allocates about
// a megabyte of compressor state.
var writers = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// Encode returns e as one gzip member holding its JSON line.
func Encode(e Entry) ([]byte, error) {
	l := line{Version: formatVersion, EventID: e.EventID, EventType: e.EventType, VehicleID: e.VehicleID,
		DeliveredAt: e.DeliveredAt, ReceivedAt: e.ReceivedAt.UTC(), MessageID: e.MessageID}
	if utf8.Valid(e.Body) {
		s := string(e.Body)
		l.Body = &s
	} else {
		l.BodyBase64 = e.Body
	}
	var buf bytes.Buffer
	zw := writers.Get().(*gzip.Writer)
	defer writers.Put(zw)
	zw.Reset(&buf)
	enc := json.NewEncoder(zw) // ends the line with '\n'
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return nil, fmt.Errorf("encode archive entry: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode archive entry: %w", err)
	}
	if buf.Len() > MaxEncodedBytes {
		return nil, fmt.Errorf("%w: %d bytes compressed, over %d", ErrTooLarge, buf.Len(), MaxEncodedBytes)
	}
	return buf.Bytes(), nil
}

// maxLineBytes bounds one line when reading: a body of SQS's largest
// message, escaped, fits many times over.
const maxLineBytes = 16 << 20

// Read decodes the entries of one archived object (gzip, one or more
// members, of JSON lines) and calls fn for each in order. It stops at
// fn's first error and returns it.
func Read(r io.Reader, fn func(Entry) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("archive object: %w", err)
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("archive line %d: %w", n, err)
		}
		e := Entry{EventID: l.EventID, EventType: l.EventType, VehicleID: l.VehicleID, DeliveredAt: l.DeliveredAt,
			ReceivedAt: l.ReceivedAt, MessageID: l.MessageID, Body: l.BodyBase64}
		if l.Body != nil {
			e.Body = []byte(*l.Body)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("archive object: %w", err)
	}
	return nil
}

// Partition returns the prefix, under the stream's prefix, of the hour t
// falls in (UTC): "2026/11/30/17/".
func Partition(t time.Time) string { return t.UTC().Format("2006/01/02/15/") }

// Partitions returns the hourly partitions from the one holding from to
// the one holding to, both included, in order.
func Partitions(from, to time.Time) []string {
	var out []string
	for h := from.UTC().Truncate(time.Hour); !h.After(to); h = h.Add(time.Hour) {
		out = append(out, Partition(h))
	}
	return out
}
