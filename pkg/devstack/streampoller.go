package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamlambda"
)

// StreamsAPI is the part of the DynamoDB Streams client the StreamPoller
// uses.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Defaults of the StreamPoller, Lambda's where Lambda has one.
const (
	// DefaultStreamBatchSize is the batch size of Lambda's DynamoDB
	// event source unless configured.
	DefaultStreamBatchSize = 100
	// DefaultStreamInterval is the pause when no shard has records.
	DefaultStreamInterval = 200 * time.Millisecond
	// DefaultStreamBackoff is the pause before the first retry of a
	// failed batch; it doubles with each further failure of the same
	// record, up to maxStreamBackoff.
	DefaultStreamBackoff = 500 * time.Millisecond

	maxStreamBackoff = 10 * time.Second
	// maxStreamPayload is Lambda's limit on an invocation's payload, which
	// caps a batch as it does in AWS.
	maxStreamPayload = 6 << 20
	// maxGetRecords is the most records one GetRecords returns.
	maxGetRecords = 1000
	// shardRefresh is how often the stream's shards are listed again.
	shardRefresh = time.Second
	// phantomHold is how long a keys-only INSERT waits for the record
	// that would show it to be moto's (see settle).
	phantomHold = time.Second
)

// StreamPoller feeds a handler from a DynamoDB stream the way Lambda's
// DynamoDB event source does with ReportBatchItemFailures: each shard is
// read from its oldest record (TRIM_HORIZON: on the local stack, every
// change since `make dev` provisioned the table) in order, a child shard
// after its parent; batches of up to BatchSize records of one shard
// (and at most 6 MB, Lambda's payload limit), as the JSON Lambda
// delivers; a batch item failure retries the shard from the record it
// names (those before it are done), a handler error or a response naming
// no record of the batch retries the whole batch, after a backoff that
// doubles with each retry. As with Lambda's default (no
// MaximumRetryAttempts), a record is retried until it succeeds: one
// that always fails holds up its shard, which the log shows.
//
// moto records an UpdateItem that creates an item as two INSERTs, the
// first of the bare keys; the poller drops that one (see settle), so the
// handler sees the one INSERT DynamoDB would give.
//
// A StreamPoller keeps its position in memory: it serves one Run (or
// PollOnce at a time), and a new one starts again from each shard's
// oldest record.
type StreamPoller struct {
	Streams   StreamsAPI
	StreamARN string
	Handler   lambda.Handler
	// BatchSize is the most records of one invocation; default
	// DefaultStreamBatchSize (100).
	BatchSize int
	// Interval is Run's pause when no shard has records; default
	// DefaultStreamInterval (200 ms).
	Interval time.Duration
	// Backoff is the pause before the first retry of a failed batch;
	// default DefaultStreamBackoff.
	Backoff time.Duration
	Log     *slog.Logger

	shards      map[string]*streamShard
	order       []string // shard ids, as DescribeStream first listed them
	described   time.Time
	rescan      bool // a shard closed: its children may be listed
	invocations int
}

// streamShard is the poller's position in one shard.
type streamShard struct {
	id, parent string
	iterator   *string // the next GetRecords; nil before the first, or once the shard is closed
	opened     bool
	closed     bool         // the shard has no more records to read
	lastRead   string       // sequence number of the last record read
	pending    []streamItem // read, not yet done, in order
	failures   int          // consecutive failed invocations
	retryAt    time.Time
}

// streamItem is a record read from the stream, converted.
type streamItem struct {
	record events.DynamoDBEventRecord
	size   int // its JSON's
	// keys identifies the item changed; keysOnly marks an INSERT whose
	// new image holds nothing but the keys (see settle).
	keys     string
	keysOnly bool
	readAt   time.Time
}

// done reports whether every record of the shard was delivered.
func (s *streamShard) done() bool { return s.closed && len(s.pending) == 0 }

// StreamBatchResult is what one PollOnce did.
type StreamBatchResult struct {
	// Invocations counts the handler's invocations, Delivered the records
	// they completed, Retried those of their batches left to retry.
	Invocations, Delivered, Retried int
}

// PollOnce lists the stream's shards when due, then, for each shard ready
// to be read (not waiting on a retry's backoff, its parent done), reads
// records and invokes the handler once with the shard's next batch.
func (p *StreamPoller) PollOnce(ctx context.Context) (StreamBatchResult, error) {
	var res StreamBatchResult
	if p.shards == nil || p.rescan || time.Since(p.described) >= shardRefresh {
		if err := p.describe(ctx); err != nil {
			return res, err
		}
	}
	var errs []error
	for _, id := range p.order {
		s := p.shards[id]
		if s.done() || time.Now().Before(s.retryAt) || !p.parentDone(s) {
			continue
		}
		if err := p.read(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", s.id, err))
			continue
		}
		batch := p.batch(s)
		if len(batch.Records) == 0 {
			continue
		}
		delivered := p.invoke(ctx, s, batch)
		res.Invocations++
		res.Delivered += delivered
		res.Retried += len(batch.Records) - delivered
	}
	return res, errors.Join(errs...)
}

// parentDone reports whether s may be read: its parent, if the stream
// still lists it, has had all its records delivered.
func (p *StreamPoller) parentDone(s *streamShard) bool {
	parent, ok := p.shards[s.parent]
	return s.parent == "" || !ok || parent.done()
}

// describe adds the shards the stream lists that the poller does not know.
func (p *StreamPoller) describe(ctx context.Context) error {
	if p.shards == nil {
		p.shards = map[string]*streamShard{}
	}
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.StreamARN)}
	for {
		out, err := p.Streams.DescribeStream(ctx, in)
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", p.StreamARN, err)
		}
		for _, sh := range out.StreamDescription.Shards {
			id := aws.ToString(sh.ShardId)
			if _, ok := p.shards[id]; ok || id == "" {
				continue
			}
			p.shards[id] = &streamShard{id: id, parent: aws.ToString(sh.ParentShardId)}
			p.order = append(p.order, id)
			p.log().DebugContext(ctx, "streampoller.shard", "shardId", id, "parentShardId", aws.ToString(sh.ParentShardId))
		}
		if out.StreamDescription.LastEvaluatedShardId == nil {
			break
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
	p.described, p.rescan = time.Now(), false
	return nil
}

// read tops up the shard's pending records to a batch with one
// GetRecords, unless the shard is closed.
func (p *StreamPoller) read(ctx context.Context, s *streamShard) error {
	want := p.batchSize() - len(s.pending)
	if held(s.pending) {
		// The record that would settle it may be next.
		want = max(want, 10)
	}
	if want <= 0 || s.closed {
		return nil
	}
	if !s.opened {
		if err := p.open(ctx, s, types.ShardIteratorTypeTrimHorizon, ""); err != nil {
			return err
		}
	}
	out, err := p.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: s.iterator, Limit: aws.Int32(int32(min(want, maxGetRecords)))})
	var expired *types.ExpiredIteratorException
	var trimmed *types.TrimmedDataAccessException
	switch {
	case errors.As(err, &expired):
		// Iterators last 15 minutes: a new one from the last record read.
		if s.lastRead == "" {
			return p.open(ctx, s, types.ShardIteratorTypeTrimHorizon, "")
		}
		return p.open(ctx, s, types.ShardIteratorTypeAfterSequenceNumber, s.lastRead)
	case errors.As(err, &trimmed):
		// Records older than 24 hours are gone, as Lambda would lose them.
		p.log().WarnContext(ctx, "streampoller.records_trimmed", "shardId", s.id, "afterSequenceNumber", s.lastRead)
		return p.open(ctx, s, types.ShardIteratorTypeTrimHorizon, "")
	case err != nil:
		return fmt.Errorf("get records: %w", err)
	}
	for _, r := range out.Records {
		rec := streamlambda.FromStream(p.StreamARN, r)
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("record %s: %w", rec.Change.SequenceNumber, err)
		}
		keys, _ := json.Marshal(rec.Change.Keys) // map keys sorted: one string per item
		s.pending = append(s.pending, streamItem{record: rec, size: len(b), keys: string(keys), keysOnly: keysOnlyInsert(rec), readAt: time.Now()})
		s.lastRead = rec.Change.SequenceNumber
	}
	p.settle(ctx, s)
	s.iterator = out.NextShardIterator
	if s.iterator == nil {
		s.closed, p.rescan = true, true
		p.log().DebugContext(ctx, "streampoller.shard_closed", "shardId", s.id)
	}
	return nil
}

// settle drops the records moto makes up: an UpdateItem that creates an
// item gives, on moto, an INSERT of the bare keys followed by the INSERT
// of the item, where DynamoDB gives the second alone. A keys-only INSERT
// followed by another INSERT of the same item (impossible in DynamoDB
// without a REMOVE between) is dropped; one followed by nothing yet is
// held back, with the records after it, for up to phantomHold (see
// batch), in case the second is still to be read.
func (p *StreamPoller) settle(ctx context.Context, s *streamShard) {
	kept := s.pending[:0]
	for i, it := range s.pending {
		if it.keysOnly {
			if next := nextOf(s.pending[i+1:], it.keys); next != nil && next.record.EventName == string(events.DynamoDBOperationTypeInsert) {
				p.log().DebugContext(ctx, "streampoller.phantom_insert_dropped", "shardId", s.id, "sequenceNumber", it.record.Change.SequenceNumber)
				continue
			}
		}
		kept = append(kept, it)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
}

// held reports whether a keys-only INSERT among items has no record of
// its item after it.
func held(items []streamItem) bool {
	for i, it := range items {
		if it.keysOnly && nextOf(items[i+1:], it.keys) == nil {
			return true
		}
	}
	return false
}

// nextOf returns the first of items that changed the item keys, or nil.
func nextOf(items []streamItem, keys string) *streamItem {
	for i := range items {
		if items[i].keys == keys {
			return &items[i]
		}
	}
	return nil
}

// keysOnlyInsert reports whether rec inserts an item of its keys alone.
func keysOnlyInsert(rec events.DynamoDBEventRecord) bool {
	c := rec.Change
	if rec.EventName != string(events.DynamoDBOperationTypeInsert) || len(c.NewImage) != len(c.Keys) {
		return false
	}
	for k := range c.Keys {
		if _, ok := c.NewImage[k]; !ok {
			return false
		}
	}
	return true
}

// open gets the shard an iterator of the given type.
func (p *StreamPoller) open(ctx context.Context, s *streamShard, typ types.ShardIteratorType, seq string) error {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.StreamARN), ShardId: aws.String(s.id), ShardIteratorType: typ}
	if seq != "" {
		in.SequenceNumber = aws.String(seq)
	}
	out, err := p.Streams.GetShardIterator(ctx, in)
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) && s.opened {
		// The shard is gone (trimmed, past 24 hours): nothing more to read.
		s.iterator, s.closed, p.rescan = nil, true, true
		return nil
	}
	if err != nil {
		return fmt.Errorf("shard iterator: %w", err)
	}
	s.iterator, s.opened = out.ShardIterator, true
	if s.iterator == nil {
		s.closed = true
	}
	return nil
}

// invoke calls the handler with the shard's next batch and drops the
// records done from its pending ones; it returns how many.
func (p *StreamPoller) invoke(ctx context.Context, s *streamShard, batch events.DynamoDBEvent) int {
	first, last := batch.Records[0].Change.SequenceNumber, batch.Records[len(batch.Records)-1].Change.SequenceNumber
	doneCount, err := p.call(ctx, batch)
	if err == nil {
		s.pending, s.failures, s.retryAt = s.pending[doneCount:], 0, time.Time{}
		return doneCount
	}
	s.pending = s.pending[doneCount:]
	if doneCount > 0 {
		s.failures = 0 // progress: the backoff starts again
	}
	wait := min(p.backoff()<<min(s.failures, 16), maxStreamBackoff)
	s.failures++
	s.retryAt = time.Now().Add(wait)
	p.log().ErrorContext(ctx, "streampoller.batch_failed", "shardId", s.id, "error", err.Error(),
		"records", len(batch.Records), "firstSequenceNumber", first, "lastSequenceNumber", last, "done", doneCount,
		"retryFrom", s.pending[0].record.Change.SequenceNumber, "attempt", s.failures, "retryIn", wait.String())
	return doneCount
}

// batch is the event of the shard's next records: up to BatchSize of
// them, within Lambda's payload limit (always one at least), up to a
// keys-only INSERT that settle holds back.
func (p *StreamPoller) batch(s *streamShard) events.DynamoDBEvent {
	var ev events.DynamoDBEvent
	size := len(`{"Records":[]}`)
	for i, it := range s.pending {
		if len(ev.Records) == p.batchSize() || len(ev.Records) > 0 && size+it.size+1 > maxStreamPayload {
			break
		}
		if it.keysOnly && !s.closed && time.Since(it.readAt) < phantomHold && nextOf(s.pending[i+1:], it.keys) == nil {
			break
		}
		ev.Records = append(ev.Records, it.record)
		size += it.size + 1
	}
	return ev
}

// call invokes the handler with batch and returns how many of its
// records, from the first, are done; an error says why the rest are not.
func (p *StreamPoller) call(ctx context.Context, batch events.DynamoDBEvent) (int, error) {
	p.invocations++
	return streamlambda.Invoke(ctx, p.Handler, fmt.Sprintf("dev-ddb-%d-%d", time.Now().UnixNano(), p.invocations), batch.Records)
}

func (p *StreamPoller) batchSize() int {
	if p.BatchSize > 0 {
		return p.BatchSize
	}
	return DefaultStreamBatchSize
}

func (p *StreamPoller) backoff() time.Duration {
	if p.Backoff > 0 {
		return p.Backoff
	}
	return DefaultStreamBackoff
}

func (p *StreamPoller) log() *slog.Logger { return logging.OrDiscard(p.Log) }

// Run polls until ctx ends: at once again after a batch, after Interval
// when no shard had records, after a second after an error.
func (p *StreamPoller) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultStreamInterval
	}
	for ctx.Err() == nil {
		res, err := p.PollOnce(ctx)
		wait := interval
		switch {
		case err != nil && ctx.Err() == nil:
			p.log().ErrorContext(ctx, "streampoller.error", "stream", p.StreamARN, "error", err.Error())
			wait = time.Second
		case res.Delivered > 0:
			continue
		}
		_ = resend.Sleep(ctx, wait) // ctx's end ends the loop
	}
}
