package s3archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

var hour = time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)

// entry returns an archived webhook received at.
func entry(id string, at time.Time) archive.Entry {
	return archive.Entry{EventID: id, EventType: "VEHICLE_STATE", VehicleID: "v-1", DeliveredAt: 1795000000123,
		ReceivedAt: at, MessageID: "m-" + id, Body: fmt.Appendf(nil, `{"eventId":%q,"data":{"v":12.50}}`, id)}
}

// object returns the entries encoded as Firehose writes them: one gzip
// member each, concatenated.
func object(t *testing.T, entries ...archive.Entry) []byte {
	t.Helper()
	var b []byte
	for _, e := range entries {
		data, err := archive.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	return b
}

// key returns the key Firehose gives an object it writes at: its hour's
// partition, and a name that sorts by time.
func key(at time.Time, n int) string {
	return fmt.Sprintf("raw/%sarchive-1-%s-%04d", archive.Partition(at), at.UTC().Format("2006-01-02-15-04-05"), n)
}

// countingS3 counts the ListObjectsV2 calls made through it.
type countingS3 struct {
	s3archive.API
	lists atomic.Int64
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.lists.Add(1)
	return c.API.ListObjectsV2(ctx, in, optFns...)
}

// newBucket returns a client of the emulator and a new bucket.
func newBucket(t *testing.T) (*s3.Client, string) {
	t.Helper()
	client := s3.NewFromConfig(awstest.Config(t))
	bucket := strings.ReplaceAll(strings.ToLower(awstest.Name(t, "archive")), "_", "-")
	bucket = bucket[:min(len(bucket), 63)]
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return client, bucket
}

func put(t *testing.T, client *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
}

// read is an entry as Scan hands it over.
type read struct {
	key   string
	entry archive.Entry
}

func equal(a, b archive.Entry) bool {
	return a.EventID == b.EventID && a.EventType == b.EventType && a.VehicleID == b.VehicleID &&
		a.DeliveredAt == b.DeliveredAt && a.ReceivedAt.Equal(b.ReceivedAt) && a.MessageID == b.MessageID &&
		bytes.Equal(a.Body, b.Body)
}

func TestScan(t *testing.T) {
	ctx := context.Background()
	client, bucket := newBucket(t)
	binary := entry("e-binary", hour.Add(5*time.Minute))
	binary.Body = []byte{0xff, 0xfe, 0, '\n', 'x'}
	objects := []struct {
		key     string
		entries []archive.Entry
	}{
		{key(hour.Add(-2*time.Hour), 0), []archive.Entry{entry("e-too-early", hour.Add(-2*time.Hour))}},
		{key(hour.Add(-time.Hour+59*time.Minute), 0), []archive.Entry{entry("e-1", hour.Add(-time.Hour+58*time.Minute))}},
		{key(hour.Add(time.Minute), 0), []archive.Entry{entry("e-2", hour), entry("e-3", hour.Add(time.Second)), entry("e-4", hour.Add(2*time.Second))}},
		{key(hour.Add(5*time.Minute), 1), []archive.Entry{binary}},
		{key(hour.Add(5*time.Minute), 0), []archive.Entry{entry("e-5", hour.Add(4*time.Minute))}}, // sorts before the one above
		{key(hour.Add(time.Hour+30*time.Minute), 0), []archive.Entry{entry("e-6", hour.Add(time.Hour))}},
		{key(hour.Add(2*time.Hour), 0), []archive.Entry{entry("e-too-late", hour.Add(2*time.Hour))}},
	}
	for _, o := range objects {
		put(t, client, bucket, o.key, object(t, o.entries...))
	}
	// Not the archive's: another prefix, and a key beside the partitions.
	put(t, client, bucket, "errors/"+archive.Partition(hour)+"x", []byte("not gzip"))
	put(t, client, bucket, "raw/2026/11/30/17", []byte("not gzip"))

	want := []read{
		{objects[1].key, objects[1].entries[0]},
		{objects[2].key, objects[2].entries[0]}, {objects[2].key, objects[2].entries[1]}, {objects[2].key, objects[2].entries[2]},
		{objects[4].key, objects[4].entries[0]},
		{objects[3].key, binary},
		{objects[5].key, objects[5].entries[0]},
	}
	for _, pageSize := range []int32{0, 1, 2} {
		t.Run(fmt.Sprintf("page size %d", pageSize), func(t *testing.T) {
			api := &countingS3{API: client}
			r := s3archive.New(api, bucket, s3archive.WithPageSize(pageSize))
			var got []read
			// 16:30 to 18:10: the partitions 16, 17 and 18, whole.
			stats, err := r.Scan(ctx, hour.Add(-30*time.Minute), hour.Add(70*time.Minute), func(key string, e archive.Entry) error {
				got = append(got, read{key, e})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, func(a, b read) bool { return a.key == b.key && equal(a.entry, b.entry) }) {
				t.Errorf("read:\n%v\nwant:\n%v", got, want)
			}
			var size int64
			for _, i := range []int{1, 2, 3, 4, 5} {
				size += int64(len(object(t, objects[i].entries...)))
			}
			if wantStats := (s3archive.Stats{Objects: 5, Bytes: size, Entries: 7}); stats != wantStats {
				t.Errorf("stats %+v, want %+v", stats, wantStats)
			}
			// Partition 17 holds 3 objects: with pages of 1, 3 calls
			// (S3 tells the last page by IsTruncated false).
			wantLists := map[int32]int64{0: 3, 1: 5, 2: 4}[pageSize]
			if n := api.lists.Load(); n != wantLists {
				t.Errorf("%d ListObjectsV2 calls, want %d", n, wantLists)
			}
		})
	}
	t.Run("objects", func(t *testing.T) {
		var got []s3archive.Object
		err := s3archive.New(client, bucket).Objects(ctx, hour, hour, func(o s3archive.Object) error {
			got = append(got, o)
			return nil
		})
		want := []s3archive.Object{
			{Key: objects[2].key, Size: int64(len(object(t, objects[2].entries...)))},
			{Key: objects[4].key, Size: int64(len(object(t, objects[4].entries...)))},
			{Key: objects[3].key, Size: int64(len(object(t, objects[3].entries...)))},
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Objects = %v, %v; want %v", got, err, want)
		}
	})
	t.Run("callback error stops the scan", func(t *testing.T) {
		stop := errors.New("stop")
		var n int
		stats, err := s3archive.New(client, bucket).Scan(ctx, hour, hour, func(string, archive.Entry) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 || stats.Entries != 1 || stats.Objects != 1 {
			t.Errorf("Scan = %+v, %v after %d calls; want stop, unwrapped, after 2", stats, err, n)
		}
	})
}

func TestScanFailsOnAnObjectThatDoesNotDecode(t *testing.T) {
	ctx := context.Background()
	client, bucket := newBucket(t)
	good := object(t, entry("e-1", hour), entry("e-2", hour))
	truncated := object(t, entry("e-3", hour), entry("e-4", hour))
	truncated = truncated[:len(truncated)-10]
	member, err := archive.Encode(entry("e-5", hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     []byte
		wantRead []string // EventIDs read before the error
		wantErr  string
	}{
		{"not gzip", []byte(`{"eventId":"e-1"}`), []string{"e-1", "e-2"}, "gzip: invalid header"},
		{"truncated member", truncated, []string{"e-1", "e-2", "e-3", "e-4"}, "unexpected EOF"}, // the trailer cut
		{"garbage after the members", append(slices.Clone(member), "this is no gzip member"...), []string{"e-1", "e-2", "e-5"}, "gzip: invalid header"},
		{"empty", nil, []string{"e-1", "e-2"}, "EOF"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := hour.Add(time.Duration(i) * time.Hour)
			put(t, client, bucket, key(at, 0), good)
			bad := key(at.Add(time.Minute), 0)
			put(t, client, bucket, bad, tt.body)
			put(t, client, bucket, key(at.Add(2*time.Minute), 0), good) // never reached
			var got []string
			_, err := s3archive.New(client, bucket).Scan(ctx, at, at, func(_ string, e archive.Entry) error {
				got = append(got, e.EventID)
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one naming %s with %q", err, bad, tt.wantErr)
			}
			if !slices.Equal(got, tt.wantRead) {
				t.Errorf("read %v before the error, want %v", got, tt.wantRead)
			}
		})
	}
}

func TestScanMissingBucket(t *testing.T) {
	client := s3.NewFromConfig(awstest.Config(t))
	_, err := s3archive.New(client, "no-such-bucket-s3archive").Scan(context.Background(), hour, hour, func(string, archive.Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "list s3://no-such-bucket-s3archive/raw/2026/11/30/17/") {
		t.Errorf("err = %v, want the listing's", err)
	}
}
