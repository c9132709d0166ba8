package awstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
)

// firehoseStub answers every PutRecordBatch as Firehose does when all is
// well, and counts the calls that reached it.
type firehoseStub struct{ calls int }

func (s *firehoseStub) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls++
	body := `{"Encrypted":false,"FailedPutCount":0,"RequestResponses":[{"RecordId":"a"},{"RecordId":"b"},{"RecordId":"c"}]}`
	return &http.Response{StatusCode: 200, Status: "200 OK", Request: r, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(strings.NewReader(body))}, nil
}

// TestFirehoseFaults: every kind of fault the ledger relies on reaches the
// SDK as Firehose would give it, and the stored records are accounted for.
func TestFirehoseFaults(t *testing.T) {
	f := NewFaults(1, 0, 0)
	f.Firehose = 1
	stub := &firehoseStub{}
	client := firehose.New(firehose.Options{
		Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, BaseEndpoint: aws.String("http://127.0.0.1:1"),
		HTTPClient: &http.Client{Transport: f.Transport(stub)}, RetryMaxAttempts: 1,
	})
	in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("s"),
		Records: []types.Record{{Data: []byte("1")}, {Data: []byte("2")}, {Data: []byte("3")}}}
	var whole, partial int
	for range 30 {
		calls := stub.calls
		out, err := client.PutRecordBatch(context.Background(), in)
		var ae interface{ ErrorCode() string }
		switch {
		case err != nil && errors.As(err, &ae) && ae.ErrorCode() == "InternalFailure":
			whole++
		case err == nil && aws.ToInt32(out.FailedPutCount) > 0:
			partial++
			failed := 0
			for _, r := range out.RequestResponses {
				if aws.ToString(r.ErrorCode) == "ServiceUnavailableException" && r.RecordId == nil {
					failed++
				}
			}
			if failed != int(aws.ToInt32(out.FailedPutCount)) || stub.calls != calls+1 {
				t.Fatalf("partial answer %+v: %d records marked failed", out, failed)
			}
		default:
			t.Fatalf("every call should fail, got %+v, %v", out, err)
		}
	}
	total, before, after := f.Injected()
	if total != 30 || before+after != 30 || f.Partial() != partial || whole != 30-partial || partial == 0 || whole == 0 {
		t.Errorf("injected %d (%d before, %d after), %d partial; saw %d whole, %d partial", total, before, after, f.Partial(), whole, partial)
	}
	// A fault before the call never reached the service.
	if stub.calls != 30-before {
		t.Errorf("%d calls reached Firehose, want %d", stub.calls, 30-before)
	}
}

// eventBridgeStub answers every PutEvents as EventBridge does when all is
// well.
type eventBridgeStub struct{ calls int }

func (s *eventBridgeStub) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls++
	body := `{"FailedEntryCount":0,"Entries":[{"EventId":"a"},{"EventId":"b"},{"EventId":"c"}]}`
	return &http.Response{StatusCode: 200, Status: "200 OK", Request: r, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(strings.NewReader(body))}, nil
}

// TestEventBridgeFaults: PutEvents fails whole, or partly as EventBridge
// reports it (FailedEntryCount, an ErrorCode per failed entry).
func TestEventBridgeFaults(t *testing.T) {
	f := NewFaults(2, 0, 0)
	f.EventBridge = 1
	client := eventbridge.New(eventbridge.Options{
		Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, BaseEndpoint: aws.String("http://127.0.0.1:1"),
		HTTPClient: &http.Client{Transport: f.Transport(&eventBridgeStub{})}, RetryMaxAttempts: 1,
	})
	in := &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Detail: aws.String("{}")}, {Detail: aws.String("{}")}, {Detail: aws.String("{}")}}}
	var whole, partial int
	for range 30 {
		out, err := client.PutEvents(context.Background(), in)
		switch {
		case err != nil:
			whole++
		case out.FailedEntryCount > 0:
			partial++
			failed := 0
			for _, e := range out.Entries {
				if aws.ToString(e.ErrorCode) == "InternalFailure" && e.EventId == nil {
					failed++
				}
			}
			if failed != int(out.FailedEntryCount) {
				t.Fatalf("partial answer %+v: %d entries marked failed", out, failed)
			}
		default:
			t.Fatalf("every call should fail, got %+v", out)
		}
	}
	if whole == 0 || partial == 0 || f.Partial() != partial {
		t.Errorf("%d whole, %d partial failures (%d counted partial)", whole, partial, f.Partial())
	}
}
