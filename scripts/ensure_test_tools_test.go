// Package scripts_test tests the shell scripts beside the tools' packages.
package scripts_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

// toolsMachine is a machine for scripts/ensure-test-tools.sh made of
// stand-ins: a project directory holding a copy of the script, and a PATH
// with nothing on it but the stand-ins and the few utilities the script
// needs. The stand-in python3 is the system Python: it has no moto, records
// every call, and makes a virtual environment whose python records its
// calls and, for `-m pip install`, creates the executables of what it was
// asked to install. No network, no real Python.
type toolsMachine struct {
	t            *testing.T
	root, bin    string
	log, venvBin string
}

func newToolsMachine(t *testing.T) *toolsMachine {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash, which the Makefile's scripts need: %v", err)
	}
	dir := t.TempDir()
	tm := &toolsMachine{t: t, root: filepath.Join(dir, "project"), bin: filepath.Join(dir, "bin"), log: filepath.Join(dir, "calls.log")}
	tm.venvBin = filepath.Join(tm.root, ".tools", "venv", "bin")
	script, err := os.ReadFile("ensure-test-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	tm.write(filepath.Join(tm.root, "scripts", "ensure-test-tools.sh"), string(script))
	tm.write(filepath.Join(tm.root, "go.mod"), "module "+checkout.ModulePath+"\n")
	if err := os.MkdirAll(tm.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, util := range []string{"dirname", "grep", "rm", "mkdir", "chmod", "cat"} {
		path, err := exec.LookPath(util)
		if err != nil {
			t.Fatalf("%s: %v", util, err)
		}
		if err := os.Symlink(path, filepath.Join(tm.bin, util)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bash, filepath.Join(tm.bin, "bash")); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	// The venv's python: pip install creates the tools' executables.
	venvPython := fmt.Sprintf(`#!%[1]s
echo "venv-python $*" >>%[2]q
if [ "$1 $2 $3" = "-m pip install" ]; then
  for req in "$@"; do
    case "$req" in
      moto\[server\]==*) tool=moto_server ;;
      cfn-lint==*) tool=cfn-lint ;;
      *) continue ;;
    esac
    printf '#!%[1]s\nexit 0\n' >"$(dirname "$0")/$tool"
    chmod +x "$(dirname "$0")/$tool"
  done
fi
`, sh, tm.log)
	tm.write(filepath.Join(tm.bin, "venv-python"), venvPython)
	// The system python3: no moto; -m venv fails while python3-venv is
	// "not installed" (the file no-venv-module exists).
	tm.write(filepath.Join(tm.bin, "python3"), fmt.Sprintf(`#!%[1]s
echo "system-python3 $*" >>%[2]q
case "$1" in
  -c) exit 1 ;;
  -m) if [ "$2" = venv ]; then
        [ -e %[3]q ] && { mkdir -p "$3/bin"; exit 1; }
        mkdir -p "$3/bin" && cat %[4]q >"$3/bin/python" && chmod +x "$3/bin/python"
        exit $?
      fi ;;
esac
exit 0
`, sh, tm.log, filepath.Join(dir, "no-venv-module"), filepath.Join(tm.bin, "venv-python")))
	// arm64: the qemu step, tested elsewhere, has nothing to do.
	tm.write(filepath.Join(tm.bin, "go"), "#!"+sh+"\necho arm64\n")
	tm.write(filepath.Join(tm.bin, "node"), "#!"+sh+"\n")
	tm.write(filepath.Join(tm.bin, "id"), "#!"+sh+"\necho 0\n")
	return tm
}

func (tm *toolsMachine) write(path, content string) {
	tm.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tm.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		tm.t.Fatal(err)
	}
}

// onPath puts a stand-in tool on PATH.
func (tm *toolsMachine) onPath(name string) { tm.write(filepath.Join(tm.bin, name), "#!/bin/sh\n") }

// run runs the script and returns its output and the calls it made.
func (tm *toolsMachine) run() (output string, calls []string, err error) {
	tm.t.Helper()
	_ = os.Remove(tm.log)
	cmd := exec.Command(filepath.Join(tm.bin, "bash"), filepath.Join(tm.root, "scripts", "ensure-test-tools.sh"))
	cmd.Dir = tm.root
	cmd.Env = []string{"PATH=" + tm.bin, "HOME=" + tm.root, "CI=true"}
	out, err := cmd.CombinedOutput()
	logged, _ := os.ReadFile(tm.log)
	return string(out), strings.Split(strings.TrimSpace(string(logged)), "\n"), err
}

func pins(t *testing.T) (moto, cfnLint string) {
	t.Helper()
	script, err := os.ReadFile("ensure-test-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	pin := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(\d+\.\d+\.\d+)$`).FindSubmatch(script)
		if m == nil {
			t.Fatalf("ensure-test-tools.sh pins no %s", name)
		}
		return string(m[1])
	}
	return "moto[server]==" + pin("MOTO_VERSION"), "cfn-lint==" + pin("CFN_LINT_VERSION")
}

// noSystemInstall fails the test if the system Python was asked to install
// anything: Debian 12 and Ubuntu 23.04+ refuse (externally-managed-environment).
func noSystemInstall(t *testing.T, calls []string) {
	t.Helper()
	for _, c := range calls {
		if strings.HasPrefix(c, "system-python3") && strings.Contains(c, "pip") {
			t.Errorf("the system Python was asked to install: %q", c)
		}
	}
}

func contains(calls []string, want string) bool {
	for _, c := range calls {
		if c == want {
			return true
		}
	}
	return false
}

// TestEnsureTestToolsInstallsIntoAProjectVenv: on a machine whose PATH has
// neither moto_server nor cfn-lint, the script makes .tools/venv with
// python3 -m venv, installs both pinned versions into it with one pip
// call, says so in one line, and never asks the system Python to install;
// the tests then find both (moto.Tool). A second run installs nothing.
func TestEnsureTestToolsInstallsIntoAProjectVenv(t *testing.T) {
	motoReq, cfnReq := pins(t)
	if !strings.Contains(moto.InstallHint, `"`+motoReq+`"`) {
		t.Errorf("moto.InstallHint %q does not name the script's pin %s", moto.InstallHint, motoReq)
	}
	tm := newToolsMachine(t)
	out, calls, err := tm.run()
	if err != nil {
		t.Fatalf("script failed: %v\n%s\ncalls:\n%s", err, out, strings.Join(calls, "\n"))
	}
	noSystemInstall(t, calls)
	venv := filepath.Join(tm.root, ".tools", "venv")
	for _, want := range []string{
		"system-python3 -m venv " + venv,
		"venv-python -m pip install --quiet --disable-pip-version-check " + motoReq + " " + cfnReq,
	} {
		if !contains(calls, want) {
			t.Errorf("no call %q; calls:\n%s", want, strings.Join(calls, "\n"))
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], ".tools/venv") || !strings.Contains(lines[0], "system Python") {
		t.Errorf("output %q, want one line saying it installs into .tools/venv, not the system Python", out)
	}
	t.Chdir(tm.root)
	t.Setenv("PATH", t.TempDir())
	for _, tool := range []string{"moto_server", "cfn-lint"} {
		if got, err := moto.Tool(tool); err != nil || got != filepath.Join(tm.venvBin, tool) {
			t.Errorf("moto.Tool(%s) = %q, %v; want the venv's", tool, got, err)
		}
	}

	out, calls, err = tm.run()
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("second run: %v, output %q", err, out)
	}
	for _, c := range calls {
		if strings.Contains(c, "pip") || strings.Contains(c, "venv ") {
			t.Errorf("second run called %q", c)
		}
	}
}

// TestEnsureTestToolsUsesWhatIsOnPath: tools on PATH are used as they are;
// only what is missing is installed, and a pin changed in the script is
// installed again.
func TestEnsureTestToolsUsesWhatIsOnPath(t *testing.T) {
	motoReq, cfnReq := pins(t)
	t.Run("both on PATH", func(t *testing.T) {
		tm := newToolsMachine(t)
		tm.onPath("moto_server")
		tm.onPath("cfn-lint")
		out, calls, err := tm.run()
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("%v, output %q", err, out)
		}
		for _, c := range calls {
			if strings.Contains(c, "pip") || strings.Contains(c, "venv") {
				t.Errorf("called %q", c)
			}
		}
		if _, err := os.Stat(filepath.Join(tm.root, ".tools")); err == nil {
			t.Error(".tools created although nothing was missing")
		}
	})
	t.Run("cfn-lint missing", func(t *testing.T) {
		tm := newToolsMachine(t)
		tm.onPath("moto_server")
		out, calls, err := tm.run()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		noSystemInstall(t, calls)
		if want := "venv-python -m pip install --quiet --disable-pip-version-check " + cfnReq; !contains(calls, want) {
			t.Errorf("no call %q; calls:\n%s", want, strings.Join(calls, "\n"))
		}
	})
	t.Run("pin changed", func(t *testing.T) {
		tm := newToolsMachine(t)
		tm.onPath("cfn-lint")
		if _, _, err := tm.run(); err != nil {
			t.Fatal(err)
		}
		tm.write(filepath.Join(tm.root, ".tools", "venv", "installed.txt"), "moto[server]==0.0.1\n")
		_, calls, err := tm.run()
		if err != nil {
			t.Fatal(err)
		}
		if want := "venv-python -m pip install --quiet --disable-pip-version-check " + motoReq; !contains(calls, want) {
			t.Errorf("no call %q; calls:\n%s", want, strings.Join(calls, "\n"))
		}
	})
}

// TestEnsureTestToolsWithoutVenvModule: Debian and Ubuntu ship Python's
// venv module separately (python3-venv). The script installs it with
// apt-get when it can, and otherwise stops with what to install, never
// falling back to the system Python.
func TestEnsureTestToolsWithoutVenvModule(t *testing.T) {
	motoReq, _ := pins(t)
	t.Run("apt-get", func(t *testing.T) {
		tm := newToolsMachine(t)
		tm.onPath("cfn-lint")
		marker := filepath.Join(filepath.Dir(tm.bin), "no-venv-module")
		tm.write(marker, "")
		tm.write(filepath.Join(tm.bin, "apt-get"), fmt.Sprintf("#!/bin/sh\necho \"apt-get $*\" >>%q\n[ \"$1\" != install ] || rm -f %q\n", tm.log, marker))
		out, calls, err := tm.run()
		if err != nil {
			t.Fatalf("%v\n%s\ncalls:\n%s", err, out, strings.Join(calls, "\n"))
		}
		noSystemInstall(t, calls)
		for _, want := range []string{
			"apt-get install -y -q --no-install-recommends python3-venv",
			"venv-python -m pip install --quiet --disable-pip-version-check " + motoReq,
		} {
			if !contains(calls, want) {
				t.Errorf("no call %q; calls:\n%s", want, strings.Join(calls, "\n"))
			}
		}
	})
	t.Run("no apt-get", func(t *testing.T) {
		tm := newToolsMachine(t)
		tm.onPath("cfn-lint")
		tm.write(filepath.Join(filepath.Dir(tm.bin), "no-venv-module"), "")
		out, calls, err := tm.run()
		if err == nil {
			t.Fatalf("script succeeded without a venv module:\n%s", out)
		}
		noSystemInstall(t, calls)
		if !strings.Contains(out, "python3-venv") {
			t.Errorf("output %q does not say to install python3-venv", out)
		}
		if _, err := os.Stat(filepath.Join(tm.root, ".tools", "venv")); err == nil {
			t.Error("a half-made .tools/venv was left behind")
		}
	})
}
