package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

// ScanAPI is what MigrateLegacy needs beyond API.
type ScanAPI interface {
	API
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Migration counts what MigrateLegacy did.
type Migration struct {
	Vehicles int // legacy items read
	Moved    int // vehicles with at least one entry stored
	Current  int // vehicles whose entries were all stored already
	Failed   int // vehicles that could not be moved (see Errors)
	Stored   int // entries stored
	Skipped  int // entries a newer stored one kept
	// LastVehicle is where to resume an interrupted run (as StartAfter):
	// the last vehicle before the run's first failure, so that every
	// vehicle after it, the failed ones included, is read again. "" when
	// the first vehicle failed or none was read.
	LastVehicle string
	Errors      []error
}

// MigrateOptions tune MigrateLegacy.
type MigrateOptions struct {
	// StartAfter resumes a run after this vehicle id (the scan order).
	StartAfter string
	// DryRun reads and compares, and writes nothing.
	DryRun bool
	// Progress, if set, is called after every page of the scan.
	Progress func(Migration)
	// Now, if set, is the clock: a legacy time later than its reading plus
	// vehicle.MaxClockSkew is forgotten (vehicle.State.ForgetTimesAfter).
	// Nil means time.Now, read per vehicle.
	Now func() time.Time
}

// MigrateLegacy moves every vehicle of the legacy table into the entry
// layout: for each, it stores the legacy entries that are missing or older
// in the entry layout, the vehicle entry last, each write conditioned as an
// event's are. It is idempotent (a second run stores nothing) and safe
// beside a running processor (newer entries win); a vehicle that fails is
// counted and the run goes on.
func MigrateLegacy(ctx context.Context, api ScanAPI, s *Store, opts MigrateOptions) (Migration, error) {
	var m Migration
	if s.legacyTable == "" {
		return m, fmt.Errorf("no legacy table to migrate from")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	in := &dynamodb.ScanInput{TableName: aws.String(s.legacyTable), ConsistentRead: aws.Bool(true)}
	if opts.StartAfter != "" {
		in.ExclusiveStartKey = map[string]types.AttributeValue{StateKey: str(opts.StartAfter)}
	}
	for {
		out, err := api.Scan(ctx, in)
		if err != nil {
			return m, fmt.Errorf("scan %s: %w", s.legacyTable, err)
		}
		for _, item := range out.Items {
			if err := ctx.Err(); err != nil {
				return m, err
			}
			m.Vehicles++
			id := getS(item, StateKey)
			w, err := s.migrateItem(ctx, item, now(), opts.DryRun)
			m.Stored += w.Stored
			m.Skipped += w.Skipped
			if err == nil && m.Failed == 0 {
				m.LastVehicle = id
			}
			switch {
			case err != nil:
				m.Failed++
				m.Errors = append(m.Errors, fmt.Errorf("vehicle %s: %w", id, err))
			case w.Stored > 0:
				m.Moved++
			default:
				m.Current++
			}
		}
		if opts.Progress != nil {
			opts.Progress(m)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return m, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// migrateItem moves one legacy item. In a dry run, Stored counts what
// would be stored.
func (s *Store) migrateItem(ctx context.Context, item map[string]types.AttributeValue, now time.Time, dryRun bool) (processor.Written, error) {
	legacy, err := decodeVehicle(item)
	if err != nil {
		return processor.Written{}, err
	}
	legacy.ForgetTimesAfter(vehicle.Bound(now))
	es, err := s.queryEntries(ctx, legacy.VehicleID)
	if err != nil {
		return processor.Written{}, err
	}
	missing := missingEntries(legacy, es)
	n := len(missing.Signals) + len(missing.Errors)
	if !es.vehicle || vehicle.Newer(legacy.LastDeliveredAt, es.st.LastDeliveredAt) {
		n++ // the details
	}
	if n == 0 || dryRun {
		return processor.Written{Stored: n}, nil
	}
	// Whole, so that signals in error keep their bodies; the details last.
	return s.WriteEntries(ctx, missing, vehicle.Changes{All: true})
}

// missingEntries returns the part of legacy that is missing or older in
// the entry layout (es), with legacy's details.
func missingEntries(legacy *vehicle.State, es *entryState) *vehicle.State {
	out := vehicle.New(legacy.VehicleID)
	out.Make, out.Model, out.Year, out.UserID, out.Mode = legacy.Make, legacy.Model, legacy.Year, legacy.UserID, legacy.Mode
	out.LastDeliveredAt, out.UpdatedAt = legacy.LastDeliveredAt, legacy.UpdatedAt
	copyNewer(out, legacy, es.st)
	return out
}
