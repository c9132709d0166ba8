package moto

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
)

// TestToolFindsTheProjectVenv: with a tool absent from PATH, Tool finds it
// in .tools/venv/bin at the checkout's root, from a directory below it (as
// `go test` runs each package in its own directory); a tool on PATH wins.
func TestToolFindsTheProjectVenv(t *testing.T) {
	root := t.TempDir()
	write := func(path, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module "+checkout.ModulePath+"\n", 0o644)
	venvTool := filepath.Join(root, ".tools", "venv", "bin", "cfn-lint")
	write(venvTool, "#!/bin/sh\n", 0o755)
	write(filepath.Join(root, ".tools", "venv", "bin", "not-executable"), "", 0o644)
	pkg := filepath.Join(root, "pkg", "some")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(pkg)
	onPath := t.TempDir()
	t.Setenv("PATH", onPath)

	if got, err := Tool("cfn-lint"); err != nil || got != venvTool {
		t.Errorf("Tool(cfn-lint) = %q, %v; want %s", got, err, venvTool)
	}
	for _, name := range []string{"moto_server", "not-executable"} {
		if got, err := Tool(name); err == nil {
			t.Errorf("Tool(%s) = %q, want an error", name, got)
		}
	}
	write(filepath.Join(onPath, "cfn-lint"), "#!/bin/sh\n", 0o755)
	if got, err := Tool("cfn-lint"); err != nil || got != filepath.Join(onPath, "cfn-lint") {
		t.Errorf("Tool(cfn-lint) with one on PATH = %q, %v; want PATH's", got, err)
	}
}
