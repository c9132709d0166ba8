package rie

import "testing"

// TestFunctionError: the emulator drops Lambda's X-Amz-Function-Error
// header, so a function's error is told from its response by the body.
func TestFunctionError(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{200, `{"statusCode":200,"body":"{\"status\":\"ok\"}"}`, ""},
		{200, `{"batchItemFailures":[]}`, ""},
		{200, `{"errorMessage":"unexpected EOF","errorType":"errorString"}`, "errorString"},
		{200, `{"errorMessage":"boom","errorType":"Runtime.Panic","stackTrace":[]}`, "Runtime.Panic"},
		{502, `{"errorMessage":"QUEUE_URL: required but not set","errorType":"Runtime.InitError"}`, "Runtime.InitError"},
		{200, `Task timed out after 5.00 seconds`, "Sandbox.Timedout"},
		{502, ``, "Emulator.502"},
		// A response that happens to carry the fields among others.
		{200, `{"errorType":"x","errorMessage":"y","statusCode":400}`, ""},
	}
	for _, tt := range tests {
		if got := functionError(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("functionError(%d, %s) = %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
}
