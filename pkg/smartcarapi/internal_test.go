package smartcarapi

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"2", 2 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0", 0, true},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
		{"", 0, false},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		if got, ok := retryAfter(h, now); got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestTokenTTL(t *testing.T) {
	tests := []struct{ expiresIn, want time.Duration }{
		{time.Hour, 55 * time.Minute},
		{2 * time.Hour, 55 * time.Minute},
		{10 * time.Minute, 5 * time.Minute},
		{5 * time.Minute, 0},
		{time.Minute, 0},
		{0, 0},
	}
	for _, tt := range tests {
		if got := tokenTTL(tt.expiresIn); got != tt.want {
			t.Errorf("tokenTTL(%v) = %v, want %v", tt.expiresIn, got, tt.want)
		}
	}
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name string
		body string
		want APIError
	}{
		{"smartcar", `{"type":"BILLING","code":"VEHICLE_LIMIT","description":"Limit.","statusCode":430,"requestId":"r1","resolution":{"type":"CONTACT_SUPPORT"}}`,
			APIError{Status: 430, Type: "BILLING", Code: "VEHICLE_LIMIT", Description: "Limit.", RequestID: "r1", Resolution: "CONTACT_SUPPORT"}},
		{"oauth", `{"error":"invalid_client","error_description":"Bad client."}`, APIError{Status: 430, Code: "invalid_client", Description: "Bad client."}},
		{"json:api", `{"errors":[{"status":"430","type":"BILLING","code":"X","title":"T","detail":"D"}]}`, APIError{Status: 430, Type: "BILLING", Code: "X", Description: "D"}},
		{"null code", `{"type":"PERMISSION","code":null}`, APIError{Status: 430, Type: "PERMISSION"}},
		{"html", `<html>Bad gateway</html>`, APIError{Status: 430}},
	}
	for _, tt := range tests {
		if got := parseAPIError(430, []byte(tt.body)); *got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, *got, tt.want)
		}
	}
}
