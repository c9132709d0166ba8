// Package handlers is the one place for your business logic. The
// processor.Handler values Register returns run for every event, in order,
// after the event is claimed and before the vehicle-state merge, in every
// processor this project builds: the Lambda (lambdas/processor), `make dev`,
// `make invoke` and `make bench`. All of them are built by
// functions.NewProcessor, which calls Register once per container.
//
// A handler's side effect happens once per event: registering any turns on
// the processor's claim in the events table (two writes per event; see the
// README, "Exactly-once effects"). Return an error to have the event
// retried, or processor.Permanent(err) to park it in the dead-letter queue.
package handlers

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

// Deps are what handlers are built from, once per container.
type Deps struct {
	// AWS is the processor's AWS configuration: build your clients from it
	// (it points at the local emulator under `make dev`).
	AWS aws.Config
	// Getenv reads the processor's environment: the Lambda's variables, or
	// the local stack's under `make dev` and `make invoke`.
	Getenv func(string) string
	// Logger writes JSON lines at the processor's LOG_LEVEL.
	Logger *slog.Logger
}

// Register returns the handlers every processor runs, in order. None by
// default. For example:
//
//	notify := processor.HandlerFunc(func(ctx context.Context, ev smartcar.Event, _ processor.Claim) error {
//		for _, s := range ev.Signals {
//			if s.Code == "tractionbattery-stateofcharge" && s.Body["value"] != nil {
//				return notifier.BatteryLevel(ctx, ev.EventID, ev.VehicleID, s.Body["value"])
//			}
//		}
//		return nil
//	})
//	return append(probes(deps), notify), nil
func Register(deps Deps) ([]processor.Handler, error) {
	return probes(deps), nil
}
