// Package loggingtest collects the JSON log lines (and EMF metric lines)
// that functions write, for tests to read back.
package loggingtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Buffer is an io.Writer safe for several goroutines, as stdout is shared
// by a function's logger and its metrics writer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (w *Buffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// String returns everything written.
func (w *Buffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Len returns how many bytes were written.
func (w *Buffer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Len()
}

// Count returns how many log lines carry message msg.
func (w *Buffer) Count(msg string) int {
	return strings.Count(w.String(), `"message":`+quote(msg))
}

// Lines returns the decoded log lines whose message is msg.
func (w *Buffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(w.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
