package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal: the controlling side, where the test
// types, and the terminal the tool reads.
func openPTY(t *testing.T) (control, tty *os.File) {
	t.Helper()
	// Non-blocking, so that the runtime polls it and read deadlines work.
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	control = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { control.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock pty: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("pty number: %v", errno)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return control, tty
}

func echoing(t *testing.T, f *os.File) bool {
	t.Helper()
	var tio syscall.Termios
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); errno != 0 {
		t.Fatalf("tcgets: %v", errno)
	}
	return tio.Lflag&syscall.ECHO != 0
}

// TestReadValueAtATerminal: typed at a terminal, the value is read after a
// prompt on stderr with echo off, and the terminal's echo is restored.
func TestReadValueAtATerminal(t *testing.T) {
	control, tty := openPTY(t)
	if !echoing(t, tty) {
		t.Fatal("a new terminal does not echo")
	}
	type result struct {
		value string
		err   error
	}
	done := make(chan result, 1)
	var stderr bytes.Buffer
	go func() {
		v, err := readValue(context.Background(), tty, &stderr, "Token: ")
		done <- result{v, err}
	}()
	// Type only once echo is off, as a person would after the prompt.
	for deadline := time.Now().Add(10 * time.Second); echoing(t, tty); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
	}
	if _, err := control.WriteString("tok-typed\n"); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the value was not read")
	}
	if r.err != nil || r.value != "tok-typed" {
		t.Fatalf("read %q, %v", r.value, r.err)
	}
	if stderr.String() != "Token: \n" {
		t.Errorf("stderr %q, want the prompt and a newline", stderr.String())
	}
	if !echoing(t, tty) {
		t.Error("echo left off")
	}
	// What the terminal showed: nothing of the token.
	if err := control.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	shown := make([]byte, 256)
	n, _ := control.Read(shown)
	if strings.Contains(string(shown[:n]), "tok") {
		t.Errorf("the terminal echoed %q", shown[:n])
	}
}

// TestInterruptAtThePrompt: Ctrl-C at the hidden prompt gives up at once,
// stores nothing and leaves the terminal echoing.
func TestInterruptAtThePrompt(t *testing.T) {
	_, tty := openPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		_, err := readValue(ctx, tty, &stderr, "Token: ")
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); echoing(t, tty); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
	}
	cancel() // what the SIGINT handler does
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("err = %v, want interrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting for the value after the interrupt")
	}
	if !echoing(t, tty) {
		t.Error("echo left off after the interrupt")
	}
}
