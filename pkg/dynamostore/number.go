package dynamostore

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB's N type holds zero, or at most 38 significant digits with a
// magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125,
// and refuses the whole write for any other number. A JSON number of a
// signal body that N cannot hold is stored as a Binary (B) holding the
// number's text: signal bodies are JSON, which has no binary, so a B in a
// body always is such a number, and reads back as json.Number with its
// exact digits.
const (
	maxNumberDigits   = 38
	maxNumberExponent = 125  // of the first significant digit: below 1E+126
	minNumberExponent = -130 // at least 1E-130
)

// jsonNumber returns the attribute value that stores the JSON number text.
func jsonNumber(text string) types.AttributeValue {
	if fitsN(text) {
		return &types.AttributeValueMemberN{Value: text}
	}
	return &types.AttributeValueMemberB{Value: []byte(text)}
}

// binaryNumber reads back a number jsonNumber stored as B.
func binaryNumber(b []byte) (json.Number, error) {
	if _, ok := parseNumber(string(b)); !ok {
		// Its size, never its bytes: a signal's value stays out of logs.
		return "", fmt.Errorf("a binary value of %d bytes in a signal body is not a JSON number", len(b))
	}
	return json.Number(b), nil
}

// fitsN reports whether DynamoDB surely stores the JSON number text as N.
//
// The rule is conservative, so that no write is ever refused: significant
// digits are counted from the first non-zero digit to the last digit
// written, trailing zeros included (DynamoDB trims them and might take
// 1 followed by 40 zeros; it goes to B), and a zero written with more than
// 38 digits or an exponent outside the range goes to B too.
func fitsN(text string) bool {
	n, ok := parseNumber(text)
	return ok && n.digits <= maxNumberDigits && minNumberExponent <= n.exp && n.exp <= maxNumberExponent
}

// number is a parsed JSON number.
type number struct {
	// digits counts the significant digits written: from the first
	// non-zero digit to the last digit, or, for zero, all digits.
	digits int
	// exp is the decimal exponent of the first significant digit (of the
	// written exponent, for zero), clamped far outside DynamoDB's range.
	exp int
}

// expLimit clamps exponents: any beyond it is out of range anyway.
const expLimit = 1 << 20

// parseNumber parses text as a JSON number (RFC 8259: -?int frac? exp?).
func parseNumber(text string) (number, bool) {
	s, i := text, 0
	digitsFrom := func(j int) int {
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	intStart := i
	i = digitsFrom(i)
	intEnd := i
	if intEnd == intStart || s[intStart] == '0' && intEnd-intStart > 1 {
		return number{}, false
	}
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		fracStart = i + 1
		i = digitsFrom(fracStart)
		fracEnd = i
		if fracEnd == fracStart {
			return number{}, false
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		expStart := i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			exp = min(exp*10+int(s[i]-'0'), expLimit)
		}
		if i == expStart {
			return number{}, false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(s) {
		return number{}, false
	}
	// The digits written, integer part then fraction, and where the first
	// non-zero one is.
	digit := func(k int) byte {
		if k < intEnd-intStart {
			return s[intStart+k]
		}
		return s[fracStart+k-(intEnd-intStart)]
	}
	total := intEnd - intStart + fracEnd - fracStart
	first := 0
	for first < total && digit(first) == '0' {
		first++
	}
	if first == total {
		return number{digits: total, exp: exp}, true // zero
	}
	return number{digits: total - first, exp: intEnd - intStart - 1 - first + exp}, true
}
