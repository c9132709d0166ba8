package smartcar

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader is the HTTP header that carries a delivery's signature.
// HTTP header names are case-insensitive; callers must look it up that way.
const SignatureHeader = "SC-Signature"

// Sign returns the lowercase hex HMAC-SHA256 of msg keyed with token, the
// value Smartcar puts in SC-Signature for a body and the value it expects back
// for a VERIFY challenge.
func Sign(token string, msg []byte) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(msg)
	return hex.EncodeToString(mac.Sum(nil))
}

// HashChallenge returns the answer to a VERIFY challenge under token.
func HashChallenge(token, challenge string) string {
	return Sign(token, []byte(challenge))
}

// VerifySignature reports whether header is a valid signature of the raw body
// under any of tokens. The header must be the 64 hex digits of an
// HMAC-SHA256; the comparison is of the decoded bytes and constant-time.
// Tokens are tried in order, so the current token costs one HMAC.
func VerifySignature(body []byte, header string, tokens []string) bool {
	return MatchSignature(body, header, tokens) >= 0
}

// MatchSignature is VerifySignature that says which token signed: the index
// in tokens of the first under which header is valid, or -1. Index 0 is the
// current token; a VERIFY signed with any other must not be answered, as
// its answer is an HMAC under the current token. Each comparison is
// constant-time.
func MatchSignature(body []byte, header string, tokens []string) int {
	want, ok := decodeSignature(header)
	if !ok {
		return -1
	}
	var sum [sha256.Size]byte
	for i, token := range tokens {
		mac := hmac.New(sha256.New, []byte(token))
		mac.Write(body)
		if hmac.Equal(mac.Sum(sum[:0]), want[:]) {
			return i
		}
	}
	return -1
}

// ValidSignatureFormat reports whether header has the shape of a signature
// (64 hex digits), whatever its value.
func ValidSignatureFormat(header string) bool {
	_, ok := decodeSignature(header)
	return ok
}

func decodeSignature(header string) (sig [sha256.Size]byte, ok bool) {
	header = strings.TrimSpace(header)
	if len(header) != hex.EncodedLen(sha256.Size) {
		return sig, false
	}
	if _, err := hex.Decode(sig[:], []byte(header)); err != nil {
		return sig, false
	}
	return sig, true
}

// MaxUnsignedChallenge is the longest challenge answered without a signature.
const MaxUnsignedChallenge = 256

// SafeUnsignedChallenge reports whether an unsigned VERIFY challenge may be
// answered: 1 to MaxUnsignedChallenge characters of [A-Za-z0-9._~-].
//
// Smartcar may send VERIFY without SC-Signature, and the answer is the HMAC of
// the challenge under the token. Answering an arbitrary unsigned string would
// turn the endpoint into a signing oracle: an attacker could post a forged
// event body as the "challenge" and get back its valid signature. Real
// challenges are UUID-like tokens, which this alphabet covers and no JSON
// object can pass.
func SafeUnsignedChallenge(challenge string) bool {
	if len(challenge) == 0 || len(challenge) > MaxUnsignedChallenge {
		return false
	}
	for i := 0; i < len(challenge); i++ {
		c := challenge[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}
