//go:build !linux

package moto

import "syscall"

// sysProcAttr puts moto_server in a process group of its own: Stop ends
// the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
