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
		if before != nil {
			v := before.st.Details()
			d.Old = &v
		}
		if after != nil {
			v := after.st.Details()
			d.New = &v
		}
		ch.Details = d
	case strings.HasPrefix(entry, entrySignalPrefix):
		code := strings.TrimPrefix(entry, entrySignalPrefix)
		s := &vehicle.SignalChange{Code: code}
		if before != nil {
			v := before.st.Signals[code]
			s.Old = &v
		}
		if after != nil {
			v := after.st.Signals[code]
			s.New = &v
		}
		ch.Signal = s
	case strings.HasPrefix(entry, entryErrorPrefix):
		key := strings.TrimPrefix(entry, entryErrorPrefix)
		e := &vehicle.ErrorChange{Key: key}
		if before != nil {
			v := before.st.Errors[key]
			e.Old = &v
		}
		if after != nil {
			v := after.st.Errors[key]
			e.New = &v
		}
		ch.Error = e
	default:
		return ch, fmt.Errorf("vehicle %s: unknown entry %q", vehicleID, entry)
	}
	return ch, nil
}
