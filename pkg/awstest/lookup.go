package awstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// dynamoDBTarget prefixes the X-Amz-Target of every DynamoDB request.
const dynamoDBTarget = "DynamoDB_20120810."

// call sends a request for target (an X-Amz-Target) to where r went, with
// r's credentials: the emulator tells services apart by the signature's
// scope, and answers an unsigned request itself (checking no signature).
func call(r *http.Request, next http.RoundTripper, target string, in, out any) bool {
	body, err := json.Marshal(in)
	if err != nil {
		return false
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, r.URL.String(), bytes.NewReader(body))
	if err != nil {
		return false
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	resp, err := next.RoundTrip(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) == nil
}

// describeKeySchema asks next for a table's key schema.
func describeKeySchema(r *http.Request, next http.RoundTripper, table string) (keySchema, bool) {
	var out struct{ Table map[string]any }
	if !call(r, next, dynamoDBTarget+"DescribeTable", map[string]string{"TableName": table}, &out) {
		return keySchema{}, false
	}
	return schemaOf(out.Table), true
}

// bufferBody reads r's body, for a transport to inspect, and returns a
// copy of r whose body (and GetBody, for the SDK's retries) replays it.
func bufferBody(r *http.Request) (*http.Request, []byte, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r, body, nil
}
