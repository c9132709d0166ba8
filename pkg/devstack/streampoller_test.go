package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
)

// streamTable creates the events and entries tables on the emulator and
// returns a client and the entries table's name and stream.
func streamTable(t *testing.T) (*dynamodb.Client, *dynamodbstreams.Client, string, string) {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	ddb := dynamodb.NewFromConfig(cfg)
	eventsTable, table := awstest.Name(t, "ev"), awstest.Name(t, "entries")
	if err := dynamostore.CreateTables(ctx, ddb, eventsTable, table); err != nil {
		t.Fatal(err)
	}
	arn, err := dynamostore.StateTableStream(ctx, ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	return ddb, dynamodbstreams.NewFromConfig(cfg), table, arn
}

func entryKey(vehicle, entry string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		dynamostore.StateKey: &ddbtypes.AttributeValueMemberS{Value: vehicle},
		dynamostore.EntryKey: &ddbtypes.AttributeValueMemberS{Value: entry},
	}
}

// recorder is a handler of DynamoDB events, as the publisher is one
// (lambda.NewHandler), that keeps the payloads and events it was given
// and answers as respond says.
type recorder struct {
	mu       sync.Mutex
	payloads [][]byte
	batches  [][]events.DynamoDBEventRecord
	respond  func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
}

func (r *recorder) handler() lambda.Handler {
	inner := lambda.NewHandler(func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		r.mu.Lock()
		n := len(r.batches)
		r.batches = append(r.batches, ev.Records)
		r.mu.Unlock()
		if r.respond == nil {
			return events.DynamoDBEventResponse{}, nil
		}
		return r.respond(n, ev)
	})
	return handlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		r.mu.Lock()
		r.payloads = append(r.payloads, payload)
		r.mu.Unlock()
		return inner.Invoke(ctx, payload)
	})
}

// records returns every record the handler was given, in order.
func (r *recorder) records() []events.DynamoDBEventRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []events.DynamoDBEventRecord
	for _, b := range r.batches {
		all = append(all, b...)
	}
	return all
}

// keysOf lists the entries of each batch the handler was given.
func (r *recorder) keysOf() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, b := range r.batches {
		var keys []string
		for _, rec := range b {
			keys = append(keys, rec.Change.Keys[dynamostore.EntryKey].String())
		}
		out = append(out, keys)
	}
	return out
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamPollerDeliversChangesAsLambda: an insert, an update and a
// delete of an entry reach the handler as Lambda delivers them (decoded
// by aws-lambda-go's events types): INSERT with the new image, MODIFY
// with the old and new, REMOVE with the old, every attribute type in
// Lambda's JSON, in sequence order, including changes made while the
// poller runs.
func TestStreamPollerDeliversChangesAsLambda(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ddb, streams, table, arn := streamTable(t)
	item := entryKey("v1", "signal#odometer")
	for k, v := range map[string]ddbtypes.AttributeValue{
		"s":    &ddbtypes.AttributeValueMemberS{Value: "text"},
		"n":    &ddbtypes.AttributeValueMemberN{Value: "12.5"},
		"bool": &ddbtypes.AttributeValueMemberBOOL{Value: true},
		"null": &ddbtypes.AttributeValueMemberNULL{Value: true},
		"b":    &ddbtypes.AttributeValueMemberB{Value: []byte{0, 1, 254}},
		"ss":   &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns":   &ddbtypes.AttributeValueMemberNS{Value: []string{"1", "2"}},
		"bs":   &ddbtypes.AttributeValueMemberBS{Value: [][]byte{{1}, {2}}},
		"l":    &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberS{Value: "x"}, &ddbtypes.AttributeValueMemberN{Value: "3"}}},
		"m":    &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{"unit": &ddbtypes.AttributeValueMemberS{Value: "km"}}},
	} {
		item[k] = v
	}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	p := &devstack.StreamPoller{Streams: streams, StreamARN: arn, Handler: rec.handler()}
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	await(t, "the insert", func() bool { return len(rec.records()) == 1 })

	if _, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: entryKey("v1", "signal#odometer"),
		UpdateExpression:          aws.String("SET n = :n"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberN{Value: "13"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: entryKey("v1", "signal#odometer")}); err != nil {
		t.Fatal(err)
	}
	await(t, "the update and the delete", func() bool { return len(rec.records()) == 3 })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}

	got := rec.records()
	var names []string
	for _, r := range got {
		names = append(names, r.EventName)
		if r.EventSource != "aws:dynamodb" || r.EventVersion != "1.1" || r.EventSourceArn != arn || r.AWSRegion != "us-east-1" || r.EventID == "" {
			t.Errorf("record %s: source %q version %q arn %q region %q id %q", r.EventName, r.EventSource, r.EventVersion, r.EventSourceArn, r.AWSRegion, r.EventID)
		}
		c := r.Change
		if c.StreamViewType != "NEW_AND_OLD_IMAGES" || c.SizeBytes <= 0 || time.Since(c.ApproximateCreationDateTime.Time) > time.Minute {
			t.Errorf("record %s: view %q size %d created %v", r.EventName, c.StreamViewType, c.SizeBytes, c.ApproximateCreationDateTime)
		}
		if c.Keys[dynamostore.StateKey].String() != "v1" || c.Keys[dynamostore.EntryKey].String() != "signal#odometer" || len(c.Keys) != 2 {
			t.Errorf("record %s: keys %v", r.EventName, c.Keys)
		}
	}
	if want := []string{"INSERT", "MODIFY", "REMOVE"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	for i := 1; i < len(got); i++ {
		a, _ := new(big.Int).SetString(got[i-1].Change.SequenceNumber, 10)
		b, _ := new(big.Int).SetString(got[i].Change.SequenceNumber, 10)
		if a == nil || b == nil || a.Cmp(b) >= 0 {
			t.Errorf("sequence numbers %s then %s", got[i-1].Change.SequenceNumber, got[i].Change.SequenceNumber)
		}
	}

	insert, modify, remove := got[0].Change, got[1].Change, got[2].Change
	if insert.OldImage != nil || remove.NewImage != nil {
		t.Errorf("insert's old image %v, remove's new image %v", insert.OldImage, remove.NewImage)
	}
	img := insert.NewImage
	if img["s"].String() != "text" || img["n"].Number() != "12.5" || !img["bool"].Boolean() || !img["null"].IsNull() ||
		string(img["b"].Binary()) != string([]byte{0, 1, 254}) || !reflect.DeepEqual(img["ss"].StringSet(), []string{"a", "b"}) ||
		!reflect.DeepEqual(img["ns"].NumberSet(), []string{"1", "2"}) || !reflect.DeepEqual(img["bs"].BinarySet(), [][]byte{{1}, {2}}) ||
		img["l"].List()[0].String() != "x" || img["l"].List()[1].Number() != "3" || img["m"].Map()["unit"].String() != "km" ||
		img[dynamostore.StateKey].String() != "v1" {
		t.Errorf("insert's new image %v", img)
	}
	if modify.OldImage["n"].Number() != "12.5" || modify.NewImage["n"].Number() != "13" || modify.NewImage["s"].String() != "text" {
		t.Errorf("modify: old n %v, new n %v", modify.OldImage["n"], modify.NewImage["n"])
	}
	if remove.OldImage["n"].Number() != "13" {
		t.Errorf("remove's old image %v", remove.OldImage)
	}

	// The payload's JSON is Lambda's: the record's fields and the
	// attribute values' type keys.
	var raw struct {
		Records []map[string]json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(rec.payloads[0], &raw); err != nil || len(raw.Records) != 1 {
		t.Fatalf("payload %s: %v", rec.payloads[0], err)
	}
	for _, field := range []string{"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"} {
		if _, ok := raw.Records[0][field]; !ok {
			t.Errorf("payload lacks %s: %s", field, rec.payloads[0])
		}
	}
	var change struct {
		ApproximateCreationDateTime json.Number
		NewImage                    map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw.Records[0]["dynamodb"], &change); err != nil {
		t.Fatal(err)
	}
	if _, err := change.ApproximateCreationDateTime.Int64(); err != nil {
		t.Errorf("ApproximateCreationDateTime %q: not whole epoch seconds", change.ApproximateCreationDateTime)
	}
	for attr, typ := range map[string]string{"s": "S", "n": "N", "bool": "BOOL", "null": "NULL", "b": "B", "ss": "SS", "ns": "NS", "bs": "BS", "l": "L", "m": "M"} {
		if _, ok := change.NewImage[attr][typ]; !ok || len(change.NewImage[attr]) != 1 {
			t.Errorf("NewImage.%s = %v, want {%q: ...}", attr, change.NewImage[attr], typ)
		}
	}
	if s := string(change.NewImage["b"]["B"]); s != `"AAH+"` {
		t.Errorf("B = %s, want base64", s)
	}
	t.Logf("payload: %s", rec.payloads[0])
}

// TestStreamPollerDropsMotoPhantomInserts: an UpdateItem that creates
// an item reaches the handler as one INSERT of the whole item, as from
// DynamoDB (moto records a first INSERT of the bare keys); an item put
// with its keys alone is delivered.
func TestStreamPollerDropsMotoPhantomInserts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ddb, streams, table, arn := streamTable(t)
	update := func(entry string) {
		t.Helper()
		if _, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: entryKey("v1", entry), UpdateExpression: aws.String("SET n = :n"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberN{Value: "1"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	update("a")
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: entryKey("v1", "bare")}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	p := &devstack.StreamPoller{Streams: streams, StreamARN: arn, Handler: rec.handler()}
	go p.Run(ctx)
	await(t, "two records", func() bool { return len(rec.records()) == 2 })
	update("b")
	await(t, "three records", func() bool { return len(rec.records()) == 3 })
	time.Sleep(300 * time.Millisecond) // a record too many would show by now
	got := rec.records()
	var seen []string
	for _, r := range got {
		seen = append(seen, fmt.Sprintf("%s %s %d", r.EventName, r.Change.Keys[dynamostore.EntryKey].String(), len(r.Change.NewImage)))
	}
	if want := []string{"INSERT a 3", "INSERT bare 2", "INSERT b 3"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("records %v, want %v", seen, want)
	}
}

// TestStreamPollerRetries: a batch item failure retries the shard from
// the record it names, the records before it done; a handler error, or a
// failure naming no record of the batch, retries the whole batch.
func TestStreamPollerRetries(t *testing.T) {
	tests := []struct {
		name    string
		respond func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
		want    [][]string
	}{
		{"batch item failure", func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			if n == 0 {
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
					{ItemIdentifier: ev.Records[3].Change.SequenceNumber}, {ItemIdentifier: ev.Records[2].Change.SequenceNumber},
				}}, nil
			}
			return events.DynamoDBEventResponse{}, nil
		}, [][]string{{"e0", "e1", "e2", "e3", "e4"}, {"e2", "e3", "e4"}}},
		{"handler error", func(n int, _ events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			if n == 0 {
				return events.DynamoDBEventResponse{}, errors.New("crash")
			}
			return events.DynamoDBEventResponse{}, nil
		}, [][]string{{"e0", "e1", "e2", "e3", "e4"}, {"e0", "e1", "e2", "e3", "e4"}}},
		{"unknown item", func(n int, _ events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			if n == 0 {
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: "nope"}}}, nil
			}
			return events.DynamoDBEventResponse{}, nil
		}, [][]string{{"e0", "e1", "e2", "e3", "e4"}, {"e0", "e1", "e2", "e3", "e4"}}},
		{"batches of two", nil, [][]string{{"e0", "e1"}, {"e2", "e3"}, {"e4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			ddb, streams, table, arn := streamTable(t)
			for i := range 5 {
				item := entryKey("v1", fmt.Sprint("e", i))
				item["n"] = &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(i)}
				if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{respond: tt.respond}
			p := &devstack.StreamPoller{Streams: streams, StreamARN: arn, Handler: rec.handler(), Backoff: 50 * time.Millisecond}
			if tt.respond == nil {
				p.BatchSize = 2
			}
			start := time.Now()
			res, err := p.PollOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			retried := len(tt.want[0]) - res.Delivered
			if res.Invocations != 1 || res.Retried != retried && tt.respond != nil {
				t.Errorf("first poll %+v", res)
			}
			for delivered := res.Delivered; delivered < 5; delivered += res.Delivered {
				if res, err = p.PollOnce(ctx); err != nil {
					t.Fatal(err)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatal("records not delivered")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := rec.keysOf(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("batches %v, want %v", got, tt.want)
			}
			if tt.respond != nil && time.Since(start) < 50*time.Millisecond {
				t.Errorf("retried after %v, before the backoff", time.Since(start))
			}
			// Nothing more: the poller is at the end of the shard.
			if res, err := p.PollOnce(ctx); err != nil || res.Invocations != 0 {
				t.Errorf("poll after the end: %+v, %v", res, err)
			}
		})
	}
}

// fakeStreams serves shards of made-up records; describe lists the
// shards known at each DescribeStream.
type fakeStreams struct {
	mu       sync.Mutex
	describe func(calls int) []types.Shard
	calls    int
	records  map[string][]string // shard: entries; a shard named in closed ends after them
	closed   map[string]bool
}

func (f *fakeStreams) DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: &types.StreamDescription{Shards: f.describe(f.calls)}}, nil
}

func (f *fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(aws.ToString(in.ShardId) + "|0")}, nil
}

func (f *fakeStreams) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	shard, pos, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	var from int
	fmt.Sscan(pos, &from)
	entries := f.records[shard]
	to := min(len(entries), from+int(aws.ToInt32(in.Limit)))
	out := &dynamodbstreams.GetRecordsOutput{NextShardIterator: aws.String(fmt.Sprintf("%s|%d", shard, to))}
	for i, e := range entries[from:to] {
		out.Records = append(out.Records, types.Record{
			EventID: aws.String(fmt.Sprint(shard, from+i)), EventName: types.OperationTypeInsert,
			Dynamodb: &types.StreamRecord{
				Keys:           map[string]types.AttributeValue{dynamostore.EntryKey: &types.AttributeValueMemberS{Value: e}},
				SequenceNumber: aws.String(fmt.Sprint(shard, "-", from+i)), StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		})
	}
	if to == len(entries) && f.closed[shard] {
		out.NextShardIterator = nil
	}
	return out, nil
}

// TestStreamPollerFollowsShards: a child shard is read once its parent's
// records are all delivered, whatever order the stream lists them in; a
// shard that appears later is found and read from its start.
func TestStreamPollerFollowsShards(t *testing.T) {
	shard := func(id, parent string) types.Shard {
		s := types.Shard{ShardId: aws.String(id)}
		if parent != "" {
			s.ParentShardId = aws.String(parent)
		}
		return s
	}
	fake := &fakeStreams{
		describe: func(calls int) []types.Shard {
			shards := []types.Shard{shard("child", "parent"), shard("parent", "")}
			if calls > 1 {
				shards = append(shards, shard("grandchild", "child"))
			}
			return shards
		},
		records: map[string][]string{"parent": {"p0", "p1", "p2"}, "child": {"c0", "c1"}, "grandchild": {"g0"}},
		closed:  map[string]bool{"parent": true, "child": true},
	}
	rec := &recorder{}
	p := &devstack.StreamPoller{Streams: fake, StreamARN: "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/x", Handler: rec.handler(), BatchSize: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go p.Run(ctx)
	await(t, "every record", func() bool { return len(rec.records()) == 6 })
	want := [][]string{{"p0", "p1"}, {"p2"}, {"c0", "c1"}, {"g0"}}
	if got := rec.keysOf(); !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if r := rec.records()[0]; r.AWSRegion != "eu-west-1" || r.EventSourceArn != p.StreamARN {
		t.Errorf("region %q, source ARN %q", r.AWSRegion, r.EventSourceArn)
	}
}

// TestStreamPollerStateTableStream: CreateStateTable enables the stream
// of an existing table without one, leaves one with the stream alone
// (the same stream), and refuses a table whose stream carries other
// images; a table without a stream has no StateTableStream.
func TestStreamPollerStateTableStream(t *testing.T) {
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(awstest.Config(t))
	create := func(name string, stream *ddbtypes.StreamSpecification) {
		t.Helper()
		if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName: aws.String(name), BillingMode: ddbtypes.BillingModePayPerRequest, StreamSpecification: stream,
			AttributeDefinitions: []ddbtypes.AttributeDefinition{
				{AttributeName: aws.String(dynamostore.StateKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
				{AttributeName: aws.String(dynamostore.EntryKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
			},
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String(dynamostore.StateKey), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String(dynamostore.EntryKey), KeyType: ddbtypes.KeyTypeRange},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	plain := awstest.Name(t, "plain")
	create(plain, nil)
	if _, err := dynamostore.StateTableStream(ctx, ddb, plain); err == nil {
		t.Error("a table without a stream has a StateTableStream")
	}
	if err := dynamostore.CreateStateTable(ctx, ddb, plain); err != nil {
		t.Fatal(err)
	}
	arn, err := dynamostore.StateTableStream(ctx, ddb, plain)
	if err != nil || arn == "" {
		t.Fatalf("stream %q, %v", arn, err)
	}
	if err := dynamostore.CreateStateTable(ctx, ddb, plain); err != nil {
		t.Fatal(err)
	}
	if again, err := dynamostore.StateTableStream(ctx, ddb, plain); err != nil || again != arn {
		t.Errorf("stream after a second CreateStateTable %q, %v; want %q", again, err, arn)
	}

	fresh := awstest.Name(t, "fresh")
	if err := dynamostore.CreateStateTable(ctx, ddb, fresh); err != nil {
		t.Fatal(err)
	}
	out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(fresh)})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Table.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != ddbtypes.StreamViewTypeNewAndOldImages {
		t.Errorf("new state table's stream %+v", s)
	}

	keysOnly := awstest.Name(t, "keys")
	create(keysOnly, &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewTypeKeysOnly})
	if err := dynamostore.CreateStateTable(ctx, ddb, keysOnly); err == nil || !strings.Contains(err.Error(), "KEYS_ONLY") {
		t.Errorf("a table with a KEYS_ONLY stream: %v", err)
	}
}

// TestProvisionEventBus: the local stack's bus sends every event of the
// publisher's source, and nothing else, to the tail queue; the entries
// table has its stream.
func TestProvisionEventBus(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: awstest.Name(t, "bus") + "-"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StateStreamARN == "" || res.EventsTailQueueURL == "" || res.EventSource != devstack.EventSource || !strings.HasSuffix(res.EventBusName, devstack.EventBusName) {
		t.Fatalf("resources %+v", res)
	}
	env := res.PublisherEnv()
	if env["EVENT_BUS_NAME"] != res.EventBusName || env["EVENT_SOURCE"] != devstack.EventSource || env["STATE_TABLE"] != res.StateTable {
		t.Errorf("publisher env %v", env)
	}
	// Provisioning again reuses what is there.
	if again, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: strings.TrimSuffix(res.EventBusName, devstack.EventBusName)}); err != nil ||
		again.EventsTailQueueURL != res.EventsTailQueueURL || again.StateStreamARN != res.StateStreamARN {
		t.Fatalf("second Provision: %+v, %v", again, err)
	}

	eb := eventbridge.NewFromConfig(cfg)
	put, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{EventBusName: aws.String(res.EventBusName), Source: aws.String(devstack.EventSource), DetailType: aws.String("VehicleSignalChanged"),
			Detail: aws.String(`{"vehicleId":"v1","eventId":"e1"}`)},
		{EventBusName: aws.String(res.EventBusName), Source: aws.String("someone-else"), DetailType: aws.String("Other"), Detail: aws.String(`{}`)},
	}})
	if err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("put events: %+v, %v", put, err)
	}
	q := sqs.NewFromConfig(cfg)
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.EventsTailQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on the tail queue, want 1", len(out.Messages))
	}
	var ev struct {
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Time       string          `json:"time"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &ev); err != nil {
		t.Fatal(err)
	}
	var detail map[string]string
	if err := json.Unmarshal(ev.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "VehicleSignalChanged" || ev.Source != devstack.EventSource || detail["vehicleId"] != "v1" || ev.Time == "" {
		t.Errorf("event %s", aws.ToString(out.Messages[0].Body))
	}
}
