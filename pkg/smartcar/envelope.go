package smartcar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Event types of current (v4) webhooks.
const (
	EventVerify       = "VERIFY"
	EventVehicleState = "VEHICLE_STATE"
	EventVehicleError = "VEHICLE_ERROR"
)

// ErrNotJSONObject is wrapped by ParseEnvelope's errors: the body is not a
// JSON object.
var ErrNotJSONObject = errors.New("body is not a JSON object")

// maxDepth bounds the nesting ParseEnvelope follows, as encoding/json does.
const maxDepth = 10000

// Envelope is what the receiver needs from a webhook body to route, label and
// log it. ParseEnvelope reads it without decoding the rest of the body.
//
// Fields are read tolerantly (see the README's protocol notes): a field that
// is absent, null or not a string is left empty, and a deliveredAt that
// ParseMillis cannot read is 0.
type Envelope struct {
	EventID    string // eventId; legacy v2: payload.eventId
	EventType  string // eventType (v4)
	EventName  string // eventName (legacy v2, e.g. "verify")
	Challenge  string // data.challenge (v4) or payload.challenge (v2)
	VehicleID  string // data.vehicle.id, else vehicleId, else payload.vehicleId
	DeliveryID string // meta.deliveryId: new on every delivery attempt
	Mode       string // meta.mode (LIVE or TEST), else top-level mode (v2)
	Version    string // meta.version, else top-level version (v2)
	// DeliveredAt is meta.deliveredAt, a number or a string, as ParseMillis
	// reads it: Smartcar sets it anew on every delivery attempt, inside the
	// signed body.
	DeliveredAt Millis
}

// IsVerify reports whether the body is a VERIFY challenge, current
// (eventType "VERIFY") or legacy v2 (eventName "verify").
func (e Envelope) IsVerify() bool {
	return e.EventType == EventVerify || (e.EventType == "" && strings.EqualFold(e.EventName, "verify"))
}

// Type returns eventType, or for legacy v2 bodies eventName.
func (e Envelope) Type() string {
	if e.EventType != "" {
		return e.EventType
	}
	return e.EventName
}

// ParseEnvelope reads the routing fields of a webhook body.
//
// It checks the body's structure (one JSON object: strings, brackets and
// separators) and decodes only the few fields Envelope names, skipping the
// rest 64 bytes at a time with SIMD instructions where the architecture
// has them: a 50 KB VEHICLE_STATE costs about half its HMAC. Inside skipped
// values it checks only strings and brackets, not numbers, literals or
// separators; the processor decodes the whole body and parks anything
// malformed in the DLQ.
func ParseEnvelope(body []byte) (Envelope, error) {
	s := scanner{b: body}
	var top topFields
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return Envelope{}, fmt.Errorf("%w: expected '{' at byte %d", ErrNotJSONObject, s.i)
	}
	if err := s.object(top.member(&s)); err != nil {
		return Envelope{}, err
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return Envelope{}, s.errorf("data after the object")
	}
	return top.envelope(), nil
}

type topFields struct {
	eventID, eventType, eventName, vehicleID, mode, version string
	data                                                    struct{ challenge, vehicleID string }
	payload                                                 struct{ challenge, eventID, vehicleID string }
	meta                                                    struct {
		deliveryID, mode, version string
		deliveredAt               Millis
	}
}

func (t *topFields) envelope() Envelope {
	return Envelope{
		EventID:     first(t.eventID, t.payload.eventID),
		EventType:   t.eventType,
		EventName:   t.eventName,
		Challenge:   first(t.data.challenge, t.payload.challenge),
		VehicleID:   first(t.data.vehicleID, t.vehicleID, t.payload.vehicleID),
		DeliveryID:  t.meta.deliveryID,
		Mode:        first(t.meta.mode, t.mode),
		Version:     first(t.meta.version, t.version),
		DeliveredAt: t.meta.deliveredAt,
	}
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// member returns the handler for the top-level object's members. A repeated
// key replaces the earlier value, as with encoding/json.
func (t *topFields) member(s *scanner) func(key string) error {
	return func(key string) error {
		var err error
		switch key {
		case "eventId":
			t.eventID, err = s.stringValue()
		case "eventType":
			t.eventType, err = s.stringValue()
		case "eventName":
			t.eventName, err = s.stringValue()
		case "vehicleId":
			t.vehicleID, err = s.stringValue()
		case "mode":
			t.mode, err = s.stringValue()
		case "version":
			t.version, err = s.stringValue()
		case "data":
			t.data.challenge, t.data.vehicleID = "", ""
			err = s.objectOrSkip(func(key string) error {
				switch key {
				case "challenge":
					t.data.challenge, err = s.stringValue()
					return err
				case "vehicle":
					t.data.vehicleID = ""
					return s.objectOrSkip(func(key string) error {
						if key == "id" {
							t.data.vehicleID, err = s.stringValue()
							return err
						}
						return s.skipValue()
					})
				}
				return s.skipValue()
			})
		case "payload":
			t.payload.challenge, t.payload.eventID, t.payload.vehicleID = "", "", ""
			err = s.objectOrSkip(func(key string) error {
				switch key {
				case "challenge":
					t.payload.challenge, err = s.stringValue()
				case "eventId":
					t.payload.eventID, err = s.stringValue()
				case "vehicleId":
					t.payload.vehicleID, err = s.stringValue()
				default:
					err = s.skipValue()
				}
				return err
			})
		case "meta":
			t.meta.deliveryID, t.meta.mode, t.meta.version, t.meta.deliveredAt = "", "", "", 0
			err = s.objectOrSkip(func(key string) error {
				switch key {
				case "deliveryId":
					t.meta.deliveryID, err = s.stringValue()
				case "mode":
					t.meta.mode, err = s.stringValue()
				case "version":
					t.meta.version, err = s.stringValue()
				case "deliveredAt":
					t.meta.deliveredAt, err = s.millisValue()
				default:
					err = s.skipValue()
				}
				return err
			})
		default:
			err = s.skipValue()
		}
		return err
	}
}

// scanner walks JSON text. Its methods leave s.i just past what they read.
type scanner struct {
	b     []byte
	i     int
	stack []byte // open brackets while skipping a container
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrNotJSONObject, fmt.Sprintf(format, args...), s.i)
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// expect consumes c after optional white space.
func (s *scanner) expect(c byte) error {
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return s.errorf("expected %q", c)
	}
	s.i++
	return nil
}

// object reads the object at s.i, calling member with each key while s.i is
// at the member's value; member must consume the value.
func (s *scanner) object(member func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		raw, escaped, err := s.rawString()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.skipSpace()
		if err := member(decodeString(raw, escaped)); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.errorf("unterminated object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("expected ',' or '}'")
		}
	}
}

// objectOrSkip reads an object value with member, or skips a value of any
// other type.
func (s *scanner) objectOrSkip(member func(key string) error) error {
	if s.i < len(s.b) && s.b[s.i] == '{' {
		return s.object(member)
	}
	return s.skipValue()
}

// stringValue returns the string value at s.i, or "" after skipping a value
// of another type.
func (s *scanner) stringValue() (string, error) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		raw, escaped, err := s.rawString()
		if err != nil {
			return "", err
		}
		return decodeString(raw, escaped), nil
	}
	return "", s.skipValue()
}

// millisValue reads the value at s.i as a timestamp: ParseMillis of a
// string's decoded text or of a number's text, which is exactly what
// skipValue passes over. Any other value is skipped and reads as 0.
func (s *scanner) millisValue() (Millis, error) {
	if s.i >= len(s.b) {
		return 0, s.errorf("expected a value")
	}
	switch s.b[s.i] {
	case '"':
		v, err := s.stringValue()
		if err != nil {
			return 0, err
		}
		return ParseMillis(v), nil
	case '{', '[':
		return 0, s.skipValue()
	}
	start := s.i
	if err := s.skipValue(); err != nil {
		return 0, err
	}
	return ParseMillis(string(s.b[start:s.i])), nil
}

// rawString reads the string at s.i and returns its bytes between the quotes
// and whether they hold an escape sequence.
func (s *scanner) rawString() (raw []byte, escaped bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.errorf("expected a string")
	}
	start := s.i + 1
	j := start
	for {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			s.i = len(s.b)
			return nil, false, s.errorf("unterminated string")
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		n := 0
		for j-1-n >= start && s.b[j-1-n] == '\\' {
			n++
		}
		if n > 0 {
			escaped = true
		}
		if n%2 == 0 {
			break
		}
		j++
	}
	if !escaped && bytes.IndexByte(s.b[start:j], '\\') >= 0 {
		escaped = true
	}
	s.i = j + 1
	return s.b[start:j], escaped, nil
}

// decodeString turns a raw JSON string into Go text. The common case (no
// escapes, valid UTF-8) is a plain copy; anything else goes through
// encoding/json so the result is exactly what it would give.
func decodeString(raw []byte, escaped bool) string {
	if !escaped && utf8.Valid(raw) {
		return string(raw)
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return string(raw)
	}
	return v
}

// skipValue moves past the value at s.i.
func (s *scanner) skipValue() error {
	if s.i >= len(s.b) {
		return s.errorf("expected a value")
	}
	switch s.b[s.i] {
	case '"':
		_, _, err := s.rawString()
		return err
	case '{', '[':
		return s.skipContainer()
	}
	start := s.i
	for s.i < len(s.b) && !isDelimiter[s.b[s.i]] {
		s.i++
	}
	if s.i == start {
		return s.errorf("expected a value")
	}
	return nil
}

// isDelimiter marks the bytes that end a number or literal.
var isDelimiter = [256]bool{
	',': true, '}': true, ']': true, ':': true, '{': true, '[': true, '"': true,
	' ': true, '\t': true, '\n': true, '\r': true,
}

// skipContainer moves past the object or array at s.i, matching brackets
// and jumping over strings. It is the hot loop for large bodies (the signal
// array of a VEHICLE_STATE).
func (s *scanner) skipContainer() error {
	if useBlockScanner {
		return s.skipContainerBlocks()
	}
	return s.skipContainerBytes()
}

// maxChunkBlocks bounds the blocks skipContainerBlocks classifies at once.
const maxChunkBlocks = 32

// skipContainerBlocks is skipContainer 64 bytes at a time, in the manner of
// simdjson: structuralMasks classifies a chunk of blocks, then bit
// arithmetic finds the escaped quotes and the bytes inside strings, so only
// the brackets outside strings are visited one by one.
func (s *scanner) skipContainerBlocks() error {
	b := s.b
	stack := s.stack[:0]
	var (
		masks [maxChunkBlocks * masksPerBlock]uint64
		tail  [blockSize]byte
		// Carried from block to block: all ones while inside a string, and
		// 1 after an odd run of backslashes.
		inString, escapeCarry uint64
	)
	chunk := 1 // blocks per call; doubles, as most containers are short
	for p := s.i; p < len(b); {
		src := b[p:]
		n := min(len(src)/blockSize, chunk)
		if n == 0 {
			// The last bytes, padded with spaces to a whole block.
			n = 1
			src = tail[:copy(tail[:], src)]
			for len(src) < blockSize {
				src = append(src, ' ')
			}
		}
		chunk = min(2*chunk, maxChunkBlocks)
		structuralMasks(src[:n*blockSize], masks[:n*masksPerBlock])
		for k := range n {
			m := masks[k*masksPerBlock:]
			quote, backslash, bracket := m[0], m[1], m[2]
			if backslash|escapeCarry != 0 {
				quote &^= escapedBits(backslash, &escapeCarry)
			}
			str := prefixXOR(quote) ^ inString
			inString = uint64(int64(str) >> 63)
			for br := bracket &^ str; br != 0; br &= br - 1 {
				at := p + k*blockSize + bits.TrailingZeros64(br)
				switch c := b[at]; c {
				case '{', '[':
					if len(stack) >= maxDepth {
						s.i = at
						return s.errorf("nesting deeper than %d", maxDepth)
					}
					stack = append(stack, c)
				default:
					// '}' - 2 == '{' and ']' - 2 == '['.
					if len(stack) == 0 || stack[len(stack)-1] != c-2 {
						s.i = at
						return s.errorf("unbalanced %q", c)
					}
					stack = stack[:len(stack)-1]
					if len(stack) == 0 {
						s.i, s.stack = at+1, stack
						return nil
					}
				}
			}
		}
		p += n * blockSize
	}
	s.i, s.stack = len(b), stack
	if inString != 0 {
		return s.errorf("unterminated string")
	}
	return s.errorf("unterminated %q", stack[0])
}

// isStructural marks the bytes skipContainerBytes acts on outside strings,
// and endsString those it stops at inside them.
var (
	isStructural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}
	endsString   = [256]bool{'"': true, '\\': true}
)

// skipContainerBytes is skipContainer one byte at a time, for where no
// assembly classifies blocks. Strings are scanned inline rather than
// through rawString.
func (s *scanner) skipContainerBytes() error {
	b := s.b
	stack := s.stack[:0]
	i := s.i
	for i < len(b) {
		c := b[i]
		i++
		if !isStructural[c] {
			continue
		}
		switch c {
		case '"':
			for i < len(b) && !endsString[b[i]] {
				i++
			}
			for i < len(b) && b[i] == '\\' {
				i += 2 // the backslash and the byte it escapes
				for i < len(b) && !endsString[b[i]] {
					i++
				}
			}
			if i >= len(b) {
				s.i = len(b)
				return s.errorf("unterminated string")
			}
			i++
		case '{', '[':
			if len(stack) >= maxDepth {
				s.i = i - 1
				return s.errorf("nesting deeper than %d", maxDepth)
			}
			stack = append(stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != open {
				s.i = i - 1
				return s.errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				s.i, s.stack = i, stack
				return nil
			}
		}
	}
	s.i, s.stack = len(b), stack
	return s.errorf("unterminated %q", stack[0])
}
