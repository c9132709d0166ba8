package smartcar_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// TestToken is the fake Application Management Token the examples are signed with.
const testToken = events.TestToken

func TestSignSDKVectors(t *testing.T) {
	// From Smartcar's Node and Java SDK tests.
	tests := []struct {
		key, msg, want string
	}{
		{"amt", "challenge", "9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e"},
		{"amt", `{"pizza":"pasta"}`, "4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70"},
	}
	for _, tt := range tests {
		if got := smartcar.Sign(tt.key, []byte(tt.msg)); got != tt.want {
			t.Errorf("Sign(%q, %q) = %s, want %s", tt.key, tt.msg, got, tt.want)
		}
		if !smartcar.VerifySignature([]byte(tt.msg), tt.want, []string{tt.key}) {
			t.Errorf("VerifySignature rejects the SDK vector for %q", tt.msg)
		}
	}
	if got, want := smartcar.HashChallenge("amt", "challenge"), tests[0].want; got != want {
		t.Errorf("HashChallenge = %s, want %s", got, want)
	}
}

func TestExampleBodies(t *testing.T) {
	// Signatures of the byte-exact example bodies under the test token
	// (protocol reference §7).
	tests := []struct {
		file, signature string
		size            int
	}{
		{"vehicle_state.json", "8cc7e9b5830d472bf999da77b3994e28dda82317018b7c0bc2d9dd0ace4e81fd", 1164},
		{"vehicle_error.json", "d3ebbfac5aa540bdaa4f03fe99f689d04ba232355bb02b354d246b69c68124c4", 1426},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := events.MustRead("bodies/" + tt.file)
			if len(body) != tt.size {
				t.Fatalf("body is %d bytes, want %d: the file was altered", len(body), tt.size)
			}
			if !smartcar.VerifySignature(body, tt.signature, []string{testToken}) {
				t.Fatal("published signature does not verify over the raw body")
			}
			// Any re-serialization (what the TypeScript recipe does) breaks it.
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			indented, _ := json.MarshalIndent(v, "", " ")
			if smartcar.VerifySignature(indented, tt.signature, []string{testToken}) {
				t.Fatal("signature verified over a re-serialized body")
			}
		})
	}
}

func TestVerifyChallengeExample(t *testing.T) {
	env, err := smartcar.ParseEnvelope(events.MustRead("bodies/verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "68cab7c41890d97b920bb3448a8c98973a7ce1a68976a0685fad825f98f39123"
	if got := smartcar.HashChallenge(testToken, env.Challenge); got != want {
		t.Fatalf("HashChallenge(test token, %q) = %s, want %s", env.Challenge, got, want)
	}
}

func TestVerifySignatureRawBytes(t *testing.T) {
	// Each of these bodies changes if it is decoded and encoded again: a
	// trailing zero, an escaped non-ASCII letter, an integer above 2^53.
	bodies := []string{
		`{"eventId":"a","v":12.50}`,
		`{"eventId":"a","name":"Caf\u00e9"}`,
		`{"eventId":"a","odometer":9007199254740993}`,
	}
	for _, body := range bodies {
		sig := smartcar.Sign(testToken, []byte(body))
		if !smartcar.VerifySignature([]byte(body), sig, []string{testToken}) {
			t.Errorf("raw body %s does not verify", body)
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(v)
		if string(again) == body {
			t.Fatalf("test body %s survives re-serialization; it proves nothing", body)
		}
		if smartcar.VerifySignature(again, sig, []string{testToken}) {
			t.Errorf("re-serialized %s verifies with the raw body's signature", again)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"eventId":"e1"}`)
	good := smartcar.Sign("current", body)
	old := smartcar.Sign("previous", body)
	tests := []struct {
		name   string
		header string
		tokens []string
		match  int // MatchSignature's answer; VerifySignature's is match >= 0
	}{
		{"valid", good, []string{"current"}, 0},
		{"uppercase hex", strings.ToUpper(good), []string{"current"}, 0},
		{"surrounding space", " " + good + " ", []string{"current"}, 0},
		{"current token during rotation", good, []string{"current", "previous"}, 0},
		{"previous token during rotation", old, []string{"current", "previous"}, 1},
		{"third token", old, []string{"current", "other", "previous"}, 2},
		{"token listed twice", good, []string{"current", "current"}, 0},
		{"token no longer listed", old, []string{"current"}, -1},
		{"wrong token", good, []string{"other"}, -1},
		{"no tokens", good, nil, -1},
		{"empty header", "", []string{"current"}, -1},
		{"truncated", good[:63], []string{"current"}, -1},
		{"not hex", strings.Repeat("zz", 32), []string{"current"}, -1},
		{"sha256= prefix", "sha256=" + good, []string{"current"}, -1},
		{"one bit off", good[:63] + flip(good[63]), []string{"current"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := smartcar.MatchSignature(body, tt.header, tt.tokens); got != tt.match {
				t.Errorf("MatchSignature(%q) = %d, want %d", tt.header, got, tt.match)
			}
			if got, want := smartcar.VerifySignature(body, tt.header, tt.tokens), tt.match >= 0; got != want {
				t.Errorf("VerifySignature(%q) = %v, want %v", tt.header, got, want)
			}
		})
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestSafeUnsignedChallenge(t *testing.T) {
	tests := []struct {
		challenge string
		want      bool
	}{
		{"7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74", true},
		{"abc.DEF_123~-", true},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{"", false},
		{`{"eventId":"forged","eventType":"VEHICLE_STATE"}`, false},
		{"has space", false},
		{"slash/", false},
		{"caf\u00e9", false},
	}
	for _, tt := range tests {
		if got := smartcar.SafeUnsignedChallenge(tt.challenge); got != tt.want {
			t.Errorf("SafeUnsignedChallenge(%q) = %v, want %v", tt.challenge, got, tt.want)
		}
	}
}

func TestParseTokens(t *testing.T) {
	tests := []struct {
		secret  string
		want    []string
		wantErr bool
	}{
		{"tok-1", []string{"tok-1"}, false},
		{" tok-1\n", []string{"tok-1"}, false},
		{`{"tokens":["new","old"]}`, []string{"new", "old"}, false},
		{`{"tokens":[" new "]}`, []string{"new"}, false},
		{"", nil, true},
		{"  ", nil, true},
		{`{"tokens":[]}`, nil, true},
		{`{"tokens":["new",""]}`, nil, true},
		{`{"amt":"tok"}`, nil, true},
		{`{"tokens":"tok"}`, nil, true},
		{`{not json`, nil, true},
	}
	for _, tt := range tests {
		got, err := smartcar.ParseTokens(tt.secret)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTokens(%q) error = %v, want error %v", tt.secret, err, tt.wantErr)
			continue
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseTokens(%q) = %q, want %q", tt.secret, got, tt.want)
		}
	}
}
