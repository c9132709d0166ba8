package dynamostore

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Entries of a vehicle: the value of EntryKey.
const (
	entryVehicle      = "vehicle"
	entrySignalPrefix = "signal#" // + the signal's code
	entryErrorPrefix  = "error#"  // + the error's key, TYPE:CODE
)

// Attribute names of the entries. They are short because a vehicle's
// signal entries are read by every event (a Query is billed by the bytes
// it reads, names included); the vehicle view (vehicle.State) has the
// long ones.
const (
	// Every entry.
	attrUpdatedAt = "ua" // when the entry was written (ms)
	attrOrderedAt = "oa" // signal and error: the time the entry is ordered by (ms)
	attrEventID   = "ev" // signal and error: the event that wrote it

	// The vehicle entry.
	attrMake            = "mk"
	attrModel           = "md"
	attrYear            = "yr"
	attrUserID          = "us"
	attrMode            = "mo"
	attrLastDeliveredAt = "ld"

	// A signal entry.
	attrName         = "n"
	attrGroup        = "g"
	attrBody         = "b"
	attrStatus       = "s"
	attrErrorType    = "et"
	attrErrorCode    = "ec"
	attrOEMUpdatedAt = "ou"
	attrRetrievedAt  = "ra"

	// An error entry (and attrStatus for its state).
	attrType           = "t"
	attrCode           = "c"
	attrDescription    = "d"
	attrResolutionType = "rt"
	attrSignals        = "sg" // list of {c, n, g}: the signals' codes, names and groups
	attrDeliveredAt    = "da" // the meta.deliveredAt that reported it (ms)
	attrNeedsReauth    = "nr" // whether the vehicle needed re-authentication once it was merged (BOOL)
)

func signalEntry(code string) string { return entrySignalPrefix + code }
func errorEntry(key string) string   { return entryErrorPrefix + key }

func entryKey(vehicleID, entry string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{StateKey: str(vehicleID), EntryKey: str(entry)}
}

// errorItemOf encodes an error entry whole.
func errorItemOf(vehicleID, key string, e vehicle.Error, updatedAt int64) map[string]types.AttributeValue {
	item := entryKey(vehicleID, errorEntry(key))
	item[attrType] = str(e.Type)
	item[attrStatus] = str(e.State)
	item[attrDeliveredAt] = num(e.UpdatedAt)
	item[attrOrderedAt] = num(e.Ordered())
	item[attrUpdatedAt] = num(updatedAt)
	if e.VehicleNeedsReauth != nil {
		item[attrNeedsReauth] = &types.AttributeValueMemberBOOL{Value: *e.VehicleNeedsReauth}
	}
	for attr, v := range map[string]string{attrCode: e.Code, attrDescription: e.Description, attrResolutionType: e.ResolutionType, attrEventID: e.EventID} {
		if v != "" {
			item[attr] = str(v)
		}
	}
	if len(e.Signals) > 0 {
		refs := make([]types.AttributeValue, len(e.Signals))
		for i, code := range e.Signals {
			ref := map[string]types.AttributeValue{"c": str(code)}
			if i < len(e.Refs) {
				if e.Refs[i].Name != "" {
					ref["n"] = str(e.Refs[i].Name)
				}
				if e.Refs[i].Group != "" {
					ref["g"] = str(e.Refs[i].Group)
				}
			}
			refs[i] = &types.AttributeValueMemberM{Value: ref}
		}
		item[attrSignals] = &types.AttributeValueMemberL{Value: refs}
	}
	return item
}

// entryState gathers the entries of one vehicle read by a Query.
type entryState struct {
	st      *vehicle.State
	vehicle bool // the vehicle entry was read
}

// add decodes one entry item into the state.
func (e *entryState) add(item map[string]types.AttributeValue) error {
	entry := getS(item, EntryKey)
	updated := getN(item, attrUpdatedAt)
	e.st.UpdatedAt = max(e.st.UpdatedAt, updated)
	switch {
	case entry == entryVehicle:
		e.vehicle = true
		s := e.st
		s.Make, s.Model, s.Year = getS(item, attrMake), getS(item, attrModel), int(getN(item, attrYear))
		s.UserID, s.Mode, s.LastDeliveredAt = getS(item, attrUserID), getS(item, attrMode), getN(item, attrLastDeliveredAt)
	case strings.HasPrefix(entry, entrySignalPrefix):
		sg := vehicle.Signal{
			Name: getS(item, attrName), Group: getS(item, attrGroup), Status: getS(item, attrStatus),
			ErrorType: getS(item, attrErrorType), ErrorCode: getS(item, attrErrorCode),
			OEMUpdatedAt: getN(item, attrOEMUpdatedAt), RetrievedAt: getN(item, attrRetrievedAt),
			OrderedAt: getN(item, attrOrderedAt), EventID: getS(item, attrEventID),
		}
		if av, ok := item[attrBody]; ok {
			var b jsonBody
			if err := b.UnmarshalDynamoDBAttributeValue(av); err != nil {
				return fmt.Errorf("entry %s: %w", entry, err)
			}
			sg.Body = b
		}
		e.st.Signals[strings.TrimPrefix(entry, entrySignalPrefix)] = sg
	case strings.HasPrefix(entry, entryErrorPrefix):
		er := vehicle.Error{
			Type: getS(item, attrType), Code: getS(item, attrCode), State: getS(item, attrStatus),
			Description: getS(item, attrDescription), ResolutionType: getS(item, attrResolutionType),
			UpdatedAt: getN(item, attrDeliveredAt), OrderedAt: getN(item, attrOrderedAt), EventID: getS(item, attrEventID),
		}
		if b, ok := item[attrNeedsReauth].(*types.AttributeValueMemberBOOL); ok {
			needs := b.Value
			er.VehicleNeedsReauth = &needs
		}
		if l, ok := item[attrSignals].(*types.AttributeValueMemberL); ok {
			for _, v := range l.Value {
				m, _ := v.(*types.AttributeValueMemberM)
				if m == nil {
					continue
				}
				ref := smartcar.SignalRef{Code: getS(m.Value, "c"), Name: getS(m.Value, "n"), Group: getS(m.Value, "g")}
				er.Signals = append(er.Signals, ref.Code)
				er.Refs = append(er.Refs, ref)
			}
		}
		e.st.Errors[strings.TrimPrefix(entry, entryErrorPrefix)] = er
	}
	return nil
}

func getS(item map[string]types.AttributeValue, attr string) string {
	if v, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, attr string) int64 {
	if v, ok := item[attr].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// jsonBody is a signal body: JSON values with numbers as json.Number, kept
// exact in DynamoDB's decimal N type, or as B when N cannot hold them (see
// jsonNumber).
type jsonBody map[string]any

// MarshalDynamoDBAttributeValue implements attributevalue.Marshaler.
func (b jsonBody) MarshalDynamoDBAttributeValue() (types.AttributeValue, error) {
	if b == nil {
		return &types.AttributeValueMemberNULL{Value: true}, nil
	}
	return toAttributeValue(map[string]any(b), 1)
}

// UnmarshalDynamoDBAttributeValue implements attributevalue.Unmarshaler.
func (b *jsonBody) UnmarshalDynamoDBAttributeValue(av types.AttributeValue) error {
	v, err := fromAttributeValue(av)
	if err != nil {
		return err
	}
	switch m := v.(type) {
	case nil:
		*b = nil
	case map[string]any:
		*b = m
	default:
		return fmt.Errorf("signal body is %T, want a map", v)
	}
	return nil
}

// maxNesting is how deep DynamoDB lets maps and lists nest in an item; a
// signal body is at least one level down (in its entry's attribute).
const maxNesting = 32

// toAttributeValue converts a decoded JSON value; depth is how many maps
// and lists enclose it in the item.
func toAttributeValue(v any, depth int) (types.AttributeValue, error) {
	switch v.(type) {
	case []any, map[string]any:
		if depth >= maxNesting {
			return nil, fmt.Errorf("nested deeper than DynamoDB's %d levels", maxNesting)
		}
	}
	switch x := v.(type) {
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case string:
		return &types.AttributeValueMemberS{Value: x}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: x}, nil
	case json.Number:
		return jsonNumber(x.String()), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", x)
		}
		return jsonNumber(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case []any:
		l := make([]types.AttributeValue, len(x))
		for i, e := range x {
			av, err := toAttributeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(x))
		for k, e := range x {
			av, err := toAttributeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = av
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, fmt.Errorf("unsupported JSON value %T", v)
}

func fromAttributeValue(av types.AttributeValue) (any, error) {
	switch x := av.(type) {
	case *types.AttributeValueMemberNULL:
		return nil, nil
	case *types.AttributeValueMemberS:
		return x.Value, nil
	case *types.AttributeValueMemberBOOL:
		return x.Value, nil
	case *types.AttributeValueMemberN:
		return json.Number(x.Value), nil
	case *types.AttributeValueMemberB:
		return binaryNumber(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]any, len(x.Value))
		for i, e := range x.Value {
			v, err := fromAttributeValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case *types.AttributeValueMemberM:
		m := make(map[string]any, len(x.Value))
		for k, e := range x.Value {
			v, err := fromAttributeValue(e)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported attribute value %T in a signal body", av)
}
