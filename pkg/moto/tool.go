package moto

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
)

// VenvDir is where scripts/ensure-test-tools.sh (`make tools`) installs the
// test tools missing from PATH, relative to the module's root: a virtual
// environment of the project, since Debian 12 and Ubuntu 23.04+ refuse
// `pip install` into the system Python.
const VenvDir = ".tools/venv"

// Tool finds a test tool's executable (moto_server, cfn-lint): on PATH,
// else in VenvDir/bin of the checkout that holds the working directory, so
// that neither `go test` nor `make` needs the virtual environment on PATH.
func Tool(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	if root, rerr := checkout.WorkingRoot(); rerr == nil {
		candidate := filepath.Join(root, VenvDir, "bin", name)
		if info, serr := os.Stat(candidate); serr == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", err
}
