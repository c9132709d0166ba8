// Command dev runs the whole pipeline on this machine (`make dev`): moto on
// 127.0.0.1, the stack's secret, queues and tables, the receiver behind an
// HTTP server that speaks API Gateway's event format, and the processor fed
// from the queue like Lambda's SQS event source. Ctrl-C stops everything.
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
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
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
	port := fs.Int("port", envInt("DEV_PORT", 3000), "port of the receiver on 127.0.0.1 (env DEV_PORT)")
	motoPort := fs.Int("moto-port", envInt("MOTO_PORT", 0), "port of moto_server on 127.0.0.1, 0 for a free one (env MOTO_PORT)")
	state := fs.String("state", devstack.StateFile(), "where to describe the running stack for the other tools")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: dev [flags]\n\nRuns the pipeline locally on an AWS emulator. The token is $SMARTCAR_AMT, else a development\ntoken that is printed. Lambda logs go to stdout; this tool's messages to stderr.\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// Output may go to a pipe that closes first (| tee, a closed terminal):
	// a failed write must not kill the process before it stops the emulator.
	signal.Ignore(syscall.SIGPIPE)

	unlock, err := lock(*state + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return fmt.Errorf("cannot serve on 127.0.0.1:%d (%v): choose another port with DEV_PORT=... make dev", *port, err)
	}
	defer ln.Close()

	say("starting moto_server ...")
	srv, err := moto.Start(*motoPort, nil)
	if errors.Is(err, moto.ErrNotInstalled) {
		return fmt.Errorf("%w; `make tools` installs it", err)
	}
	if err != nil {
		return err
	}
	defer srv.Stop()
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
		return fmt.Errorf("create resources: %w", err)
	}
	res.Endpoint, res.Pid = srv.Endpoint, os.Getpid()
	res.ReceiverURL = fmt.Sprintf("http://127.0.0.1:%d%s", *port, receiver.PathWebhook)
	if generated {
		res.DevToken = token
	}
	if err := devstack.WriteState(*state, res); err != nil {
		return err
	}
	defer os.Remove(*state)

	recv, err := functions.NewReceiver(getenv(res.ReceiverEnv()), cfg, os.Stdout)
	if err != nil {
		return err
	}
	proc, err := functions.NewProcessor(getenv(res.ProcessorEnv()), cfg, os.Stdout)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- devstack.Serve(ctx, ln, lambda.NewHandler(recv)) }()
	poller := &devstack.Poller{
		SQS: sqs.NewFromConfig(cfg), QueueURL: res.QueueURL, QueueARN: res.QueueARN,
		Handler: lambda.NewHandler(proc), Log: logging.New(os.Stdout, slog.LevelInfo).With("function", "event-source"),
	}
	banner(res, token, generated, srv)
	poller.Run(ctx)
	say("stopping ...")
	return <-served
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

try:   make send EVENT=vehicle_state      then   make state VEHICLE=9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24
       make dlq-list                       make send EVENT=verify
public URL for Smartcar's dashboard:  ngrok http %s
Ctrl-C stops everything.
`, res.ReceiverURL, res.ReceiverURL, healthURL(res.ReceiverURL), tokenLine, srv.Endpoint, srv.Pid(), res.QueueURL,
		res.ProcessorEnv()["MAX_RECEIVE_COUNT"], res.EventsTable, res.StateTable, portOf(res.ReceiverURL)))
}

func healthURL(webhook string) string {
	return webhook[:len(webhook)-len(receiver.PathWebhook)] + receiver.PathHealth
}

func portOf(url string) string {
	_, port, _ := net.SplitHostPort(url[len("http://") : len(url)-len(receiver.PathWebhook)])
	return port
}

// lock takes the lock file, or says which `make dev` holds it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		msg := "another `make dev` is already running"
		if r, err := devstack.ReadState(path[:len(path)-len(".lock")]); err == nil {
			msg += fmt.Sprintf(" (pid %d, %s)", r.Pid, r.ReceiverURL)
		}
		return nil, errors.New(msg + ": use it, or stop it with Ctrl-C in its terminal")
	}
	return func() { f.Close(); os.Remove(path) }, nil
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
