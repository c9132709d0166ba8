package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SchemaAPI is the part of the DynamoDB client CreateTables uses.
type SchemaAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// StateStreamViewType is what the stream of the vehicle-state table
// carries: each entry's image before and after the change, which the
// publisher turns into domain events.
const StateStreamViewType = types.StreamViewTypeNewAndOldImages

// CreateTables creates the events and vehicle-state tables, on demand, with
// the keys and TTL the deployed stack gives them, and the vehicle-state
// table's stream (NEW_AND_OLD_IMAGES), for emulators and tests. Tables
// that already exist are left as they are.
func CreateTables(ctx context.Context, api SchemaAPI, eventsTable, vehiclesTable string) error {
	if err := createTable(ctx, api, eventsTable, EventsKey, ""); err != nil {
		return err
	}
	state := tableInput(vehiclesTable, StateKey, EntryKey)
	state.StreamSpecification = stateStream()
	_, err := api.CreateTable(ctx, state)
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", vehiclesTable, err)
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(eventsTable),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if err != nil && !strings.Contains(err.Error(), "already enabled") {
		return fmt.Errorf("enable TTL on %s: %w", eventsTable, err)
	}
	return nil
}

// stateStream is the vehicle-state table's stream, as the stack enables it.
func stateStream() *types.StreamSpecification {
	return &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: StateStreamViewType}
}

// CreateLegacyTable creates a vehicle-state table in the legacy layout
// (partition key vehicleId alone), as stacks deployed before the entry
// layout have it.
func CreateLegacyTable(ctx context.Context, api SchemaAPI, table string) error {
	return createTable(ctx, api, table, StateKey, "")
}

// createTable creates an on-demand table keyed by the string attributes
// hash and, unless "", sort; an existing one is left as it is.
func createTable(ctx context.Context, api SchemaAPI, name, hash, sort string) error {
	_, err := api.CreateTable(ctx, tableInput(name, hash, sort))
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}

// tableInput creates an on-demand table keyed by the string attributes
// hash and, unless "", sort.
func tableInput(name, hash, sort string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(hash), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}},
	}
	if sort != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(sort), AttributeType: types.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(sort), KeyType: types.KeyTypeRange})
	}
	return in
}

// StateTableAPI is the part of the DynamoDB client CreateStateTable uses.
type StateTableAPI interface {
	SchemaAPI
	dynamodb.DescribeTableAPIClient
	UpdateContinuousBackups(ctx context.Context, in *dynamodb.UpdateContinuousBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

// CreateStateTable creates a vehicle-state table in the entry layout, as
// the stack makes its own (on demand, point-in-time recovery, a
// NEW_AND_OLD_IMAGES stream), with deletion protection, for a rebuild of
// state from the archive; it waits until the table is active. An existing
// table is kept, if its keys are the entry layout's (CheckStateTable):
// its stream is enabled if it has none, and a table whose stream carries
// other images is refused (changing it would end the stream its readers
// follow).
func CreateStateTable(ctx context.Context, api StateTableAPI, name string) error {
	in := tableInput(name, StateKey, EntryKey)
	in.DeletionProtectionEnabled = aws.Bool(true)
	in.StreamSpecification = stateStream()
	_, err := api.CreateTable(ctx, in)
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := dynamodb.NewTableExistsWaiter(api).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	if err := CheckStateTable(ctx, api, name); err != nil {
		return err
	}
	if err := enableStateStream(ctx, api, name); err != nil {
		return err
	}
	_, err = api.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
		TableName:                        aws.String(name),
		PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable point-in-time recovery on %s: %w", name, err)
	}
	return nil
}

// CheckStateTable reports whether the table exists with the entry
// layout's keys: StateKey, then EntryKey, both strings.
func CheckStateTable(ctx context.Context, api dynamodb.DescribeTableAPIClient, name string) error {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	var keys []string
	for _, k := range out.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	if want := StateKey + " HASH, " + EntryKey + " RANGE"; strings.Join(keys, ", ") != want {
		return fmt.Errorf("table %s is keyed %q, not as a vehicle-state table (%s): name another table", name, strings.Join(keys, ", "), want)
	}
	return nil
}

// enableStateStream enables the NEW_AND_OLD_IMAGES stream of the table,
// unless it has it, and waits until the table is active again; a stream
// of another view type is an error.
func enableStateStream(ctx context.Context, api StateTableAPI, name string) error {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	if spec := out.Table.StreamSpecification; spec != nil && aws.ToBool(spec.StreamEnabled) {
		if spec.StreamViewType != StateStreamViewType {
			return fmt.Errorf("table %s has a stream of %s, not %s as the publisher needs: name another table, "+
				"or disable its stream first (its readers lose it)", name, spec.StreamViewType, StateStreamViewType)
		}
		return nil
	}
	if _, err := api.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: stateStream()}); err != nil {
		return fmt.Errorf("enable the stream of %s: %w", name, err)
	}
	if err := dynamodb.NewTableExistsWaiter(api).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	return nil
}

// StateTableStream returns the ARN of the vehicle-state table's stream
// (its LatestStreamArn), which the publisher reads; a table whose stream
// is not enabled is an error.
func StateTableStream(ctx context.Context, api dynamodb.DescribeTableAPIClient, table string) (streamARN string, err error) {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("table %s: %w", table, err)
	}
	spec, arn := out.Table.StreamSpecification, aws.ToString(out.Table.LatestStreamArn)
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || arn == "" {
		return "", fmt.Errorf("table %s has no stream enabled (the publisher reads its %s stream)", table, StateStreamViewType)
	}
	return arn, nil
}
