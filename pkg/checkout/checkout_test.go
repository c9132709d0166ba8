package checkout_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
)

// TestRoot: the root is the nearest directory whose go.mod declares this
// module; a go.mod of another module on the way is passed over.
func TestRoot(t *testing.T) {
	root := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module "+checkout.ModulePath+"\n\ngo 1.26\n")
	other := filepath.Join(root, "scripts", "other")
	write(filepath.Join(other, "go.mod"), "module example.com/other // a nested module\n")
	dlq := filepath.Join(root, "scripts", "dlq")
	if err := os.MkdirAll(dlq, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, dlq, other} {
		if got, err := checkout.Root(dir); err != nil || got != root {
			t.Errorf("Root(%s) = %q, %v; want %s", dir, got, err, root)
		}
	}
	if got, err := checkout.Root(t.TempDir()); err == nil {
		t.Errorf("Root outside a checkout = %q, want an error", got)
	}
	if got, err := checkout.WorkingRoot(); err != nil || filepath.Base(filepath.Dir(filepath.Dir(got))) == "" {
		t.Errorf("WorkingRoot() = %q, %v: this test runs inside the checkout", got, err)
	}
}
