package archive_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var receivedAt = time.Date(2026, 11, 30, 17, 23, 24, 125e6, time.UTC)

// readAll decodes an archived object into its entries.
func readAll(t *testing.T, object []byte) []archive.Entry {
	t.Helper()
	var got []archive.Entry
	if err := archive.Read(bytes.NewReader(object), func(e archive.Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEncodeKeepsEveryBodyByteForByte(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"vehicle state", samples.MustRead("bodies/vehicle_state.json")},
		{"pretty-printed, newlines and tabs", []byte("{\n\t\"eventId\": \"e1\"\r\n}\n")},
		{"HTML characters and line separators", []byte(`{"note":"<a href='x'>&amp;</a>","ls":"` + "\u2028\u2029" + `"}`)},
		{"escapes left as sent", []byte(`{"s":"\u00e9\"\\\/"}`)},
		{"invalid UTF-8", []byte("{\"s\":\"\xff\xfe\x00\"}")},
		{"a lone surrogate's bytes", []byte("{\"s\":\"\xed\xa0\x80\"}")},
		{"empty", []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := archive.Entry{EventID: "e1", EventType: "VEHICLE_STATE", VehicleID: "v1", DeliveredAt: 1764523404000,
				ReceivedAt: receivedAt, MessageID: "m1", Body: tt.body}
			enc, err := archive.Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, enc)
			if len(got) != 1 {
				t.Fatalf("%d entries, want 1", len(got))
			}
			if !bytes.Equal(got[0].Body, tt.body) {
				t.Errorf("body = %q, want %q", got[0].Body, tt.body)
			}
			got[0].Body, in.Body = nil, nil
			if !got[0].ReceivedAt.Equal(in.ReceivedAt) {
				t.Errorf("receivedAt = %v, want %v", got[0].ReceivedAt, in.ReceivedAt)
			}
			got[0].ReceivedAt, in.ReceivedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got[0], in) {
				t.Errorf("labels = %+v, want %+v", got[0], in)
			}
		})
	}
}

// A delivery stream concatenates the records it is given into one object:
// the concatenation must read back as every entry, in order.
func TestReadConcatenatedMembers(t *testing.T) {
	var object []byte
	for _, id := range []string{"e1", "e2", "e3"} {
		enc, err := archive.Encode(archive.Entry{EventID: id, ReceivedAt: receivedAt, Body: []byte(`{"eventId":"` + id + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		object = append(object, enc...)
	}
	var ids []string
	for _, e := range readAll(t, object) {
		ids = append(ids, e.EventID)
	}
	if got := strings.Join(ids, ","); got != "e1,e2,e3" {
		t.Errorf("read %s, want e1,e2,e3", got)
	}
	// And gunzip, or Athena, sees the lines.
	zr, err := gzip.NewReader(bytes.NewReader(object))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(text, []byte("\n")); n != 3 {
		t.Errorf("gunzip gives %d lines, want 3:\n%s", n, text)
	}
}

func TestReadErrors(t *testing.T) {
	good, _ := archive.Encode(archive.Entry{EventID: "e1", ReceivedAt: receivedAt})
	var notJSON bytes.Buffer
	zw := gzip.NewWriter(&notJSON)
	zw.Write([]byte("{\"v\":1}\nnot json\n"))
	zw.Close()
	tests := []struct {
		name, want string
		object     []byte
	}{
		{"not gzip", "archive object", []byte("plain text")},
		{"truncated", "archive object", good[:len(good)-6]},
		{"a line that is not JSON", "archive line 2", notJSON.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := archive.Read(bytes.NewReader(tt.object), func(archive.Entry) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
	stop := errors.New("stop")
	if err := archive.Read(bytes.NewReader(good), func(archive.Entry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: got %v", err)
	}
}

// The line format is what users' queries (Athena, jq) read: it changes only
// on purpose.
func TestLineFormatGolden(t *testing.T) {
	body := samples.MustRead("bodies/vehicle_error.json")
	e := archive.NewEntry(body, map[string]string{"eventId": "from-attributes"}, "7b2e1c4a-0f5d-4e8b-9a6c-3d1f2e4b5a69", receivedAt)
	enc, err := archive.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(zr)
	const golden = "testdata/vehicle_error.ndjson"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("line changed (go test -update to accept):\n got %s\nwant %s", got, want)
	}
}

func TestNewEntryLabels(t *testing.T) {
	attrs := map[string]string{"eventId": "attr-e", "eventType": "attr-t", "vehicleId": "attr-v"}
	tests := []struct {
		name                      string
		body                      []byte
		eventID, eventType, vehID string
		deliveredAt               bool
	}{
		{"the body's own labels win", samples.MustRead("bodies/vehicle_state.json"), "", "VEHICLE_STATE", "", true},
		{"a body that is no webhook keeps the message's", []byte("not json"), "attr-e", "attr-t", "attr-v", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := archive.NewEntry(tt.body, attrs, "m1", receivedAt)
			if tt.eventID != "" && e.EventID != tt.eventID || e.EventID == "" {
				t.Errorf("eventId = %q", e.EventID)
			}
			if e.EventType != tt.eventType {
				t.Errorf("eventType = %q, want %q", e.EventType, tt.eventType)
			}
			if tt.vehID != "" && e.VehicleID != tt.vehID || e.VehicleID == "" {
				t.Errorf("vehicleId = %q", e.VehicleID)
			}
			if (e.DeliveredAt != 0) != tt.deliveredAt {
				t.Errorf("deliveredAt = %d", e.DeliveredAt)
			}
			if !bytes.Equal(e.Body, tt.body) || e.MessageID != "m1" || !e.ReceivedAt.Equal(receivedAt) {
				t.Errorf("entry = %+v", e)
			}
		})
	}
}

func TestPartitions(t *testing.T) {
	from := time.Date(2026, 11, 30, 22, 59, 0, 0, time.FixedZone("CET", 3600)) // 21:59 UTC
	to := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	got := strings.Join(archive.Partitions(from, to), " ")
	if want := "2026/11/30/21/ 2026/11/30/22/ 2026/11/30/23/"; got != want {
		t.Errorf("Partitions = %s, want %s", got, want)
	}
	if got := archive.Partitions(to, from); len(got) != 0 {
		t.Errorf("an empty range gave %v", got)
	}
}

func FuzzEncodeRead(f *testing.F) {
	f.Add([]byte(`{"eventId":"e"}`), "e")
	f.Add([]byte("\xff\n\x00"), "")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		enc, err := archive.Encode(archive.Entry{EventID: id, ReceivedAt: receivedAt, Body: body})
		if err != nil {
			t.Skip(err) // too large
		}
		got := readAll(t, enc)
		if len(got) != 1 || !bytes.Equal(got[0].Body, body) {
			t.Fatalf("read %d entries; body %q, want %q", len(got), got[0].Body, body)
		}
		if !strings.ContainsRune(id, 0xFFFD) && got[0].EventID != id && isValid(id) {
			t.Fatalf("eventId %q, want %q", got[0].EventID, id)
		}
	})
}

func isValid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func BenchmarkEncode(b *testing.B) {
	e := archive.NewEntry(samples.MustRead("bodies/vehicle_state.json"), nil, "m1", receivedAt)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archive.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}
