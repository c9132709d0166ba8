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
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/resend/resendtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

var _ processor.Archiver = (*firehosearchive.Writer)(nil)

// fakeFirehose is Firehose's PutRecordBatch over a resendtest.Service,
// which answers each call and records it by each record's entry's EventID.
type fakeFirehose struct {
	svc *resendtest.Service

	mu      sync.Mutex
	sizes   []int          // bytes of data in each call
	records map[string]int // bytes of each EventID's record
}

func newFake(svc *resendtest.Service) *fakeFirehose {
	return &fakeFirehose{svc: svc, records: map[string]int{}}
}

func (f *fakeFirehose) PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	if aws.ToString(in.DeliveryStreamName) != "archive" {
		return nil, fmt.Errorf("stream %q", aws.ToString(in.DeliveryStreamName))
	}
	var ids []string
	size := 0
	f.mu.Lock()
	for _, r := range in.Records {
		size += len(r.Data)
		var n int
		err := archive.Read(bytes.NewReader(r.Data), func(e archive.Entry) error {
			ids = append(ids, e.EventID)
			n++
			return nil
		})
		if err != nil || n != 1 {
			f.mu.Unlock()
			return nil, fmt.Errorf("record of %d entries: %v", n, err)
		}
		f.records[ids[len(ids)-1]] = len(r.Data)
	}
	f.sizes = append(f.sizes, size)
	f.mu.Unlock()
	codes, short, err := f.svc.Call(ids)
	if err != nil {
		return nil, err
	}
	out := &firehose.PutRecordBatchOutput{FailedPutCount: aws.Int32(0)}
	for i, code := range codes {
		switch code {
		case "":
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{RecordId: aws.String("r-" + ids[i])})
		case resendtest.Neither:
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{})
		default:
			*out.FailedPutCount++
			out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{
				ErrorCode: aws.String(code), ErrorMessage: aws.String(resendtest.Message),
			})
		}
	}
	if short {
		out.RequestResponses = out.RequestResponses[:len(ids)-1]
	}
	return out, nil
}

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

// writer is the Writer under the resend contract, over a fake of
// Firehose.
var writer = resendtest.Adapter[archive.Entry]{
	ID:      func(e archive.Entry) string { return e.EventID },
	Entries: entries,
	Send: func(ctx context.Context, svc *resendtest.Service, opts []resend.Option, entries []archive.Entry) []error {
		return firehosearchive.New(newFake(svc), "archive", opts...).Archive(ctx, entries)
	},
	Retryable:  "ServiceUnavailableException",
	Missing:    "MissingRecordId",
	CallError:  &types.ServiceUnavailableException{Message: aws.String("Slow down.")},
	ShortError: "1 responses for 2 records",
}

func TestArchiveContract(t *testing.T) { resendtest.Contract(t, writer) }

// TestArchive: what Firehose's own rules ask beyond the contract: calls of
// at most 500 records, and an entry that cannot be encoded failing alone.
func TestArchive(t *testing.T) {
	t.Parallel() // each spends seconds encoding under the race detector
	tooLarge := large(3, 100<<10)
	tooLarge[1].Body = noise(99, 1100<<10)
	resendtest.Run(t, writer, []resendtest.Case[archive.Entry]{
		{
			// Encoding is slow under the race detector: one case of more
			// than 500 entries.
			Name: "chunks of 500 records, a whole-call error fails only its chunk", Entries: entries(501),
			Answer: func(call int, _ []string) ([]string, error) {
				if call == 1 {
					return nil, errors.New("connection reset")
				}
				return nil, nil
			},
			WantCalls: [][]string{resendtest.IDs(0, 500), {"e-500"}},
			WantErr:   map[string]func(error) bool{"e-500": resendtest.Contains("connection reset")},
		},
		{
			Name: "encode error isolated", Entries: tooLarge, Answer: resendtest.AcceptAll,
			WantCalls: [][]string{{"e-0", "e-2"}},
			WantErr:   map[string]func(error) bool{"e-1": resendtest.IsError(archive.ErrTooLarge)},
		},
	})
}

// TestArchiveChunksAt4MiB sends entries of about 900 KiB: each call holds
// as many as fit in 4 MiB, and no more.
func TestArchiveChunksAt4MiB(t *testing.T) {
	t.Parallel() // each spends seconds encoding under the race detector
	const n = 5
	f := newFake(resendtest.NewService(resendtest.AcceptAll))
	errs := firehosearchive.New(f, "archive").Archive(context.Background(), large(n, 900<<10))
	for i, err := range errs {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	calls := f.svc.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls for %d bytes, want 2", len(calls), n*900<<10)
	}
	var sent []string
	for i, call := range calls {
		sent = append(sent, call...)
		if f.sizes[i] > firehosearchive.MaxBatchBytes {
			t.Errorf("call %d: %d bytes, over %d", i, f.sizes[i], firehosearchive.MaxBatchBytes)
		}
		// The next entry did not fit.
		if i+1 < len(calls) {
			if next := f.records[calls[i+1][0]]; f.sizes[i]+next <= firehosearchive.MaxBatchBytes {
				t.Errorf("call %d: %d bytes, and the next entry of %d bytes would have fit", i, f.sizes[i], next)
			}
		}
	}
	if !slices.Equal(sent, resendtest.IDs(0, n)) {
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
