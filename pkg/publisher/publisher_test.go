package publisher_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/eventbus"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// bus accepts every entry but those whose detail names a vehicle in fail.
type bus struct {
	fail map[string]bool
	got  []eventbus.Entry
}

func (b *bus) Publish(_ context.Context, entries []eventbus.Entry) []error {
	errs := make([]error, len(entries))
	for i, e := range entries {
		for v := range b.fail {
			if strings.Contains(string(e.Detail), `"vehicleId":"`+v+`"`) {
				errs[i] = errors.New("ThrottlingException: rate exceeded")
			}
		}
		if errs[i] == nil {
			b.got = append(b.got, e)
		}
	}
	return errs
}

// store says every vehicle has no open reauth error, or fails.
type store struct{ err error }

func (s store) GetVehicle(_ context.Context, id string) (*vehicle.State, error) {
	if s.err != nil {
		return nil, s.err
	}
	return vehicle.New(id), nil
}

func signal(seq, vehicleID, eventID, code string, value int) publisher.Record {
	return publisher.Record{SequenceNumber: seq, Change: vehicle.EntryChange{VehicleID: vehicleID, Signal: &vehicle.SignalChange{Code: code,
		New: &vehicle.Signal{Status: "SUCCESS", Body: map[string]any{"value": value}, OEMUpdatedAt: 1767225600000, OrderedAt: 1767225600000, EventID: eventID}}}}
}

func resolved(seq, vehicleID, eventID string) publisher.Record {
	e := vehicle.Error{Type: "PERMISSION", State: vehicle.ErrorActive, ResolutionType: "REAUTHENTICATE", UpdatedAt: 1, OrderedAt: 1, EventID: "e0"}
	r := e
	r.State, r.EventID, r.OrderedAt, r.UpdatedAt = vehicle.ErrorResolved, eventID, 2, 2
	return publisher.Record{SequenceNumber: seq, Change: vehicle.EntryChange{VehicleID: vehicleID, Error: &vehicle.ErrorChange{Key: "PERMISSION:null", Old: &e, New: &r}}}
}

func TestPublish(t *testing.T) {
	records := []publisher.Record{
		signal("100", "v1", "e1", "odometer", 7),
		signal("200", "v2", "e2", "odometer", 8),
		signal("300", "v1", "e3", "odometer", 9),
		resolved("400", "v3", "e4"),
	}
	tests := []struct {
		name       string
		fail       map[string]bool
		storeErr   error
		wantFailed string
		wantTypes  string // detail-types published
		wantMetric string
	}{
		{"all published", nil, nil, "", "vehicle.signals.changed vehicle.signals.changed vehicle.signals.changed vehicle.error.resolved vehicle.reauth.cleared", `"DomainEventsPublished":5`},
		{"a failure reports the first record behind it", map[string]bool{"v2": true}, nil, "200", "vehicle.signals.changed vehicle.signals.changed vehicle.error.resolved vehicle.reauth.cleared", `"PublishFailures":1`},
		{"the earliest of several", map[string]bool{"v1": true, "v3": true}, nil, "100", "vehicle.signals.changed", `"PublishFailures":4`},
		{"a store failure fails the batch", nil, errors.New("throttled"), "100", "", `"PublishFailures":4`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &bus{fail: tt.fail}
			logs, metrics := &loggingtest.Buffer{}, &loggingtest.Buffer{}
			p := publisher.New(b, store{tt.storeErr}, logging.New(logs, slog.LevelDebug), emf.NewWriter(metrics, "SmartcarWebhooks", map[string]string{"Service": "publisher"}))
			if got := p.Publish(context.Background(), records); got != tt.wantFailed {
				t.Errorf("failed from %q, want %q", got, tt.wantFailed)
			}
			var types []string
			for _, e := range b.got {
				types = append(types, e.DetailType)
			}
			if got := strings.Join(types, " "); got != tt.wantTypes {
				t.Errorf("published %s, want %s", got, tt.wantTypes)
			}
			if !strings.Contains(metrics.String(), tt.wantMetric) {
				t.Errorf("metrics %s, want %s", metrics, tt.wantMetric)
			}
			// Failures are logged by ids, never with a signal's value.
			if strings.Contains(logs.String(), `"value"`) || (tt.fail != nil && logs.Count("publish.failed") == 0) {
				t.Errorf("logs:\n%s", logs)
			}
		})
	}
	if got := publisher.New(&bus{}, store{}, nil, nil).Publish(context.Background(), nil); got != "" {
		t.Errorf("an empty batch failed from %q", got)
	}
}
