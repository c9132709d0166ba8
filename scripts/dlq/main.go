// Command dlq inspects and redrives the dead-letter queue of this checkout's
// local stack or, with -stack, of a deployed one, or with -env the one the Lambdas'
// environment variables name (DLQ_URL; QUEUE_URL too for redrive).
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dlq"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

const usage = `Usage: dlq [flags] COMMAND [ID]

Works on this checkout's local stack (make dev), a deployed stack (-stack NAME) or the queues the
Lambdas' variables name (-env).

Commands:
  list            eventId, message id, eventType, vehicleId, receives before it was parked, age and
                  failureReason of each message; every message is listed, and left visible
  show ID         one message (ID is an eventId or a message id), with its body
  redrive [ID]    move all messages, or those of one eventId, back to the queue
  purge           delete every message (asks for confirmation; -yes skips it)

`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dlq:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("dlq", flag.ExitOnError)
	var target devstack.Target
	target.AddFlags(fs)
	yes := fs.Bool("yes", false, "purge without asking")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	_ = fs.Parse(os.Args[1:])
	cmd, id := fs.Arg(0), fs.Arg(1)
	if cmd == "" {
		fs.Usage()
		os.Exit(2)
	}
	target.Needs = []string{devstack.EnvDLQURL}
	if cmd == "redrive" {
		target.Needs = append(target.Needs, devstack.EnvQueueURL)
	}
	// Ctrl-C ends a command cleanly: the messages it has hidden are made
	// visible again before it exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	q := dlq.Queue{API: sqs.NewFromConfig(cfg), DLQURL: res.DLQURL, DLQARN: res.DLQARN, QueueURL: res.QueueURL, QueueARN: res.QueueARN,
		Waiting: func(n int) {
			fmt.Fprintf(os.Stderr, "waiting for %d message(s) another reader has hidden (at most %v) ...\n", n, dlq.DefaultPeek+5*time.Second)
		}}
	switch cmd {
	case "list":
		msgs, err := q.List(ctx, 0)
		if err := partial(err); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "EVENT ID\tMESSAGE ID\tTYPE\tVEHICLE\tRECEIVES\tAGE\tFAILURE REASON")
		moved := false
		for _, m := range msgs {
			reason := m.FailureReason
			if reason == "" {
				reason = "(retries exhausted: see processing.dead_lettered in the logs)"
			}
			receives := strconv.Itoa(m.ReceiveCount)
			if !m.ReceiveCountExact {
				receives += "*"
				moved = true
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", or(m.EventID(), "-"), m.MessageID, or(m.Attributes[sqsqueue.AttrEventType], "-"),
				or(m.Attributes[sqsqueue.AttrVehicleID], "-"), receives, time.Since(m.SentAt).Round(time.Second), reason)
		}
		w.Flush()
		fmt.Fprintf(os.Stderr, "%d message(s) in %s\n", len(msgs), res.DLQURL)
		if len(msgs) > 0 {
			fmt.Fprintln(os.Stderr, "RECEIVES: how many times the processor received the message before it was parked, as it recorded")
		}
		if moved {
			fmt.Fprintln(os.Stderr, "  *: moved by the queue's redrive policy, which records no count: SQS's approximate receive count,\n"+
				"     less this listing's own receive; it also counts earlier dlq list/show/redrive peeks")
		}
	case "show":
		if id == "" {
			return fmt.Errorf("show needs an eventId or a message id")
		}
		found, err := q.Find(ctx, id)
		if err := partial(err); err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("no message for %s in the DLQ", id)
		}
		for _, m := range found {
			shown := map[string]any{
				"messageId": m.MessageID, "eventId": m.EventID(), "attributes": m.Attributes,
				"receiveCount": m.ReceiveCount, "approximateReceiveCount": m.ApproximateReceiveCount,
				"sentAt": m.SentAt.UTC().Format(time.RFC3339), "body": json.RawMessage(validJSON(m.Body)),
			}
			if !m.ReceiveCountExact {
				// The queue moved it; SQS's count includes peeks.
				shown["receiveCountNote"] = "moved by the queue's redrive policy: approximateReceiveCount less this receive, earlier peeks included"
			}
			if m.BodyEncoding != "" {
				// SQS could not carry the body as text: body above is decoded.
				shown["bodyEncoding"] = m.BodyEncoding
			}
			if !utf8.ValidString(m.Body) {
				// Not text: its exact bytes, for copying.
				shown["bodyBase64"] = base64.StdEncoding.EncodeToString([]byte(m.Body))
			}
			out, _ := json.MarshalIndent(shown, "", "  ")
			fmt.Println(string(out))
		}
	case "redrive":
		r, err := q.Redrive(ctx, id)
		if r.TaskHandle != "" {
			fmt.Printf("message move task started (%s): the DLQ drains into the queue\n", r.TaskHandle)
		} else if err == nil || r.Moved > 0 {
			fmt.Printf("moved %d message(s) back to the queue\n", r.Moved)
		}
		if err != nil {
			return err
		}
	case "purge":
		confirmed := *yes
		if !confirmed {
			stop() // Ctrl-C at the prompt ends the tool at once
			fmt.Fprintf(os.Stderr, "delete every message in %s? type 'purge' to confirm: ", res.DLQURL)
			line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
			confirmed = strings.TrimSpace(line) == "purge"
		}
		if err := q.Purge(ctx, confirmed); err != nil {
			return err
		}
		fmt.Println("purged")
	default:
		return fmt.Errorf("unknown command %q (list, show, redrive, purge)", cmd)
	}
	return nil
}

// partial passes a *dlq.HiddenError on to the user as a warning, with
// what could be read; any other error is returned.
func partial(err error) error {
	var hidden *dlq.HiddenError
	if errors.As(err, &hidden) {
		fmt.Fprintln(os.Stderr, "dlq: warning:", err)
		return nil
	}
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// validJSON returns body, or body as a JSON string when it is not JSON.
func validJSON(body string) string {
	if json.Valid([]byte(body)) {
		return body
	}
	b, _ := json.Marshal(body)
	return string(b)
}
