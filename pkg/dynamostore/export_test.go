package dynamostore

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// EncodeLegacy encodes a vehicle as a legacy item at version, in the
// format stacks deployed before the entry layout hold: what the tests of
// the upgrade store.
func EncodeLegacy(s *vehicle.State, version int64) (map[string]types.AttributeValue, error) {
	it := vehicleItem{
		VehicleID: s.VehicleID, Make: s.Make, Model: s.Model, Year: s.Year, UserID: s.UserID, Mode: s.Mode,
		Signals: make(map[string]signalItem, len(s.Signals)), Errors: make(map[string]errorItem, len(s.Errors)),
		NeedsReauth: s.NeedsReauth, LastDeliveredAt: s.LastDeliveredAt, UpdatedAt: s.UpdatedAt, Version: version,
	}
	for code, sg := range s.Signals {
		it.Signals[code] = signalItem{
			Name: sg.Name, Group: sg.Group, Body: jsonBody(sg.Body), Status: sg.Status, ErrorType: sg.ErrorType,
			ErrorCode: sg.ErrorCode, Unsupported: sg.Unsupported, OEMUpdatedAt: sg.OEMUpdatedAt,
			RetrievedAt: sg.RetrievedAt, OrderedAt: sg.OrderedAt, EventID: sg.EventID,
		}
	}
	for key, e := range s.Errors {
		it.Errors[key] = errorItem{Type: e.Type, Code: e.Code, State: e.State, Description: e.Description, ResolutionType: e.ResolutionType,
			Signals: e.Signals, UpdatedAt: e.UpdatedAt, OrderedAt: e.OrderedAt, EventID: e.EventID}
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("encode vehicle %s: %w", s.VehicleID, err)
	}
	return item, nil
}
