package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SchemaAPI is the part of the DynamoDB client CreateTables uses.
type SchemaAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// CreateTables creates the events and vehicle-state tables, on demand, with
// the keys and TTL the deployed stack gives them, for emulators and tests.
// Tables that already exist are left as they are.
func CreateTables(ctx context.Context, api SchemaAPI, eventsTable, vehiclesTable string) error {
	if err := createTable(ctx, api, eventsTable, EventsKey, ""); err != nil {
		return err
	}
	if err := createTable(ctx, api, vehiclesTable, StateKey, EntryKey); err != nil {
		return err
	}
	_, err := api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(eventsTable),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if err != nil && !strings.Contains(err.Error(), "already enabled") {
		return fmt.Errorf("enable TTL on %s: %w", eventsTable, err)
	}
	return nil
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
	_, err := api.CreateTable(ctx, in)
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}
