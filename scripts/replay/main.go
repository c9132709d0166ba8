// Command replay runs archived webhooks through processing again: to
// apply history to fixed or new processing logic (into the event queue,
// marked with a replay generation, so the handlers run once more per
// generation), or to rebuild vehicle state into another table (-rebuild,
// in this process, without handlers).
//
// It selects archived events by when they were received and optionally
// by type, vehicle or eventId, says how many it found, asks before
// sending, sends at a bounded rate and reports progress. On the local
// stack of `make dev` by default, with -stack a deployed one.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/replay"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/s3archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/sqsqueue"
)

const usage = `Usage: replay -from TIME [-to TIME] [filters] [flags]

Selects archived webhooks received in [from, to) and sends them through
processing again, marked with a replay generation. TIME is RFC 3339
(2026-11-29T08:00:00Z), a UTC date (2026-11-29), or a duration before now
(24h).

  make replay FROM=2026-11-29 TO=2026-11-30                 yesterday, into the queue
  make replay FROM=6h TYPE=VEHICLE_ERROR DRY_RUN=1          count only
  make replay FROM=2026-01-01 REBUILD=vehicles-v2 CREATE=1  rebuild state into a new table

`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", devstack.WithAWSHint(err))
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	sel        replay.Selection
	generation string
	rate       float64
	dryRun     bool
	yes        bool
	rebuild    string
	create     bool
}

func parse(args []string, stderr io.Writer, now time.Time, target *devstack.Target) (options, error) {
	fs := devstack.NewFlagSet("replay", usage, stderr, target)
	var o options
	from := fs.String("from", "", "replay webhooks received from `TIME` on (required)")
	to := fs.String("to", "", "and before `TIME` (default now)")
	types := fs.String("type", "", "only these event types, comma-separated (VEHICLE_STATE,VEHICLE_ERROR)")
	vehicles := fs.String("vehicle", "", "only these vehicleIds, comma-separated")
	events := fs.String("events", "", "only these eventIds: comma-separated, or @file with one per line")
	fs.DurationVar(&o.sel.Late, "late", replay.DefaultLate, "read the archive this much past -to: an event is archived when processed, "+
		"normally seconds after it was received; one redriven from the DLQ days later needs more")
	fs.StringVar(&o.generation, "generation", "", "the replay's `generation` (default replay-<now>, or rebuild-<now>); run an interrupted replay again "+
		"with the generation it printed and events it already replayed are not processed again")
	fs.Float64Var(&o.rate, "rate", replay.DefaultRate, "events sent per second at most")
	fs.BoolVar(&o.dryRun, "dry-run", false, "count what would be replayed; send nothing")
	fs.BoolVar(&o.yes, "yes", false, "do not ask before sending")
	fs.StringVar(&o.rebuild, "rebuild", "", "rebuild vehicle state into `TABLE` (entry layout) in this process, without handlers, "+
		"instead of queueing the events (see README: rebuilding state)")
	fs.BoolVar(&o.create, "create-table", false, "with -rebuild: create the table if it does not exist (on demand, point-in-time recovery, deletion protection)")
	if err := devstack.ParseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if *from == "" {
		return o, errors.New("-from is required: when the first webhook to replay was received")
	}
	if o.sel.From, err = devstack.ParseTime(*from, now); err != nil {
		return o, fmt.Errorf("-from: %w", err)
	}
	o.sel.To = now
	if *to != "" {
		if o.sel.To, err = devstack.ParseTime(*to, now); err != nil {
			return o, fmt.Errorf("-to: %w", err)
		}
	}
	o.sel.EventTypes, o.sel.VehicleIDs = devstack.SplitList(*types), devstack.SplitList(*vehicles)
	if o.sel.EventIDs, err = eventIDs(*events); err != nil {
		return o, fmt.Errorf("-events: %w", err)
	}
	if err := o.sel.Validate(); err != nil {
		return o, err
	}
	if o.generation == "" {
		o.generation = replay.NewGeneration(now)
		if o.rebuild != "" {
			o.generation = "rebuild" + strings.TrimPrefix(o.generation, "replay")
		}
	}
	if err := processor.ValidGeneration(o.generation); err != nil {
		return o, fmt.Errorf("-generation: %w", err)
	}
	if o.rate <= 0 {
		return o, fmt.Errorf("-rate %v: want a positive number of events per second", o.rate)
	}
	if o.create && o.rebuild == "" {
		return o, errors.New("-create-table needs -rebuild TABLE")
	}
	return o, nil
}

func eventIDs(s string) ([]string, error) {
	path, ok := strings.CutPrefix(s, "@")
	if !ok {
		return devstack.SplitList(s), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ids := devstack.SplitList(strings.ReplaceAll(string(b), "\n", ","))
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s lists no eventIds", path)
	}
	return ids, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, now time.Time) error {
	var target devstack.Target
	o, err := parse(args, stderr, now, &target)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	if res.ArchiveBucket == "" {
		return errors.New("the stack has no archive bucket (output ArchiveBucketName, or ARCHIVE_BUCKET with -env): deploy this version first; webhooks received before it were not archived")
	}
	// An emulator or other custom endpoint serves buckets by path, not as
	// <bucket>.host names.
	src := s3archive.New(s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil }), res.ArchiveBucket)

	st, err := replay.Count(ctx, src, o.sel)
	if err != nil {
		return fmt.Errorf("read the archive: %w", err)
	}
	fmt.Fprintf(stdout, "selected %d events received %s to %s (%d entries read from s3://%s, %d further deliveries of the same events left out)\n",
		st.Selected, o.sel.From.UTC().Format(time.RFC3339), o.sel.To.UTC().Format(time.RFC3339), st.Read, res.ArchiveBucket, st.Duplicates)
	if st.NoEventID > 0 {
		fmt.Fprintf(stdout, "left out %d bodies without an eventId (the processor parked them when they came; make dlq-list)\n", st.NoEventID)
	}
	// Firehose holds what it received last until its buffer is written.
	if lag := now.Add(-pipeline.ArchiveBufferInterval - time.Minute); o.sel.To.After(lag) && res.Endpoint == "" {
		fmt.Fprintf(stderr, "note: webhooks received after %s may not be in the archive yet (Firehose writes every %v): replay them later\n",
			lag.UTC().Format(time.RFC3339), pipeline.ArchiveBufferInterval)
	}
	if o.dryRun || st.Selected == 0 {
		return nil
	}

	sink, into, err := newSink(ctx, o, res, cfg, stderr)
	if err != nil {
		return err
	}
	eta := devstack.ETA(st.Selected, o.rate)
	if !o.yes && !devstack.Confirm(stdin, stderr, fmt.Sprintf("replay %d events into %s as generation %s at %g/s (about %v)? [y/N] ",
		st.Selected, into, o.generation, o.rate, eta)) {
		return errors.New("not confirmed: nothing sent")
	}
	total := st.Selected
	last := time.Time{}
	done, err := replay.Run(ctx, src, sink, o.sel, replay.Options{Generation: o.generation, Rate: o.rate,
		Progress: func(p replay.Progress) {
			if time.Since(last) < time.Second && p.Sent < total {
				return
			}
			last = time.Now()
			fmt.Fprintf(stderr, "  %d/%d sent (%.0f%%), %s elapsed\n", p.Sent, total, 100*float64(p.Sent)/float64(max(total, 1)), p.Elapsed.Round(time.Second))
		}})
	fmt.Fprintf(stdout, "sent %d events into %s as generation %s\n", done.Sent, into, o.generation)
	if o.rebuild != "" {
		// What the switch-over's deploy needs besides the table's name.
		if arn, err := dynamostore.StateTableStream(ctx, dynamodb.NewFromConfig(cfg), o.rebuild); err == nil {
			fmt.Fprintf(stdout, "switch over with: make deploy STATE_TABLE_NAME=%s STATE_TABLE_STREAM_ARN=%s\n", o.rebuild, arn)
		}
	}
	if p, ok := sink.(*rebuildSink); ok {
		p.report(stdout)
	}
	if err != nil {
		// Absolute times: a relative FROM would name another window later.
		return fmt.Errorf("%w\nresume with -from %s -to %s -generation %s (FROM=, TO=, GENERATION=) and the same filters: "+
			"events it replayed already are not processed again", err, o.sel.From.UTC().Format(time.RFC3339Nano),
			o.sel.To.UTC().Format(time.RFC3339Nano), o.generation)
	}
	return nil
}

// newSink returns where the events go, and its name for people.
func newSink(ctx context.Context, o options, res devstack.Resources, cfg aws.Config, stderr io.Writer) (replay.Sink, string, error) {
	if o.rebuild == "" {
		if res.QueueURL == "" {
			return nil, "", errors.New("the stack names no event queue")
		}
		return sqsqueue.NewReplayer(sqs.NewFromConfig(cfg), res.QueueURL), res.QueueURL, nil
	}
	ddb := dynamodb.NewFromConfig(cfg)
	var err error
	if o.create {
		err = dynamostore.CreateStateTable(ctx, ddb, o.rebuild) // checks an existing one's keys
	} else {
		err = dynamostore.CheckStateTable(ctx, ddb, o.rebuild)
	}
	if err != nil {
		return nil, "", err
	}
	env := res.ProcessorEnv()
	env[devstack.EnvStateTable] = o.rebuild
	delete(env, devstack.EnvLegacyStateTable) // history alone, not the legacy layout's copy of it
	env["LOG_LEVEL"] = devstack.ToolLogLevel()
	s := &rebuildSink{}
	p, err := functions.NewRebuilder(func(k string) string { return env[k] }, cfg, stderr, s)
	if err != nil {
		return nil, "", err
	}
	s.ProcessorSink = replay.ProcessorSink{P: p}
	return s, "table " + o.rebuild, nil
}

// rebuildSink processes in this process and keeps what could not be
// processed, instead of dead-lettering it into the live stack's DLQ.
type rebuildSink struct {
	replay.ProcessorSink
	mu     sync.Mutex
	parked []string
}

// SendDeadLetter implements processor.DeadLetterQueue.
func (s *rebuildSink) SendDeadLetter(_ context.Context, rec processor.Record, reason string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parked = append(s.parked, fmt.Sprintf("%s: %s", cmp.Or(rec.Attributes["eventId"], rec.MessageID), reason))
	return nil
}

func (s *rebuildSink) report(w io.Writer) {
	if len(s.parked) == 0 {
		return
	}
	fmt.Fprintf(w, "%d events could not be processed (as when they arrived, they were left out):\n", len(s.parked))
	for _, p := range s.parked[:min(len(s.parked), 20)] {
		fmt.Fprintln(w, "  "+p)
	}
}
