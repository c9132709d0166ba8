package apigw_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

var update = flag.Bool("update", false, "rewrite the events/receiver fixtures")

// testToken is the fake Application Management Token the fixtures are signed with.
const testToken = samples.TestToken

// fixture describes one file in events/receiver.
type fixture struct {
	file       string
	body       string // file in events/bodies
	format     string // "2.0" or "1.0"
	path       string
	signature  string // "valid", "bad" or "none"
	base64     bool
	wantStatus int
}

var fixtures = []fixture{
	{"httpapi-verify.json", "verify.json", "2.0", receiver.PathWebhook, "none", false, 200},
	{"httpapi-vehicle-state.json", "vehicle_state.json", "2.0", receiver.PathWebhook, "valid", false, 200},
	{"httpapi-vehicle-state-base64.json", "vehicle_state.json", "2.0", receiver.PathWebhook, "valid", true, 200},
	{"httpapi-vehicle-error.json", "vehicle_error.json", "2.0", receiver.PathErrors, "valid", false, 200},
	{"httpapi-bad-signature.json", "vehicle_state.json", "2.0", receiver.PathWebhook, "bad", false, 401},
	{"rest-verify.json", "verify.json", "1.0", receiver.PathWebhook, "none", false, 200},
	{"rest-vehicle-state.json", "vehicle_state.json", "1.0", receiver.PathWebhook, "valid", false, 200},
	{"rest-vehicle-error.json", "vehicle_error.json", "1.0", receiver.PathWebhook, "valid", false, 200},
	{"rest-bad-signature.json", "vehicle_error.json", "1.0", receiver.PathWebhook, "bad", false, 401},
}

// build returns the fixture's event as API Gateway would send it.
func (f fixture) build(t testing.TB) []byte {
	body := samples.MustRead("bodies/" + f.body)
	headers := map[string]string{
		"content-type":      "application/json",
		"user-agent":        "Smartcar/4.0",
		"content-length":    strconv.Itoa(len(body)),
		"host":              "abc123.execute-api.us-east-1.amazonaws.com",
		"x-forwarded-proto": "https",
	}
	switch f.signature {
	case "valid":
		headers["sc-signature"] = smartcar.Sign(testToken, body)
	case "bad":
		headers["sc-signature"] = smartcar.Sign("not-the-token", body)
	}
	text := string(body)
	if f.base64 {
		text = base64.StdEncoding.EncodeToString(body)
	}
	var event any
	if f.format == "2.0" {
		event = events.APIGatewayV2HTTPRequest{
			Version:  "2.0",
			RouteKey: "POST " + f.path,
			RawPath:  f.path,
			Headers:  headers,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				AccountID: "123456789012", APIID: "abc123", Stage: "$default",
				RequestID: "fixture-" + f.file, DomainName: "abc123.execute-api.us-east-1.amazonaws.com",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
					Method: "POST", Path: f.path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7", UserAgent: "Smartcar/4.0",
				},
				TimeEpoch: 1767225600000,
			},
			Body:            text,
			IsBase64Encoded: f.base64,
		}
	} else {
		// REST API and `sam local start-api` send header names as received.
		rest := map[string]string{}
		multi := map[string][]string{}
		for k, v := range headers {
			name := map[string]string{"sc-signature": "SC-Signature", "content-type": "Content-Type", "user-agent": "User-Agent"}[k]
			if name == "" {
				name = k
			}
			rest[name] = v
			multi[name] = []string{v}
		}
		event = events.APIGatewayProxyRequest{
			Resource: f.path, Path: f.path, HTTPMethod: "POST",
			Headers: rest, MultiValueHeaders: multi,
			RequestContext: events.APIGatewayProxyRequestContext{
				AccountID: "123456789012", APIID: "abc123", Stage: "prod", ResourcePath: f.path,
				HTTPMethod: "POST", RequestID: "fixture-" + f.file, Path: "/prod" + f.path,
			},
			Body:            text,
			IsBase64Encoded: f.base64,
		}
	}
	out, err := json.MarshalIndent(event, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestFixturesUpToDate keeps events/receiver in step with events/bodies and
// the test token. Run with -update to rewrite them.
func TestFixturesUpToDate(t *testing.T) {
	for _, f := range fixtures {
		path := filepath.Join("..", "..", "events", "receiver", f.file)
		want := f.build(t)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./pkg/apigw -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go test ./pkg/apigw -run TestFixturesUpToDate -update", f.file)
		}
	}
}
