// Package dynamostore is the DynamoDB adapter of the processor: the events
// table is its idempotency Ledger and the vehicle-state table its
// VehicleStore. Every guarantee rests on conditional writes: a claim
// succeeds only for a new, released or expired event; completion and state
// writes only while the writer's fencing token still holds the event; a
// state write only over the version it read.
package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Table schema, shared with the CDK stack and the local stack.
const (
	EventsKey          = "eventId"   // events table partition key (S)
	StateKey           = "vehicleId" // vehicle-state table partition key (S)
	TTLAttribute       = "expiresAt" // events table TTL attribute (N, epoch seconds)
	MessageIDAttribute = "messageId" // events table: the queue message the claim was made for (S)
)

// Event item statuses.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusCompleted  = "COMPLETED"
)

// API is the part of the DynamoDB client the Store uses.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is the processor's Ledger and VehicleStore over two tables. An
// eventId or vehicleId DynamoDB cannot take as a key (empty, or over 2048
// bytes) fails with a processor.Permanent error, so the processor
// dead-letters its record at once.
type Store struct {
	api           API
	eventsTable   string
	vehiclesTable string
}

// EventsTable names the events table.
func (s *Store) EventsTable() string { return s.eventsTable }

// StateTable names the vehicle-state table.
func (s *Store) StateTable() string { return s.vehiclesTable }

// New returns a Store over the events and vehicle-state tables.
func New(api API, eventsTable, vehiclesTable string) *Store {
	return &Store{api: api, eventsTable: eventsTable, vehiclesTable: vehiclesTable}
}

// holdsCondition is true while the claim with :token holds its event.
const holdsCondition = "#status = :inProgress AND #token = :token"

var eventNames = map[string]string{"#status": "status", "#token": "token"}

func eventKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{EventsKey: &types.AttributeValueMemberS{Value: id}}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// Claim implements processor.Ledger with one conditional UpdateItem.
func (s *Store) Claim(ctx context.Context, req processor.ClaimRequest) (processor.Claim, processor.Outcome, error) {
	if err := checkKey(EventsKey, req.EventID); err != nil {
		return processor.Claim{}, 0, err
	}
	// The vehicle's key is checked here too, before users' handlers run:
	// its state could never be stored. (A bare ledger claim names none.)
	if req.VehicleID != "" {
		if err := checkKey(StateKey, req.VehicleID); err != nil {
			return processor.Claim{}, 0, err
		}
	}
	token, err := newToken()
	if err != nil {
		return processor.Claim{}, 0, err
	}
	now := req.Now.UnixMilli()
	values := map[string]types.AttributeValue{
		":inProgress": str(StatusInProgress),
		":token":      str(token),
		":lease":      num(req.Now.Add(req.Lease).UnixMilli()),
		":ttl":        num(req.Now.Add(req.TTL).Unix()),
		":eventType":  str(req.EventType),
		":vehicleId":  str(req.VehicleID),
		":now":        num(now),
		":one":        num(1),
	}
	update := "SET #status = :inProgress, #token = :token, leaseExpiresAt = :lease, " +
		TTLAttribute + " = :ttl, eventType = :eventType, vehicleId = :vehicleId, claimedAt = :now"
	// The token clause makes the claim idempotent: if DynamoDB applied it but
	// the answer was lost, the SDK's retry (same token) succeeds instead of
	// finding its own lease and taking the event for someone else's.
	condition := "attribute_not_exists(" + EventsKey + ") OR (#status = :inProgress AND leaseExpiresAt <= :now)" +
		" OR (#status = :inProgress AND #token = :token)"
	if req.MessageID != "" {
		// A redelivered message takes over the claim of its earlier attempt.
		update += ", " + MessageIDAttribute + " = :messageId ADD attempts :one"
		condition += " OR (#status = :inProgress AND " + MessageIDAttribute + " = :messageId)"
		values[":messageId"] = str(req.MessageID)
	} else {
		update += " ADD attempts :one REMOVE " + MessageIDAttribute
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.eventsTable),
		Key:                                 eventKey(req.EventID),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(condition),
		ExpressionAttributeNames:            eventNames,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues:           values,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return processor.Claim{EventID: req.EventID, Token: token}, processor.Claimed, nil
	case !errors.As(err, &failed):
		return processor.Claim{}, 0, fmt.Errorf("claim %s: %w", req.EventID, err)
	}
	item := failed.Item
	if item == nil { // an endpoint that does not return the old item
		out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.eventsTable), Key: eventKey(req.EventID), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return processor.Claim{}, 0, fmt.Errorf("read event %s: %w", req.EventID, err)
		}
		item = out.Item
	}
	if st, ok := item["status"].(*types.AttributeValueMemberS); ok && st.Value == StatusCompleted {
		return processor.Claim{}, processor.AlreadyCompleted, nil
	}
	return processor.Claim{}, processor.HeldElsewhere, nil
}

// completeUpdate marks an event completed.
const completeUpdate = "SET #status = :completed, completedAt = :now REMOVE leaseExpiresAt"

// Complete implements processor.Ledger. Completing again under the same
// token succeeds, so an SDK retry of an applied completion is harmless.
func (s *Store) Complete(ctx context.Context, c processor.Claim, now time.Time) error {
	return s.update(ctx, c, completeUpdate, "#token = :token AND (#status = :inProgress OR #status = :completed)",
		map[string]types.AttributeValue{":completed": str(StatusCompleted), ":now": num(now.UnixMilli())})
}

// Release implements processor.Ledger: the lease is ended at once.
func (s *Store) Release(ctx context.Context, c processor.Claim) error {
	return s.update(ctx, c, "SET leaseExpiresAt = :zero", holdsCondition, map[string]types.AttributeValue{":zero": num(0)})
}

// update applies update to c's event under condition, which decides
// whether c still holds it.
func (s *Store) update(ctx context.Context, c processor.Claim, update, condition string, values map[string]types.AttributeValue) error {
	if err := checkKey(EventsKey, c.EventID); err != nil {
		return err
	}
	values[":inProgress"] = str(StatusInProgress)
	values[":token"] = str(c.Token)
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.eventsTable),
		Key:                       eventKey(c.EventID),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(condition),
		ExpressionAttributeNames:  eventNames,
		ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return processor.ErrFenceLost
	}
	if err != nil {
		return fmt.Errorf("update event %s: %w", c.EventID, err)
	}
	return nil
}

// GetVehicle implements processor.VehicleStore with a strongly consistent
// read.
func (s *Store) GetVehicle(ctx context.Context, vehicleID string) (*vehicle.State, error) {
	if err := checkKey(StateKey, vehicleID); err != nil {
		return nil, err
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.vehiclesTable),
		Key:            map[string]types.AttributeValue{StateKey: str(vehicleID)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get vehicle %s: %w", vehicleID, err)
	}
	if out.Item == nil {
		return vehicle.New(vehicleID), nil
	}
	return decodeVehicle(out.Item)
}

// PutVehicle implements processor.VehicleStore: one TransactWriteItems
// that completes the fence's event on the events table and puts the vehicle
// over the version it was read at; both or neither.
func (s *Store) PutVehicle(ctx context.Context, st *vehicle.State, fence processor.Claim) error {
	if err := checkKey(StateKey, st.VehicleID); err != nil {
		return err
	}
	if err := checkKey(EventsKey, fence.EventID); err != nil {
		return err
	}
	next := *st
	next.Version++
	item, err := encodeVehicle(&next)
	if err != nil {
		return err
	}
	versionCond := "#version = :version"
	if st.Version == 0 {
		versionCond = "attribute_not_exists(" + StateKey + ")"
	}
	put := &types.Put{
		TableName:                aws.String(s.vehiclesTable),
		Item:                     item,
		ConditionExpression:      aws.String(versionCond),
		ExpressionAttributeNames: map[string]string{"#version": "version"},
	}
	if st.Version == 0 {
		put.ExpressionAttributeNames = nil
	} else {
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":version": num(st.Version)}
	}
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                aws.String(s.eventsTable),
			Key:                      eventKey(fence.EventID),
			UpdateExpression:         aws.String(completeUpdate),
			ConditionExpression:      aws.String(holdsCondition),
			ExpressionAttributeNames: eventNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":inProgress": str(StatusInProgress), ":token": str(fence.Token),
				":completed": str(StatusCompleted), ":now": num(st.UpdatedAt),
			},
		}},
		{Put: put},
	}})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		reasons := canceled.CancellationReasons
		switch {
		case len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed":
			return processor.ErrFenceLost
		case len(reasons) > 1 && aws.ToString(reasons[1].Code) == "ConditionalCheckFailed",
			anyCode(reasons, "TransactionConflict"):
			return processor.ErrVersionConflict
		}
	}
	if err != nil {
		return fmt.Errorf("put vehicle %s: %w", st.VehicleID, err)
	}
	st.Version = next.Version
	return nil
}

func anyCode(reasons []types.CancellationReason, code string) bool {
	for _, r := range reasons {
		if aws.ToString(r.Code) == code {
			return true
		}
	}
	return false
}

// maxKeyBytes is DynamoDB's limit on a partition key value (UTF-8 bytes).
const maxKeyBytes = 2048

// checkKey refuses, as a permanent failure, a value DynamoDB can never
// take as the partition key attr. The value itself is not quoted: it may be
// kilobytes long.
func checkKey(attr, value string) error {
	switch {
	case value == "":
		return processor.Permanent(fmt.Errorf("%s is empty: DynamoDB refuses an empty key", attr))
	case len(value) > maxKeyBytes:
		return processor.Permanent(fmt.Errorf("%s is %d bytes, over DynamoDB's %d-byte partition key limit", attr, len(value), maxKeyBytes))
	}
	return nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("fencing token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
