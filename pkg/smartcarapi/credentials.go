package smartcarapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// redacted stands for a secret in anything printed.
const redacted = "[REDACTED]"

// Credentials are a Smartcar application's OAuth 2 client credentials. Any
// printing of them (fmt's verbs, slog) shows the client id and hides the
// secret.
type Credentials struct {
	ClientID     string
	ClientSecret string
}

// ParseCredentials reads the Secrets Manager secret holding the
// credentials, the JSON object {"clientId": "...", "clientSecret": "..."}
// (other members are ignored, values are trimmed). Its errors name what is
// wrong or missing and never quote the secret's text.
func ParseCredentials(secret string) (Credentials, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(secret), &fields); err != nil {
		// A syntax error quotes the character it met: only its offset is
		// kept.
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			return Credentials{}, fmt.Errorf(`credentials secret is not JSON (syntax error at byte %d): expected {"clientId": "...", "clientSecret": "..."}`, se.Offset)
		}
		return Credentials{}, errors.New(`credentials secret is not a JSON object: expected {"clientId": "...", "clientSecret": "..."}`)
	}
	if fields == nil {
		return Credentials{}, errors.New(`credentials secret is null: expected {"clientId": "...", "clientSecret": "..."}`)
	}
	var missing, wrong []string
	get := func(name string) string {
		raw, ok := fields[name]
		if !ok {
			missing = append(missing, name)
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			wrong = append(wrong, name)
			return ""
		}
		if s = strings.TrimSpace(s); s == "" {
			missing = append(missing, name)
		}
		return s
	}
	c := Credentials{ClientID: get("clientId"), ClientSecret: get("clientSecret")}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "lacks "+strings.Join(missing, " and ")+" (absent or empty)")
	}
	if len(wrong) > 0 {
		problems = append(problems, "has "+strings.Join(wrong, " and ")+" not a string")
	}
	if len(problems) > 0 {
		return Credentials{}, fmt.Errorf("credentials secret %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// secretShown is how the secret is printed: redacted, or "" when empty, so
// that a missing secret can still be told apart.
func (c Credentials) secretShown() string {
	if c.ClientSecret == "" {
		return ""
	}
	return redacted
}

// String returns the credentials with the secret redacted.
func (c Credentials) String() string {
	return fmt.Sprintf("{ClientID:%s ClientSecret:%s}", c.ClientID, c.secretShown())
}

// GoString returns the credentials as Go syntax, with the secret redacted.
func (c Credentials) GoString() string {
	return fmt.Sprintf("smartcarapi.Credentials{ClientID:%q, ClientSecret:%q}", c.ClientID, c.secretShown())
}

// Format prints the credentials with the secret redacted, whatever the
// verb: %v and %s print String, %#v GoString, and any other verb (%d, %x,
// %q...) prints String too rather than the fields.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// LogValue is what slog logs for the credentials: the client id alone.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("clientId", c.ClientID), slog.String("clientSecret", c.secretShown()))
}

// MarshalJSON writes the credentials with the secret redacted, so that
// encoding them, in a log line or a report, never reveals it; store the
// secret itself from ClientSecret.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}{c.ClientID, c.secretShown()})
}
