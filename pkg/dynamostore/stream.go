package dynamostore

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// DecodeChange decodes a record of the vehicle-state table's stream (its
// keys and its old and new images, either of which may be empty) into
// the change of one entry: a signal, an error, or the vehicle's details.
// An item of no entry this package writes is an error.
func DecodeChange(keys, oldImage, newImage map[string]types.AttributeValue) (vehicle.EntryChange, error) {
	vehicleID, entry := getS(keys, StateKey), getS(keys, EntryKey)
	ch := vehicle.EntryChange{VehicleID: vehicleID}
	if vehicleID == "" || entry == "" {
		return ch, fmt.Errorf("stream record without the keys %s and %s", StateKey, EntryKey)
	}
	decode := func(item map[string]types.AttributeValue) (*entryState, error) {
		if len(item) == 0 {
			return nil, nil
		}
		es := &entryState{st: vehicle.New(vehicleID)}
		if err := es.add(item); err != nil {
			return nil, err
		}
		return es, nil
	}
	before, err := decode(oldImage)
	if err != nil {
		return ch, fmt.Errorf("old image: %w", err)
	}
	after, err := decode(newImage)
	if err != nil {
		return ch, fmt.Errorf("new image: %w", err)
	}
	switch {
	case entry == entryVehicle:
		d := &vehicle.DetailsChange{}
		d.Old, d.New = sides(before, after, func(st *vehicle.State) vehicle.Details { return st.Details() })
		ch.Details = d
	case strings.HasPrefix(entry, entrySignalPrefix):
		code := strings.TrimPrefix(entry, entrySignalPrefix)
		s := &vehicle.SignalChange{Code: code}
		s.Old, s.New = sides(before, after, func(st *vehicle.State) vehicle.Signal { return st.Signals[code] })
		ch.Signal = s
	case strings.HasPrefix(entry, entryErrorPrefix):
		key := strings.TrimPrefix(entry, entryErrorPrefix)
		e := &vehicle.ErrorChange{Key: key}
		e.Old, e.New = sides(before, after, func(st *vehicle.State) vehicle.Error { return st.Errors[key] })
		ch.Error = e
	default:
		return ch, fmt.Errorf("vehicle %s: unknown entry %q", vehicleID, entry)
	}
	return ch, nil
}

// sides returns what get reads from each image's state, nil for an image
// the record has not (an insert has no old image, a removal no new one).
func sides[T any](before, after *entryState, get func(*vehicle.State) T) (was, is *T) {
	if before != nil {
		v := get(before.st)
		was = &v
	}
	if after != nil {
		v := get(after.st)
		is = &v
	}
	return was, is
}
