package smartcar

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Millis is a time in milliseconds since the epoch; 0 means unknown.
// Smartcar's documents give timestamps as epoch milliseconds, as ISO-8601
// strings and, once, as epoch seconds.
type Millis int64

// Bounds of a readable timestamp.
const (
	// secondsBelow: a number below it is epoch seconds, not milliseconds
	// (as milliseconds it would be a time in 1973).
	secondsBelow = 1e11
	// maxMillis is 9999-12-31T23:59:59.999Z, the last time ISO-8601's
	// four-digit years can write.
	maxMillis = 253402300799999
)

// isoLayouts are the ISO-8601 forms read: with a zone, and without one
// (UTC), with a "T" or a space between date and time.
var isoLayouts = [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// Time returns m as a time.Time in UTC; the zero Time for an unknown m.
func (m Millis) Time() time.Time {
	if m <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m)).UTC()
}

// ParseMillis reads a timestamp's text: epoch milliseconds, epoch seconds
// (told apart by magnitude), or an ISO-8601 string with or without a zone
// (none means UTC). Anything else reads as 0, unknown: a negative, zero,
// non-finite or out-of-range number ("Infinity", "NaN", 1e300) or a time
// after the year 9999. The result is the same on every architecture.
func ParseMillis(s string) Millis {
	s = strings.TrimSpace(s)
	// Only a date is tried as one: a failed time.Parse allocates its error,
	// and most timestamps are numbers.
	if len(s) > 4 && s[4] == '-' {
		for _, layout := range isoLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return clampMillis(float64(t.UnixMilli()))
			}
		}
		return 0
	}
	// An out-of-range number fails with ±Inf or 0: unknown either way.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	if f > 0 && f < secondsBelow {
		f *= 1000
	}
	return clampMillis(f)
}

// clampMillis converts f to Millis only when it is a readable time; the
// float-to-integer conversion of an out-of-range value is
// implementation-defined in Go (MinInt64 on amd64, MaxInt64 on arm64), so
// it is never reached.
func clampMillis(f float64) Millis {
	if math.IsNaN(f) || f < 1 || f > maxMillis {
		return 0
	}
	return Millis(f)
}

// millis reads a decoded JSON value as a timestamp: a number, or a string
// holding an ISO-8601 time or a number. Anything else, null included,
// reads as 0 (unknown): a bad timestamp never fails an event.
func millis(v any) Millis {
	switch v := v.(type) {
	case json.Number:
		return ParseMillis(string(v))
	case string:
		return ParseMillis(v)
	}
	return 0
}
