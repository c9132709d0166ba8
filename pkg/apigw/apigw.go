// Package apigw adapts the receiver to API Gateway Lambda proxy events: HTTP
// API payload format 2.0 (the production path) and REST API payload format
// 1.0 (also what `sam local start-api` sends). One Request type reads both.
package apigw

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"unsafe"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

// Request is an API Gateway proxy event of either payload format. Fields
// specific to one format are marked.
type Request struct {
	Version    string `json:"version"`    // "2.0" for HTTP API events
	RawPath    string `json:"rawPath"`    // 2.0
	Path       string `json:"path"`       // 1.0
	HTTPMethod string `json:"httpMethod"` // 1.0
	// Headers: lower-case names in 2.0, as sent in 1.0.
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"` // 1.0
	RequestContext    struct {
		Stage     string `json:"stage"`
		RequestID string `json:"requestId"`
		HTTP      struct {
			Method string `json:"method"`
		} `json:"http"` // 2.0
	} `json:"requestContext"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// Response is a proxy response valid for both payload formats.
type Response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// Core is the receiver as this adapter uses it.
type Core interface {
	Handle(ctx context.Context, req receiver.Request) receiver.Response
}

// Handler returns the Lambda handler function for core, for lambda.Start.
func Handler(core Core) func(context.Context, Request) (Response, error) {
	return func(ctx context.Context, event Request) (Response, error) {
		req, err := event.toReceiver()
		if err != nil {
			return fromReceiver(receiver.ErrorResponse(http.StatusBadRequest, err.Error())), nil
		}
		return fromReceiver(core.Handle(ctx, req)), nil
	}
}

func (e Request) toReceiver() (receiver.Request, error) {
	req := receiver.Request{Headers: e.Headers}
	switch {
	case e.Version == "2.0" || e.RequestContext.HTTP.Method != "":
		req.Method = e.RequestContext.HTTP.Method
		req.Path = e.RawPath
		// A named stage (not $default) prefixes rawPath with its name.
		if st := e.RequestContext.Stage; st != "" && st != "$default" {
			if rest, ok := strings.CutPrefix(req.Path, "/"+st); ok && (rest == "" || rest[0] == '/') {
				req.Path = rest
			}
		}
	case e.HTTPMethod != "":
		req.Method = e.HTTPMethod
		req.Path = e.Path
		if len(e.Headers) == 0 && len(e.MultiValueHeaders) > 0 {
			req.Headers = make(map[string]string, len(e.MultiValueHeaders))
			for k, v := range e.MultiValueHeaders {
				if len(v) > 0 {
					req.Headers[k] = v[0]
				}
			}
		}
	default:
		return req, errors.New("not an API Gateway proxy event (payload format 1.0 or 2.0)")
	}
	if e.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil {
			return req, errors.New("isBase64Encoded is set but the body is not valid base64")
		}
		req.Body = b
	} else {
		req.Body = bytesOf(e.Body)
	}
	return req, nil
}

// bytesOf returns the bytes of s without copying them. The receiver never
// writes to a request body, so sharing the string's memory is safe, and it
// saves a copy of every webhook.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func fromReceiver(r receiver.Response) Response {
	headers := map[string]string{"Content-Type": "application/json"}
	for k, v := range r.Headers {
		headers[k] = v
	}
	return Response{StatusCode: r.Status, Headers: headers, Body: string(r.Body)}
}
