// Package publisher delivers the vehicle state's stored changes to users'
// systems: it takes the vehicle-state table's stream records in order,
// derives the domain events they make (pkg/domainevents) and puts them on
// an event bus.
//
// The stream holds only what was stored, and every stored change, so a
// change is published at least once and nothing is published for a
// change that was not stored. A batch whose events are not all accepted
// reports the first record they came from: the stream source retries the
// batch from there (events published before it again: consumers dedupe on
// their idempotencyKey), and past its retries hands the batch to its
// on-failure destination.
//
// It knows nothing of Lambda, DynamoDB or EventBridge: adapters
// (streamlambda, dynamostore, eventbus) provide the records, the stored
// vehicle and the bus.
package publisher

import (
	"context"
	"log/slog"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/eventbus"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Metric names, emitted as CloudWatch Embedded Metric Format lines.
const (
	MetricDomainEventsPublished = "DomainEventsPublished"
	MetricPublishFailures       = "PublishFailures"
)

// Record is one record of the vehicle-state table's stream, decoded.
type Record struct {
	SequenceNumber string
	Change         vehicle.EntryChange
}

// Bus puts entries on the event bus and returns one error per entry, nil
// where it was accepted.
type Bus interface {
	Publish(ctx context.Context, entries []eventbus.Entry) []error
}

// VehicleReader reads a vehicle's stored state.
type VehicleReader interface {
	GetVehicle(ctx context.Context, vehicleID string) (*vehicle.State, error)
}

// MetricsWriter emits metrics.
type MetricsWriter interface {
	Emit(metrics ...emf.Metric) error
}

// Publisher publishes the domain events of stream records.
type Publisher struct {
	bus     Bus
	store   VehicleReader
	log     *slog.Logger
	metrics MetricsWriter
}

// New returns a Publisher putting events on bus; store tells whether a
// vehicle still needs re-authentication when one of its errors is
// resolved. log and metrics may be nil.
func New(bus Bus, store VehicleReader, log *slog.Logger, metrics MetricsWriter) *Publisher {
	log = logging.OrDiscard(log)
	if metrics == nil {
		metrics = emf.Discard{}
	}
	return &Publisher{bus: bus, store: store, log: log, metrics: metrics}
}

// Publish derives and publishes the domain events of records, which are
// in stream order, and returns the sequence number of the first record
// whose events were not all accepted; "" when all were.
func (p *Publisher) Publish(ctx context.Context, records []Record) (failedFrom string) {
	if len(records) == 0 {
		return ""
	}
	changes := make([]vehicle.EntryChange, len(records))
	for i, r := range records {
		changes[i] = r.Change
	}
	evs, err := domainevents.Derive(ctx, changes, reauth{p.store})
	if err != nil {
		p.log.ErrorContext(ctx, "publish.derive_failed", "records", len(records), "error", err.Error())
		p.emit(0, len(records))
		return records[0].SequenceNumber
	}
	var entries []eventbus.Entry
	var sent []domainevents.Event // the events of entries
	first := len(records)         // the first record of an event not published
	for _, ev := range evs {
		detail, err := ev.DetailJSON()
		if err != nil { // never for what Derive makes; fail its records all the same
			first = min(first, minOf(ev.From))
			continue
		}
		entries = append(entries, eventbus.Entry{DetailType: ev.DetailType, Detail: detail, Time: ev.Time})
		sent = append(sent, ev)
	}
	published, failed := 0, 0
	for i, err := range p.bus.Publish(ctx, entries) {
		if err == nil {
			published++
			continue
		}
		failed++
		ev := sent[i]
		first = min(first, minOf(ev.From))
		// Ids and kinds only: never a signal's value.
		p.log.ErrorContext(ctx, "publish.failed", "detailType", ev.DetailType, "vehicleId", ev.Detail.VehicleID,
			"eventId", ev.Detail.EventID, "idempotencyKey", ev.Detail.IdempotencyKey, "error", err.Error())
	}
	p.emit(published, failed)
	if first < len(records) {
		return records[first].SequenceNumber
	}
	return ""
}

func (p *Publisher) emit(published, failed int) {
	var ms []emf.Metric
	if published > 0 {
		ms = append(ms, emf.Metric{Name: MetricDomainEventsPublished, Value: float64(published), Unit: emf.Count})
	}
	if failed > 0 {
		ms = append(ms, emf.Metric{Name: MetricPublishFailures, Value: float64(failed), Unit: emf.Count})
	}
	if len(ms) > 0 {
		_ = p.metrics.Emit(ms...)
	}
}

func minOf(xs []int) int {
	m := int(^uint(0) >> 1)
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

// reauth answers whether a vehicle still needs re-authentication from its
// stored state.
type reauth struct{ store VehicleReader }

func (r reauth) NeedsReauth(ctx context.Context, vehicleID string) (bool, error) {
	st, err := r.store.GetVehicle(ctx, vehicleID)
	if err != nil {
		return false, err
	}
	return st.NeedsReauth, nil
}
