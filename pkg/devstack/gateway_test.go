package devstack_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

// handlerFunc is a lambda.Handler over raw payloads.
type handlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

func (f handlerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}

func TestGatewayMapsRequestAndResponse(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	var requestID string
	gw := &devstack.Gateway{Handler: handlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		if err := json.Unmarshal(payload, &got); err != nil {
			return nil, err
		}
		lc, _ := lambdacontext.FromContext(ctx)
		requestID = lc.AwsRequestID
		return []byte(`{"statusCode":418,"headers":{"Content-Type":"application/json","Allow":"POST"},"body":"{\"ok\":true}"}`), nil
	})}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/smartcar?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("SC-Signature", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 418 || string(b) != `{"ok":true}` || resp.Header.Get("Allow") != "POST" {
		t.Errorf("response %d %s %v", resp.StatusCode, b, resp.Header)
	}
	if got.Version != "2.0" || got.RawPath != "/webhooks/smartcar" || got.RawQueryString != "x=1" ||
		got.RequestContext.HTTP.Method != "POST" || got.Headers["sc-signature"] != "abc" || got.Body != `{"a":1}` || got.IsBase64Encoded {
		t.Errorf("event = %+v", got)
	}
	if requestID == "" || requestID != got.RequestContext.RequestID {
		t.Errorf("request id %q in context, %q in event", requestID, got.RequestContext.RequestID)
	}
}

func TestGatewayBinaryBodyAndHandlerFailure(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	fail := false
	srv := httptest.NewServer(&devstack.Gateway{Handler: handlerFunc(func(_ context.Context, payload []byte) ([]byte, error) {
		if fail {
			return nil, errors.New("boom")
		}
		_ = json.Unmarshal(payload, &got)
		return []byte(`{"statusCode":200,"body":""}`), nil
	})})
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/x", "application/octet-stream", strings.NewReader("\xff\xfe"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if dec, _ := base64.StdEncoding.DecodeString(got.Body); !got.IsBase64Encoded || string(dec) != "\xff\xfe" {
		t.Errorf("binary body: %+v", got)
	}
	fail = true
	resp, err = http.Post(srv.URL+"/x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("handler failure answered %d, want 500 as API Gateway does", resp.StatusCode)
	}
}
