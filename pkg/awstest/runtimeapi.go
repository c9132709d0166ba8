package awstest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RuntimeAPI is a small implementation of the Lambda Runtime API, enough to
// run a real `bootstrap` as Lambda runs it: the function polls
// /runtime/invocation/next, and answers on .../response or .../error; an
// init failure is posted to /runtime/init/error.
type RuntimeAPI struct {
	srv       *httptest.Server
	events    chan invocation
	mu        sync.Mutex
	pending   map[string]chan Result
	seq       int
	firstNext chan time.Time
	once      sync.Once
	initError chan string
}

// Result is a function's answer to one invocation.
type Result struct {
	Payload   []byte
	Error     bool   // the function posted to .../error
	ErrorType string // Lambda-Runtime-Function-Error-Type
}

type invocation struct {
	id      string
	payload []byte
}

// NewRuntimeAPI starts a Runtime API on 127.0.0.1; it stops with the test.
func NewRuntimeAPI(tb testing.TB) *RuntimeAPI {
	r := &RuntimeAPI{
		events: make(chan invocation, 16), pending: map[string]chan Result{},
		firstNext: make(chan time.Time, 1), initError: make(chan string, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, false)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, true)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		select {
		case r.initError <- string(b):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
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

// InitError delivers what the function posted to /runtime/init/error.
func (r *RuntimeAPI) InitError() <-chan string { return r.initError }

// Invoke hands payload to the function and waits for its answer.
func (r *RuntimeAPI) Invoke(ctx context.Context, payload []byte) (Result, error) {
	r.mu.Lock()
	r.seq++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", r.seq)
	done := make(chan Result, 1)
	r.pending[id] = done
	r.mu.Unlock()
	select {
	case r.events <- invocation{id: id, payload: payload}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case res := <-done:
		return res, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (r *RuntimeAPI) next(w http.ResponseWriter, req *http.Request) {
	r.once.Do(func() { r.firstNext <- time.Now() })
	select {
	case inv := <-r.events:
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:test")
		w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
		_, _ = w.Write(inv.payload)
	case <-req.Context().Done():
	}
}

func (r *RuntimeAPI) finish(w http.ResponseWriter, req *http.Request, isError bool) {
	id := req.PathValue("id")
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	done, ok := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if !ok {
		http.Error(w, `{"errorMessage":"unknown request id"}`, http.StatusBadRequest)
		return
	}
	done <- Result{Payload: b, Error: isError, ErrorType: req.Header.Get("Lambda-Runtime-Function-Error-Type")}
	w.WriteHeader(http.StatusAccepted)
}
