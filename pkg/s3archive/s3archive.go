// Package s3archive reads the archive of raw webhooks back from its
// bucket: the objects the delivery stream wrote under
// pipeline.ArchivePrefix, one hourly partition (archive.Partition) after
// another, each decoded with archive.Read.
//
// Firehose files a record under the hour it received it, which is when
// the processor archived it: at or after the webhook's ReceivedAt, later
// when its processing was retried. A reader choosing partitions by
// ReceivedAt scans past its end, and filters entries itself. An entry may
// be archived more than once (a record retried, or resent by the writer).
package s3archive

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

// API is the part of the S3 client the Reader uses.
type API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Reader reads the archive in one bucket. It is safe for concurrent use.
type Reader struct {
	api      API
	bucket   string
	pageSize int32
}

// Option configures a Reader.
type Option func(*Reader)

// WithPageSize sets the most keys a ListObjectsV2 call returns (MaxKeys);
// S3's default, 1000, if unset or not positive.
func WithPageSize(n int32) Option { return func(r *Reader) { r.pageSize = n } }

// New returns a Reader of the archive in bucket.
func New(api API, bucket string, opts ...Option) *Reader {
	r := &Reader{api: api, bucket: bucket}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Bucket names the archive's bucket.
func (r *Reader) Bucket() string { return r.bucket }

// Object is an archived object.
type Object struct {
	Key  string
	Size int64 // bytes stored, compressed
}

// Stats counts what a Scan read.
type Stats struct {
	Objects int
	Bytes   int64 // compressed, as stored
	Entries int   // entries handed to the callback
}

// Objects calls fn for every object under the partitions of
// archive.Partitions(from, to), in order: partition after partition, keys
// in S3's (lexicographic) order within each, which is the order they were
// written in. It stops at fn's first error and returns it.
func (r *Reader) Objects(ctx context.Context, from, to time.Time, fn func(Object) error) error {
	for _, part := range archive.Partitions(from, to) {
		prefix := pipeline.ArchivePrefix + part
		in := &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String(prefix)}
		if r.pageSize > 0 {
			in.MaxKeys = aws.Int32(r.pageSize)
		}
		pages := s3.NewListObjectsV2Paginator(r.api, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("list s3://%s/%s: %w", r.bucket, prefix, err)
			}
			for _, o := range page.Contents {
				if err := fn(Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Scan reads every object Objects lists and calls fn with each entry and
// the key of its object, in order. It chooses partitions only: fn gets the
// entries of whole hours, and filters them by ReceivedAt itself. An object
// that does not decode is an error naming its key, once fn has had the
// entries before the fault. Scan stops at fn's first error and returns
// it, with what was read until then.
func (r *Reader) Scan(ctx context.Context, from, to time.Time, fn func(key string, e archive.Entry) error) (Stats, error) {
	var st Stats
	err := r.Objects(ctx, from, to, func(o Object) error {
		n, err := r.read(ctx, o.Key, func(e archive.Entry) error {
			if err := fn(o.Key, e); err != nil {
				return err
			}
			st.Entries++
			return nil
		})
		st.Objects++
		st.Bytes += n
		return err
	})
	return st, err
}

// Entries is Scan without keys or stats: the archive as replay.Source
// reads it.
func (r *Reader) Entries(ctx context.Context, from, to time.Time, fn func(archive.Entry) error) error {
	_, err := r.Scan(ctx, from, to, func(_ string, e archive.Entry) error { return fn(e) })
	return err
}

// read decodes one object, calling fn for each entry, and returns the
// bytes read. fn's errors are returned unwrapped.
func (r *Reader) read(ctx context.Context, key string, fn func(archive.Entry) error) (int64, error) {
	out, err := r.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("get s3://%s/%s: %w", r.bucket, key, err)
	}
	defer out.Body.Close()
	body := &counter{r: out.Body}
	var fnErr error
	err = archive.Read(body, func(e archive.Entry) error {
		fnErr = fn(e)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return body.n, fnErr
	case err != nil:
		return body.n, fmt.Errorf("s3://%s/%s: %w", r.bucket, key, err)
	}
	return body.n, nil
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
