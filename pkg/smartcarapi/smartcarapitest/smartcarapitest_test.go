package smartcarapitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi/smartcarapitest"
)

// token gets a token from srv with the credentials as form fields.
func token(t *testing.T, srv *smartcarapitest.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(srv.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestTokenEndpoint(t *testing.T) {
	srv := smartcarapitest.NewServer(t)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s is not on 127.0.0.1", srv.URL)
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"form credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {smartcarapitest.ClientID}, "client_secret": {smartcarapitest.ClientSecret}}, 200, ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {smartcarapitest.ClientID}, "client_secret": {"nope"}}, 401, "invalid_client"},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {smartcarapitest.ClientID}, "client_secret": {smartcarapitest.ClientSecret}}, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := token(t, srv, tt.form)
			if status != tt.wantStatus || body["error"] != nil && body["error"] != tt.wantError {
				t.Fatalf("%d %v", status, body)
			}
			if status == 200 && (body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["access_token"] == "") {
				t.Errorf("token answer %v", body)
			}
		})
	}
	if c := srv.Counts(); c.TokenCalls != 4 || c.TokensIssued != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestSignalsEndpointChecks(t *testing.T) {
	srv := smartcarapitest.NewServer(t)
	srv.AddVehicle("v1", smartcarapitest.Vehicle{UserID: "u1", Signals: smartcarapitest.MakeSignals(3, 1767225600000)})
	_, tok := token(t, srv, url.Values{"grant_type": {"client_credentials"}, "client_id": {smartcarapitest.ClientID}, "client_secret": {smartcarapitest.ClientSecret}})
	bearer := "Bearer " + tok["access_token"].(string)
	tests := []struct {
		name       string
		path       string
		auth, user string
		wantStatus int
		wantType   string
		wantItems  int
	}{
		{"ok", "/vehicles/v1/signals?page=1&pageSize=2", bearer, "u1", 200, "", 2},
		{"last page", "/vehicles/v1/signals?page=2&pageSize=2", bearer, "u1", 200, "", 1},
		{"beyond the last page", "/vehicles/v1/signals?page=3&pageSize=2", bearer, "u1", 200, "", 0},
		{"no authorization", "/vehicles/v1/signals", "", "u1", 401, "AUTHENTICATION", 0},
		{"unknown token", "/vehicles/v1/signals", "Bearer forged", "u1", 401, "AUTHENTICATION", 0},
		{"basic instead of bearer", "/vehicles/v1/signals", "Basic Zm9vOmJhcg==", "u1", 401, "AUTHENTICATION", 0},
		{"no sc-user-id", "/vehicles/v1/signals", bearer, "", 400, "VALIDATION", 0},
		{"another user", "/vehicles/v1/signals", bearer, "u2", 403, "PERMISSION", 0},
		{"unknown vehicle", "/vehicles/v2/signals", bearer, "u1", 404, "RESOURCE_NOT_FOUND", 0},
		{"bad page", "/vehicles/v1/signals?page=zero", bearer, "u1", 400, "VALIDATION", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.APIBase()+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.user != "" {
				req.Header.Set("sc-user-id", tt.user)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct {
				Type       string `json:"type"`
				StatusCode int    `json:"statusCode"`
				Data       []any  `json:"data"`
				Links      struct {
					Next *string `json:"next"`
				} `json:"links"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || body.Type != tt.wantType || len(body.Data) != tt.wantItems {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			if tt.wantStatus != 200 && body.StatusCode != tt.wantStatus {
				t.Errorf("statusCode %d in %s", body.StatusCode, raw)
			}
			if tt.name == "ok" && (body.Links.Next == nil || !strings.Contains(*body.Links.Next, "page=2")) {
				t.Errorf("links.next of page 1: %s", raw)
			}
			if tt.name == "last page" && body.Links.Next != nil {
				t.Errorf("links.next of the last page: %s", raw)
			}
		})
	}
}

func TestFaultsInOrder(t *testing.T) {
	srv := smartcarapitest.NewServer(t)
	srv.Inject(2, smartcarapitest.ServerError())
	srv.Inject(1, smartcarapitest.RateLimited("7"))
	want := []struct {
		status     int
		retryAfter string
	}{{500, ""}, {500, ""}, {429, "7"}, {401, ""}}
	for i, w := range want {
		resp, err := http.Get(srv.APIBase() + "/vehicles/v1/signals")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != w.status || resp.Header.Get("Retry-After") != w.retryAfter {
			t.Errorf("call %d: %d retry-after %q, want %d %q", i, resp.StatusCode, resp.Header.Get("Retry-After"), w.status, w.retryAfter)
		}
	}
	if reqs := srv.Requests(); len(reqs) != 4 || reqs[2].Status != 429 {
		t.Errorf("requests %+v", reqs)
	}
}
