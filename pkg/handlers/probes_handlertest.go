//go:build handlertest

package handlers

import (
	"context"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// ProbeMessage is the line the probe handler logs for every event it runs
// for.
const ProbeMessage = "handler.probe_ran"

// probes, in a build with -tags handlertest, are one handler that logs
// ProbeMessage with the eventId at WARN (so any LOG_LEVEL shows it): the
// tests that build each path (the Lambda's bootstrap, `make dev`, `make
// invoke`) with the tag look for it in their output.
func probes(deps Deps) []processor.Handler {
	log := deps.Logger
	return []processor.Handler{processor.HandlerFunc(func(ctx context.Context, ev smartcar.Event, _ processor.Claim) error {
		log.WarnContext(ctx, ProbeMessage, "eventId", ev.EventID)
		return nil
	})}
}
