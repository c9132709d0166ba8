package devstack_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents/domaineventstest"
)

// TestDomainEventsEndToEnd: webhooks sent over HTTP become, through the
// state table's stream, the domain events of what was stored, on the bus
// and in a subscriber's queue: the changed signals, errors raised and
// resolved, reauth required and cleared; nothing for a duplicate, a stale
// report or a rewrite that changes nothing.
func TestDomainEventsEndToEnd(t *testing.T) {
	p := startPipeline(t, "bus")
	steps := []struct {
		name string
		body []byte
		want []string // the events it publishes, sorted
	}{
		{"a new vehicle's signals", stateEvent("s1", "v-bus", 100, 1767300000000), []string{"vehicle.signals.changed s1 odometer-traveleddistance"}},
		{"a newer value", stateEvent("s2", "v-bus", 150, 1767300060000), []string{"vehicle.signals.changed s2 odometer-traveleddistance"}},
		{"a stale one", stateEvent("s0", "v-bus", 50, 1767200000000), nil},
		{"Smartcar's retry of s2", stateEvent("s2", "v-bus", 150, 1767300060000), nil},
		{"errors raised", events.MustRead("bodies/vehicle_error.json"), []string{
			"vehicle.error.raised 7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57 PERMISSION:null",
			"vehicle.error.raised 7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57 VEHICLE_STATE:UNREACHABLE",
			"vehicle.reauth.required 7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57 PERMISSION:null",
		}},
		{"errors resolved", []byte(strings.ReplaceAll(strings.Replace(string(events.MustRead("bodies/vehicle_error.json")),
			"7e9a1c3d-5b7f-4d2e-9a4c-6b8d0f2a4c57", "r1", 1), `"state":"ERROR"`, `"state":"RESOLVED"`)), []string{
			"vehicle.error.resolved r1 PERMISSION:null",
			"vehicle.error.resolved r1 VEHICLE_STATE:UNREACHABLE",
			"vehicle.reauth.cleared r1 PERMISSION:null",
		}},
	}
	processed := 0
	for _, st := range steps {
		p.deliver(t, st.body)
		processed++
		eventually(t, 30*time.Second, st.name+" processed", func() (bool, string) {
			n := p.logs.Count("processing.succeeded") + p.logs.Count("processing.duplicate")
			return n >= processed, fmt.Sprintf("%d of %d processed", n, processed)
		})
		// And nothing more, once the stream has surely been read.
		got := p.published(t, st.name+" published", len(st.want), func(ev domaineventstest.BusEvent) {
			if ev.Source != "smartcar-webhook-receiver" || ev.Detail.IdempotencyKey == "" {
				t.Errorf("event %+v", ev)
			}
			if ev.Detail.VehicleID != "v-bus" && ev.Detail.VehicleID != exampleVehicle {
				t.Errorf("event of vehicle %s", ev.Detail.VehicleID)
			}
		})
		if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Errorf("%s published\n  %s\nwant\n  %s", st.name, strings.Join(got, "\n  "), strings.Join(st.want, "\n  "))
		}
	}
}
