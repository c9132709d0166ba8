// Package logging builds the JSON slog loggers the Lambdas write to stdout,
// in the shape of Lambda's own JSON log format (timestamp, level, message).
//
// Logs are billed by the byte, so a line carries what explains it and no
// more. WARN and ERROR lines, and every line of a logger enabled for
// DEBUG, have a timestamp (to the millisecond, as CloudWatch's own) and the
// invocation's requestId, which ties them to Lambda's START, END and REPORT
// lines. INFO lines of an INFO logger have neither: CloudWatch Logs stamps
// each log event with its time, and their ids (eventId, messageId) find
// them.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TimeFormat is the layout of the timestamp field: RFC 3339 in UTC with
// milliseconds, as Lambda's JSON log format writes it.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// New returns a JSON logger writing to w at level and above. Lines at WARN
// and above carry a timestamp and, when logged with a Lambda invocation's
// context, its requestId; at level DEBUG or below, every line does.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return slog.New(requestIDHandler{h})
}

// replaceAttr renames the built-in keys as Lambda's format does
// (lambdacontext.ReplaceAttr), writes the time with milliseconds and the
// level as a plain string: with any ReplaceAttr set, slog hands over the
// level as a value that its JSON handler marshals through reflection, a
// third of a log line's cost.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok {
				a.Value = slog.StringValue(l.String())
			}
		case slog.TimeKey:
			if a.Value.Kind() == slog.KindTime {
				a.Value = slog.StringValue(a.Value.Time().UTC().Format(TimeFormat))
			}
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
	if r.Level < slog.LevelWarn && !h.Enabled(ctx, slog.LevelDebug) {
		// CloudWatch Logs stamps every log event with the time it was
		// written, to the millisecond: an INFO line goes without its own.
		r.Time = time.Time{}
		return h.Handler.Handle(ctx, r)
	}
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

// OrDiscard returns l, or a logger that discards everything when l is nil:
// the default of every component's optional logger.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
