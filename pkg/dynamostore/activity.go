package dynamostore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// reconciledPrefix begins the events-table key of a vehicle's last
// reconciliation: "reconcile#" + vehicle id. Smartcar's event ids are
// UUIDs and replays' "id#generation", so it cannot name an event.
const reconciledPrefix = "reconcile#"

// attrReconciledAt is the time of the reconciliation (ms).
const attrReconciledAt = "reconciledAt"

// ListActivity reads the whole vehicle-state table, eventually consistent and
// projected to the few attributes it needs, and returns every vehicle in
// the entry layout with its newest write, in vehicle id order. A scan is
// billed by the size of the items it reads, not what it returns: about
// 0.5 read units per 4 KB of the table (see README: reconciling).
// Vehicles still only in a legacy one-item table are not listed.
func ListActivity(ctx context.Context, api dynamodb.ScanAPIClient, table string) ([]vehicle.Activity, error) {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(table),
		ProjectionExpression:     aws.String("#v, #e, #ua, #us"),
		ExpressionAttributeNames: map[string]string{"#v": StateKey, "#e": EntryKey, "#ua": attrUpdatedAt, "#us": attrUserID},
	}
	byID := map[string]*vehicle.Activity{}
	p := dynamodb.NewScanPaginator(api, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, item := range out.Items {
			id := getS(item, StateKey)
			if id == "" {
				continue
			}
			a := byID[id]
			if a == nil {
				a = &vehicle.Activity{VehicleID: id}
				byID[id] = a
			}
			a.UpdatedAt = max(a.UpdatedAt, getN(item, attrUpdatedAt))
			if getS(item, EntryKey) == entryVehicle && getS(item, attrUserID) != "" {
				a.HasUser = true
			}
		}
	}
	list := make([]vehicle.Activity, 0, len(byID))
	for _, a := range byID {
		list = append(list, *a)
	}
	slices.SortFunc(list, func(a, b vehicle.Activity) int { return cmp.Compare(a.VehicleID, b.VehicleID) })
	return list, nil
}

func reconciledKey(vehicleID string) (map[string]types.AttributeValue, error) {
	key := reconciledPrefix + vehicleID
	if err := checkKey(EventsKey, key); err != nil {
		return nil, err
	}
	return eventKey(key), nil
}

// Reconciled returns, of the vehicles that have one remembered, when each
// was last polled (MarkReconciled): BatchGetItem of the events table, 100
// keys a request, eventually consistent, what DynamoDB leaves unprocessed
// asked again with backoff.
func (s *Store) Reconciled(ctx context.Context, vehicleIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(vehicleIDs))
	for start := 0; start < len(vehicleIDs); start += batchGetKeys {
		keys := make([]map[string]types.AttributeValue, 0, batchGetKeys)
		for _, id := range vehicleIDs[start:min(start+batchGetKeys, len(vehicleIDs))] {
			key, err := reconciledKey(id)
			if err != nil {
				return nil, err
			}
			keys = append(keys, key)
		}
		for attempt := 0; len(keys) > 0; attempt++ {
			if attempt == batchGetAttempts {
				return nil, fmt.Errorf("read the last reconciliations: %d keys left unprocessed after %d attempts", len(keys), attempt)
			}
			if attempt > 0 {
				if err := resend.Sleep(ctx, time.Duration(attempt)*batchGetBackoff); err != nil {
					return nil, err
				}
			}
			got, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				s.eventsTable: {Keys: keys, ProjectionExpression: aws.String("#k, #at"),
					ExpressionAttributeNames: map[string]string{"#k": EventsKey, "#at": attrReconciledAt}},
			}})
			if err != nil {
				return nil, fmt.Errorf("read the last reconciliations: %w", err)
			}
			for _, item := range got.Responses[s.eventsTable] {
				if ms := getN(item, attrReconciledAt); ms > 0 {
					out[strings.TrimPrefix(getS(item, EventsKey), reconciledPrefix)] = time.UnixMilli(ms)
				}
			}
			keys = got.UnprocessedKeys[s.eventsTable].Keys
		}
	}
	return out, nil
}

// BatchGetItem's limit, and how often and how patiently Reconciled asks
// for what it left unprocessed.
const (
	batchGetKeys     = 100
	batchGetAttempts = 5
	batchGetBackoff  = 100 * time.Millisecond
)

// MarkReconciled records that the vehicle was reconciled at, remembered
// for keep (the events table's TTL): one PutItem of the events table.
func (s *Store) MarkReconciled(ctx context.Context, vehicleID string, at time.Time, keep time.Duration) error {
	key, err := reconciledKey(vehicleID)
	if err != nil {
		return err
	}
	item := map[string]types.AttributeValue{
		attrReconciledAt: num(at.UnixMilli()),
		TTLAttribute:     num(at.Add(keep).Unix()),
	}
	for k, v := range key {
		item[k] = v
	}
	if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.eventsTable), Item: item}); err != nil {
		return fmt.Errorf("mark %s reconciled: %w", vehicleID, err)
	}
	return nil
}

// UserID returns the user id stored for the vehicle ("" if none) and
// whether anything is stored for it: one
// eventually consistent GetItem of its vehicle entry, projected to the
// user id; a vehicle without that entry (not yet stored as entries) is read
// whole (GetVehicle, from the legacy table if there is one).
func (s *Store) UserID(ctx context.Context, vehicleID string) (userID string, stored bool, err error) {
	if err := checkKey(StateKey, vehicleID); err != nil {
		return "", false, err
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.vehiclesTable), Key: entryKey(vehicleID, entryVehicle),
		ProjectionExpression: aws.String("#us"), ExpressionAttributeNames: map[string]string{"#us": attrUserID},
	})
	if err != nil {
		return "", false, fmt.Errorf("read vehicle %s: %w", vehicleID, err)
	}
	if out.Item != nil {
		return getS(out.Item, attrUserID), true, nil
	}
	st, err := s.GetVehicle(ctx, vehicleID)
	if err != nil || st == nil {
		return "", false, err
	}
	return st.UserID, st.Exists(), nil
}
