// Package envconfig reads a Lambda's settings from environment variables and
// reports every missing or invalid one by name, so a bad deployment fails at
// start-up with a message that says what to fix.
package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
)

// Reader reads variables through getenv and collects the errors.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv (os.Getenv in production).
func New(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv}
}

// Err returns every problem found so far, or nil.
func (r *Reader) Err() error {
	return errors.Join(r.errs...)
}

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (r *Reader) value(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// Required returns the variable's value; it is an error for it to be empty.
func (r *Reader) Required(name string) string {
	v, ok := r.value(name)
	if !ok {
		r.fail(name, "required but not set")
	}
	return v
}

// String returns the variable's value, or def when it is empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.value(name); ok {
		return v
	}
	return def
}

// PositiveInt returns the variable as an integer above zero, or def when it
// is empty.
func (r *Reader) PositiveInt(name string, def int) int {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		r.fail(name, "want a positive integer, got %q", v)
		return def
	}
	return n
}

// PositiveFloat returns the variable as a finite number above zero, or
// def when it is empty.
func (r *Reader) PositiveFloat(name string, def float64) float64 {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		r.fail(name, "want a positive number, got %q", v)
		return def
	}
	return f
}

// Duration returns the variable as a positive duration, written as a Go
// duration ("5m", "90s") or a number of seconds ("300"), or def when it is
// empty.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(name, `want a positive duration such as "5m" or a number of seconds, got %q`, v)
		return def
	}
	return d
}

// Level returns the variable as a log level (DEBUG, INFO, WARN, ERROR), or
// def when it is empty.
func (r *Reader) Level(name string, def slog.Level) slog.Level {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	l, err := logging.ParseLevel(v)
	if err != nil {
		r.fail(name, "want DEBUG, INFO, WARN or ERROR, got %q", v)
		return def
	}
	return l
}
