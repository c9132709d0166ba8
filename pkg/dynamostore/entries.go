package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// Conditions of the entry writes: newest wins per entry (see
// vehicle.Changes).
// Attribute names are always given as #name placeholders, so that none
// can clash with a reserved word.
const (
	newerCondition   = "attribute_not_exists(#" + attrOrderedAt + ") OR #" + attrOrderedAt + " < :at"
	detailsCondition = "attribute_not_exists(#" + attrLastDeliveredAt + ") OR #" + attrLastDeliveredAt + " <= :at"
)

// expression builds an update expression with its names and values.
type expression struct {
	set, remove []string
	names       map[string]string
	values      map[string]types.AttributeValue
}

func newExpression(values map[string]types.AttributeValue, conditionAttr string) *expression {
	return &expression{names: map[string]string{"#" + conditionAttr: conditionAttr}, values: values}
}

// setValue sets attr to the value placeholder :name already in values.
func (e *expression) setValue(attr, placeholder string) {
	e.names["#"+attr] = attr
	e.set = append(e.set, "#"+attr+" = "+placeholder)
}

func (e *expression) setAttr(attr string, v types.AttributeValue) {
	e.values[":"+attr] = v
	e.setValue(attr, ":"+attr)
}

// setIfAbsent sets attr to v only where the item has no attr yet.
func (e *expression) setIfAbsent(attr string, v types.AttributeValue) {
	e.names["#"+attr] = attr
	e.values[":"+attr] = v
	e.set = append(e.set, "#"+attr+" = if_not_exists(#"+attr+", :"+attr+")")
}

func (e *expression) removeAttr(attr string) {
	e.names["#"+attr] = attr
	e.remove = append(e.remove, "#"+attr)
}

func (e *expression) String() string {
	out := "SET " + strings.Join(e.set, ", ")
	if len(e.remove) > 0 {
		out += " REMOVE " + strings.Join(e.remove, ", ")
	}
	return out
}

// GetVehicle implements processor.VehicleStore: one strongly consistent
// Query of the vehicle's entries (paginated). An eventually consistent one
// would cost half, but the merge writes the details only when they differ
// from what it read: a read missing a change of the last second (a TEST
// delivery's mode) would leave it in place over a newer delivery. A vehicle without a vehicle
// entry is looked up in the legacy table too, if there is one; entries
// written since then are laid over it, the newer of each winning.
func (s *Store) GetVehicle(ctx context.Context, vehicleID string) (*vehicle.State, error) {
	es, err := s.queryEntries(ctx, vehicleID)
	if err != nil {
		return nil, err
	}
	st := es.st
	if !es.vehicle {
		legacy, err := s.getLegacy(ctx, vehicleID)
		if err != nil {
			return nil, err
		}
		if legacy != nil {
			st = overlay(legacy, st)
		}
	}
	st.Derive()
	return st, nil
}

// queryEntries reads a vehicle's entries as stored: nothing derived.
func (s *Store) queryEntries(ctx context.Context, vehicleID string) (*entryState, error) {
	if err := checkKey(StateKey, vehicleID); err != nil {
		return nil, err
	}
	es := &entryState{st: vehicle.New(vehicleID)}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.vehiclesTable),
		KeyConditionExpression:    aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": StateKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(vehicleID)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query vehicle %s: %w", vehicleID, err)
		}
		for _, item := range out.Items {
			if err := es.add(item); err != nil {
				return nil, fmt.Errorf("vehicle %s: %w", vehicleID, err)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if es.vehicle {
		es.st.Source = vehicle.SourceEntries
	}
	return es, nil
}

// overlay lays the entries of top over base, the newer of each winning;
// base's details stay (top has no vehicle entry).
func overlay(base, top *vehicle.State) *vehicle.State {
	copyNewer(base, top, base)
	base.UpdatedAt = max(base.UpdatedAt, top.UpdatedAt)
	return base
}

// copyNewer copies into dst the signals and errors of from that against
// lacks or holds older (vehicle.Newer).
func copyNewer(dst, from, against *vehicle.State) {
	for code, sg := range from.Signals {
		if cur, ok := against.Signals[code]; !ok || vehicle.Newer(sg.OrderedAt, cur.OrderedAt) {
			dst.Signals[code] = sg
		}
	}
	for key, e := range from.Errors {
		if cur, ok := against.Errors[key]; !ok || vehicle.Newer(e.Ordered(), cur.Ordered()) {
			dst.Errors[key] = e
		}
	}
}

// write is one entry write.
type write struct {
	update *dynamodb.UpdateItemInput
	put    *dynamodb.PutItemInput
}

// WriteEntries implements processor.VehicleStore: one conditional write
// per entry (UpdateItem for signals and details, PutItem for errors), up
// to writeConcurrency at once, the details last. A write that
// loses its condition is skipped. A signal reported in error is written
// without its body, so the last good body stays, unless ch.All.
func (s *Store) WriteEntries(ctx context.Context, st *vehicle.State, ch vehicle.Changes) (processor.Written, error) {
	var w processor.Written
	if err := checkKey(StateKey, st.VehicleID); err != nil {
		return w, err
	}
	signals, errs, details := ch.Signals, ch.Errors, ch.Details
	if ch.All {
		signals, errs = slices.Sorted(maps.Keys(st.Signals)), slices.Sorted(maps.Keys(st.Errors))
		d := st.Details()
		details = &d
	}
	var writes []write
	for _, code := range signals {
		sg, ok := st.Signals[code]
		if !ok {
			continue
		}
		in, err := s.signalWrite(st.VehicleID, code, sg, ch.All, st.UpdatedAt)
		if err != nil {
			return w, err
		}
		writes = append(writes, write{update: in})
	}
	for _, key := range errs {
		e, ok := st.Errors[key]
		if !ok {
			continue
		}
		if err := checkSortKey(errorEntry(key)); err != nil {
			return w, err
		}
		writes = append(writes, write{put: &dynamodb.PutItemInput{
			TableName:                 aws.String(s.vehiclesTable),
			Item:                      errorItemOf(st.VehicleID, key, e, st.UpdatedAt),
			ConditionExpression:       aws.String(newerCondition),
			ExpressionAttributeNames:  map[string]string{"#" + attrOrderedAt: attrOrderedAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(e.Ordered())},
		}})
	}
	if err := s.run(ctx, writes, &w); err != nil {
		return w, err
	}
	if details != nil {
		// Last: a vehicle entry means every entry of its first write is
		// stored (GetVehicle reads the legacy table until then).
		if err := s.run(ctx, []write{{update: s.detailsWrite(st.VehicleID, *details, st.UpdatedAt)}}, &w); err != nil {
			return w, err
		}
	}
	return w, nil
}

// run makes the writes, up to writeConcurrency at once, and counts
// them into w.
func (s *Store) run(ctx context.Context, writes []write, w *processor.Written) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, writeConcurrency)
	)
	for _, wr := range writes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			if wr.update != nil {
				_, err = s.api.UpdateItem(ctx, wr.update)
			} else {
				_, err = s.api.PutItem(ctx, wr.put)
			}
			var failed *types.ConditionalCheckFailedException
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				w.Stored++
			case errors.As(err, &failed):
				w.Skipped++ // a newer entry is stored
			default:
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("write %d of %d entries: %w", len(errs), len(writes), errs[0])
	}
	return nil
}

// signalWrite is the UpdateItem of one signal entry.
func (s *Store) signalWrite(vehicleID, code string, sg vehicle.Signal, all bool, updatedAt int64) (*dynamodb.UpdateItemInput, error) {
	entry := signalEntry(code)
	if err := checkSortKey(entry); err != nil {
		return nil, err
	}
	ex := newExpression(map[string]types.AttributeValue{":at": num(sg.OrderedAt), ":ua": num(updatedAt)}, attrOrderedAt)
	ex.setValue(attrOrderedAt, ":at")
	ex.setValue(attrUpdatedAt, ":ua")
	ex.setAttr(attrStatus, str(sg.Status))
	opt := func(attr string, v types.AttributeValue, present, keep bool) {
		switch {
		case present:
			ex.setAttr(attr, v)
		case !keep:
			ex.removeAttr(attr)
		}
	}
	// A report without a name or group keeps the stored ones.
	opt(attrName, str(sg.Name), sg.Name != "", true)
	opt(attrGroup, str(sg.Group), sg.Group != "", true)
	opt(attrEventID, str(sg.EventID), sg.EventID != "", false)
	opt(attrOEMUpdatedAt, num(sg.OEMUpdatedAt), sg.OEMUpdatedAt != 0, false)
	opt(attrRetrievedAt, num(sg.RetrievedAt), sg.RetrievedAt != 0, false)
	opt(attrErrorType, str(sg.ErrorType), sg.ErrorType != "", false)
	opt(attrErrorCode, str(sg.ErrorCode), sg.ErrorCode != "", false)
	if sg.Status == vehicle.StatusSuccess || all {
		var body types.AttributeValue
		if sg.Body != nil {
			av, err := jsonBody(sg.Body).MarshalDynamoDBAttributeValue()
			if err != nil {
				return nil, processor.Permanent(fmt.Errorf("signal %.64s: %w", code, err))
			}
			body = av
		}
		switch {
		case sg.Status == vehicle.StatusSuccess:
			// A good report without a body clears it.
			opt(attrBody, body, sg.Body != nil, false)
		case sg.Body != nil:
			// One in error, written whole by a first write, brings the last
			// good body it read; one stored since (a concurrent newer good
			// report) is newer still, and stays.
			ex.setIfAbsent(attrBody, body)
		}
	}
	return s.entryUpdate(vehicleID, entry, newerCondition, ex), nil
}

// detailsWrite is the UpdateItem of the vehicle entry: the details' set
// fields replace the stored ones.
func (s *Store) detailsWrite(vehicleID string, d vehicle.Details, updatedAt int64) *dynamodb.UpdateItemInput {
	ex := newExpression(map[string]types.AttributeValue{":at": num(d.LastDeliveredAt), ":ua": num(updatedAt)}, attrLastDeliveredAt)
	ex.setValue(attrLastDeliveredAt, ":at")
	ex.setValue(attrUpdatedAt, ":ua")
	for _, f := range []struct{ attr, v string }{{attrMake, d.Make}, {attrModel, d.Model}, {attrUserID, d.UserID}, {attrMode, d.Mode}} {
		if f.v != "" {
			ex.setAttr(f.attr, str(f.v))
		}
	}
	if d.Year != 0 {
		ex.setAttr(attrYear, num(int64(d.Year)))
	}
	return s.entryUpdate(vehicleID, entryVehicle, detailsCondition, ex)
}

// entryUpdate is the UpdateItem of one entry: ex, on condition.
func (s *Store) entryUpdate(vehicleID, entry, condition string, ex *expression) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.vehiclesTable),
		Key:                       entryKey(vehicleID, entry),
		UpdateExpression:          aws.String(ex.String()),
		ConditionExpression:       aws.String(condition),
		ExpressionAttributeNames:  ex.names,
		ExpressionAttributeValues: ex.values,
	}
}

// checkSortKey refuses, as a permanent failure, an entry DynamoDB can
// never take as a sort key: a signal code or error key over 1 KB.
func checkSortKey(entry string) error {
	if len(entry) > maxSortKeyBytes {
		return processor.Permanent(fmt.Errorf("%s %.64q… is %d bytes, over DynamoDB's %d-byte sort key limit", EntryKey, entry, len(entry), maxSortKeyBytes))
	}
	return nil
}
