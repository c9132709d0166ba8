package firehosearchive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/firehosearchive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

var _ processor.Archiver = (*firehosearchive.Writer)(nil)

// fakeFirehose records the calls it gets, decoding each record back to its
// entry's EventID, and answers them with answer.
type fakeFirehose struct {
	// answer returns, for call number call (0 for the first), the
	// ErrorCode of each record ("" to accept it), or an error for the call.
	answer func(call int, ids []string) ([]string, error)
	// cancel, if set, is called during the first call.
	cancel context.CancelFunc

	mu       sync.Mutex
	calls    [][]string     // EventIDs of each call's records
	sizes    []int          // bytes of data in each call
	records  map[string]int // bytes of each EventID's record
	accepted map[string]int
}

func (f *fakeFirehose) PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.DeliveryStreamName) != "archive" {
		return nil, fmt.Errorf("stream %q", aws.ToString(in.DeliveryStreamName))
	}
	var ids []string
	size := 0
	for _, r := range in.Records {
		size += len(r.Data)
		var n int
		err := archive.Read(bytes.NewReader(r.Data), func(e archive.Entry) error {
			ids = append(ids, e.EventID)
			n++
			return nil
		})
		if err != nil || n != 1 {
			return nil, fmt.Errorf("record of %d entries: %v", n, err)
		}
		f.records[ids[len(ids)-1]] = len(r.Data)
	}
	call := len(f.calls)
	f.calls = append(f.calls, ids)
	f.sizes = append(f.sizes, size)
	if call == 0 && f.cancel != nil {
		f.cancel()
	}
	codes, err := f.answer(call, ids)
	if err != nil {
		return nil, err
	}
	out := &firehose.PutRecordBatchOutput{FailedPutCount: aws.Int32(0)}
	for i, id := range ids {
		var code string
		if i < len(codes) {
			code = codes[i]
		}
		switch code {
		case "":
			f.accepted[id]++
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{RecordId: aws.String(fmt.Sprintf("r-%d-%d", call, i))})
		case "-": // neither accepted nor refused
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{})
		default:
			*out.FailedPutCount++
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{
				ErrorCode: aws.String(code), ErrorMessage: aws.String("Slow down."),
			})
		}
	}
	if call == 0 && len(ids) > 0 && ids[0] == "short-answer" {
		out.RequestResponses = out.RequestResponses[:len(ids)-1]
	}
	return out, nil
}

// refuse answers with code for the records of ids, on calls before until.
func refuse(code string, until int, refused ...string) func(int, []string) ([]string, error) {
	return func(call int, ids []string) ([]string, error) {
		codes := make([]string, len(ids))
		for i, id := range ids {
			if call < until && slices.Contains(refused, id) {
				codes[i] = code
			}
		}
		return codes, nil
	}
}

func acceptAll(int, []string) ([]string, error) { return nil, nil }

// entries returns n entries with ids e-0, e-1, ... and small bodies.
func entries(n int) []archive.Entry {
	out := make([]archive.Entry, n)
	for i := range out {
		out[i] = archive.Entry{EventID: fmt.Sprintf("e-%d", i), EventType: "VEHICLE_STATE", VehicleID: "v-1",
			ReceivedAt: time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), MessageID: fmt.Sprintf("m-%d", i),
			Body: fmt.Appendf(nil, `{"eventId":"e-%d"}`, i)}
	}
	return out
}

// noise returns n bytes that do not compress.
func noise(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// large returns n entries each encoding to about size bytes.
func large(n, size int) []archive.Entry {
	out := entries(n)
	for i := range out {
		out[i].Body = noise(uint64(i), size) // base64 in the line, which gzip brings back to about its raw size
	}
	return out
}

func TestArchive(t *testing.T) {
	t.Parallel() // each spends seconds encoding under the race detector
	const unavailable = "ServiceUnavailableException"
	tooLarge := large(3, 100<<10)
	tooLarge[1].Body = noise(99, 1100<<10)
	// The fake answers the first call of "short-answer" with a response
	// too few.
	short := entries(2)
	short[0].EventID = "short-answer"
	shortErr := contains("1 responses for 2 records")
	tests := []struct {
		name    string
		entries []archive.Entry
		answer  func(int, []string) ([]string, error)
		cancel  string // "before": ctx cancelled before Archive; "during": during the first call
		opts    []firehosearchive.Option
		// wantCalls are the EventIDs sent in each call.
		wantCalls [][]string
		// wantErr maps EventIDs to a check of their error; the others
		// must be nil.
		wantErr map[string]func(error) bool
	}{
		{
			name: "all accepted", entries: entries(3), answer: acceptAll,
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
		},
		{
			name: "partial failure recovered on retry", entries: entries(4),
			answer:    refuse(unavailable, 1, "e-1", "e-3"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2", "e-3"}, {"e-1", "e-3"}},
		},
		{
			name: "partial failure recovered on the last attempt", entries: entries(3),
			answer:    refuse("InternalFailure", 2, "e-2"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}, {"e-2"}, {"e-2"}},
		},
		{
			name: "persistent partial failure fails exactly those entries", entries: entries(4),
			answer:    refuse(unavailable, 99, "e-0", "e-2"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2", "e-3"}, {"e-0", "e-2"}, {"e-0", "e-2"}},
			wantErr: map[string]func(error) bool{
				"e-0": isRecordError(unavailable, 3),
				"e-2": isRecordError(unavailable, 3),
			},
		},
		{
			name: "one attempt: no resend", entries: entries(2), opts: []firehosearchive.Option{firehosearchive.WithAttempts(1)},
			answer:    refuse(unavailable, 99, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1"}},
			wantErr:   map[string]func(error) bool{"e-1": isRecordError(unavailable, 1)},
		},
		{
			name: "record neither accepted nor refused is resent", entries: entries(2),
			answer:    refuse("-", 1, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1"}, {"e-1"}},
		},
		{
			name: "whole-call error fails the call's entries", entries: entries(3),
			answer: func(int, []string) ([]string, error) {
				return nil, &types.ServiceUnavailableException{Message: aws.String("Slow down.")}
			},
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			wantErr: map[string]func(error) bool{
				"e-0": isServiceUnavailable, "e-1": isServiceUnavailable, "e-2": isServiceUnavailable,
			},
		},
		{
			name: "answer without a response per record fails them all", entries: short, answer: acceptAll,
			wantCalls: [][]string{{"short-answer", "e-1"}},
			wantErr:   map[string]func(error) bool{"short-answer": shortErr, "e-1": shortErr},
		},
		{
			// Encoding is slow under the race detector: one case of more
			// than 500 entries.
			name: "chunks of 500 records, a whole-call error fails only its chunk", entries: entries(501),
			answer: func(call int, _ []string) ([]string, error) {
				if call == 1 {
					return nil, errors.New("connection reset")
				}
				return nil, nil
			},
			wantCalls: [][]string{ids(0, 500), {"e-500"}},
			wantErr:   map[string]func(error) bool{"e-500": contains("connection reset")},
		},
		{
			name: "encode error isolated", entries: tooLarge, answer: acceptAll,
			wantCalls: [][]string{{"e-0", "e-2"}},
			wantErr:   map[string]func(error) bool{"e-1": func(err error) bool { return errors.Is(err, archive.ErrTooLarge) }},
		},
		{
			name: "ctx cancelled before", entries: entries(2), answer: acceptAll, cancel: "before",
			wantErr: map[string]func(error) bool{"e-0": isCanceled, "e-1": isCanceled},
		},
		{
			name: "ctx cancelled before a resend", entries: entries(3), cancel: "during",
			answer:    refuse(unavailable, 99, "e-1"),
			wantCalls: [][]string{{"e-0", "e-1", "e-2"}},
			wantErr: map[string]func(error) bool{"e-1": func(err error) bool {
				return isCanceled(err) && isRecordError(unavailable, 1)(err)
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &fakeFirehose{answer: tt.answer, accepted: map[string]int{}, records: map[string]int{}}
			switch tt.cancel {
			case "before":
				cancel()
			case "during":
				f.cancel = cancel
			}
			// An hour's backoff: only a cancelled ctx ends it in time.
			backoff := time.Millisecond
			if tt.cancel == "during" {
				backoff = time.Hour
			}
			w := firehosearchive.New(f, "archive", append([]firehosearchive.Option{firehosearchive.WithBackoff(backoff)}, tt.opts...)...)
			start := time.Now()
			errs := w.Archive(ctx, tt.entries)
			if d := time.Since(start); tt.cancel != "" && d > 5*time.Second {
				t.Errorf("Archive took %v after ctx was cancelled", d)
			}
			if len(errs) != len(tt.entries) {
				t.Fatalf("%d errors for %d entries", len(errs), len(tt.entries))
			}
			if !slices.EqualFunc(f.calls, tt.wantCalls, slices.Equal) {
				t.Errorf("calls:\n got %.300v\nwant %.300v", f.calls, tt.wantCalls)
			}
			for i, e := range tt.entries {
				check := tt.wantErr[e.EventID]
				switch {
				case check == nil && errs[i] != nil:
					t.Errorf("%s: %v, want stored", e.EventID, errs[i])
				case check != nil && (errs[i] == nil || !check(errs[i])):
					t.Errorf("%s: error %v, not the one expected", e.EventID, errs[i])
				}
				// Never nil for an entry Firehose did not accept.
				if errs[i] == nil && f.accepted[e.EventID] != 1 {
					t.Errorf("%s: reported stored, accepted %d times", e.EventID, f.accepted[e.EventID])
				}
			}
		})
	}
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("e-%d", i))
	}
	return out
}

func isRecordError(code string, attempts int) func(error) bool {
	return func(err error) bool {
		var re *firehosearchive.RecordError
		return errors.As(err, &re) && re.Code == code && re.Attempts == attempts &&
			strings.Contains(err.Error(), code) && strings.Contains(err.Error(), "Slow down.")
	}
}

func isServiceUnavailable(err error) bool {
	var su *types.ServiceUnavailableException
	return errors.As(err, &su)
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

func contains(s string) func(error) bool {
	return func(err error) bool { return strings.Contains(err.Error(), s) }
}

// TestArchiveChunksAt4MiB sends entries of about 900 KiB: each call holds
// as many as fit in 4 MiB, and no more.
func TestArchiveChunksAt4MiB(t *testing.T) {
	t.Parallel() // each spends seconds encoding under the race detector
	const n = 5
	f := &fakeFirehose{answer: acceptAll, accepted: map[string]int{}, records: map[string]int{}}
	errs := firehosearchive.New(f, "archive").Archive(context.Background(), large(n, 900<<10))
	for i, err := range errs {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	if len(f.calls) != 2 {
		t.Fatalf("%d calls for %d bytes, want 2", len(f.calls), n*900<<10)
	}
	var sent []string
	for i, call := range f.calls {
		sent = append(sent, call...)
		if f.sizes[i] > firehosearchive.MaxBatchBytes {
			t.Errorf("call %d: %d bytes, over %d", i, f.sizes[i], firehosearchive.MaxBatchBytes)
		}
		// The next entry did not fit.
		if i+1 < len(f.calls) {
			if next := f.records[f.calls[i+1][0]]; f.sizes[i]+next <= firehosearchive.MaxBatchBytes {
				t.Errorf("call %d: %d bytes, and the next entry of %d bytes would have fit", i, f.sizes[i], next)
			}
		}
	}
	if !slices.Equal(sent, ids(0, n)) {
		t.Errorf("sent %v, want every entry once, in order", sent)
	}
}

// firehoseKey is the key Firehose gives an object under the prefix raw/.
var firehoseKey = regexp.MustCompile(`^raw/\d{4}/\d\d/\d\d/\d\d/[A-Za-z0-9_.-]+-\d+-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}$`)

// TestArchiveThroughMoto archives entries to a delivery stream of the
// emulator, through the strict layer, and reads them back from its bucket
// byte for byte: more than 4 MiB of them, so in two calls, two objects.
func TestArchiveThroughMoto(t *testing.T) {
	t.Parallel() // each spends seconds encoding under the race detector
	ctx := context.Background()
	cfg := awstest.Config(t)
	bucket := strings.ReplaceAll(strings.ToLower(awstest.Name(t, "archive")), "_", "-")
	stream := awstest.Name(t, "archive")
	s3c := s3.NewFromConfig(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	fh := firehose.NewFromConfig(cfg)
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String(stream),
		DeliveryStreamType: types.DeliveryStreamTypeDirectPut,
		ExtendedS3DestinationConfiguration: &types.ExtendedS3DestinationConfiguration{
			BucketARN:         aws.String("arn:aws:s3:::" + bucket),
			RoleARN:           aws.String("arn:aws:iam::123456789012:role/firehose"),
			Prefix:            aws.String(pipeline.ArchivePrefix),
			CompressionFormat: types.CompressionFormatUncompressed,
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	in := large(5, 900<<10) // 4.4 MiB
	for i := range in {
		in[i].EventID = fmt.Sprintf("large-%d", i)
	}
	text := entries(3)
	text[0].Body = []byte("{\"s\":\"\u2028 ünïcode \U0001F600\",\"v\":12.50,\"n\":9007199254740993}\n")
	text[1].Body = []byte{0xff, 0xfe, 0, 1, '\n'} // not UTF-8
	text[2].Body = nil
	text[2].DeliveredAt = 1795000000123
	in = append(in, text...)
	for i := range in {
		in[i].ReceivedAt = now.Add(time.Duration(i) * time.Nanosecond)
	}

	for i, err := range firehosearchive.New(fh, stream).Archive(ctx, in) {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	got := map[string]archive.Entry{}
	keys := map[string]bool{}
	stats, err := s3archive.New(s3c, bucket).Scan(ctx, now.Add(-time.Hour), now.Add(time.Hour), func(key string, e archive.Entry) error {
		if _, dup := got[e.EventID]; dup {
			t.Errorf("%s read twice", e.EventID)
		}
		got[e.EventID] = e
		keys[key] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Objects != 2 || stats.Entries != len(in) || len(keys) != 2 {
		t.Errorf("read %+v from %d keys, want %d entries in 2 objects (one per call)", stats, len(keys), len(in))
	}
	for key := range keys {
		if !firehoseKey.MatchString(key) || !strings.Contains(key, "/"+stream+"-") {
			t.Errorf("object %s, not where Firehose writes", key)
		}
	}
	for _, want := range in {
		e, ok := got[want.EventID]
		switch {
		case !ok:
			t.Errorf("%s not read back", want.EventID)
		case !bytes.Equal(e.Body, want.Body):
			t.Errorf("%s: body %.80q, want %.80q", want.EventID, e.Body, want.Body)
		case e.EventType != want.EventType || e.VehicleID != want.VehicleID || e.MessageID != want.MessageID ||
			e.DeliveredAt != want.DeliveredAt || !e.ReceivedAt.Equal(want.ReceivedAt):
			t.Errorf("%s: read %+v, want %+v", want.EventID, e, want)
		}
	}
}
