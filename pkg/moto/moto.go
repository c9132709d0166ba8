// Package moto starts and stops moto_server, the AWS emulator used by the
// integration tests and the local stack. The server always listens on
// 127.0.0.1 and runs in its own process group, so Stop ends everything it
// started.
package moto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// InstallHint tells how to install the emulator (`make tools` does it).
const InstallHint = `python3 -m venv .tools/venv && .tools/venv/bin/pip install "moto[server]==5.2.1"`

// Server is a running moto_server.
type Server struct {
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
}

var listening = regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)

// ErrNotInstalled is returned by Start when moto is not installed.
var ErrNotInstalled = errors.New("moto_server is not installed (" + InstallHint + ")")

// Start runs moto_server on 127.0.0.1 at port (0 for a free one) and
// returns once it answers. Logs is where the server's own output goes (nil
// to discard it).
func Start(port int, logs io.Writer) (*Server, error) {
	args := []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)}
	var cmd *exec.Cmd
	if path, err := Tool("moto_server"); err == nil {
		cmd = exec.Command(path, args...)
	} else if exec.Command("python3", "-c", "import moto.server").Run() == nil {
		// pip installed moto where its script is not on PATH.
		cmd = exec.Command("python3", append([]string{"-m", "moto.server"}, args...)...)
	} else {
		return nil, ErrNotInstalled
	}
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			if logs != nil {
				fmt.Fprintln(logs, sc.Text())
			}
		}
	}()
	select {
	case s.Endpoint = <-found:
	case <-s.done:
		s.Stop()
		return nil, fmt.Errorf("moto_server exited before listening (is port %d free?)", port)
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, errors.New("moto_server did not report its address within 60s")
	}
	if err := waitReady(s.Endpoint, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the server and its process group and waits for it.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = s.cmd.Wait()
	s.cmd = nil
}

func waitReady(endpoint string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server at %s not ready: %w", endpoint, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
