// Package dynamostore is the DynamoDB adapter of the processor: the events
// table is its idempotency Ledger and the vehicle-state table its
// VehicleStore. Every guarantee rests on conditional writes: a claim
// succeeds only for a new, released or expired event; completion only
// while the writer's fencing token still holds the event; each state entry
// only over an older one.
//
// The state table holds one item per entry of a vehicle under its
// partition key (see item.go): its details, each signal and each error,
// read together with one strongly consistent Query. A vehicle still in the
// legacy one-item table (see legacy.go) is read from there until its first
// write in the entry layout, which stores all of it.
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
)

// Table schema, shared with the CDK stack and the local stack.
const (
	EventsKey          = "eventId"   // events table partition key (S)
	StateKey           = "vehicleId" // vehicle-state table partition key (S), and the legacy table's
	EntryKey           = "entry"     // vehicle-state table sort key (S): "vehicle", "signal#<code>", "error#<TYPE:CODE>"
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
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Store is the processor's Ledger and VehicleStore over two tables. An
// eventId or vehicleId DynamoDB cannot take as a key (empty, or over 2048
// bytes) fails with a processor.Permanent error, so the processor
// dead-letters its record at once.
type Store struct {
	api           API
	eventsTable   string
	vehiclesTable string
	legacyTable   string
}

// EventsTable names the events table.
func (s *Store) EventsTable() string { return s.eventsTable }

// StateTable names the vehicle-state table.
func (s *Store) StateTable() string { return s.vehiclesTable }

// LegacyTable names the legacy one-item vehicle-state table, "" if none.
func (s *Store) LegacyTable() string { return s.legacyTable }

// writeConcurrency bounds the entry writes of one WriteEntries in flight at
// once: 500 signals take 32 rounds of about 10 ms.
const writeConcurrency = 16

// Option configures a Store.
type Option func(*Store)

// WithLegacyTable reads vehicles not yet stored as entries from the legacy
// one-item table (read-only: GetItem), so that their next write moves them.
// "" means none.
func WithLegacyTable(name string) Option { return func(s *Store) { s.legacyTable = name } }

// New returns a Store over the events and vehicle-state tables.
func New(api API, eventsTable, vehiclesTable string, opts ...Option) *Store {
	s := &Store{api: api, eventsTable: eventsTable, vehiclesTable: vehiclesTable}
	for _, o := range opts {
		o(s)
	}
	return s
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

// Applied implements processor.VehicleStore: one eventually consistent
// GetItem (Smartcar's retries come 25 s apart and more; an SQS duplicate
// carries the same deliveredAt and needs no record).
func (s *Store) Applied(ctx context.Context, eventID string) (bool, error) {
	if err := checkKey(EventsKey, eventID); err != nil {
		return false, err
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.eventsTable), Key: eventKey(eventID)})
	if err != nil {
		return false, fmt.Errorf("read event %s: %w", eventID, err)
	}
	st, ok := out.Item["status"].(*types.AttributeValueMemberS)
	return ok && st.Value == StatusCompleted, nil
}

// MarkApplied implements processor.VehicleStore: one PutItem of the event,
// completed, expiring after req.TTL.
func (s *Store) MarkApplied(ctx context.Context, req processor.ClaimRequest) error {
	if err := checkKey(EventsKey, req.EventID); err != nil {
		return err
	}
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.eventsTable), Item: map[string]types.AttributeValue{
		EventsKey:     str(req.EventID),
		"status":      str(StatusCompleted),
		"eventType":   str(req.EventType),
		"vehicleId":   str(req.VehicleID),
		"completedAt": num(req.Now.UnixMilli()),
		TTLAttribute:  num(req.Now.Add(req.TTL).Unix()),
	}})
	if err != nil {
		return fmt.Errorf("mark event %s applied: %w", req.EventID, err)
	}
	return nil
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

// DynamoDB's limits on a partition and a sort key value (UTF-8 bytes).
const (
	maxKeyBytes     = 2048
	maxSortKeyBytes = 1024
)

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
