// Package rie runs a Lambda function's real bootstrap under the AWS Lambda
// Runtime Interface Emulator (aws-lambda-rie), the Runtime API that SAM CLI
// runs inside its containers, here without Docker: the emulator starts the
// bootstrap, hands it each invocation through the Runtime API
// (/runtime/invocation/next, .../response, .../error, /runtime/init/error)
// and answers POST /2015-03-31/functions/function/invocations with what the
// function returned.
//
// The emulator is a Go module, built at the pinned Version with `go install`
// into the checkout's git-ignored .tools/bin the first time it is needed
// (Install); $AWS_LAMBDA_RIE names a binary to use instead. It runs only on
// Linux, as does the bootstrap, which Build compiles for linux and this
// machine's architecture (Lambda's is arm64; `make build` builds that).
//
// The tests (through pkg/awstest) and `make invoke` (scripts/invoke) use it.
package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
)

// The emulator's module and the version Install builds. The module proxy
// serves no @latest for it: a new version is pinned here by hand.
const (
	Module  = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	Version = "v0.0.0-20261030222936-bef5c4ba774d"
	// EnvPath names a prebuilt aws-lambda-rie to use instead of building
	// one (a release binary, say, on a machine without network access).
	EnvPath = "AWS_LAMBDA_RIE"
)

// ErrUnsupported is returned off Linux, where neither the emulator nor a
// Linux bootstrap runs.
var ErrUnsupported = errors.New("aws-lambda-rie runs only on Linux")

// BuildFlags are `make build`'s go build flags.
var BuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w"}

// buildFlags are BuildFlags with tags added to lambda.norpc.
func buildFlags(tags ...string) []string {
	flags := slices.Clone(BuildFlags)
	flags[1] = strings.Join(append([]string{flags[1]}, tags...), ",")
	return flags
}

// Build compiles the Lambda main package in dir into out for linux and this
// machine's architecture, with BuildFlags (and the build tags given) and
// without cgo, as `make build` does for linux/arm64.
func Build(ctx context.Context, dir, out string, tags ...string) error {
	return BuildFor(ctx, "linux", dir, out, tags...)
}

// BuildFor is Build for the system goos (on this machine's architecture).
func BuildFor(ctx context.Context, goos, dir, out string, tags ...string) error {
	args := append(append([]string{"build"}, buildFlags(tags...)...), "-o", out, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", dir, goos, runtime.GOARCH, err, out)
	}
	return nil
}

// ToolsDir is where Install puts the emulator: .tools/bin in the checkout
// (git-ignored), else a directory in the user's cache.
func ToolsDir() (string, error) {
	if root, err := checkout.WorkingRoot(); err == nil {
		return filepath.Join(root, ".tools", "bin"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "smartcar-webhook-receiver", "bin"), nil
}

// Path is where Install puts, or finds, the emulator: $AWS_LAMBDA_RIE, else
// a file named for Version in ToolsDir.
func Path() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	dir, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "aws-lambda-rie-"+Version), nil
}

// Install returns the path of aws-lambda-rie at Version, building it with
// `go install` into ToolsDir the first time (a minute at most on a fresh
// machine; the Go module proxy must be reachable). Concurrent callers, such
// as test packages run in parallel, build it once. $AWS_LAMBDA_RIE, when
// set, is used instead.
func Install(ctx context.Context) (string, error) {
	path, err := Path()
	if err != nil {
		return "", err
	}
	if p := os.Getenv(EnvPath); p != "" {
		if !executable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvPath, p)
		}
		return p, nil
	}
	if runtime.GOOS != "linux" {
		return "", ErrUnsupported
	}
	dir := filepath.Dir(path)
	if executable(path) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".aws-lambda-rie.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if executable(path) { // built while this caller waited for the lock
		return path, nil
	}
	tmp, err := os.MkdirTemp(dir, ".aws-lambda-rie-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// With @version, go install ignores the checkout's go.mod and go.work:
	// the emulator's own go.mod pins its dependencies, and this module's
	// require graph does not grow.
	cmd := exec.CommandContext(ctx, "go", "install", Module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", Module, Version, err, out)
	}
	// A rename, so a concurrent reader never sees a half-written file.
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), path); err != nil {
		return "", err
	}
	return path, nil
}

func executable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

// Function describes the function the emulator runs.
type Function struct {
	// Bootstrap is the function's executable, built for linux and this
	// machine's architecture (Build). It runs in its own directory, as
	// Lambda runs it in /var/task.
	Bootstrap string
	// Name is AWS_LAMBDA_FUNCTION_NAME.
	Name string
	// Env is the function's environment: the emulator hands its own to the
	// function. The Lambda variables (AWS_LAMBDA_FUNCTION_NAME, _TIMEOUT,
	// _MEMORY_SIZE, AWS_LAMBDA_RUNTIME_API) are set by Start.
	Env []string
	// Timeout is the function's timeout (the emulator's default: 300 s),
	// rounded up to whole seconds. The emulator answers a function that
	// overruns it with "Task timed out".
	Timeout time.Duration
	// MemoryMB is reported in REPORT lines only (the emulator's default: 3008).
	MemoryMB int
	// Output receives the function's stdout and stderr, the emulator's
	// START, END and REPORT lines, and its own log lines; nil discards them.
	Output io.Writer
	// LogLevel is the emulator's own (--log-level): "error" unless set, as
	// SAM CLI runs it.
	LogLevel string
}

// Emulator is a running aws-lambda-rie with one function.
type Emulator struct {
	cmd     *exec.Cmd
	addr    string
	done    chan struct{}
	waitErr error
	stop    sync.Once
	mu      sync.Mutex // one invocation at a time, as one Lambda instance
}

// errExited marks an emulator that ended before it listened: most likely
// one of its ports was taken in the meantime, so Start tries again.
var errExited = errors.New("aws-lambda-rie exited before listening")

// Start runs the emulator at path with fn on free 127.0.0.1 ports and
// returns once it accepts invocations. The function itself starts with the
// first invocation, as in Lambda. Stop ends both.
func Start(ctx context.Context, path string, fn Function) (*Emulator, error) {
	if runtime.GOOS != "linux" {
		return nil, ErrUnsupported
	}
	bootstrap, err := filepath.Abs(fn.Bootstrap)
	if err != nil {
		return nil, err
	}
	if !executable(bootstrap) {
		return nil, fmt.Errorf("bootstrap %s is not an executable file", bootstrap)
	}
	fn.Bootstrap = bootstrap
	for attempt := 1; ; attempt++ {
		e, err := start(ctx, path, fn)
		if err == nil || !errors.Is(err, errExited) || attempt == 3 || ctx.Err() != nil {
			return e, err
		}
	}
}

func start(ctx context.Context, path string, fn Function) (*Emulator, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	addr, api := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	level := fn.LogLevel
	if level == "" {
		level = "error"
	}
	// Flags before the bootstrap: the emulator takes every argument after
	// it as the bootstrap's command line.
	cmd := exec.Command(path, "--log-level", level,
		"--runtime-interface-emulator-address", addr, "--runtime-api-address", api, fn.Bootstrap)
	cmd.Dir = filepath.Dir(fn.Bootstrap)
	cmd.Env = slices.Clone(fn.Env)
	name := fn.Name
	if name == "" {
		name = "function"
	}
	cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_NAME="+name, "AWS_LAMBDA_FUNCTION_VERSION=$LATEST")
	if fn.Timeout > 0 {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(math.Ceil(fn.Timeout.Seconds()))))
	}
	if fn.MemoryMB > 0 {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB))
	}
	out := fn.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// The bootstrap inherits the emulator's output: should it outlive a
	// killed emulator, Wait still returns.
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	e := &Emulator{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()
	// Both ports: the Runtime API listens in a goroutine of its own, and
	// exits the emulator if it cannot.
	if err := e.awaitListening(ctx, 10*time.Second, addr, api); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) awaitListening(ctx context.Context, limit time.Duration, addrs ...string) error {
	deadline := time.Now().Add(limit)
	for _, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-e.done:
				return fmt.Errorf("%w on %s (%v)", errExited, a, e.waitErr)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("aws-lambda-rie not listening on %s within %v", a, limit)
			}
		}
	}
	return nil
}

// freePorts returns n ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// URL is the emulator's invoke URL.
func (e *Emulator) URL() string {
	return "http://" + e.addr + "/2015-03-31/functions/function/invocations"
}

// Pid is the emulator's process id.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Result is the emulator's answer to one invocation.
type Result struct {
	// Status is the emulator's HTTP status: 200, also for a function that
	// returned an error; 502 when its init or the invocation failed
	// (an init error, a crash).
	Status int
	// Payload is the function's response, or the error it reported.
	Payload []byte
	// FunctionError is the error's type when the function failed (what it
	// posted to .../error or /runtime/init/error, e.g. Runtime.InitError;
	// Runtime.ExitError for a crash; Sandbox.Timedout), else empty.
	FunctionError string
}

// Invoke hands payload to the function, as `sam local invoke` does, and
// returns its answer. requestID, unless empty, is the invocation's request
// id (X-Amzn-RequestId), which the function's log lines carry.
func (e *Emulator) Invoke(ctx context.Context, requestID string, payload []byte) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL(), bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	if requestID != "" {
		req.Header.Set("X-Amzn-RequestId", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	return Result{Status: resp.StatusCode, Payload: body, FunctionError: functionError(resp.StatusCode, body)}, nil
}

// functionError tells a function's error from its response. The emulator
// drops Lambda's X-Amz-Function-Error header, so the body is read: an error
// is a JSON object of errorType and errorMessage (and perhaps stackTrace)
// alone, which neither function returns as a response.
func functionError(status int, body []byte) string {
	if bytes.HasPrefix(body, []byte("Task timed out")) {
		return "Sandbox.Timedout"
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		var errorType string
		_, hasMessage := fields["errorMessage"]
		delete(fields, "stackTrace")
		if json.Unmarshal(fields["errorType"], &errorType) == nil && hasMessage && len(fields) == 2 {
			return errorType
		}
	}
	if status != http.StatusOK {
		return "Emulator." + strconv.Itoa(status)
	}
	return ""
}

// Stop ends the emulator, which first stops the function (SIGTERM, then
// SIGKILL after 2 s). Should the emulator not exit within 5 s, it and the
// processes it started are killed. It is safe to call more than once.
func (e *Emulator) Stop() {
	e.stop.Do(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
			return
		case <-time.After(5 * time.Second):
		}
		// The bootstrap runs in a process group of its own: find it by
		// its parent.
		for _, pid := range children(e.cmd.Process.Pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = e.cmd.Process.Kill()
		<-e.done
	})
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, ent := range entries {
		child, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
