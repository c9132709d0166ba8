package dynamostore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// Reconciled returns when the vehicle was last reconciled (MarkReconciled),
// the zero time if never or if that was forgotten: one eventually
// consistent GetItem of the events table.
func (s *Store) Reconciled(ctx context.Context, vehicleID string) (time.Time, error) {
	key, err := reconciledKey(vehicleID)
	if err != nil {
		return time.Time{}, err
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.eventsTable), Key: key})
	if err != nil {
		return time.Time{}, fmt.Errorf("read reconciliation of %s: %w", vehicleID, err)
	}
	if ms := getN(out.Item, attrReconciledAt); ms > 0 {
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, nil
}

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
