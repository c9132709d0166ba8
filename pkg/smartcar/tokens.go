package smartcar

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrNoToken is returned for a secret that holds no usable token.
var ErrNoToken = errors.New("secret holds no token")

// ParseTokens reads the Application Management Token secret. The value is
// either the token itself or, during a rotation, the JSON object
// {"tokens": ["current", "previous", ...]}. The first token is the current
// one: it answers VERIFY challenges. Every listed token is accepted for
// signatures.
func ParseTokens(secret string) ([]string, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, ErrNoToken
	}
	if !strings.HasPrefix(secret, "{") {
		return []string{secret}, nil
	}
	var v struct {
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(secret), &v); err != nil {
		return nil, fmt.Errorf(`secret is JSON but not {"tokens": ["..."]}: %w`, err)
	}
	tokens := make([]string, 0, len(v.Tokens))
	for i, t := range v.Tokens {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, fmt.Errorf("secret tokens[%d] is empty", i)
		}
		tokens = append(tokens, t)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf(`%w: expected the token itself or {"tokens": ["current", "previous"]}`, ErrNoToken)
	}
	return tokens, nil
}
