package emf_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
)

func TestEmit(t *testing.T) {
	var buf bytes.Buffer
	w := emf.NewWriter(&buf, "SmartcarWebhooks", map[string]string{"Service": "receiver"})
	if err := w.Emit(); err != nil || buf.Len() != 0 {
		t.Fatalf("empty Emit wrote %q, %v", buf.String(), err)
	}
	err := w.Emit(
		emf.Metric{Name: "WebhooksReceived", Value: 1, Unit: emf.Count},
		emf.Metric{Name: "SignatureFailures", Value: 1, Unit: emf.Count},
		emf.Metric{Name: "WebhooksReceived", Value: 2, Unit: emf.Count},
	)
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Service           string
		WebhooksReceived  float64
		SignatureFailures float64
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want exactly one line, got %q", buf.String())
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.AWS.Timestamp == 0 || len(line.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("bad _aws metadata: %s", buf.String())
	}
	d := line.AWS.CloudWatchMetrics[0]
	if d.Namespace != "SmartcarWebhooks" || len(d.Dimensions) != 1 || len(d.Dimensions[0]) != 1 || d.Dimensions[0][0] != "Service" {
		t.Errorf("bad directive: %+v", d)
	}
	if len(d.Metrics) != 2 || d.Metrics[0].Name != "WebhooksReceived" || d.Metrics[0].Unit != "Count" {
		t.Errorf("bad metric definitions: %+v", d.Metrics)
	}
	if line.Service != "receiver" || line.WebhooksReceived != 3 || line.SignatureFailures != 1 {
		t.Errorf("bad values: %s", buf.String())
	}
}

// TestEmitEscapes checks that names and values needing JSON escapes still
// give one valid line with the exact strings.
func TestEmitEscapes(t *testing.T) {
	for _, v := range []string{`plain`, `quo"te`, `back\slash`, "tab\there", "é<&>", "\x00"} {
		var buf bytes.Buffer
		w := emf.NewWriter(&buf, "NS "+v, map[string]string{"Dim": v})
		if err := w.Emit(emf.Metric{Name: v, Value: 1, Unit: emf.Count}); err != nil {
			t.Fatal(err)
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%q: not JSON: %v: %s", v, err, buf.String())
		}
		if line["Dim"] != v || line[v] != 1.0 {
			t.Errorf("%q: dimension %q, value %v in %s", v, line["Dim"], line[v], buf.String())
		}
	}
}
