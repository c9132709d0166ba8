package awstest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest/rie"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

// BuildBootstrap builds the Lambda in dir for linux and this machine's
// architecture, with the flags `make build` uses (`make build` targets
// arm64, Lambda's; this build runs here), and returns the binary's path and
// size. Off Linux it builds for this system, for BenchmarkColdStart. tags
// are build tags besides make build's.
func BuildBootstrap(tb testing.TB, dir string, tags ...string) (path string, size int64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "bootstrap")
	err := rie.BuildFor(context.Background(), runtime.GOOS, dir, path, tags...)
	if err != nil {
		tb.Fatalf("build %s: %v", dir, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, info.Size()
}

// BuildCommand builds the main package in the working directory (the
// test's own package, as `go test` runs it) for this machine, with the
// build tags given, and returns the binary's path: a tool's test runs it as
// its users do.
func BuildCommand(tb testing.TB, tags ...string) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(tb.TempDir(), filepath.Base(wd))
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var emulator struct {
	once sync.Once
	path string
	err  error
}

// RIE returns the path of the Lambda Runtime Interface Emulator, building
// it the first time (see rie.Install). Like Endpoint, it skips the test when
// the emulator cannot be had (off Linux, or offline), except under CI=true,
// where that fails it.
func RIE(tb testing.TB) string {
	tb.Helper()
	emulator.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		emulator.path, emulator.err = rie.Install(ctx)
	})
	if emulator.err != nil {
		if os.Getenv("CI") == "true" && !errors.Is(emulator.err, rie.ErrUnsupported) {
			tb.Fatalf("Lambda Runtime Interface Emulator unavailable under CI: %v", emulator.err)
		}
		tb.Skipf("Lambda Runtime Interface Emulator unavailable: %v", emulator.err)
	}
	return emulator.path
}

// FunctionEnv is the environment Lambda gives a function, pointed, unless
// endpoint is empty, at the AWS emulator; plus extra.
func FunctionEnv(endpoint string, extra map[string]string) []string {
	env := []string{"TZ=UTC"}
	for k, v := range moto.Env(endpoint) {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// Function is a function's bootstrap running under the Lambda Runtime
// Interface Emulator.
type Function struct {
	*rie.Emulator
	// Output is what the function wrote to stdout and stderr, with the
	// emulator's START, END and REPORT lines.
	Output *loggingtest.Buffer
}

// StartFunction runs bin under the emulator as the function called name,
// with env (see FunctionEnv) and a 30 s timeout, and returns once the
// emulator accepts invocations; the function starts with the first. Both
// stop when the test ends.
func StartFunction(tb testing.TB, bin, name string, env []string) *Function {
	tb.Helper()
	path := RIE(tb)
	f := &Function{Output: &loggingtest.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	f.Emulator, err = rie.Start(ctx, path, rie.Function{
		Bootstrap: bin, Name: name, Env: env, Output: f.Output,
		// Well above the stack's timeouts: moto on a busy 2-core CI
		// machine is slow, and these tests are not about timeouts.
		Timeout: 30 * time.Second, MemoryMB: 256,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Stop)
	return f
}

// Invoke hands payload to the function, with request id id, and fails the
// test if the emulator cannot be reached within 30 s.
func (f *Function) Invoke(tb testing.TB, id string, payload []byte) rie.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := f.Emulator.Invoke(ctx, id, payload)
	if err != nil {
		tb.Fatalf("%v\n%s", err, f.Output)
	}
	return res
}

// AwaitOutput waits up to 10 s for s in the output and fails the test if
// it does not come. The output travels through a pipe, so it may trail the
// invocation's answer; the emulator's "REPORT RequestId: <id>" line follows
// everything the function wrote during invocation id.
func (f *Function) AwaitOutput(tb testing.TB, s string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.Output.String(), s) {
		if time.Now().After(deadline) {
			tb.Fatalf("no %q in the output within 10s:\n%s", s, f.Output)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LambdaEnv is FunctionEnv with AWS_LAMBDA_RUNTIME_API pointing at api, for
// a bootstrap run without the emulator (StartBootstrap).
func LambdaEnv(api *RuntimeAPI, function, endpoint string, extra map[string]string) []string {
	return append(FunctionEnv(endpoint, extra),
		"AWS_LAMBDA_RUNTIME_API="+api.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME="+function,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
	)
}

// Bootstrap is a function binary running against RuntimeAPI, for
// BenchmarkColdStart.
type Bootstrap struct {
	cmd *exec.Cmd
	// Output is what the function wrote to stdout and stderr.
	Output *loggingtest.Buffer
	// Init is the time from process start to its first request for work.
	Init time.Duration
}

// StartBootstrap runs bin with env against api and returns once the
// function asks for work. It is stopped when the test ends, or by Stop.
func StartBootstrap(tb testing.TB, bin string, api *RuntimeAPI, env []string) *Bootstrap {
	tb.Helper()
	b := &Bootstrap{cmd: exec.Command(bin), Output: &loggingtest.Buffer{}}
	b.cmd.Env = env
	b.cmd.Stdout, b.cmd.Stderr = b.Output, b.Output
	start := time.Now()
	if err := b.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Stop)
	select {
	case at := <-api.FirstNext():
		b.Init = at.Sub(start)
	case <-time.After(10 * time.Second):
		b.Stop()
		tb.Fatalf("%s did not ask for work within 10s:\n%s", bin, b.Output)
	}
	return b
}

// Stop ends the function.
func (b *Bootstrap) Stop() {
	if b.cmd.ProcessState == nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
	}
}

// BenchmarkColdStart measures the init of the function built from dir:
// process start to first request for work, with env. It reports the host
// binary's size too.
func BenchmarkColdStart(b *testing.B, dir string, env map[string]string) {
	bin, size := BuildBootstrap(b, dir)
	for b.Loop() {
		api := NewRuntimeAPI(b)
		StartBootstrap(b, bin, api, LambdaEnv(api, filepath.Base(dir), "", env)).Stop()
	}
	b.ReportMetric(float64(size), "host-binary-bytes")
}
