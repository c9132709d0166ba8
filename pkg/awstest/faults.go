package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Faults injects failures into AWS SDK requests, for tests only: it is an
// http.RoundTripper set on a test's aws.Config. A fault is either an error
// before the request reaches the service (nothing happened) or a lost
// answer after it (the call took effect, the caller sees a failure), half
// of each. A Firehose PutRecordBatch fault is one of those or, a third of
// the time, a partial failure: the records were stored but the answer
// says some of them failed, as Firehose's FailedPutCount does.
type Faults struct {
	mu sync.Mutex
	// DynamoDB and SQSSend are the probabilities that a DynamoDB request,
	// or an SQS SendMessage, fails.
	DynamoDB, SQSSend float64
	// Firehose and EventBridge are the probabilities that a Firehose
	// PutRecordBatch, or an EventBridge PutEvents, fails: whole, or
	// partly (see failSome).
	Firehose, EventBridge float64
	rng                   *rand.Rand
	// Sent, when set, is called with every request the service answered
	// with 2xx (whether or not the caller then saw a fault).
	Sent func(target string, body []byte)

	injected, before, after, partial int
}

// NewFaults returns a fault injector with a fixed seed, so a failing run
// can be repeated.
func NewFaults(seed uint64, dynamoDB, sqsSend float64) *Faults {
	return &Faults{DynamoDB: dynamoDB, SQSSend: sqsSend, rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// Injected returns how many faults were injected, before and after the
// service acted (partial failures count as after).
func (f *Faults) Injected() (total, before, after int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected, f.before, f.after
}

// Partial returns how many Firehose and EventBridge answers were
// rewritten to fail some records.
func (f *Faults) Partial() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partial
}

// fault is what decide chose for a request.
type fault int

const (
	noFault fault = iota
	failBefore
	failAfter
	failSome // Firehose: stored, answered as partly failed
)

const (
	putRecordBatch = "Firehose_20150804.PutRecordBatch"
	putEvents      = "AWSEvents.PutEvents"
)

// decide says whether to fail a request to target, and how.
func (f *Faults) decide(target string) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := 0.0
	switch {
	case strings.HasPrefix(target, "DynamoDB_"):
		p = f.DynamoDB
	case target == "AmazonSQS.SendMessage":
		p = f.SQSSend
	case target == putRecordBatch:
		p = f.Firehose
	case target == putEvents:
		p = f.EventBridge
	}
	if p == 0 || f.rng.Float64() >= p {
		return noFault
	}
	f.injected++
	if (target == putRecordBatch || target == putEvents) && f.rng.IntN(3) == 0 {
		f.after++
		f.partial++
		return failSome
	}
	if f.rng.IntN(2) == 1 {
		f.after++
		return failAfter
	}
	f.before++
	return failBefore
}

// Transport wraps next.
func (f *Faults) Transport(next http.RoundTripper) http.RoundTripper {
	return faultTransport{f, next}
}

type faultTransport struct {
	f    *Faults
	next http.RoundTripper
}

func (t faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	fault := t.f.decide(target)
	if fault == failBefore {
		return injected(r), nil
	}
	var body []byte
	if t.f.Sent != nil && r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if t.f.Sent != nil && resp.StatusCode/100 == 2 {
		t.f.Sent(target, body)
	}
	switch fault {
	case failAfter:
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return injected(r), nil
	case failSome:
		return t.failSome(resp, r.Header.Get("X-Amz-Target"))
	}
	return resp, nil
}

// failSome rewrites a PutRecordBatch or PutEvents answer so that a random,
// non-empty subset of its records failed, as Firehose and EventBridge
// report a partial failure.
func (t faultTransport) failSome(resp *http.Response, target string) (*http.Response, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("firehose answer: %w", err)
	}
	list, count, code := "RequestResponses", "FailedPutCount", "ServiceUnavailableException"
	if target == putEvents {
		list, count, code = "Entries", "FailedEntryCount", "InternalFailure"
	}
	records, _ := out[list].([]any)
	t.f.mu.Lock()
	failed := 0
	for i := range records {
		if failed == 0 && i == len(records)-1 || t.f.rng.IntN(2) == 0 {
			records[i] = map[string]any{"ErrorCode": code, "ErrorMessage": "injected partial failure"}
			failed++
		}
	}
	t.f.mu.Unlock()
	out[count] = failed
	body, _ = json.Marshal(out)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// injected is the answer of a failing service: a retryable 500.
func injected(r *http.Request) *http.Response {
	return &http.Response{
		StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Request: r,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:   io.NopCloser(strings.NewReader(`{"__type":"InternalFailure","message":"injected fault"}`)),
	}
}
