package envconfig_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestReaderValues(t *testing.T) {
	r := envconfig.New(env(map[string]string{
		"REQ": " value ", "N": "42", "D1": "90s", "D2": "300", "L": "debug", "S": "x", "F": "0.5",
	}))
	if got := r.Required("REQ"); got != "value" {
		t.Errorf("Required = %q", got)
	}
	if got := r.PositiveInt("N", 1); got != 42 {
		t.Errorf("PositiveInt = %d", got)
	}
	if got := r.PositiveInt("UNSET", 7); got != 7 {
		t.Errorf("PositiveInt default = %d", got)
	}
	if got := r.PositiveFloat("F", 2); got != 0.5 {
		t.Errorf("PositiveFloat = %v", got)
	}
	if got := r.PositiveFloat("UNSET", 2); got != 2 {
		t.Errorf("PositiveFloat default = %v", got)
	}
	if got := r.Duration("D1", 0); got != 90*time.Second {
		t.Errorf("Duration(90s) = %v", got)
	}
	if got := r.Duration("D2", 0); got != 300*time.Second {
		t.Errorf("Duration(300) = %v", got)
	}
	if got := r.Duration("UNSET", time.Minute); got != time.Minute {
		t.Errorf("Duration default = %v", got)
	}
	if got := r.Level("L", slog.LevelInfo); got != slog.LevelDebug {
		t.Errorf("Level = %v", got)
	}
	if got := r.String("S", "d"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
}

func TestReaderErrorsNameEveryVariable(t *testing.T) {
	r := envconfig.New(env(map[string]string{"N": "-1", "D": "soon", "L": "loud", "Z": "0", "F0": "0", "FI": "Inf", "FN": "NaN"}))
	r.Required("MISSING")
	r.PositiveInt("N", 1)
	r.PositiveInt("Z", 1)
	r.Duration("D", time.Second)
	r.Level("L", slog.LevelInfo)
	for _, name := range []string{"F0", "FI", "FN"} {
		r.PositiveFloat(name, 1)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"MISSING", "N", "Z", "D", "L", "F0", "FI", "FN"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
