// Package logging builds the JSON slog loggers the Lambdas write to stdout,
// in the shape of Lambda's own JSON log format (timestamp, level, message)
// with the invocation's request id on every line.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger writing to w at level and above. Lines logged
// with a Lambda invocation's context carry its requestId.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return slog.New(requestIDHandler{h})
}

// replaceAttr renames the built-in keys as Lambda's format does
// (lambdacontext.ReplaceAttr) and writes the level as a plain string: with
// any ReplaceAttr set, slog hands over the level as a value that its JSON
// handler marshals through reflection, a third of a log line's cost.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(l.String())
		}
	}
	return lambdacontext.ReplaceAttr(groups, a)
}

// ParseLevel reads a level name: DEBUG, INFO, WARN or ERROR, in any case.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.TrimSpace(s)))
	return l, err
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
