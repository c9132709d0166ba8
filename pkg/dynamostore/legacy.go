package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// The legacy layout: one item per vehicle, keyed by vehicleId alone, with
// every signal and error in maps, rewritten whole (with a version) by
// every event. Stacks deployed before the entry layout hold their
// vehicles so; the processor reads them (GetItem) and MigrateLegacy moves
// them. Nothing writes this layout any more but tests, which build items
// in it.

// vehicleItem is a legacy vehicle-state table item.
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

// decodeVehicle decodes a legacy item, as stored: nothing is derived.
func decodeVehicle(item map[string]types.AttributeValue) (*vehicle.State, error) {
	var it vehicleItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, fmt.Errorf("decode vehicle item: %w", err)
	}
	s := vehicle.New(it.VehicleID)
	s.Make, s.Model, s.Year, s.UserID, s.Mode = it.Make, it.Model, it.Year, it.UserID, it.Mode
	s.NeedsReauth, s.LastDeliveredAt, s.UpdatedAt = it.NeedsReauth, it.LastDeliveredAt, it.UpdatedAt
	s.Source = vehicle.SourceLegacy
	for code, sg := range it.Signals {
		s.Signals[code] = vehicle.Signal{
			Name: sg.Name, Group: sg.Group, Body: map[string]any(sg.Body), Status: sg.Status, ErrorType: sg.ErrorType,
			ErrorCode: sg.ErrorCode, Unsupported: sg.Unsupported, OEMUpdatedAt: sg.OEMUpdatedAt,
			RetrievedAt: sg.RetrievedAt, OrderedAt: sg.OrderedAt, EventID: sg.EventID,
		}
	}
	for key, e := range it.Errors {
		s.Errors[key] = vehicle.Error{Type: e.Type, Code: e.Code, State: e.State, Description: e.Description, ResolutionType: e.ResolutionType,
			Signals: e.Signals, UpdatedAt: e.UpdatedAt, OrderedAt: e.OrderedAt, EventID: e.EventID}
	}
	return s, nil
}

// getLegacy reads a vehicle's legacy item: nil if there is none, or no
// legacy table.
func (s *Store) getLegacy(ctx context.Context, vehicleID string) (*vehicle.State, error) {
	if s.legacyTable == "" {
		return nil, nil
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.legacyTable),
		Key:            map[string]types.AttributeValue{StateKey: str(vehicleID)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get legacy vehicle %s: %w", vehicleID, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	st, err := decodeVehicle(out.Item)
	if err != nil {
		return nil, err
	}
	st.ForgetTimesAfter(vehicle.Bound(time.Now()))
	return st, nil
}
