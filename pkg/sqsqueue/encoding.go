package sqsqueue

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

// SQS carries message bodies and String attribute values only as valid
// UTF-8 made of the characters #x9 | #xA | #xD | #x20–#xD7FF |
// #xE000–#xFFFD | #x10000–#x10FFFF; it refuses anything else. A body that is
// not such text travels base64-encoded, labelled with AttrBodyEncoding, and
// a label value that is not travels as a Binary attribute holding its bytes.
// Readers undo both, so every body and label arrives byte for byte as sent.
// Text SQS can carry, nearly every message, is sent unchanged.
const (
	// AttrBodyEncoding is set, to BodyEncodingBase64, only on a message whose
	// body is the base64 encoding of the real body.
	AttrBodyEncoding   = "bodyEncoding"
	BodyEncodingBase64 = "base64"
)

// MaxMessageBytes is the most SQS lets a message hold: its body plus each
// attribute's name, data type and value; the deployed and local queues are
// set to it (pipeline.MaxMessageBytes). A queue configured lower refuses a
// larger send itself: loudly, never silently.
const MaxMessageBytes = pipeline.MaxMessageBytes

// MaxBodyBytes is the largest body sure to fit in a message even when it
// must travel base64-encoded (4 bytes for every 3), with room for the
// attributes that label it.
const MaxBodyBytes = (MaxMessageBytes - 8<<10) / 4 * 3

// Carriable reports whether SQS can carry s as a body or a String
// attribute value: valid UTF-8 of the characters SQS allows.
func Carriable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < 0x20 {
			if c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		// utf8 refuses invalid sequences and the surrogates D800–DFFF.
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += n
	}
	return true
}

// EncodeBody returns the message body that carries body: body itself when
// SQS can carry it, else its base64 encoding, and then it labels attrs
// with AttrBodyEncoding. It fails if the encoding makes the message larger
// than SQS allows.
func EncodeBody(body []byte, attrs map[string]types.MessageAttributeValue) (string, error) {
	if text := string(body); Carriable(text) {
		return text, nil
	}
	attrs[AttrBodyEncoding] = TextAttribute(BodyEncodingBase64)
	text := base64.StdEncoding.EncodeToString(body)
	return text, checkSize(text, attrs)
}

// DecodeBody returns the body a message carried as text, given its
// AttrBodyEncoding attribute ("" when it has none).
func DecodeBody(text, encoding string) ([]byte, error) {
	switch encoding {
	case "":
		return []byte(text), nil
	case BodyEncodingBase64:
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("body labelled %s=%s: %w", AttrBodyEncoding, encoding, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown %s %q", AttrBodyEncoding, encoding)
}

// RestoreBody undoes EncodeBody on a received message, given its
// attributes as text (AttributeText): it returns the exact body and the
// encoding it undid, and removes AttrBodyEncoding from attrs. A body
// without the label, or whose encoding cannot be undone, comes back as
// received, with "" (and the label, if any, stays in attrs).
func RestoreBody(text string, attrs map[string]string) ([]byte, string) {
	enc, ok := attrs[AttrBodyEncoding]
	if !ok {
		return []byte(text), ""
	}
	body, err := DecodeBody(text, enc)
	if err != nil {
		return []byte(text), ""
	}
	delete(attrs, AttrBodyEncoding)
	return body, enc
}

// TextAttribute returns the message attribute carrying v exactly: a String,
// or a Binary holding v's bytes when SQS cannot carry v as text. v must not
// be empty.
func TextAttribute(v string) types.MessageAttributeValue {
	if Carriable(v) {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return types.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: []byte(v)}
}

// AttributeText returns the text an attribute carries, as TextAttribute
// sent it: a Binary attribute's bytes, or a String's or Number's value.
func AttributeText(dataType string, stringValue *string, binaryValue []byte) (string, bool) {
	if strings.HasPrefix(dataType, "Binary") {
		return string(binaryValue), binaryValue != nil
	}
	if stringValue == nil {
		return "", false
	}
	return *stringValue, true
}

// checkSize refuses a message SQS would refuse for its size. Only encoded
// messages are checked: the encoding is what made them grow, by 4/3.
func checkSize(body string, attrs map[string]types.MessageAttributeValue) error {
	if n := messageBytes(body, attrs); n > MaxMessageBytes {
		return fmt.Errorf("message is %d bytes with its body base64-encoded (SQS cannot carry it as text), over SQS's %d-byte limit", n, MaxMessageBytes)
	}
	return nil
}

// messageBytes is what SQS counts of a message against its size limit:
// its body and each attribute's name, data type and value.
func messageBytes(body string, attrs map[string]types.MessageAttributeValue) int {
	n := len(body)
	for name, a := range attrs {
		n += len(name) + len(aws.ToString(a.DataType)) + len(aws.ToString(a.StringValue)) + len(a.BinaryValue)
	}
	return n
}
