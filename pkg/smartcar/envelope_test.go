package smartcar_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name string
		body string
		want smartcar.Envelope
	}{
		{
			name: "v4 verify",
			body: `{"eventId":"e","eventType":"VERIFY","data":{"challenge":"c"},"meta":{"version":"4.0","deliveryId":"d","deliveredAt":1}}`,
			want: smartcar.Envelope{EventID: "e", EventType: "VERIFY", Challenge: "c", DeliveryID: "d", Version: "4.0", DeliveredAt: 1000},
		},
		{
			name: "legacy v2 verify",
			body: `{"version":"2.0","webhookId":"w","eventName":"verify","mode":"test","payload":{"challenge":"c2"}}`,
			want: smartcar.Envelope{EventName: "verify", Challenge: "c2", Mode: "test", Version: "2.0"},
		},
		{
			name: "vehicle id from data.vehicle.id before top level",
			body: `{"eventId":"e","eventType":"VEHICLE_STATE","vehicleId":"top","data":{"vehicle":{"id":"v","make":"M"},"signals":[{"code":"x","body":{"value":[1,{"a":"}"}]}}]},"meta":{"mode":"LIVE"}}`,
			want: smartcar.Envelope{EventID: "e", EventType: "VEHICLE_STATE", VehicleID: "v", Mode: "LIVE"},
		},
		{
			name: "top-level vehicleId when data has none",
			body: `{"eventId":"e","eventType":"VEHICLE_ERROR","vehicleId":"top","data":{"errors":[]}}`,
			want: smartcar.Envelope{EventID: "e", EventType: "VEHICLE_ERROR", VehicleID: "top"},
		},
		{
			name: "legacy event based payload",
			body: `{"version":"2.0","eventName":"eventBased","payload":{"eventId":"p","vehicleId":"pv","eventType":"CHARGING_STARTED"}}`,
			want: smartcar.Envelope{EventID: "p", EventName: "eventBased", VehicleID: "pv", Version: "2.0"},
		},
		{
			name: "wrong types and nulls are absent",
			body: `{"eventId":5,"eventType":null,"data":"x","meta":[1,2],"vehicleId":{"id":"no"}}`,
			want: smartcar.Envelope{},
		},
		{
			name: "escapes decoded",
			body: `{"eventId":"a\"b\\","eventType":"VEHICLE_\u0053TATE","data":{"vehicle":{"id":"caf\u00e9"}}}`,
			want: smartcar.Envelope{EventID: `a"b\`, EventType: "VEHICLE_STATE", VehicleID: "café"},
		},
		{
			name: "white space everywhere",
			body: " {\n \"eventId\" : \"e\" ,\t\"meta\" : { \"mode\" : \"TEST\" } } \n",
			want: smartcar.Envelope{EventID: "e", Mode: "TEST"},
		},
		{
			name: "later duplicate key wins",
			body: `{"eventId":"a","eventId":"b","data":{"vehicle":{"id":"v1"}},"data":{}}`,
			want: smartcar.Envelope{EventID: "b"},
		},
		{name: "empty object", body: `{}`},
		{
			name: "deliveredAt in epoch milliseconds",
			body: `{"eventId":"e","meta":{"deliveredAt":1761896351529,"mode":"LIVE"}}`,
			want: smartcar.Envelope{EventID: "e", Mode: "LIVE", DeliveredAt: 1761896351529},
		},
		{
			name: "deliveredAt as an ISO-8601 string",
			body: `{"meta":{"deliveredAt":"2025-07-31T19:38:42.332Z"}}`,
			want: smartcar.Envelope{DeliveredAt: 1753990722332},
		},
		{
			name: "deliveredAt in epoch seconds",
			body: `{"meta":{"deliveredAt":1700000000}}`,
			want: smartcar.Envelope{DeliveredAt: 1700000000000},
		},
		{
			name: "deliveredAt as a numeric string, with escapes",
			body: `{"meta":{"deliveredAt":"\u0031761896351529"}}`,
			want: smartcar.Envelope{DeliveredAt: 1761896351529},
		},
		{
			name: "deliveredAt as a float and with an exponent",
			body: `{"meta":{"deliveredAt":1.761896351529e12}}`,
			want: smartcar.Envelope{DeliveredAt: 1761896351529},
		},
		{
			name: "unreadable deliveredAt is 0",
			body: `{"meta":{"deliveredAt":"yesterday","deliveryId":"d"}}`,
			want: smartcar.Envelope{DeliveryID: "d"},
		},
		{name: "negative deliveredAt is 0", body: `{"meta":{"deliveredAt":-1761896351529}}`},
		{name: "out-of-range deliveredAt is 0", body: `{"meta":{"deliveredAt":1e400}}`},
		{name: "null deliveredAt is 0", body: `{"meta":{"deliveredAt":null}}`},
		{name: "boolean deliveredAt is 0", body: `{"meta":{"deliveredAt":true}}`},
		{name: "object deliveredAt is 0", body: `{"meta":{"deliveredAt":{"ms":1761896351529}}}`},
		{name: "array deliveredAt is 0", body: `{"meta":{"deliveredAt":[1761896351529]}}`},
		{name: "top-level deliveredAt is not meta's", body: `{"deliveredAt":1761896351529,"data":{"deliveredAt":1761896351529}}`},
		{
			name: "later meta replaces an earlier deliveredAt",
			body: `{"meta":{"deliveredAt":1761896351529},"meta":{"mode":"TEST"}}`,
			want: smartcar.Envelope{Mode: "TEST"},
		},
		{
			name: "later deliveredAt wins",
			body: `{"meta":{"deliveredAt":1,"deliveredAt":1761896351529 }}`,
			want: smartcar.Envelope{DeliveredAt: 1761896351529},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := smartcar.ParseEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if ref := referenceEnvelope(t, []byte(tt.body)); ref != got {
				t.Errorf("encoding/json reading differs: %+v", ref)
			}
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	bodies := []string{
		``, `   `, `[]`, `"x"`, `42`, `null`, `{`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{"a":1}x`,
		`{"a":1}{}`, `{"a":"unterminated}`, `{"a":[1,2}`, `{"a":{"b":[}]}}`, `{a:1}`,
		`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	}
	for _, body := range bodies {
		if _, err := smartcar.ParseEnvelope([]byte(body)); !errors.Is(err, smartcar.ErrNotJSONObject) {
			t.Errorf("ParseEnvelope(%.40q) error = %v, want ErrNotJSONObject", body, err)
		}
	}
}

func TestEnvelopeIsVerify(t *testing.T) {
	tests := []struct {
		env  smartcar.Envelope
		want bool
	}{
		{smartcar.Envelope{EventType: "VERIFY"}, true},
		{smartcar.Envelope{EventName: "verify"}, true},
		{smartcar.Envelope{EventName: "VERIFY"}, true},
		{smartcar.Envelope{EventType: "VEHICLE_STATE", EventName: "verify"}, false},
		{smartcar.Envelope{EventType: "verify"}, false},
		{smartcar.Envelope{}, false},
	}
	for _, tt := range tests {
		if got := tt.env.IsVerify(); got != tt.want {
			t.Errorf("%+v.IsVerify() = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// FuzzParseEnvelope checks ParseEnvelope against encoding/json: on any valid
// JSON object it must succeed and read the same fields; on anything else it
// must not panic.
func FuzzParseEnvelope(f *testing.F) {
	for _, name := range []string{"verify.json", "vehicle_state.json", "vehicle_error.json"} {
		f.Add(events.MustRead("bodies/" + name))
	}
	f.Add([]byte(`{"eventId":"a\"b","data":{"vehicle":{"id":"\ud83d\ude97"}},"meta":{"mode":"TEST"}}`))
	f.Add([]byte(`{"version":"2.0","eventName":"verify","payload":{"challenge":"x"}}`))
	f.Add([]byte(`{"eventId":"\xff\xfe","eventType":"VERIFY"}`))
	// Long enough for the 64-byte block scanner: brackets and quotes inside
	// strings, escapes, strings and nesting across block boundaries.
	f.Add([]byte(`{"data":{"signals":[` + strings.Repeat(`{"code":"a{[b","body":{"v":[1,"]}\"x\\"]},"n":"`+strings.Repeat("z", 70)+`"},`, 5) + `{}],"vehicle":{"id":"v"}},"eventId":"e","meta":{"mode":"LIVE"}}`))
	f.Add([]byte(`{"data":{"x":"` + strings.Repeat(`\"{`, 40) + `","vehicle":{"id":"v2"}},"eventId":"e2"}`))
	for _, at := range []string{`1761896351529`, `"2025-07-31T19:38:42.332Z"`, `1700000000`, `-0.5e3`, `1e400`, `"1761896351529"`, `"\u0032025-07-31T19:38:42Z"`, `null`, `{"a":1}`, `[1]`, `"NaN"`} {
		f.Add([]byte(`{"eventId":"t","meta":{"deliveryId":"d","deliveredAt":` + at + `,"mode":"LIVE"}}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := smartcar.ParseEnvelope(body)
		var probe map[string]json.RawMessage
		if json.Unmarshal(body, &probe) != nil || probe == nil {
			return // not a JSON object: any error (or none, for bad literals) is fine
		}
		if err != nil {
			t.Fatalf("ParseEnvelope rejects a valid object: %v", err)
		}
		if ref := referenceEnvelope(t, body); ref != got {
			t.Fatalf("ParseEnvelope = %+v\nencoding/json = %+v", got, ref)
		}
	})
}

// referenceEnvelope reads the envelope with encoding/json, the slow way:
// numbers are kept as their text (json.Number), as Smartcar's timestamps
// are read from it.
func referenceEnvelope(t testing.TB, body []byte) smartcar.Envelope {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("reference decode: %v", err)
	}
	str := func(m map[string]any, key string) string {
		s, _ := m[key].(string)
		return s
	}
	obj := func(m map[string]any, key string) map[string]any {
		o, _ := m[key].(map[string]any)
		return o
	}
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	data, payload, meta := obj(m, "data"), obj(m, "payload"), obj(m, "meta")
	return smartcar.Envelope{
		EventID:     or(str(m, "eventId"), str(payload, "eventId")),
		EventType:   str(m, "eventType"),
		EventName:   str(m, "eventName"),
		Challenge:   or(str(data, "challenge"), str(payload, "challenge")),
		VehicleID:   or(str(obj(data, "vehicle"), "id"), or(str(m, "vehicleId"), str(payload, "vehicleId"))),
		DeliveryID:  str(meta, "deliveryId"),
		Mode:        or(str(meta, "mode"), str(m, "mode")),
		Version:     or(str(meta, "version"), str(m, "version")),
		DeliveredAt: millis(meta["deliveredAt"]),
	}
}

// millis reads a decoded JSON value as ParseMillis does its text: a number
// or a string, anything else 0.
func millis(v any) smartcar.Millis {
	switch v := v.(type) {
	case json.Number:
		return smartcar.ParseMillis(string(v))
	case string:
		return smartcar.ParseMillis(v)
	}
	return 0
}
