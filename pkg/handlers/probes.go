//go:build !handlertest

package handlers

import "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"

// probes are the handlers tests register (built with -tags handlertest, see
// probes_handlertest.go) to see that every path runs Register's handlers;
// none in any other build.
func probes(Deps) []processor.Handler { return nil }
