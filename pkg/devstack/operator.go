package devstack

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// What the operator tools read from their command lines and their
// operator.

// NewFlagSet returns the flag set of the operator tool name, which prints
// its errors and -h to stderr, -h as usage followed by the flags, and
// holds target's flags (-stack, -env) unless target is nil.
func NewFlagSet(name, usage string, stderr io.Writer, target *Target) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if target != nil {
		target.AddFlags(fs)
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args into fs and refuses any argument left over: every
// option of a tool is a flag. -h gives flag.ErrHelp.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every option is a flag (-h lists them)", fs.Args())
	}
	return nil
}

// ETA is how long sending n items at rate per second takes, to the second.
func ETA(n int, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second)).Round(time.Second)
}

// ToolLogLevel is the LOG_LEVEL of a function an operator tool runs in its
// own process: the tool's $LOG_LEVEL, else WARN, so that failures show as
// they happen and the events that went well stay quiet.
func ToolLogLevel() string { return cmp.Or(os.Getenv("LOG_LEVEL"), "WARN") }

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
