package awstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
)

// TestItemSize checks the sizing rules of "DynamoDB item sizes and formats"
// (docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
// names plus values; strings and binaries their bytes; numbers one byte per
// two significant digits plus one, leading and trailing zeros trimmed;
// BOOL and NULL one byte; lists and maps 3 bytes plus one per element plus
// the elements.
func TestItemSize(t *testing.T) {
	s := func(v string) any { return map[string]any{"S": v} }
	n := func(v string) any { return map[string]any{"N": v} }
	tests := []struct {
		name string
		item map[string]any
		want int
	}{
		{"string: name + UTF-8 bytes", map[string]any{"name": s("héllo")}, 4 + 6},
		{"number: 3 digits = 2 bytes + 1", map[string]any{"n": n("123")}, 1 + 3},
		{"number: trailing zeros trimmed", map[string]any{"n": n("1500")}, 1 + 2},
		{"number: leading zeros trimmed", map[string]any{"n": n("0.0015")}, 1 + 2},
		{"number: 38 digits", map[string]any{"n": n(strings.Repeat("7", 38))}, 1 + 20},
		{"number: zero", map[string]any{"n": n("0")}, 1 + 1},
		{"binary: raw bytes, not base64", map[string]any{"b": map[string]any{"B": "AQIDBA=="}}, 1 + 4},
		{"boolean", map[string]any{"ok": map[string]any{"BOOL": true}}, 2 + 1},
		{"null", map[string]any{"nil": map[string]any{"NULL": true}}, 3 + 1},
		{"empty map: 3 bytes", map[string]any{"m": map[string]any{"M": map[string]any{}}}, 1 + 3},
		{"map: 3 + per element 1 + name + value", map[string]any{"m": map[string]any{"M": map[string]any{"unit": s("km")}}}, 1 + 3 + 1 + 4 + 2},
		{"list: 3 + per element 1 + value", map[string]any{"l": map[string]any{"L": []any{n("12"), s("ab")}}}, 1 + 3 + (1 + 2) + (1 + 2)},
		{"string set", map[string]any{"ss": map[string]any{"SS": []any{"ab", "cde"}}}, 2 + 5},
		{"several attributes", map[string]any{"vehicleId": s("v-1"), "version": n("42")}, 9 + 3 + 7 + 2},
	}
	for _, tt := range tests {
		if got := awstest.ItemSize(tt.item); got != tt.want {
			t.Errorf("%s: size %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestUnits checks the rounding with the examples of "DynamoDB read and
// write operations" and the DynamoDB pricing pages: a 3,500-byte read is
// one unit, 10 KB three (rounded to 12 KB), 8 KB two; a 1 KB write one
// unit, 3 KB three; anything, even nothing, at least one.
func TestUnits(t *testing.T) {
	for _, tt := range []struct {
		size        int
		read, write float64
	}{{0, 1, 1}, {500, 1, 1}, {1024, 1, 1}, {1025, 1, 2}, {3 << 10, 1, 3}, {3500, 1, 4}, {8 << 10, 2, 8}, {10 << 10, 3, 10}, {18500, 5, 19}} {
		if r, w := awstest.ReadUnits(tt.size), awstest.WriteUnits(tt.size); r != tt.read || w != tt.write {
			t.Errorf("size %d: read %g write %g, want %g %g", tt.size, r, w, tt.read, tt.write)
		}
	}
}

// capacityTable makes a table with a partition and a sort key, and a
// client whose requests the meter counts.
func capacityTable(t *testing.T) (*dynamodb.Client, *awstest.Capacity, string) {
	t.Helper()
	meter := awstest.NewCapacity()
	cfg := meter.Config(awstest.Config(t))
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Name(t, "capacity")
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: dtypes.ScalarAttributeTypeS},
		},
		KeySchema: []dtypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: dtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: dtypes.KeyTypeRange},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	meter.Take()
	return db, meter, table
}

// item is an item of exactly size bytes: pk "p", sk, and a string "data".
func item(sk string, size int) map[string]dtypes.AttributeValue {
	pad := size - (2 + 1) - (2 + len(sk)) - 4
	return map[string]dtypes.AttributeValue{
		"pk": &dtypes.AttributeValueMemberS{Value: "p"}, "sk": &dtypes.AttributeValueMemberS{Value: sk},
		"data": &dtypes.AttributeValueMemberS{Value: strings.Repeat("x", pad)},
	}
}

func key(sk string) map[string]dtypes.AttributeValue {
	return map[string]dtypes.AttributeValue{"pk": &dtypes.AttributeValueMemberS{Value: "p"}, "sk": &dtypes.AttributeValueMemberS{Value: sk}}
}

// TestCapacityMeter sends requests to the emulator through the meter and
// checks the units AWS documents for them.
func TestCapacityMeter(t *testing.T) {
	ctx := context.Background()
	db, meter, table := capacityTable(t)
	tn := aws.String(table)
	step := func(what string, wantRCU, wantWCU float64, do func() error) {
		t.Helper()
		if err := do(); err != nil && !strings.Contains(what, "fails") {
			t.Fatalf("%s: %v", what, err)
		}
		u := meter.Take()
		if u.RCU != wantRCU || u.WCU != wantWCU || u.TotalRequests() != 1 {
			t.Errorf("%s: %g RCU, %g WCU in %v; want %g RCU, %g WCU in one request", what, u.RCU, u.WCU, u.Requests, wantRCU, wantWCU)
		}
	}
	put := func(sk string, size int) func() error {
		return func() error {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: tn, Item: item(sk, size)})
			return err
		}
	}
	step("put a new 3 KB item", 0, 3, put("a", 3<<10))
	step("overwrite it with 500 bytes: the larger of before and after", 0, 3, put("a", 500))
	step("put a new 500-byte item", 0, 1, put("b", 500))
	step("update growing it to 2.5 KB", 0, 3, func() error {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: tn, Key: key("b"), UpdateExpression: aws.String("SET #d = :d"),
			ExpressionAttributeNames:  map[string]string{"#d": "data"},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":d": &dtypes.AttributeValueMemberS{Value: strings.Repeat("y", 2500)}}})
		return err
	})
	step("a conditional update that fails is charged for the item as it stands", 0, 3, func() error {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: tn, Key: key("b"), UpdateExpression: aws.String("SET v = :v"),
			ConditionExpression:       aws.String("attribute_not_exists(pk)"),
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": &dtypes.AttributeValueMemberN{Value: "1"}}})
		return err
	})
	step("a transactional write of 3 KB costs twice", 0, 6, func() error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []dtypes.TransactWriteItem{
			{Put: &dtypes.Put{TableName: tn, Item: item("c", 3<<10)}}}})
		return err
	})
	step("two transactional items: each x2", 0, 2*3+2*1, func() error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []dtypes.TransactWriteItem{
			{Put: &dtypes.Put{TableName: tn, Item: item("d", 3<<10)}},
			{Update: &dtypes.Update{TableName: tn, Key: key("e"), UpdateExpression: aws.String("SET v = :v"),
				ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": &dtypes.AttributeValueMemberN{Value: "1"}}}}}})
		return err
	})
	step("delete a 3 KB item", 0, 3, func() error {
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: tn, Key: key("c")})
		return err
	})
	// Reads: AWS's examples, 8 KB (2 strong, 1 eventual, 4 transactional),
	// and BatchGetItem of 1.5 KB + 6.5 KB rounded item by item to 12 KB.
	for _, p := range []struct {
		sk   string
		size int
	}{{"r8", 8 << 10}, {"r1", 1536}, {"r6", 6656}} {
		if err := put(p.sk, p.size)(); err != nil {
			t.Fatal(err)
		}
	}
	meter.Take()
	get := func(sk string, consistent bool) func() error {
		return func() error {
			_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: tn, Key: key(sk), ConsistentRead: aws.Bool(consistent)})
			return err
		}
	}
	step("strongly consistent read of 8 KB", 2, 0, get("r8", true))
	step("eventually consistent read of 8 KB", 1, 0, get("r8", false))
	step("read of a missing item", 1, 0, get("none", true))
	step("strongly consistent read of 8 KB with a projection: the whole item is read", 2, 0, func() error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: tn, Key: key("r8"), ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")})
		return err
	})
	step("transactional read of 8 KB", 4, 0, func() error {
		_, err := db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []dtypes.TransactGetItem{{Get: &dtypes.Get{TableName: tn, Key: key("r8")}}}})
		return err
	})
	step("BatchGetItem of 1.5 KB and 6.5 KB: 4 KB + 8 KB", 3, 0, func() error {
		_, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]dtypes.KeysAndAttributes{
			table: {Keys: []map[string]dtypes.AttributeValue{key("r1"), key("r6")}, ConsistentRead: aws.Bool(true)}}})
		return err
	})
	step("Query of 1.5 KB and 6.5 KB: the total, 8 KB", 2, 0, func() error {
		_, err := db.Query(ctx, &dynamodb.QueryInput{TableName: tn, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:   aws.String("pk = :p AND begins_with(sk, :r)"),
			FilterExpression:         aws.String("#d <> :x"),
			ExpressionAttributeNames: map[string]string{"#d": "data"},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{
				":p": &dtypes.AttributeValueMemberS{Value: "p"}, ":r": &dtypes.AttributeValueMemberS{Value: "r"}, ":x": &dtypes.AttributeValueMemberS{Value: "x"}},
			// r1, r6, r8 sorted: the first two.
			Limit: aws.Int32(2)})
		return err
	})
}
