// Package checkout finds the root of this project's checkout, where the
// git-ignored state of local tools lives: the local stack (.dev), the
// emulators and the Python virtual environment (.tools).
package checkout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is this project's Go module: the go.mod that declares it marks
// the root of a checkout.
const ModulePath = "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver"

// Root returns the root of the checkout dir is in: the nearest directory,
// dir or one above it, whose go.mod declares ModulePath (a go.mod of
// another module on the way is passed over).
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside a checkout of %s (no go.mod declaring it here or above)", dir, ModulePath)
		}
		d = parent
	}
}

// WorkingRoot is Root of the working directory: the checkout that `go
// test`, `go run` and `make` run in.
func WorkingRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return Root(wd)
}

// modulePath returns the path a go.mod's module directive declares.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], "\"`")
		}
	}
	return ""
}
