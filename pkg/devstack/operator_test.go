package devstack_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

// TestParseTime: the times the operator tools accept, and the error
// naming them for any other.
func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2026-11-29T08:00:00Z", want: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)},
		{in: "2026-11-29T08:00:00.250+01:00", want: time.Date(2026, 11, 29, 7, 0, 0, 250e6, time.UTC)},
		{in: "2026-11-29T08:00", want: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)},
		{in: "2026-11-29", want: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "-90m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
		{in: "2026-11-29 08:00", wantErr: true},
		{in: "--1h", wantErr: true},
	}
	for _, tt := range tests {
		got, err := devstack.ParseTime(tt.in, now)
		switch {
		case tt.wantErr:
			if err == nil || !strings.Contains(err.Error(), "want RFC 3339") {
				t.Errorf("ParseTime(%q) = %v, %v; want an error naming the forms", tt.in, got, err)
			}
		case err != nil || !got.Equal(tt.want):
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string]string{"": "[]", "a": "[a]", " a , b,,c ": "[a b c]", ",,": "[]"} {
		if got := fmt.Sprint(devstack.SplitList(in)); got != want {
			t.Errorf("SplitList(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes ": true, "n\n": false, "": false, "yess\n": false, "sure\n": false} {
		var asked strings.Builder
		if got := devstack.Confirm(strings.NewReader(in), &asked, "go? [y/N] "); got != want || asked.String() != "go? [y/N] " {
			t.Errorf("Confirm(%q) = %v asking %q, want %v asking the question", in, got, asked.String(), want)
		}
	}
}

// TestToolFlags: a tool's -h prints its usage, its flags and the target's;
// a leftover argument is refused by name.
func TestToolFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // "" for none
		wantOut []string
	}{
		{args: []string{"-n", "2"}},
		{args: []string{"-h"}, wantErr: flag.ErrHelp.Error(), wantOut: []string{"Usage: tool -n N\n", "-n N", "-stack NAME"}},
		{args: []string{"-n", "2", "extra"}, wantErr: `unexpected arguments ["extra"]: every option is a flag (-h lists them)`},
		{args: []string{"-m"}, wantErr: "flag provided but not defined: -m", wantOut: []string{"flag provided but not defined", "Usage: tool"}},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		var target devstack.Target
		fs := devstack.NewFlagSet("tool", "Usage: tool -n N\n", &stderr, &target)
		n := fs.Int("n", 0, "`N` things")
		err := devstack.ParseFlags(fs, tt.args)
		switch {
		case tt.wantErr == "" && (err != nil || *n != 2):
			t.Errorf("%q: %v, n = %d", tt.args, err, *n)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("%q: error %v, want %q", tt.args, err, tt.wantErr)
		}
		for _, want := range tt.wantOut {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, want, stderr.String())
			}
		}
	}
}

func TestETA(t *testing.T) {
	for _, tt := range []struct {
		n    int
		rate float64
		want time.Duration
	}{{0, 2, 0}, {1, 2, time.Second}, {10, 2, 5 * time.Second}, {100, 0.5, 200 * time.Second}, {3, 1000, 0}} {
		if got := devstack.ETA(tt.n, tt.rate); got != tt.want {
			t.Errorf("ETA(%d, %g) = %v, want %v", tt.n, tt.rate, got, tt.want)
		}
	}
}

func TestToolLogLevel(t *testing.T) {
	for env, want := range map[string]string{"": "WARN", "DEBUG": "DEBUG", "ERROR": "ERROR"} {
		t.Setenv("LOG_LEVEL", env)
		if got := devstack.ToolLogLevel(); got != want {
			t.Errorf("LOG_LEVEL=%q: %q, want %q", env, got, want)
		}
	}
}
