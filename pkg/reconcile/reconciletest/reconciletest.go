// Package reconciletest has in-memory fakes of what pkg/reconcile
// consumes: the marks of vehicles reconciled and a metrics sink.
package reconciletest

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
)

// Marks is an in-memory reconcile.Marks. The zero value is ready.
type Marks struct {
	mu    sync.Mutex
	at    map[string]time.Time
	keeps map[string]time.Duration
}

// Reconciled implements reconcile.Marks.
func (m *Marks) Reconciled(_ context.Context, vehicleIDs []string) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for _, id := range vehicleIDs {
		if at, ok := m.at[id]; ok {
			out[id] = at
		}
	}
	return out, nil
}

// MarkReconciled implements reconcile.Marks.
func (m *Marks) MarkReconciled(_ context.Context, vehicleID string, at time.Time, keep time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at, m.keeps = map[string]time.Time{}, map[string]time.Duration{}
	}
	m.at[vehicleID], m.keeps[vehicleID] = at, keep
	return nil
}

// All returns every mark.
func (m *Marks) All() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.at)
}

// Keep returns how long the vehicle's mark was to be kept.
func (m *Marks) Keep(vehicleID string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keeps[vehicleID]
}

// Metrics sums what is emitted through it, by kind ("" for the
// reconciler's own writer) and name. The zero value is ready.
type Metrics struct {
	mu   sync.Mutex
	sums map[string]float64
}

// Writer returns the writer of kind's metrics: Writer("") is
// Reconciler.Metrics, Writer as a func Reconciler.APIErrors.
func (m *Metrics) Writer(kind string) Writer { return Writer{m: m, kind: kind} }

// Sum returns the total of the name emitted under kind.
func (m *Metrics) Sum(kind, name string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sums[kind+"/"+name]
}

// Writer is one kind's writer.
type Writer struct {
	m    *Metrics
	kind string
}

// Emit implements reconcile.MetricsWriter.
func (w Writer) Emit(metrics ...emf.Metric) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.m.sums == nil {
		w.m.sums = map[string]float64{}
	}
	for _, x := range metrics {
		w.m.sums[w.kind+"/"+x.Name] += x.Value
	}
	return nil
}
