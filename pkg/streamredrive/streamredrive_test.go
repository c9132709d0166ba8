package streamredrive_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamredrive"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// stream creates an entries table (with its stream) on the emulator,
// puts n entries of vehicle v1, entry e0 ... e<n-1>, in that order, and
// returns a streams client, the stream's ARN and its records' shard and
// sequence numbers, in order.
func stream(t *testing.T, n int) (*dynamodbstreams.Client, string, string, []string) {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	ddb := dynamodb.NewFromConfig(cfg)
	table := awstest.Name(t, "entries")
	if err := dynamostore.CreateTables(ctx, ddb, awstest.Name(t, "ev"), table); err != nil {
		t.Fatal(err)
	}
	arn, err := dynamostore.StateTableStream(ctx, ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
			dynamostore.StateKey: &ddbtypes.AttributeValueMemberS{Value: "v1"},
			dynamostore.EntryKey: &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("e%d", i)},
			"n":                  &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(i)},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	shard, seqs := awstest.StreamSequences(t, arn, n)
	return dynamodbstreams.NewFromConfig(cfg), arn, shard, seqs
}

// description is the invocation record Lambda sends the on-failure
// destination for the batch of shard from start to end.
func description(arn, shard, start, end string, size int) []byte {
	return fmt.Appendf(nil, `{"requestContext":{"requestId":"316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
 "functionArn":"arn:aws:lambda:us-east-1:123456789012:function:PublisherFunction","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},
 "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
 "version":"1.0","timestamp":"2026-11-30T18:00:00.000Z",
 "DDBStreamBatchInfo":{"shardId":%q,"startSequenceNumber":%q,"endSequenceNumber":%q,
  "approximateArrivalOfFirstRecord":"2026-11-30T17:00:00Z","approximateArrivalOfLastRecord":"2026-11-30T17:00:01Z",
  "batchSize":%d,"streamArn":%q}}`, shard, start, end, size, arn)
}

// recorder is a handler of DynamoDB events, as the publisher is one, that
// keeps the entries of each batch it was given and answers as respond
// says.
type recorder struct {
	batches [][]string
	respond func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
}

func (r *recorder) handler() lambda.Handler {
	return lambda.NewHandler(func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var keys []string
		for _, rec := range ev.Records {
			keys = append(keys, rec.Change.Keys[dynamostore.EntryKey].String())
			if rec.EventSourceArn == "" || rec.EventName != "INSERT" || rec.Change.NewImage["n"].Number() == "" {
				return events.DynamoDBEventResponse{}, fmt.Errorf("record not as Lambda delivers it: %+v", rec)
			}
		}
		n := len(r.batches)
		r.batches = append(r.batches, keys)
		if r.respond == nil {
			return events.DynamoDBEventResponse{}, nil
		}
		return r.respond(n, ev)
	})
}

// failFrom answers a batch item failure from the batch's i-th record.
func failFrom(ev events.DynamoDBEvent, i int) events.DynamoDBEventResponse {
	return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[i].Change.SequenceNumber}}}
}

// TestRedrive: the handler is given exactly the records of the range
// described, in order, in batches; a failed invocation is retried from
// the record it names (or whole), a bounded number of times.
func TestRedrive(t *testing.T) {
	for _, tc := range []struct {
		name        string
		from, to    int // the range, as indexes of the records written
		batchSize   int
		respond     func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
		want        [][]string
		wantRetries int
		wantErr     string // the error names the failing record's sequence number too
		wantDone    int
	}{
		{name: "the first records", from: 0, to: 2, want: [][]string{{"e0", "e1", "e2"}}, wantDone: 3},
		{name: "one record", from: 3, to: 3, want: [][]string{{"e3"}}, wantDone: 1},
		{name: "a range in batches", from: 1, to: 4, batchSize: 2, want: [][]string{{"e1", "e2"}, {"e3", "e4"}}, wantDone: 4},
		{name: "a batch item failure retried from its record", from: 0, to: 2,
			respond: func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				if n == 0 {
					return failFrom(ev, 1), nil
				}
				return events.DynamoDBEventResponse{}, nil
			},
			want: [][]string{{"e0", "e1", "e2"}, {"e1", "e2"}}, wantRetries: 1, wantDone: 3},
		{name: "a failed invocation retried whole", from: 0, to: 1,
			respond: func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				if n == 0 {
					return events.DynamoDBEventResponse{}, errors.New("bus unavailable")
				}
				return events.DynamoDBEventResponse{}, nil
			},
			want: [][]string{{"e0", "e1"}, {"e0", "e1"}}, wantRetries: 1, wantDone: 2},
		{name: "a record always failing gives up", from: 0, to: 2,
			respond: func(n int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				for i, rec := range ev.Records {
					if rec.Change.Keys[dynamostore.EntryKey].String() == "e1" {
						return failFrom(ev, i), nil
					}
				}
				return events.DynamoDBEventResponse{}, nil
			},
			want: [][]string{{"e0", "e1", "e2"}, {"e1", "e2"}, {"e1", "e2"}}, wantRetries: 2, wantDone: 1,
			wantErr: "failed 3 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streams, arn, shard, seqs := stream(t, 5)
			rec := &recorder{respond: tc.respond}
			r := streamredrive.Redriver{Streams: streams, Handler: rec.handler(), BatchSize: tc.batchSize, Backoff: time.Millisecond}
			res, err := r.Redrive(context.Background(), description(arn, shard, seqs[tc.from], seqs[tc.to], tc.to-tc.from+1))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), seqs[tc.wantDone])) {
				t.Fatalf("error %v, want one saying %q and naming %s", err, tc.wantErr, seqs[tc.wantDone])
			}
			if !reflect.DeepEqual(rec.batches, tc.want) {
				t.Errorf("batches %v, want %v", rec.batches, tc.want)
			}
			want := streamredrive.Result{Read: tc.to - tc.from + 1, Delivered: tc.wantDone, Invocations: len(tc.want), Retries: tc.wantRetries,
				First: seqs[tc.from], Last: seqs[tc.to]}
			res.Failure = streamredrive.Failure{}
			if res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

// faultyStreams is the emulator's stream as it is once DynamoDB has
// dropped records: it refuses a shard iterator with err, or returns the
// shard's records without the first.
type faultyStreams struct {
	streamredrive.StreamsAPI
	err       error
	dropFirst bool
}

func (f faultyStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.StreamsAPI.GetShardIterator(ctx, in, optFns...)
}

func (f faultyStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	out, err := f.StreamsAPI.GetRecords(ctx, in, optFns...)
	if err == nil && f.dropFirst && len(out.Records) > 0 {
		out.Records = out.Records[1:]
	}
	return out, err
}

// TestRedriveGone: a range the stream no longer holds, whole or in part,
// is an error saying its changes can no longer be re-read (ErrGone), and
// nothing is invoked.
func TestRedriveGone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		streams  func(streamredrive.StreamsAPI) streamredrive.StreamsAPI
		from, to int
		want     string
	}{
		{name: "trimmed", from: 0, to: 1, want: "TrimmedDataAccessException",
			streams: func(s streamredrive.StreamsAPI) streamredrive.StreamsAPI {
				return faultyStreams{StreamsAPI: s, err: &types.TrimmedDataAccessException{Message: aws.String("past the trim horizon")}}
			}},
		{name: "shard deleted", from: 0, to: 1, want: "ResourceNotFoundException",
			streams: func(s streamredrive.StreamsAPI) streamredrive.StreamsAPI {
				return faultyStreams{StreamsAPI: s, err: &types.ResourceNotFoundException{Message: aws.String("shard not found")}}
			}},
		{name: "first records missing", from: 0, to: 2, want: "the first record the shard holds",
			streams: func(s streamredrive.StreamsAPI) streamredrive.StreamsAPI {
				return faultyStreams{StreamsAPI: s, dropFirst: true}
			}},
		{name: "a range the stream never held", from: 3, to: 4, want: "returned no record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streams, arn, shard, seqs := stream(t, 3)
			var api streamredrive.StreamsAPI = streams
			if tc.streams != nil {
				api = tc.streams(streams)
			}
			// Sequence numbers past the stream's end for "never held".
			seq := func(i int) string {
				if i < len(seqs) {
					return seqs[i]
				}
				return seqs[len(seqs)-1] + strings.Repeat("0", i) // far past it
			}
			rec := &recorder{}
			r := streamredrive.Redriver{Streams: api, Handler: rec.handler(), Interval: time.Millisecond}
			_, err := r.Redrive(context.Background(), description(arn, shard, seq(tc.from), seq(tc.to), 2))
			if !errors.Is(err, streamredrive.ErrGone) {
				t.Fatalf("error %v, want ErrGone", err)
			}
			for _, s := range []string{tc.want, "can no longer be re-read", "state table", shard, seq(tc.from)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
			if len(rec.batches) > 0 {
				t.Errorf("invoked with %v", rec.batches)
			}
		})
	}
}

// TestParseFailure: Lambda's invocation record for a stream batch is
// parsed; anything else is refused, saying why, before the stream is
// read.
func TestParseFailure(t *testing.T) {
	arn := "arn:aws:dynamodb:us-east-1:123456789012:table/vehicles/stream/2026-11-30T00:00:00.000"
	for _, tc := range []struct {
		name, body, want string
	}{
		{name: "malformed JSON", body: `{"DDBStreamBatchInfo":`, want: "not a Lambda invocation record"},
		{name: "not JSON", body: `hello`, want: "not a Lambda invocation record"},
		{name: "no batch info", body: `{"requestContext":{"condition":"RetryAttemptsExhausted"}}`,
			want: "DDBStreamBatchInfo lacks shardId, startSequenceNumber, endSequenceNumber, streamArn"},
		{name: "a Kinesis batch", body: `{"KinesisBatchInfo":{"shardId":"s","startSequenceNumber":"1","endSequenceNumber":"2","streamArn":"a"}}`,
			want: "DDBStreamBatchInfo lacks"},
		{name: "start after end", body: string(description(arn, "shardId-1", "200", "100", 2)), want: "startSequenceNumber 200 is after endSequenceNumber 100"},
		{name: "not a number", body: string(description(arn, "shardId-1", "1e5", "100", 2)), want: `startSequenceNumber "1e5"`},
		{name: "negative", body: string(description(arn, "shardId-1", "1", "-100", 2)), want: `endSequenceNumber "-100"`},
		// Compared as numbers: as strings "99" > "100".
		{name: "lengths differ", body: string(description(arn, "shardId-1", "99", "100", 2))},
		{name: "past 64 bits", body: string(description(arn, "shardId-1", "800000000003126276362", "800000000003126276363", 2))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := streamredrive.ParseFailure([]byte(tc.body))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if f.Batch.ShardID != "shardId-1" || f.Batch.StreamARN != arn || f.Batch.BatchSize != 2 ||
					f.RequestContext.Condition != "RetryAttemptsExhausted" || f.RequestContext.ApproximateInvokeCount != 11 {
					t.Errorf("parsed %+v", f)
				}
				if exp, ok := f.Batch.Expires(); !ok || !exp.Equal(time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)) {
					t.Errorf("expires %v, %v", exp, ok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Redrive refuses it alike, without reading the stream.
			if _, err := streamredrive.Redrive(context.Background(), nil, nil, []byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("redrive: %v", err)
			}
		})
	}
}

// fakeStreams is a shard of records with the given sequence numbers,
// returned two a page.
type fakeStreams struct{ seqs []string }

func (f fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	for i, s := range f.seqs {
		if s == aws.ToString(in.SequenceNumber) {
			return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprint(i))}, nil
		}
	}
	return nil, &types.TrimmedDataAccessException{Message: aws.String("not in the shard")}
}

func (f fakeStreams) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	var i int
	fmt.Sscan(aws.ToString(in.ShardIterator), &i)
	out := &dynamodbstreams.GetRecordsOutput{}
	for _, s := range f.seqs[i:min(i+2, len(f.seqs))] {
		out.Records = append(out.Records, types.Record{EventName: types.OperationTypeInsert, Dynamodb: &types.StreamRecord{
			SequenceNumber: aws.String(s), Keys: map[string]types.AttributeValue{dynamostore.EntryKey: &types.AttributeValueMemberS{Value: "s" + s}},
		}})
	}
	if i+2 < len(f.seqs) {
		out.NextShardIterator = aws.String(fmt.Sprint(i + 2))
	}
	return out, nil
}

// TestReadComparesSequenceNumbersAsNumbers: sequence numbers of different
// lengths bound the range as numbers; the shard's end after the range's
// end is an error.
func TestReadComparesSequenceNumbersAsNumbers(t *testing.T) {
	streams := fakeStreams{seqs: []string{"98", "99", "100", "101", "1000"}}
	var got []string
	r := streamredrive.Redriver{Streams: streams, Handler: lambda.NewHandler(func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		for _, rec := range ev.Records {
			got = append(got, rec.Change.SequenceNumber)
		}
		return events.DynamoDBEventResponse{}, nil
	})}
	body := description("arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "shardId-1", "99", "101", 3)
	res, err := r.Redrive(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"99", "100", "101"}; !reflect.DeepEqual(got, want) || res.Delivered != 3 {
		t.Errorf("delivered %v (%+v), want %v", got, res, want)
	}
	// A closed shard ending inside the range.
	f, _ := streamredrive.ParseFailure(description("arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "shardId-1", "100", "5000", 3))
	recs, err := r.Read(context.Background(), f.Batch)
	if err == nil || !strings.Contains(err.Error(), "the shard ends at 1000") || len(recs) != 3 {
		t.Errorf("read %d records, %v", len(recs), err)
	}
	b, _ := json.Marshal(recs[0])
	if !strings.Contains(string(b), `"eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/t/stream/s"`) {
		t.Errorf("record as Lambda delivers it: %s", b)
	}
}
