// Package devstacktest provisions local stacks for the tests of the
// operator tools, which find a stack as they find `make dev`'s.
package devstacktest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

// Local provisions a stack on the AWS emulator as `make dev` does, its
// resources named after the test and name, its secret holding token, and
// describes it in a state file whose lock it holds until the test ends,
// as a running `make dev` does for the tools. It returns the stack and the
// file (a tool's -state).
func Local(tb testing.TB, name, token string) (devstack.Resources, string) {
	tb.Helper()
	res, err := devstack.Provision(context.Background(), awstest.Config(tb), token, devstack.Options{Prefix: awstest.Name(tb, name) + "-"})
	if err != nil {
		tb.Fatal(err)
	}
	res.Endpoint = awstest.Endpoint(tb)
	state := filepath.Join(tb.TempDir(), "stack.json")
	unlock, err := devstack.Lock(state, devstack.LockOwner{Pid: os.Getpid()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(unlock)
	if err := devstack.WriteState(state, res); err != nil {
		tb.Fatal(err)
	}
	return res, state
}
