// Package firehosearchive is the Amazon Data Firehose adapter of the
// processor's Archiver: it encodes archive entries (archive.Encode) and
// puts them, one record each, to a DirectPut delivery stream, which writes
// them to the archive bucket under pipeline.ArchivePrefix.
//
// An entry is reported stored only once Firehose accepted its record:
// records refused within an accepted call (FailedPutCount > 0) are sent
// again, only those, a few times with a short jittered backoff; whatever
// is still refused, or was in a call that failed whole, fails its entry.
// A record sent twice (accepted, but the answer lost) is archived twice:
// readers of the archive tolerate duplicates.
package firehosearchive

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
)

// Firehose's PutRecordBatch limits, which cannot be raised. A record may
// take archive.MaxEncodedBytes, which Encode enforces.
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 4 << 20 // the records' data, before base64
)

// PutRecordBatchAPI is the part of the Firehose client the Writer uses.
type PutRecordBatchAPI interface {
	PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, optFns ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error)
}

// Writer puts archive entries to one delivery stream. It implements
// processor.Archiver and is safe for concurrent use.
type Writer struct {
	api    PutRecordBatchAPI
	stream string
	resend resend.Policy
}

// New returns a Writer to the delivery stream named stream. Records
// Firehose refuses are resent as opts say (resend.WithAttempts,
// resend.WithBackoff).
func New(api PutRecordBatchAPI, stream string, opts ...resend.Option) *Writer {
	return &Writer{api: api, stream: stream, resend: resend.NewPolicy("firehose", nil, opts...)}
}

// Stream names the delivery stream.
func (w *Writer) Stream() string { return w.stream }

// RecordError is the error of an entry whose record Firehose refused on
// every attempt: the ErrorCode and ErrorMessage of its last refusal.
type RecordError = resend.Error

// record is an encoded entry on its way, with its index in Archive's
// entries.
type record struct {
	index int
	data  []byte
}

// Archive puts entries to the stream and returns one error per entry: nil
// once Firehose accepted its record. An entry Encode refuses is not sent
// and fails alone. The records go in calls of at most MaxBatchRecords and
// MaxBatchBytes, one call at a time, in order; a call that fails whole
// (after the SDK's own retries) fails its entries, and a record refused
// in every attempt fails its entry with a *RecordError.
func (w *Writer) Archive(ctx context.Context, entries []archive.Entry) []error {
	errs := make([]error, len(entries))
	var batch []record
	size := 0
	flush := func() {
		if len(batch) > 0 {
			w.put(ctx, batch, errs)
		}
		batch, size = nil, 0
	}
	for i, e := range entries {
		data, err := archive.Encode(e)
		if err != nil {
			errs[i] = err
			continue
		}
		if len(batch) == MaxBatchRecords || size+len(data) > MaxBatchBytes {
			flush()
		}
		batch = append(batch, record{index: i, data: data})
		size += len(data)
	}
	flush()
	return errs
}

// put sends one batch, resending what was refused (resend.Send).
func (w *Writer) put(ctx context.Context, batch []record, errs []error) {
	resend.Send(ctx, w.resend, batch, func(b record) int { return b.index }, errs, w.send)
}

// send makes one PutRecordBatch call and returns the records refused; an
// error means none was accepted, as far as is known.
func (w *Writer) send(ctx context.Context, records []record) ([]resend.Refusal, error) {
	in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(w.stream), Records: make([]types.Record, len(records))}
	for i, r := range records {
		in.Records[i] = types.Record{Data: r.data}
	}
	out, err := w.api.PutRecordBatch(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("firehose put record batch: %w", err)
	}
	if len(out.RequestResponses) != len(records) {
		return nil, fmt.Errorf("firehose put record batch: %d responses for %d records", len(out.RequestResponses), len(records))
	}
	answers := make([]resend.Answer, len(out.RequestResponses))
	for i, r := range out.RequestResponses {
		answers[i] = resend.Answer{ID: aws.ToString(r.RecordId), Code: aws.ToString(r.ErrorCode), Message: aws.ToString(r.ErrorMessage)}
	}
	return resend.Refusals(answers, "MissingRecordId"), nil
}
