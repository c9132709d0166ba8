// Package streamredrive reads again, from a DynamoDB stream, the records of
// a batch that Lambda's DynamoDB event source gave up on, and hands them to
// the function's handler once more.
//
// When an event source mapping's retries run out (MaximumRetryAttempts) or
// a batch holds a record older than MaximumRecordAgeInSeconds, Lambda sends
// its on-failure destination (an SQS queue, here PublisherFailureQueue) an
// invocation record describing the batch, not the records themselves: the
// stream, the shard, the first and last sequence numbers (see Failure).
// Redrive parses that description, reads the range from the shard
// (GetShardIterator AT_SEQUENCE_NUMBER, then GetRecords until a record
// passes the last sequence number), converts the records into the event
// Lambda delivers (streamlambda.FromStream) and invokes the handler
// with them in order, in batches, honouring its batchItemFailures as the
// event source does, within a bounded number of attempts.
//
// DynamoDB Streams keeps a record 24 hours from when it was written: a
// range redriven later is gone, which Redrive reports as ErrGone.
package streamredrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamlambda"
)

// StreamsAPI is the part of the DynamoDB Streams client Redrive uses.
type StreamsAPI interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// StreamRetention is how long DynamoDB Streams keeps a record, from when it
// was written; AWS's, not a setting.
const StreamRetention = 24 * time.Hour

// Defaults of a Redriver.
const (
	// DefaultBatchSize is the most records of one invocation: the
	// publisher's event source's batch size.
	DefaultBatchSize = 100
	// DefaultAttempts is how many invocations a record gets: the one
	// that fails and the retries from it.
	DefaultAttempts = 3
	// DefaultBackoff is the pause before the first retry; it doubles
	// with each further one.
	DefaultBackoff = time.Second
	// DefaultInterval is the pause after a GetRecords that returned no
	// records (DynamoDB Streams allows 5 GetRecords a second per shard).
	DefaultInterval = 200 * time.Millisecond

	// emptyReads is how many GetRecords in a row may return nothing
	// before the range is taken to be missing: "it might take multiple
	// calls to get to a portion of the shard that contains stream
	// records" (GetRecords' documentation).
	emptyReads = 10
	// maxGetRecords is the most records one GetRecords returns.
	maxGetRecords = 1000
)

// ErrGone is the error of a range the stream no longer holds, in whole or
// in part: its changes cannot be re-read, so their domain events cannot be
// derived again from the stream.
var ErrGone = errors.New("the stream no longer holds these changes: they can no longer be re-read " +
	"(DynamoDB Streams keeps a record 24 hours from when it was written: the failure was answered too late); " +
	"the vehicles' current state is in the state table")

// Failure is the invocation record Lambda sends to an event source
// mapping's on-failure destination for a batch of a DynamoDB stream
// (AWS Lambda Developer Guide, "Retain discarded records for a DynamoDB
// event source in Lambda"):
//
//	{"requestContext":{"requestId":"…","functionArn":"arn:aws:lambda:…:function:…",
//	  "condition":"RetryAttemptsExhausted","approximateInvokeCount":1},
//	 "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
//	 "version":"1.0","timestamp":"2019-11-14T00:13:49.717Z",
//	 "DDBStreamBatchInfo":{"shardId":"shardId-00000001573689847184-864758bb",
//	  "startSequenceNumber":"800000000003126276362","endSequenceNumber":"800000000003126276362",
//	  "approximateArrivalOfFirstRecord":"2019-11-14T00:13:19Z","approximateArrivalOfLastRecord":"2019-11-14T00:13:19Z",
//	  "batchSize":1,"streamArn":"arn:aws:dynamodb:…:table/…/stream/…"}}
type Failure struct {
	RequestContext struct {
		RequestID string `json:"requestId"`
		// FunctionARN is the function that failed.
		FunctionARN string `json:"functionArn"`
		// Condition says why the batch was given up on:
		// RetryAttemptsExhausted, RecordAgeExceeded, ...
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	Version string `json:"version"`
	// Timestamp is when the batch was given up on.
	Timestamp string    `json:"timestamp"`
	Batch     BatchInfo `json:"DDBStreamBatchInfo"`
}

// BatchInfo is the batch's place in the stream: its records are those of
// shard ShardID from StartSequenceNumber to EndSequenceNumber, both
// included.
type BatchInfo struct {
	ShardID             string `json:"shardId"`
	StartSequenceNumber string `json:"startSequenceNumber"`
	EndSequenceNumber   string `json:"endSequenceNumber"`
	// When the first and last records reached the stream (RFC 3339).
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	// BatchSize counts the batch's records.
	BatchSize int    `json:"batchSize"`
	StreamARN string `json:"streamArn"`
}

// Expires returns when the stream drops the batch's first record
// (StreamRetention after it arrived); false when the description does not
// say when it arrived.
func (b BatchInfo) Expires() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, b.ApproximateArrivalOfFirstRecord)
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(StreamRetention), true
}

// String names the range: shard, sequence numbers and stream.
func (b BatchInfo) String() string {
	return fmt.Sprintf("shard %s sequence numbers %s to %s of %s", b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber, b.StreamARN)
}

// ParseFailure parses an on-failure destination's message body, and checks
// that it describes a range of a DynamoDB stream.
func ParseFailure(body []byte) (Failure, error) {
	var f Failure
	if err := json.Unmarshal(body, &f); err != nil {
		return f, fmt.Errorf("not a Lambda invocation record (JSON): %w", err)
	}
	b := f.Batch
	var missing []string
	for _, field := range [][2]string{{"shardId", b.ShardID}, {"startSequenceNumber", b.StartSequenceNumber},
		{"endSequenceNumber", b.EndSequenceNumber}, {"streamArn", b.StreamARN}} {
		if field[1] == "" {
			missing = append(missing, field[0])
		}
	}
	if len(missing) > 0 {
		return f, fmt.Errorf("not the invocation record of a DynamoDB stream batch: DDBStreamBatchInfo lacks %s", strings.Join(missing, ", "))
	}
	start, end, err := b.bounds()
	if err != nil {
		return f, err
	}
	if start.Cmp(end) > 0 {
		return f, fmt.Errorf("startSequenceNumber %s is after endSequenceNumber %s", b.StartSequenceNumber, b.EndSequenceNumber)
	}
	return f, nil
}

// bounds parses the range's first and last sequence numbers.
func (b BatchInfo) bounds() (start, end *big.Int, err error) {
	start, ok := sequence(b.StartSequenceNumber)
	if !ok {
		return nil, nil, fmt.Errorf("startSequenceNumber %q is not a sequence number (decimal digits)", b.StartSequenceNumber)
	}
	end, ok = sequence(b.EndSequenceNumber)
	if !ok {
		return nil, nil, fmt.Errorf("endSequenceNumber %q is not a sequence number (decimal digits)", b.EndSequenceNumber)
	}
	return start, end, nil
}

// sequence parses a sequence number: decimal digits, of varying length,
// which only compare as numbers.
func sequence(s string) (*big.Int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return nil, false
	}
	return new(big.Int).SetString(s, 10)
}

// Result is what a redrive did.
type Result struct {
	Failure Failure
	// Read counts the records of the range read from the stream;
	// Delivered those the handler completed (all of them when Redrive
	// returns no error).
	Read, Delivered int
	// Invocations counts the handler's invocations, Retries those that
	// repeated records of a failed one.
	Invocations, Retries int
	// First and Last are the sequence numbers of the first and last
	// records read.
	First, Last string
}

// Redrive redrives the batch the on-failure destination's message body
// failure describes with a Redriver's defaults.
func Redrive(ctx context.Context, streams StreamsAPI, handler lambda.Handler, failure []byte) (Result, error) {
	return Redriver{Streams: streams, Handler: handler}.Redrive(ctx, failure)
}

// Redriver reads the records of failed batches from their stream again and
// invokes Handler with them as Lambda's DynamoDB event source would.
type Redriver struct {
	Streams StreamsAPI
	// Handler takes the events.DynamoDBEvent JSON Lambda delivers and
	// answers an events.DynamoDBEventResponse (lambda.NewHandler of the
	// function's handler).
	Handler lambda.Handler
	// BatchSize is the most records of one invocation; default
	// DefaultBatchSize.
	BatchSize int
	// Attempts is how many invocations a record gets before Redrive gives
	// up; default DefaultAttempts.
	Attempts int
	// Backoff is the pause before the first retry, doubling after;
	// default DefaultBackoff.
	Backoff time.Duration
	// Interval is the pause after a GetRecords that returned nothing;
	// default DefaultInterval.
	Interval time.Duration
}

// Redrive parses failure (see ParseFailure), reads its range (see Read)
// and invokes the handler with its records in order, in batches of up to
// BatchSize. A batch item failure retries from the record it names (those
// before it are done), a handler error or a response naming no record of
// the batch retries the whole batch, after a backoff; a record that fails
// Attempts times ends the redrive with an error naming its sequence
// number. Nothing is invoked when the range cannot be read whole: a range
// the stream no longer holds is an error wrapping ErrGone.
func (r Redriver) Redrive(ctx context.Context, failure []byte) (Result, error) {
	f, err := ParseFailure(failure)
	res := Result{Failure: f}
	if err != nil {
		return res, err
	}
	records, err := r.Read(ctx, f.Batch)
	res.Read = len(records)
	if len(records) > 0 {
		res.First, res.Last = records[0].Change.SequenceNumber, records[len(records)-1].Change.SequenceNumber
	}
	if err != nil {
		return res, err
	}
	failures := 0 // consecutive failed invocations of the record at res.Delivered
	for res.Delivered < len(records) {
		batch := records[res.Delivered:min(res.Delivered+r.batchSize(), len(records))]
		if failures > 0 {
			res.Retries++
		}
		res.Invocations++
		done, err := r.invoke(ctx, f.Batch, res.Invocations, batch)
		res.Delivered += done
		if err == nil {
			failures = 0
			continue
		}
		if done > 0 {
			failures = 0 // progress: another record failed
		}
		failures++
		seq := records[res.Delivered].Change.SequenceNumber
		if failures >= r.attempts() {
			return res, fmt.Errorf("record %s (shard %s) failed %d times, last: %w; the %d records before it were completed, "+
				"it and the %d after it were not", seq, f.Batch.ShardID, failures, err, res.Delivered, len(records)-res.Delivered-1)
		}
		if cerr := resend.Sleep(ctx, r.backoff()<<(failures-1)); cerr != nil {
			return res, fmt.Errorf("record %s: %w (after: %v)", seq, cerr, err)
		}
	}
	return res, nil
}

// Read returns the records of the range b describes, in order, as Lambda
// delivers them. Those not all in the stream any more (it refuses to read
// so far back, the shard is gone, or the first records it returns come
// after the range's start) are an error wrapping ErrGone.
func (r Redriver) Read(ctx context.Context, b BatchInfo) ([]events.DynamoDBEventRecord, error) {
	start, end, err := b.bounds()
	if err != nil {
		return nil, err
	}
	gone := func(why string) error { return fmt.Errorf("%s: %s: %w", b, why, ErrGone) }
	iterator, err := r.iterator(ctx, b, types.ShardIteratorTypeAtSequenceNumber, b.StartSequenceNumber)
	if err != nil {
		if isGone(err) {
			return nil, gone(err.Error())
		}
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	var out []events.DynamoDBEventRecord
	empty := 0
	for {
		page, err := r.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iterator, Limit: aws.Int32(maxGetRecords)})
		var expired *types.ExpiredIteratorException
		switch {
		case errors.As(err, &expired):
			// Iterators last 15 minutes: a new one where this one was.
			typ, seq := types.ShardIteratorTypeAtSequenceNumber, b.StartSequenceNumber
			if len(out) > 0 {
				typ, seq = types.ShardIteratorTypeAfterSequenceNumber, out[len(out)-1].Change.SequenceNumber
			}
			if iterator, err = r.iterator(ctx, b, typ, seq); err != nil {
				if isGone(err) {
					return out, gone(err.Error())
				}
				return out, fmt.Errorf("%s: %w", b, err)
			}
			continue
		case err != nil && isGone(err):
			return out, gone(err.Error())
		case err != nil:
			return out, fmt.Errorf("%s: get records: %w", b, err)
		}
		for _, rec := range page.Records {
			seq, ok := "", false
			var n *big.Int
			if rec.Dynamodb != nil {
				seq = aws.ToString(rec.Dynamodb.SequenceNumber)
				n, ok = sequence(seq)
			}
			if !ok {
				return out, fmt.Errorf("%s: the stream returned a record without a sequence number (%q)", b, seq)
			}
			if len(out) == 0 && n.Cmp(start) > 0 {
				// AT_SEQUENCE_NUMBER gives the start first unless the
				// stream has dropped it.
				return nil, gone(fmt.Sprintf("the first record the shard holds from %s on is %s", b.StartSequenceNumber, seq))
			}
			if n.Cmp(end) > 0 {
				return out, nil
			}
			if n.Cmp(start) < 0 {
				continue
			}
			out = append(out, streamlambda.FromStream(b.StreamARN, rec))
			if n.Cmp(end) == 0 {
				return out, nil
			}
		}
		iterator = page.NextShardIterator
		if iterator == nil {
			// The shard is closed and was read to its end.
			if len(out) == 0 {
				return nil, gone("the shard holds no record from " + b.StartSequenceNumber + " on")
			}
			return out, fmt.Errorf("%s: the shard ends at %s, before the range's end", b, out[len(out)-1].Change.SequenceNumber)
		}
		if len(page.Records) > 0 {
			empty = 0
			continue
		}
		if empty++; empty >= emptyReads {
			if len(out) == 0 {
				return nil, gone(fmt.Sprintf("the shard returned no record from %s on (%d reads)", b.StartSequenceNumber, empty))
			}
			return out, fmt.Errorf("%s: the shard returned nothing after %s (%d reads), before the range's end", b, out[len(out)-1].Change.SequenceNumber, empty)
		}
		if err := resend.Sleep(ctx, r.interval()); err != nil {
			return out, err
		}
	}
}

// iterator returns a shard iterator of the range's shard.
func (r Redriver) iterator(ctx context.Context, b BatchInfo, typ types.ShardIteratorType, seq string) (*string, error) {
	out, err := r.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(b.StreamARN), ShardId: aws.String(b.ShardID), ShardIteratorType: typ, SequenceNumber: aws.String(seq),
	})
	if err != nil {
		return nil, fmt.Errorf("shard iterator %s %s: %w", typ, seq, err)
	}
	if out.ShardIterator == nil {
		return nil, fmt.Errorf("shard iterator %s %s: none returned", typ, seq)
	}
	return out.ShardIterator, nil
}

// isGone reports whether err says the stream no longer holds what was
// asked: records past its trim horizon, or a shard (or stream) deleted.
func isGone(err error) bool {
	var trimmed *types.TrimmedDataAccessException
	var notFound *types.ResourceNotFoundException
	return errors.As(err, &trimmed) || errors.As(err, &notFound)
}

// invoke calls the handler with batch and returns how many of its
// records, from the first, are done; an error says why the rest are not.
func (r Redriver) invoke(ctx context.Context, b BatchInfo, n int, batch []events.DynamoDBEventRecord) (int, error) {
	return streamlambda.Invoke(ctx, r.Handler, fmt.Sprintf("redrive-%s-%s-%d", b.ShardID, b.StartSequenceNumber, n), batch)
}

func (r Redriver) batchSize() int {
	if r.BatchSize > 0 {
		return r.BatchSize
	}
	return DefaultBatchSize
}

func (r Redriver) attempts() int {
	if r.Attempts > 0 {
		return r.Attempts
	}
	return DefaultAttempts
}

func (r Redriver) backoff() time.Duration {
	if r.Backoff > 0 {
		return r.Backoff
	}
	return DefaultBackoff
}

func (r Redriver) interval() time.Duration {
	if r.Interval > 0 {
		return r.Interval
	}
	return DefaultInterval
}
