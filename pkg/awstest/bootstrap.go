package awstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
)

// BuildBootstrap builds the Lambda in dir for this machine, with the flags
// `make build` uses, and returns the binary's path and size.
func BuildBootstrap(tb testing.TB, dir string) (path string, size int64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", path, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, info.Size()
}

// LambdaEnv is the environment Lambda gives a function, pointed at api and,
// unless endpoint is empty, at an emulator; plus extra.
func LambdaEnv(api *RuntimeAPI, function, endpoint string, extra map[string]string) []string {
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME=" + function,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"TZ=UTC",
	}
	if endpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL="+endpoint)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// Bootstrap is a function binary running as Lambda runs it.
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
