package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

// TestDevRunsRegisteredHandlers runs `make dev` (this command, built with
// -tags handlertest, so that pkg/handlers registers a probe that logs
// handler.probe_ran), delivers a signed VEHICLE_STATE to its receiver and
// waits for the probe's line: a handler registered in pkg/handlers runs
// under `make dev`. Then it interrupts it, as Ctrl-C does, and wants a
// clean exit, with the emulator it started stopped.
func TestDevRunsRegisteredHandlers(t *testing.T) {
	if _, err := moto.Tool("moto_server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := awstest.BuildCommand(t, "handlertest")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-port", fmt.Sprint(port), "-state", filepath.Join(t.TempDir(), "stack.json"))
	cmd.Env = append(os.Environ(), "SMARTCAR_AMT="+events.TestToken)
	var stdout, stderr loggingtest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() { // a failed test still stops what make dev started
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill() // moto_server stops with it (moto.Start)
			<-done
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, receiver.PathWebhook)
	client := &http.Client{Timeout: 5 * time.Second}
	body := delivery.Rewrite{DeliveryID: delivery.NewID(), DeliveredAt: time.Now()}.Apply(events.MustRead("bodies/vehicle_state.json"))
	for {
		r, err := delivery.Send(ctx, client, url, events.TestToken, body)
		if err == nil && r.OK() {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("make dev exited before serving: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("make dev never acknowledged the delivery: %v %+v\n%s", err, r, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	const probe = `"message":"handler.probe_ran","eventId":"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"`
	for !strings.Contains(stdout.String(), probe) {
		select {
		case <-ctx.Done():
			t.Fatalf("the registered handler did not run under make dev:\n%s\n%s", stdout.String(), stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Errorf("make dev exited with %v after Ctrl-C, want 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("make dev did not stop within 30 s of Ctrl-C\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped moto_server (pid") {
		t.Errorf("make dev did not say it stopped the emulator:\n%s", stderr.String())
	}
}

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }
