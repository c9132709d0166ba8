package moto

import "syscall"

// sysProcAttr puts moto_server in a process group of its own (Stop ends
// the group: moto may start helpers) and has it stopped with the process
// that started it, should that one die without calling Stop (a `make dev`
// or a test binary killed outright), so that no emulator is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
