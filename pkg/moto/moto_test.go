package moto

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestStopsWithItsParent: a process that started moto_server and dies
// without stopping it (a `make dev` killed outright) leaves no emulator
// behind. The test runs itself as that process.
func TestStopsWithItsParent(t *testing.T) {
	if os.Getenv("MOTO_TEST_PARENT") == "1" {
		srv, err := Start(0, nil)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(srv.Pid())
		time.Sleep(time.Minute) // until killed
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	if _, err := Tool("moto_server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestStopsWithItsParent$")
	parent.Env = append(os.Environ(), "MOTO_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(line[:max(len(line)-1, 0)])
	if err != nil || perr != nil {
		_ = parent.Process.Kill()
		t.Fatalf("parent said %q: %v %v", line, err, perr)
	}
	_ = parent.Process.Kill()
	_ = parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("moto_server (pid %d) outlived the process that started it by 10 s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
