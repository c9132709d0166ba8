package awstest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
)

// Faults injects failures into AWS SDK requests, for tests only: it is an
// http.RoundTripper set on a test's aws.Config. A fault is either an error
// before the request reaches the service (nothing happened) or a lost
// answer after it (the call took effect, the caller sees a failure), half
// of each.
type Faults struct {
	mu sync.Mutex
	// DynamoDB and SQSSend are the probabilities that a DynamoDB request,
	// or an SQS SendMessage, fails.
	DynamoDB, SQSSend float64
	rng               *rand.Rand
	// Sent, when set, is called with every request the service answered
	// with 2xx (whether or not the caller then saw a fault).
	Sent func(target string, body []byte)

	injected, before, after int
}

// NewFaults returns a fault injector with a fixed seed, so a failing run
// can be repeated.
func NewFaults(seed uint64, dynamoDB, sqsSend float64) *Faults {
	return &Faults{DynamoDB: dynamoDB, SQSSend: sqsSend, rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// Injected returns how many faults were injected, before and after the
// service acted.
func (f *Faults) Injected() (total, before, after int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected, f.before, f.after
}

// decide says whether to fail a request to target, and when.
func (f *Faults) decide(target string) (fail, afterService bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := 0.0
	switch {
	case strings.HasPrefix(target, "DynamoDB_"):
		p = f.DynamoDB
	case target == "AmazonSQS.SendMessage":
		p = f.SQSSend
	}
	if p == 0 || f.rng.Float64() >= p {
		return false, false
	}
	f.injected++
	afterService = f.rng.IntN(2) == 1
	if afterService {
		f.after++
	} else {
		f.before++
	}
	return true, afterService
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
	fail, after := t.f.decide(target)
	if fail && !after {
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
	if fail {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return injected(r), nil
	}
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
