package devstack

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// What the operator tools read from their command lines and their
// operator.

// ParseTime reads a time given to an operator tool (replay's -from and
// -to, reconcile's -since): RFC 3339 (2026-11-29T08:00:00Z), a UTC date
// and time to the minute (2026-11-29T08:00) or a UTC date (2026-11-29), or
// a duration before now (24h; a leading "-" is allowed: -24h).
func ParseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-29T08:00:00Z), a UTC date (2026-11-29) or a duration before now (24h)", s)
}

// SplitList splits a comma-separated list, dropping blanks around and
// between the items.
func SplitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Confirm asks question on stderr and reports whether the line read from
// stdin says yes (y or yes, in any case); anything else, or nothing, is no.
func Confirm(stdin io.Reader, stderr io.Writer, question string) bool {
	fmt.Fprint(stderr, question)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}
