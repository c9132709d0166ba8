package dynamostore

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// vehicleItem is a vehicle-state table item: the shape users read (see the
// README's data model).
type vehicleItem struct {
	VehicleID       string                `dynamodbav:"vehicleId"`
	Make            string                `dynamodbav:"make,omitempty"`
	Model           string                `dynamodbav:"model,omitempty"`
	Year            int                   `dynamodbav:"year,omitempty"`
	UserID          string                `dynamodbav:"userId,omitempty"`
	Mode            string                `dynamodbav:"mode,omitempty"`
	Signals         map[string]signalItem `dynamodbav:"signals"`
	Errors          map[string]errorItem  `dynamodbav:"errors"`
	NeedsReauth     bool                  `dynamodbav:"needsReauth"`
	LastDeliveredAt int64                 `dynamodbav:"lastDeliveredAt"`
	UpdatedAt       int64                 `dynamodbav:"updatedAt"`
	Version         int64                 `dynamodbav:"version"`
}

type signalItem struct {
	Name         string   `dynamodbav:"name,omitempty"`
	Group        string   `dynamodbav:"group,omitempty"`
	Body         jsonBody `dynamodbav:"body,omitempty"`
	Status       string   `dynamodbav:"status,omitempty"`
	ErrorType    string   `dynamodbav:"errorType,omitempty"`
	ErrorCode    string   `dynamodbav:"errorCode,omitempty"`
	Unsupported  bool     `dynamodbav:"unsupported,omitempty"`
	OEMUpdatedAt int64    `dynamodbav:"oemUpdatedAt"`
	RetrievedAt  int64    `dynamodbav:"retrievedAt"`
	OrderedAt    int64    `dynamodbav:"orderedAt"`
	EventID      string   `dynamodbav:"eventId,omitempty"`
}

type errorItem struct {
	Type           string   `dynamodbav:"type"`
	Code           string   `dynamodbav:"code,omitempty"`
	State          string   `dynamodbav:"state"`
	Description    string   `dynamodbav:"description,omitempty"`
	ResolutionType string   `dynamodbav:"resolutionType,omitempty"`
	Signals        []string `dynamodbav:"signals,omitempty"`
	UpdatedAt      int64    `dynamodbav:"updatedAt"`
	OrderedAt      int64    `dynamodbav:"orderedAt"` // absent (0) in items written before it existed
	EventID        string   `dynamodbav:"eventId,omitempty"`
}

func encodeVehicle(s *vehicle.State) (map[string]types.AttributeValue, error) {
	it := vehicleItem{
		VehicleID: s.VehicleID, Make: s.Make, Model: s.Model, Year: s.Year, UserID: s.UserID, Mode: s.Mode,
		Signals: make(map[string]signalItem, len(s.Signals)), Errors: make(map[string]errorItem, len(s.Errors)),
		NeedsReauth: s.NeedsReauth, LastDeliveredAt: s.LastDeliveredAt, UpdatedAt: s.UpdatedAt, Version: s.Version,
	}
	for code, sg := range s.Signals {
		it.Signals[code] = signalItem{
			Name: sg.Name, Group: sg.Group, Body: jsonBody(sg.Body), Status: sg.Status, ErrorType: sg.ErrorType,
			ErrorCode: sg.ErrorCode, Unsupported: sg.Unsupported, OEMUpdatedAt: sg.OEMUpdatedAt,
			RetrievedAt: sg.RetrievedAt, OrderedAt: sg.OrderedAt, EventID: sg.EventID,
		}
	}
	for key, e := range s.Errors {
		it.Errors[key] = errorItem(e)
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("encode vehicle %s: %w", s.VehicleID, err)
	}
	return item, nil
}

func decodeVehicle(item map[string]types.AttributeValue) (*vehicle.State, error) {
	var it vehicleItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, fmt.Errorf("decode vehicle item: %w", err)
	}
	s := vehicle.New(it.VehicleID)
	s.Make, s.Model, s.Year, s.UserID, s.Mode = it.Make, it.Model, it.Year, it.UserID, it.Mode
	s.NeedsReauth, s.LastDeliveredAt, s.UpdatedAt, s.Version = it.NeedsReauth, it.LastDeliveredAt, it.UpdatedAt, it.Version
	for code, sg := range it.Signals {
		s.Signals[code] = vehicle.Signal{
			Name: sg.Name, Group: sg.Group, Body: map[string]any(sg.Body), Status: sg.Status, ErrorType: sg.ErrorType,
			ErrorCode: sg.ErrorCode, Unsupported: sg.Unsupported, OEMUpdatedAt: sg.OEMUpdatedAt,
			RetrievedAt: sg.RetrievedAt, OrderedAt: sg.OrderedAt, EventID: sg.EventID,
		}
	}
	for key, e := range it.Errors {
		s.Errors[key] = vehicle.Error(e)
	}
	return s, nil
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
	return toAttributeValue(map[string]any(b))
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

func toAttributeValue(v any) (types.AttributeValue, error) {
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
			av, err := toAttributeValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(x))
		for k, e := range x {
			av, err := toAttributeValue(e)
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
