package smartcarapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
)

const (
	testID     = "client-id-4e1f"
	testSecret = "s3cr3t-value-9a7b"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		want    smartcarapi.Credentials
		wantErr []string // each in the error's text
	}{
		{name: "valid", secret: `{"clientId":"` + testID + `","clientSecret":"` + testSecret + `"}`, want: smartcarapi.Credentials{ClientID: testID, ClientSecret: testSecret}},
		{name: "trimmed, other members ignored", secret: ` {"clientId":" ` + testID + `\n","clientSecret":"` + testSecret + `","amt":"x"} `, want: smartcarapi.Credentials{ClientID: testID, ClientSecret: testSecret}},
		{name: "missing clientSecret", secret: `{"clientId":"` + testID + `"}`, wantErr: []string{"clientSecret"}},
		{name: "empty clientSecret", secret: `{"clientId":"` + testID + `","clientSecret":"  "}`, wantErr: []string{"clientSecret"}},
		{name: "missing clientId", secret: `{"clientSecret":"` + testSecret + `"}`, wantErr: []string{"clientId"}},
		{name: "missing both", secret: `{}`, wantErr: []string{"clientId and clientSecret"}},
		{name: "clientSecret not a string", secret: `{"clientId":"` + testID + `","clientSecret":["` + testSecret + `"]}`, wantErr: []string{"clientSecret not a string"}},
		{name: "snake case", secret: `{"client_id":"` + testID + `","client_secret":"` + testSecret + `"}`, wantErr: []string{"clientId and clientSecret"}},
		{name: "not JSON", secret: `{"clientId":"` + testID + `","clientSecret":` + testSecret + `}`, wantErr: []string{"not JSON", "byte"}},
		{name: "the bare secret", secret: testSecret, wantErr: []string{"not JSON"}},
		{name: "an array", secret: `["` + testSecret + `"]`, wantErr: []string{"not a JSON object"}},
		{name: "null", secret: `null`, wantErr: []string{"null"}},
		{name: "empty", secret: ``, wantErr: []string{"not"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := smartcarapi.ParseCredentials(tt.secret)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("ParseCredentials = %v, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %v", got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, v := range []string{testSecret, testID, "s3cr3t"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes a value", err)
				}
			}
		})
	}
}

func TestCredentialsNeverPrinted(t *testing.T) {
	c := smartcarapi.Credentials{ClientID: testID, ClientSecret: testSecret}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("creds", "credentials", c, "pointer", &c)
	marshalled, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	client := smartcarapi.New(c)
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c),
		"%q": fmt.Sprintf("%q", c), "%x": fmt.Sprintf("%x", c), "%d": fmt.Sprintf("%d", c), "pointer %+v": fmt.Sprintf("%+v", &c),
		"in a struct %+v": fmt.Sprintf("%+v", struct{ C smartcarapi.Credentials }{c}), "Sprint": fmt.Sprint(c),
		"String": c.String(), "slog": logged.String(), "json": string(marshalled),
		"client %v": fmt.Sprintf("%v", client), "client %+v": fmt.Sprintf("%+v", client), "client %#v": fmt.Sprintf("%#v", client),
	}
	for verb, out := range outputs {
		if strings.Contains(out, testSecret) || strings.Contains(out, "s3cr3t") {
			t.Errorf("%s shows the secret: %s", verb, out)
		}
	}
	if out := outputs["%+v"]; !strings.Contains(out, testID) || !strings.Contains(out, "[REDACTED]") {
		t.Errorf("%%+v = %s, want the client id and the secret redacted", out)
	}
	if out := fmt.Sprintf("%v", smartcarapi.Credentials{ClientID: testID}); strings.Contains(out, "REDACTED") {
		t.Errorf("an empty secret prints %s: it should show as empty", out)
	}
}
