// Command invoke runs one Lambda function with an event file as
// `sam local invoke` does, without Docker or SAM CLI (`make invoke`): it
// builds the function's bootstrap for linux and this machine's
// architecture, with `make build`'s flags, runs it under the Lambda Runtime
// Interface Emulator (aws-lambda-rie, the Runtime API SAM CLI runs in its
// containers; built into .tools/bin the first time), configured for the
// local stack of `make dev`, a deployed one (-stack) or the environment
// (-env), invokes it once with the event and prints its response on
// stdout. The function's log lines and the emulator's START, END and REPORT
// lines go to stderr. A function error, init error or timeout exits 1.
//
// -in-process runs the handler in this process instead, as this tool did
// before the emulator: no build, and the only way off Linux (where it is
// the default), but it skips what the emulator proves (the binary, its
// init, the Runtime API round trip).
//
// -sam-env writes, instead of invoking, the --env-vars file that points
// `sam local invoke` (`make sam-invoke`) at the same stack, and with
// -sam-template a copy of the synthesized template that declares the
// variables the file sets: SAM CLI sets only variables the template
// declares, and the deployed template declares no AWS_ENDPOINT_URL.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest/rie"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var target devstack.Target
	fs := devstack.NewFlagSet("invoke", "Usage: invoke -fn receiver|processor|publisher|reconciler -event FILE [flags]\n"+
		"       invoke -sam-env FILE [-sam-template TEMPLATE] [flags]\n\n", stderr, &target)
	fn := fs.String("fn", "receiver", "function: receiver, processor, publisher or reconciler")
	event := fs.String("event", "", "event file, e.g. events/receiver/httpapi-verify.json, events/processor/sqs-vehicle-state.json "+
		"or events/publisher/dynamodb-stream.json")
	inProcess := fs.Bool("in-process", runtime.GOOS != "linux", "run the handler in this process instead of its Linux bootstrap under aws-lambda-rie (the default off Linux)")
	bootstrap := fs.String("bootstrap", "", "the function's `executable`, built for linux and this machine's architecture (default: built from ./lambdas/FN)")
	tags := fs.String("tags", "", "extra build `tags` for the function, comma-separated (handlertest adds the probe handler pkg/handlers registers in tests)")
	samEnv := fs.String("sam-env", "", "write SAM CLI's --env-vars `file` for the stack's functions, and exit")
	samTemplate := fs.String("sam-template", "", "with -sam-env: the synthesized `template`, copied beside itself as *.sam-local.template.json, declaring the variables the file sets")
	samHost := fs.String("sam-host", "host.docker.internal", "with -sam-env: the `host` by which SAM's containers reach the local stack's emulator")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "invoke: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if *samEnv == "" && *event == "" {
		fs.Usage()
		return errUsage
	}
	if !slices.Contains(functionNames, *fn) {
		return fmt.Errorf("-fn must be receiver, processor, publisher or reconciler, not %q", *fn)
	}
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	if *samEnv != "" {
		return writeSAMFiles(target, res, *samHost, *samEnv, *samTemplate, stderr)
	}
	if *fn == "publisher" && !target.Env && res.EventBusName == "" {
		return errors.New("-fn publisher: the stack has no event bus (deployed before the publisher?): " +
			"deploy the current stack, or pass -env with EVENT_BUS_NAME and STATE_TABLE set")
	}
	if *fn == "reconciler" && target.Stack != "" && res.CredentialsSecret == "" {
		return errors.New("-fn reconciler: the stack has no reconciler (deployed without SMARTCAR_CREDENTIALS_SECRET; see README: reconciliation)")
	}
	payload, err := os.ReadFile(*event)
	if err != nil {
		return fmt.Errorf("event: %w (the samples are events/receiver/*.json, events/processor/*.json, events/publisher/*.json and events/reconciler/*.json)", err)
	}
	if *fn == "receiver" {
		if payload, err = resignForStack(ctx, cfg, res, payload, stderr); err != nil {
			return err
		}
	}
	env := functionEnv(*fn, target, res)
	var out []byte
	if *inProcess {
		if runtime.GOOS != "linux" {
			fmt.Fprintln(stderr, "invoke: aws-lambda-rie runs only on Linux: running the handler in-process")
		}
		out, err = invokeInProcess(ctx, *fn, env, cfg, payload, stderr)
	} else {
		out, err = invokeEmulated(ctx, *fn, *bootstrap, splitTags(*tags), emulatorEnv(target, res, env, os.Environ()), payload, stderr)
	}
	if len(out) > 0 {
		var pretty any
		if json.Unmarshal(out, &pretty) == nil {
			out, _ = json.MarshalIndent(pretty, "", "  ")
		}
		fmt.Fprintln(stdout, string(out))
	}
	return err
}

// functionNames are the functions, as -fn names them: their directories
// under lambdas/.
var functionNames = []string{"receiver", "processor", "publisher", "reconciler"}

// functionEnv is fn's variables on the target, as the stack sets them; the
// receiver's MAX_DELIVERY_AGE=0 unless set, since events/ holds recordings
// whose meta.deliveredAt it would refuse as replays; and, on the local
// stack, the processor's BATCH_CONCURRENCY=1 unless set. Under -env the
// function reads its own, and names any missing.
func functionEnv(fn string, target devstack.Target, res devstack.Resources) map[string]string {
	env := map[string]string{}
	switch {
	case target.Env:
	case fn == "receiver":
		env = res.ReceiverEnv()
	case fn == "publisher":
		env = res.PublisherEnv()
	case fn == "reconciler":
		env = res.ReconcilerEnv()
	default:
		env = res.ProcessorEnv()
	}
	if _, ok := os.LookupEnv("BATCH_CONCURRENCY"); !ok && fn == "processor" && local(target) {
		// One record at a time: moto rolls a failed transaction back by
		// restoring whole tables, erasing concurrent writes. In-process,
		// moto.Config serializes DynamoDB requests; a bootstrap cannot.
		env["BATCH_CONCURRENCY"] = "1"
	}
	if _, ok := os.LookupEnv("MAX_DELIVERY_AGE"); !ok && fn == "receiver" {
		env["MAX_DELIVERY_AGE"] = "0"
	}
	return env
}

// local tells whether the target is the local stack of `make dev`.
func local(target devstack.Target) bool { return !target.Env && target.Stack == "" }

// emulatorEnv is the environment the function gets under the emulator:
// this process's, with fnEnv on top; on the local stack, AWS pointed at its
// emulator in place of every AWS_ variable of this process, as its
// in-process configuration is (moto.Config). The function sees variables
// such as LOG_LEVEL=DEBUG set for `make invoke`.
func emulatorEnv(target devstack.Target, res devstack.Resources, fnEnv map[string]string, environ []string) []string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if local(target) && strings.HasPrefix(k, "AWS_") {
			continue
		}
		env[k] = v
	}
	if local(target) {
		maps.Copy(env, moto.Env(res.Endpoint))
	}
	maps.Copy(env, fnEnv)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func timeout(fn string) time.Duration {
	switch fn {
	case "processor":
		return pipeline.ProcessorTimeout
	case "publisher":
		return pipeline.PublisherTimeout
	case "reconciler":
		return pipeline.ReconcilerTimeout
	}
	return pipeline.ReceiverTimeout
}

// invokeEmulated runs bootstrap (built from ./lambdas/fn when empty) under
// aws-lambda-rie with env, invokes it once with payload, and returns the
// function's answer; an error when the function failed, whose report is
// then the answer.
// splitTags splits a -tags value.
func splitTags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func invokeEmulated(ctx context.Context, fn, bootstrap string, tags []string, env []string, payload []byte, stderr io.Writer) ([]byte, error) {
	if p, err := rie.Path(); err == nil {
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(stderr, "invoke: building aws-lambda-rie %s into %s (once) ...\n", rie.Version, p)
		}
	}
	path, err := rie.Install(ctx)
	if err != nil {
		return nil, err
	}
	if bootstrap == "" {
		root, err := checkout.WorkingRoot()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "invoke-"+fn+"-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bootstrap = filepath.Join(dir, "bootstrap")
		fmt.Fprintf(stderr, "invoke: building lambdas/%s for linux/%s ...\n", fn, runtime.GOARCH)
		if err := rie.Build(ctx, filepath.Join(root, "lambdas", fn), bootstrap, tags...); err != nil {
			return nil, err
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	e, err := rie.Start(startCtx, path, rie.Function{
		Bootstrap: bootstrap, Name: fn, Env: env, Timeout: timeout(fn), MemoryMB: pipeline.MemoryMB, Output: stderr,
	})
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	// The emulator enforces the function's timeout; this bounds the rest.
	invokeCtx, cancel := context.WithTimeout(ctx, timeout(fn)+30*time.Second)
	defer cancel()
	res, err := e.Invoke(invokeCtx, "", payload)
	if err != nil {
		return nil, err
	}
	if res.FunctionError != "" {
		return res.Payload, fmt.Errorf("function error %s (emulator answered %d)", res.FunctionError, res.Status)
	}
	return res.Payload, nil
}

// invokeInProcess runs fn's handler in this process, configured by env
// (then this process's environment), with payload.
func invokeInProcess(ctx context.Context, fn string, env map[string]string, cfg aws.Config, payload []byte, stderr io.Writer) ([]byte, error) {
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	var h lambda.Handler
	switch fn {
	case "receiver":
		f, err := functions.NewReceiver(getenv, cfg, stderr)
		if err != nil {
			return nil, err
		}
		h = lambda.NewHandler(f)
	case "publisher":
		f, err := functions.NewPublisher(getenv, cfg, stderr)
		if err != nil {
			return nil, err
		}
		h = lambda.NewHandler(f)
	case "reconciler":
		f, err := functions.NewReconciler(getenv, cfg, stderr)
		if err != nil {
			return nil, err
		}
		h = lambda.NewHandler(f)
	default:
		f, err := functions.NewProcessor(getenv, cfg, stderr)
		if err != nil {
			return nil, err
		}
		h = lambda.NewHandler(f)
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "invoke-local"})
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		return nil, fmt.Errorf("handler error: %w", err)
	}
	return out, nil
}

// samEnvVars is SAM CLI's --env-vars file for the target: each function's
// variables, keyed by logical id (the publisher's only on a stack with an
// event bus: one deployed before the publisher has no such function); on
// the local stack, with the AWS SDK pointed at its emulator by the name
// host, by which the containers reach this machine.
func samEnvVars(target devstack.Target, res devstack.Resources, host string) map[string]map[string]string {
	files := map[string]map[string]string{
		pipeline.ReceiverFunctionID:  functionEnv("receiver", target, res),
		pipeline.ProcessorFunctionID: functionEnv("processor", target, res),
	}
	if res.EventBusName != "" {
		files[pipeline.PublisherFunctionID] = functionEnv("publisher", target, res)
	}
	if res.CredentialsSecret != "" {
		files[pipeline.ReconcilerFunctionID] = functionEnv("reconciler", target, res)
	}
	if !local(target) {
		return files
	}
	for _, env := range files {
		for k, v := range env {
			if strings.HasPrefix(v, res.Endpoint+"/") { // the queues' URLs
				env[k] = strings.Replace(v, res.Endpoint, rehost(res.Endpoint, host), 1)
			}
		}
		for k, v := range moto.Env(rehost(res.Endpoint, host)) {
			if k != "AWS_CONFIG_FILE" && k != "AWS_SHARED_CREDENTIALS_FILE" { // no such files in the containers' images to hide
				env[k] = v
			}
		}
	}
	return files
}

// rehost is endpoint with its host replaced by host, the port kept.
func rehost(endpoint, host string) string {
	u, err := url.Parse(endpoint)
	if err != nil || host == "" {
		return endpoint
	}
	if port := u.Port(); port != "" {
		u.Host = host + ":" + port
	} else {
		u.Host = host
	}
	return u.String()
}

// writeSAMFiles writes the --env-vars file to envPath and, with template,
// a copy of the template beside it whose functions declare every variable
// the file sets: SAM CLI passes a function only the variables its template
// declares.
func writeSAMFiles(target devstack.Target, res devstack.Resources, host, envPath, template string, stderr io.Writer) error {
	files := samEnvVars(target, res, host)
	b, _ := json.MarshalIndent(files, "", "  ")
	if err := os.WriteFile(envPath, append(b, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "invoke: wrote %s\n", envPath)
	if template == "" {
		return nil
	}
	out, added, err := declareVariables(template, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "invoke: wrote %s (declares %s besides the template's variables; for SAM CLI only, never deploy it)\n",
		out, strings.Join(added, ", "))
	return nil
}

// samTemplatePath is where declareVariables writes its copy of template.
func samTemplatePath(template string) string {
	return strings.TrimSuffix(strings.TrimSuffix(template, ".json"), ".template") + ".sam-local.template.json"
}

// declareVariables writes a copy of template (samTemplatePath) in which
// each function of files declares each of its variables, empty where the
// template had none, and returns its path and the variables added.
func declareVariables(template string, files map[string]map[string]string) (path string, added []string, err error) {
	b, err := os.ReadFile(template)
	if err != nil {
		return "", nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", nil, fmt.Errorf("%s: %w", template, err)
	}
	resources, _ := doc["Resources"].(map[string]any)
	seen := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(files)) {
		fn, ok := resources[id].(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("%s has no resource %s", template, id)
		}
		props := child(fn, "Properties")
		vars := child(child(props, "Environment"), "Variables")
		for _, k := range slices.Sorted(maps.Keys(files[id])) {
			if _, ok := vars[k]; !ok {
				vars[k] = ""
				if !seen[k] {
					seen[k] = true
					added = append(added, k)
				}
			}
		}
	}
	out, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return "", nil, err
	}
	path = samTemplatePath(template)
	return path, added, os.WriteFile(path, append(out, '\n'), 0o644)
}

// child returns m[key] as an object, adding an empty one if it is missing.
func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}
