package smartcar_test

import (
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// lastISOMillis is 9999-12-31T23:59:59.999Z, the last readable time.
var lastISOMillis = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()

func TestParseMillis(t *testing.T) {
	tests := []struct {
		name, text string
		want       smartcar.Millis
	}{
		{"epoch ms", "1767225590000", 1767225590000},
		{"epoch ms, spaces around", " 1767225590000\n", 1767225590000},
		{"epoch ms, fraction dropped", "1767225590000.9", 1767225590000},
		{"epoch ms, exponent", "1.76722559e12", 1767225590000},
		{"epoch seconds", "1700000000", 1700000000000},
		{"epoch seconds, fraction", "1700000000.25", 1700000000250},
		{"largest seconds", "99999999999", 99999999999000},
		{"smallest ms", "100000000000", 100000000000},
		{"ISO with Z", "2026-01-01T00:00:00Z", 1767225600000},
		{"ISO fractional", "2026-01-01T00:00:00.5Z", 1767225600500},
		{"ISO with offset", "2026-01-01T01:00:00+01:00", 1767225600000},
		{"ISO without zone is UTC", "2026-01-01T00:00:00", 1767225600000},
		{"ISO with a space", "2026-01-01 00:00:00.123", 1767225600123},
		{"year 9999", "9999-12-31T23:59:59.999Z", smartcar.Millis(lastISOMillis)},
		{"year 9999 as ms", "253402300799999", smartcar.Millis(lastISOMillis)},
		{"after 9999 as ms", "253402300800000", 0},
		{"year 10000", "10000-01-01T00:00:00Z", 0},
		{"year 10000 in UTC", "9999-12-31T23:59:59-01:00", 0},
		{"before the epoch", "1969-12-31T23:59:59Z", 0},
		{"the epoch", "1970-01-01T00:00:00Z", 0},
		{"zero", "0", 0},
		{"negative zero", "-0", 0},
		{"negative", "-5", 0},
		{"negative ms", "-1767225590000", 0},
		{"below a millisecond", "0.0004", 0},
		{"Infinity", "Infinity", 0},
		{"-Infinity", "-Infinity", 0},
		{"inf", "+inf", 0},
		{"NaN", "NaN", 0},
		{"1e300", "1e300", 0},
		{"overflows float64", "1e400", 0},
		{"-1e400", "-1e400", 0},
		{"underflows float64", "1e-400", 0},
		{"beyond int64", "9223372036854775808", 0},
		{"MaxInt64", "9223372036854775807", 0},
		{"20 digits", "99999999999999999999", 0},
		{"empty", "", 0},
		{"garbage", "yesterday", 0},
		{"invalid date", "2026-13-01T00:00:00Z", 0},
		{"date only", "2026-01-01", 0},
		{"number then garbage", "1767225590000ms", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := smartcar.ParseMillis(tt.text); got != tt.want {
				t.Errorf("ParseMillis(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

func TestMillisTime(t *testing.T) {
	if got := smartcar.Millis(1767225600500).Time(); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 500e6, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Time() = %v", got)
	}
	for _, m := range []smartcar.Millis{0, -1} {
		if got := m.Time(); !got.IsZero() {
			t.Errorf("Millis(%d).Time() = %v, want the zero Time", m, got)
		}
	}
}

// FuzzParseMillis: any text reads as unknown or as a time between the
// epoch and the end of the year 9999 that Time gives back exactly.
func FuzzParseMillis(f *testing.F) {
	for _, s := range []string{"1767225590000", "1700000000", "2026-01-01T00:00:00Z", "Infinity", "1e300", "-1e400", "NaN", "0x1p40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := smartcar.ParseMillis(s)
		if m == 0 {
			return
		}
		if m < 1 || int64(m) > lastISOMillis {
			t.Fatalf("ParseMillis(%q) = %d, outside (0, %d]", s, m, lastISOMillis)
		}
		if got := m.Time().UnixMilli(); got != int64(m) {
			t.Fatalf("ParseMillis(%q) = %d, Time() gives %d", s, m, got)
		}
	})
}
