package dynamostore

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestJSONNumberAttribute(t *testing.T) {
	tests := []struct {
		in   any
		want types.AttributeValue
	}{
		{json.Number("63.50"), &types.AttributeValueMemberN{Value: "63.50"}},
		{json.Number("-0"), &types.AttributeValueMemberN{Value: "-0"}},
		{json.Number("1E-130"), &types.AttributeValueMemberN{Value: "1E-130"}},
		{json.Number("9.9999999999999999999999999999999999999e125"), &types.AttributeValueMemberN{Value: "9.9999999999999999999999999999999999999e125"}},
		{json.Number("1e126"), &types.AttributeValueMemberB{Value: []byte("1e126")}},
		{json.Number("1e-131"), &types.AttributeValueMemberB{Value: []byte("1e-131")}},
		{json.Number("1e99999999999999999999999"), &types.AttributeValueMemberB{Value: []byte("1e99999999999999999999999")}},
		{json.Number("0.0000000000000000000000000000000000000000001"), &types.AttributeValueMemberN{Value: "0.0000000000000000000000000000000000000000001"}}, // leading zeros are not significant
		{json.Number("0.000000000000000000000000000000000000000"), &types.AttributeValueMemberB{Value: []byte("0.000000000000000000000000000000000000000")}}, // a zero of 40 digits
		{json.Number(strings.Repeat("0", 39) + "e0"), &types.AttributeValueMemberB{Value: []byte(strings.Repeat("0", 39) + "e0")}},                           // not JSON
		{1e300, &types.AttributeValueMemberB{Value: []byte("1e+300")}},
		{63.5, &types.AttributeValueMemberN{Value: "63.5"}},
		{5e-324, &types.AttributeValueMemberB{Value: []byte("5e-324")}},
	}
	for _, tt := range tests {
		got, err := toAttributeValue(tt.in, 1)
		if err != nil {
			t.Errorf("%v: %v", tt.in, err)
			continue
		}
		back, err := fromAttributeValue(got)
		switch g := got.(type) {
		case *types.AttributeValueMemberN:
			w, ok := tt.want.(*types.AttributeValueMemberN)
			if !ok || g.Value != w.Value {
				t.Errorf("%v stored as N %s, want %#v", tt.in, g.Value, tt.want)
			}
		case *types.AttributeValueMemberB:
			w, ok := tt.want.(*types.AttributeValueMemberB)
			if !ok || string(g.Value) != string(w.Value) {
				t.Errorf("%v stored as B %s, want %#v", tt.in, g.Value, tt.want)
			}
			if n, isNumber := parseNumber(string(g.Value)); isNumber && (err != nil || back != json.Number(g.Value)) {
				t.Errorf("%v read back as %#v, %v (parsed %+v)", tt.in, back, err, n)
			}
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := toAttributeValue(bad, 1); err == nil {
			t.Errorf("%v stored", bad)
		}
	}
	if _, err := fromAttributeValue(&types.AttributeValueMemberB{Value: []byte("not a number")}); err == nil {
		t.Error("a binary that is no number read back")
	}
}
