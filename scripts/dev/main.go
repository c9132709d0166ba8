// Command dev runs the whole pipeline on this machine (`make dev`): moto on
// 127.0.0.1, the stack's secret, queues and tables, the receiver behind an
// HTTP server that speaks API Gateway's event format, and the processor fed
// from the queue like Lambda's SQS event source. One per checkout: the stack
// is described, for the other tools run from the checkout, in .dev/stack.json
// at its root, and locked while it runs. Ctrl-C (or SIGTERM, SIGHUP) stops
// everything it started, says what, and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	port := fs.Int("port", envInt("DEV_PORT", 3000), "port of the receiver on 127.0.0.1 (env DEV_PORT; make dev DEV_PORT=n)")
	motoPort := fs.Int("moto-port", envInt("MOTO_PORT", 0), "port of moto_server on 127.0.0.1, 0 for a free one (env MOTO_PORT)")
	state := fs.String("state", devstack.StateFile(), "`file` where the running stack is described for the other tools, "+
		"and locked so that one checkout runs one stack ($"+devstack.EnvStateFile+" overrides the default)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dev [flags]

Runs the pipeline locally on an AWS emulator. The token is $SMARTCAR_AMT, else a development
token that is printed. Lambda logs go to stdout; this tool's messages to stderr. Each checkout
runs its own stack, described in .dev/ at its root, where the other tools run from it find it;
start a second stack from another checkout, on another port. Ctrl-C (SIGINT) or SIGTERM stops
everything it started, and it exits 0.

`)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *state == "" {
		_, err := devstack.LocalStateFile()
		return err
	}

	// A signal cancels ctx; the shutdown below then stops, in order, what
	// was started, says so, and exits 0.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopSignal atomic.Value // os.Signal
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		sig := <-sigs
		stopSignal.Store(sig)
		say(fmt.Sprintf("\n%v: stopping ... (again to quit at once)", sig))
		cancel()
		// A second signal quits without waiting for the shutdown; moto_server
		// stops with this process (moto.Start).
		sig = <-sigs
		say(fmt.Sprintf("%v: quitting", sig))
		os.Exit(1)
	}()
	// Output may go to a pipe that closes first (| tee, a closed terminal):
	// a failed write must not kill the process before it stops the emulator.
	signal.Ignore(syscall.SIGPIPE)
	interrupted := func(err error) error {
		if stopSignal.Load() != nil && (err == nil || ctx.Err() != nil) {
			return nil // stopped on request, while starting
		}
		return err
	}

	receiverURL := fmt.Sprintf("http://127.0.0.1:%d%s", *port, receiver.PathWebhook)
	unlock, err := devstack.Lock(*state, devstack.LockOwner{Pid: os.Getpid(), ReceiverURL: receiverURL})
	if err != nil {
		return err
	}
	defer unlock()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return fmt.Errorf("cannot serve on 127.0.0.1:%d (%v): choose another port with make dev DEV_PORT=n", *port, err)
	}
	defer ln.Close()

	say("starting moto_server ...")
	srv, err := moto.Start(*motoPort, nil)
	if errors.Is(err, moto.ErrNotInstalled) {
		return fmt.Errorf("%w; `make tools` installs it", err)
	}
	if err != nil {
		return interrupted(err)
	}
	defer func() {
		pid := srv.Pid()
		srv.Stop()
		say(fmt.Sprintf("  stopped moto_server (pid %d, %s)", pid, srv.Endpoint))
	}()
	cfg, err := moto.Config(ctx, srv.Endpoint)
	if err != nil {
		return err
	}
	token, generated := os.Getenv("SMARTCAR_AMT"), false
	if token == "" {
		token, generated = devstack.NewDevToken(), true
	}
	res, err := devstack.Provision(ctx, cfg, token, devstack.Options{})
	if err != nil {
		return interrupted(fmt.Errorf("create resources: %w", err))
	}
	res.Endpoint, res.Pid = srv.Endpoint, os.Getpid()
	res.ReceiverURL = receiverURL
	if generated {
		res.DevToken = token
	}
	if err := devstack.WriteState(*state, res); err != nil {
		return err
	}
	defer func() {
		if err := os.Remove(*state); err == nil {
			say("  removed " + *state)
		}
	}()
	if ctx.Err() != nil {
		return nil // a signal arrived while starting: the deferred calls stop it all
	}

	recv, err := functions.NewReceiver(getenv(res.ReceiverEnv()), cfg, os.Stdout)
	if err != nil {
		return err
	}
	proc, err := functions.NewProcessor(getenv(res.ProcessorEnv()), cfg, os.Stdout)
	if err != nil {
		return err
	}
	pub, err := functions.NewPublisher(getenv(res.PublisherEnv()), cfg, os.Stdout)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() {
		err := devstack.Serve(ctx, ln, lambda.NewHandler(recv))
		if err != nil {
			say("dev: receiver: " + err.Error())
			cancel() // the stack is useless without it
		}
		served <- err
	}()
	poller := &devstack.Poller{
		SQS: sqs.NewFromConfig(cfg), QueueURL: res.QueueURL, QueueARN: res.QueueARN,
		Handler: lambda.NewHandler(proc), Log: logging.New(os.Stdout, slog.LevelInfo).With("function", "event-source"),
	}
	// The publisher's event source: the state table's stream, as Lambda
	// reads it.
	streams := &devstack.StreamPoller{
		Streams: dynamodbstreams.NewFromConfig(cfg), StreamARN: res.StateStreamARN, Handler: lambda.NewHandler(pub),
		Log: logging.New(os.Stdout, slog.LevelInfo).With("function", "stream-source"),
	}
	streamed := make(chan struct{})
	go func() { streams.Run(ctx); close(streamed) }()
	banner(res, token, generated, srv)
	poller.Run(ctx)
	say("  stopped the event source (the processor's poller of " + res.QueueURL + ")")
	<-streamed
	say("  stopped the stream source (the publisher's reader of " + res.StateStreamARN + ")")
	if err := <-served; err != nil {
		return err
	}
	say("  stopped the receiver on " + ln.Addr().String())
	return nil // the deferred calls remove the state file, then stop moto
}

func banner(res devstack.Resources, token string, generated bool, srv *moto.Server) {
	tokenLine := "token:     from SMARTCAR_AMT"
	if generated {
		tokenLine = "token:     " + token + "  (development token; set SMARTCAR_AMT to use yours)"
	}
	say(fmt.Sprintf(`
local stack ready
  webhook:   %s        (POST; errors URI: %s/errors)
  health:    %s
  %s
  emulator:  %s  (pid %d)
  queue:     %s  -> DLQ after %s receives
  tables:    %s, %s
  archive:   s3://%s/%s  (Firehose stream %s)
  events:    bus %s  (domain events; make events-tail shows them)

try:   make send EVENT=vehicle_state      then   make state VEHICLE=9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24
       make dlq-list                       make send EVENT=verify
       make replay FROM=1h DRY_RUN=1       (archived webhooks, run through processing again)
public URL for Smartcar's dashboard:  ngrok http %s
Ctrl-C stops everything.
`, res.ReceiverURL, res.ReceiverURL, healthURL(res.ReceiverURL), tokenLine, srv.Endpoint, srv.Pid(), res.QueueURL,
		res.ProcessorEnv()["MAX_RECEIVE_COUNT"], res.EventsTable, res.StateTable, res.ArchiveBucket, pipeline.ArchivePrefix, res.ArchiveStream, res.EventBusName,
		portOf(res.ReceiverURL)))
}

func healthURL(webhook string) string {
	return webhook[:len(webhook)-len(receiver.PathWebhook)] + receiver.PathHealth
}

func portOf(url string) string {
	_, port, _ := net.SplitHostPort(url[len("http://") : len(url)-len(receiver.PathWebhook)])
	return port
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k) // LOG_LEVEL and the like pass through
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func say(msg string) { fmt.Fprintln(os.Stderr, msg) }
