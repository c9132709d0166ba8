//go:build !linux

package rie

import (
	"context"
	"syscall"
)

// Off Linux, Install and Start return ErrUnsupported before these are used.

func sysProcAttr() *syscall.SysProcAttr { return nil }

func lock(context.Context, string) (func(), error) { return nil, ErrUnsupported }
