package awstest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// RuntimeAPI is the one piece of the Lambda Runtime API that the emulator
// (StartFunction, pkg/awstest/rie) cannot stand in for: the moment a
// function first asks for work (GET /runtime/invocation/next), which ends
// its init and is what BenchmarkColdStart times. aws-lambda-rie starts the
// function only with the first invocation and reports no such time (its
// REPORT line's "Init Duration" measures its own bookkeeping), and its own
// process start would be counted in. Every invocation, including init
// errors posted to /runtime/init/error, goes through the emulator.
type RuntimeAPI struct {
	srv       *httptest.Server
	firstNext chan time.Time
	once      sync.Once
}

// NewRuntimeAPI starts the Runtime API on 127.0.0.1; it stops with the
// test. /next never hands out an invocation: it waits until the function
// is stopped.
func NewRuntimeAPI(tb testing.TB) *RuntimeAPI {
	r := &RuntimeAPI{firstNext: make(chan time.Time, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		r.once.Do(func() { r.firstNext <- time.Now() })
		<-req.Context().Done()
	})
	r.srv = httptest.NewServer(mux)
	tb.Cleanup(r.srv.Close)
	return r
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API.
func (r *RuntimeAPI) Addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// FirstNext delivers the time of the function's first request for work:
// the end of its init.
func (r *RuntimeAPI) FirstNext() <-chan time.Time { return r.firstNext }
