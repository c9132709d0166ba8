package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		keep int // bytes of in kept; len(in) when not cut
	}{
		{"empty", "", 0},
		{"uuid", "4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02", 36},
		{"exactly the limit", strings.Repeat("a", 128), 128},
		{"one over", strings.Repeat("a", 129), 128},
		{"huge", strings.Repeat("v", 250<<10), 128},
		{"two-byte runes on the boundary", strings.Repeat("é", 65), 128},
		{"three-byte runes across the boundary", strings.Repeat("€", 43), 126},
		{"quotes count twice", strings.Repeat(`"`, 100), 64},
		{"control characters count six", strings.Repeat("\x01", 100), 21},
		{"invalid bytes count six", strings.Repeat("\xff", 100), 21},
		{"line separators count six", strings.Repeat("\u2028", 30), 21 * 3},
		{"short string with escapes kept", `a"b\c` + "\n", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logging.Clip(tt.in)
			want := tt.in[:tt.keep]
			if tt.keep < len(tt.in) {
				want += logging.ClipMark
			}
			if got != want {
				t.Errorf("Clip kept %d bytes (%.40q…), want %d", len(strings.TrimSuffix(got, logging.ClipMark)), got, tt.keep)
			}
		})
	}
}

// FuzzClip checks the promise Clip makes: whatever the string, its value in
// a JSON log line takes at most MaxClipBytes plus the mark, and what is kept
// is a prefix cut on a character boundary.
func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "abc", strings.Repeat("é\x00\"\\\xff\u2028<>&", 40), strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := logging.Clip(s)
		kept, cut := strings.CutSuffix(got, logging.ClipMark)
		if !cut {
			kept = got
		}
		if !strings.HasPrefix(s, kept) || (!cut && got != s) {
			t.Fatalf("Clip(%q) = %q: not s or a prefix of s with the mark", s, got)
		}
		if cut && !onBoundary(s, len(kept)) {
			t.Fatalf("Clip(%q) cut inside a character at byte %d", s, len(kept))
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", got)
		var line struct{ V json.RawMessage }
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if limit := logging.MaxClipBytes + len(logging.ClipMark) + 2; len(line.V) > limit {
			t.Fatalf("Clip(%q) takes %d bytes of a JSON line, want at most %d", s, len(line.V), limit)
		}
	})
}

// onBoundary reports whether byte n of s starts a character (or an invalid
// byte) as utf8.DecodeRuneInString walks s.
func onBoundary(s string, n int) bool {
	i := 0
	for i < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i == n
}
