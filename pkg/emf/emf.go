// Package emf writes CloudWatch metrics in the Embedded Metric Format: one
// JSON log line per batch of values, which CloudWatch Logs turns into
// metrics. Nothing is sent over the network, so it is safe on a request path.
package emf

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"time"
)

// Units used by this project.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
)

// Metric is one value.
type Metric struct {
	Name  string
	Value float64
	Unit  string
}

// Writer emits metrics under one namespace and one set of dimensions. It is
// safe for concurrent use; each Emit writes a single line.
type Writer struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	dims      map[string]string
	dimNames  []string
	now       func() time.Time
}

// NewWriter returns a Writer that writes to w. Every line carries dims both as
// CloudWatch dimensions and as plain fields, so Logs Insights can filter on
// them too.
func NewWriter(w io.Writer, namespace string, dims map[string]string) *Writer {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	slices.Sort(names)
	return &Writer{w: w, namespace: namespace, dims: dims, dimNames: names, now: time.Now}
}

type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// Emit writes one line with metrics. Values of a repeated name are summed.
// It does nothing when metrics is empty.
func (w *Writer) Emit(metrics ...Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	line := make(map[string]any, len(w.dims)+len(metrics)+1)
	for k, v := range w.dims {
		line[k] = v
	}
	defs := make([]definition, 0, len(metrics))
	for _, m := range metrics {
		if sum, ok := line[m.Name].(float64); ok {
			line[m.Name] = sum + m.Value
			continue
		}
		line[m.Name] = m.Value
		defs = append(defs, definition{Name: m.Name, Unit: m.Unit})
	}
	line["_aws"] = metadata{
		Timestamp: w.now().UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  w.namespace,
			Dimensions: [][]string{w.dimNames},
			Metrics:    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(b)
	return err
}
