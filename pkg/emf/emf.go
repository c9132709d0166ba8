// Package emf writes CloudWatch metrics in the Embedded Metric Format: one
// JSON log line per batch of values, which CloudWatch Logs turns into
// metrics. Nothing is sent over the network, so it is safe on a request path.
package emf

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultNamespace is the CloudWatch namespace of this project's metrics.
const DefaultNamespace = "SmartcarWebhooks"

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
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	// Precomputed JSON: the directive's namespace and dimensions, and the
	// dimension fields.
	directive string
	fields    string
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
	var fields []byte
	for _, k := range names {
		fields = appendString(fields, k)
		fields = append(fields, ':')
		fields = appendString(fields, dims[k])
		fields = append(fields, ',')
	}
	dimNames, _ := json.Marshal(names)
	directive := `"Namespace":` + string(appendString(nil, namespace)) + `,"Dimensions":[` + string(dimNames) + `]`
	return &Writer{w: w, now: time.Now, directive: directive, fields: string(fields)}
}

// Emit writes one line with metrics. Values of a repeated name are summed.
// It does nothing when metrics is empty.
func (w *Writer) Emit(metrics ...Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	// Sum repeated names, keeping the order of first appearance.
	merged := make([]Metric, 0, len(metrics))
	for _, m := range metrics {
		if i := slices.IndexFunc(merged, func(x Metric) bool { return x.Name == m.Name }); i >= 0 {
			merged[i].Value += m.Value
			continue
		}
		merged = append(merged, m)
	}

	b := make([]byte, 0, 256)
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, w.now().UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{`...)
	b = append(b, w.directive...)
	b = append(b, `,"Metrics":[`...)
	for i, m := range merged {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, m.Name)
		if m.Unit != "" {
			b = append(b, `,"Unit":`...)
			b = appendString(b, m.Unit)
		}
		b = append(b, '}')
	}
	b = append(b, "]}]},"...)
	b = append(b, w.fields...)
	for i, m := range merged {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.Name)
		b = append(b, ':')
		b = strconv.AppendFloat(b, m.Value, 'g', -1, 64)
	}
	b = append(b, "}\n"...)

	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(b)
	return err
}

// Discard drops metrics: the default where none are wanted.
type Discard struct{}

// Emit implements the writers' interface and does nothing.
func (Discard) Emit(...Metric) error { return nil }

// appendString appends s as a JSON string. Names and units are printable
// ASCII, which needs no escaping; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// WithoutMetrics returns a writer passing on to w every write but a
// metric line: a tool running a function's code in an operator's shell
// keeps its log lines and drops the metrics, which would reach no
// CloudWatch there. Each write is one line, as Writer and slog write.
func WithoutMetrics(w io.Writer) io.Writer { return withoutMetrics{w} }

type withoutMetrics struct{ w io.Writer }

func (f withoutMetrics) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte(`{"_aws":`)) {
		return len(p), nil
	}
	return f.w.Write(p)
}
