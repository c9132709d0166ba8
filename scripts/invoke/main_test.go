package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack/devstacktest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// testToken signs the events/ files.
const testToken = samples.TestToken

// localStack provisions a stack on the AWS emulator as `make dev` does, and
// describes it in a state file whose lock it holds, as a running `make dev`
// does for the tools.
func localStack(t *testing.T) (devstack.Resources, string) {
	t.Helper()
	return localStackWithToken(t, testToken)
}

// localStackWithToken is localStack with the secret holding token.
func localStackWithToken(t *testing.T, token string) (devstack.Resources, string) {
	t.Helper()
	return devstacktest.Local(t, "invoke", token)
}

// invoke runs the tool as `make invoke` does, on the stack in state.
func invoke(t *testing.T, state string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	if err := run(context.Background(), append([]string{"-state", state}, args...), &out, &errs); err != nil {
		t.Fatalf("invoke %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errs.String())
	}
	return out.String(), errs.String()
}

// TestInvokeUnderEmulator: `make invoke` builds the Linux bootstrap, runs
// it under aws-lambda-rie against the local stack, and prints the
// function's documented answer: the receiver acknowledges a signed
// VEHICLE_STATE once it is in the queue, byte for byte; the processor
// applies a batch, dead-letters its poison record and reports no failures;
// the publisher puts the domain events of a stream batch on the stack's
// bus and reports no failures.
func TestInvokeUnderEmulator(t *testing.T) {
	awstest.RIE(t) // skips where the emulator cannot run
	// The function sees this process's variables, as under `make invoke`.
	t.Setenv("LOG_LEVEL", "DEBUG")
	res, state := localStack(t)

	t.Run("receiver", func(t *testing.T) {
		stdout, stderr := invoke(t, state, "-fn", "receiver", "-event", "../../events/receiver/httpapi-vehicle-state.json")
		var resp apigw.Response
		if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"status":"received","eventId":"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"`) {
			t.Errorf("response %+v, want 200 received", resp)
		}
		for _, want := range []string{"START RequestId: ", "REPORT RequestId: ", `"message":"webhook.enqueued"`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q: the function did not run under the emulator\n%s", want, stderr)
			}
		}
		queued := awstest.QueueBodies(t, res.QueueURL)
		if len(queued) != 1 || queued[0] != string(samples.MustRead("bodies/vehicle_state.json")) {
			t.Errorf("queue holds %q, want the body byte for byte", queued)
		}
	})

	t.Run("processor", func(t *testing.T) {
		event := "../../events/processor/sqs-batch-with-poison.json"
		stdout, stderr := invoke(t, state, "-fn", "processor", "-event", event)
		var resp events.SQSEventResponse
		if err := json.Unmarshal([]byte(stdout), &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("response %s (%v), want no batchItemFailures", stdout, err)
		}
		if !strings.Contains(stderr, "REPORT RequestId: ") || strings.Count(stderr, `"message":"processing.succeeded"`) != 2 {
			t.Errorf("stderr lacks the emulator's REPORT or two processing.succeeded lines:\n%s", stderr)
		}
		if !strings.Contains(stderr, `"message":"processing.started"`) {
			t.Errorf("no DEBUG line: the function did not see LOG_LEVEL=DEBUG\n%s", stderr)
		}
		if dead := awstest.QueueBodies(t, res.DLQURL); len(dead) != 1 {
			t.Errorf("DLQ holds %q, want the poison record", dead)
		}
	})

	t.Run("publisher", func(t *testing.T) {
		stdout, stderr := invoke(t, state, "-fn", "publisher", "-event", "../../events/publisher/dynamodb-stream.json")
		checkPublished(t, res, stdout)
		if !strings.Contains(stderr, "REPORT RequestId: ") || !strings.Contains(stderr, `"DomainEventsPublished":4`) {
			t.Errorf("stderr lacks the emulator's REPORT or the DomainEventsPublished metric:\n%s", stderr)
		}
	})

	// The processor stored the sample vehicle, with its user: a dry run
	// would poll it once, and calls nothing (no credentials needed).
	t.Run("reconciler", func(t *testing.T) {
		stdout, stderr := invoke(t, state, "-fn", "reconciler", "-event", "../../events/reconciler/dry-run.json")
		var rep reconcile.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		if !rep.DryRun || rep.Selected != 1 || rep.Reconciled != 1 || rep.APICalls != 1 || rep.Failed != 0 {
			t.Errorf("report %s, want a dry run that would poll 1 vehicle with 1 call", stdout)
		}
		if !strings.Contains(stderr, "REPORT RequestId: ") || !strings.Contains(stderr, `"message":"reconcile.dry_run"`) {
			t.Errorf("stderr lacks the emulator's REPORT or the reconcile.dry_run line:\n%s", stderr)
		}
	})
}

// publishedSample are the detail-types of the domain events of
// events/publisher/dynamodb-stream.json (lambdas/publisher documents them).
var publishedSample = []string{"vehicle.error.raised", "vehicle.reauth.required", "vehicle.signals.changed", "vehicle.signals.changed"}

// checkPublished checks the publisher's answer to
// events/publisher/dynamodb-stream.json, no batchItemFailures, and that
// its events reached the stack's bus: its tail queue receives them.
func checkPublished(t *testing.T, res devstack.Resources, stdout string) {
	t.Helper()
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("response %s (%v), want no batchItemFailures", stdout, err)
	}
	var got []string
	for deadline := time.Now().Add(5 * time.Second); len(got) < len(publishedSample) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, body := range awstest.QueueBodies(t, res.EventsTailQueueURL) {
			var ev struct {
				DetailType string `json:"detail-type"`
				Source     string `json:"source"`
			}
			if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.Source != res.EventSource {
				t.Fatalf("not a domain event of source %s (%v): %s", res.EventSource, err, body)
			}
			got = append(got, ev.DetailType)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, publishedSample) {
		t.Errorf("the bus got %q, want %q", got, publishedSample)
	}
}

// TestInvokeRunsRegisteredHandlers: a handler registered in pkg/handlers
// runs under `make invoke`: built with -tags handlertest, Register adds a
// probe that logs handler.probe_ran for each event it runs for.
func TestInvokeRunsRegisteredHandlers(t *testing.T) {
	awstest.RIE(t)
	_, state := localStack(t)
	_, stderr := invoke(t, state, "-tags", "handlertest", "-fn", "processor", "-event", "../../events/processor/sqs-vehicle-state.json")
	if !strings.Contains(stderr, `"message":"handler.probe_ran","eventId":"4a7c9e1b-3d5f-4b2a-8c6e-1f3a5b7d9e02"`) {
		t.Errorf("the registered handler did not run under make invoke:\n%s", stderr)
	}
}

// TestInvokeInProcess: -in-process runs the handler in this process, with
// no build and no emulator.
func TestInvokeInProcess(t *testing.T) {
	_, state := localStack(t)
	stdout, stderr := invoke(t, state, "-in-process", "-fn", "receiver", "-event", "../../events/receiver/rest-verify.json")
	want := smartcar.HashChallenge(testToken, "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74")
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, `"statusCode": 200`) {
		t.Errorf("response %s, want 200 with the challenge's HMAC %s", stdout, want)
	}
	if strings.Contains(stderr, "START RequestId") {
		t.Errorf("-in-process ran the emulator:\n%s", stderr)
	}

	t.Run("publisher", func(t *testing.T) {
		res, state := localStack(t)
		stdout, _ := invoke(t, state, "-in-process", "-fn", "publisher", "-event", "../../events/publisher/dynamodb-stream.json")
		checkPublished(t, res, stdout)
	})
}

// TestSamplesAgainstADevToken: against a local stack whose token is not
// the samples' (make dev makes one up), every events/receiver file still
// gives its documented answer: a sample signed with the test token is
// re-signed with the stack's current token, one signed wrongly stays so.
func TestSamplesAgainstADevToken(t *testing.T) {
	token := devstack.NewDevToken()
	_, state := localStackWithToken(t, token)
	files, err := os.ReadDir("../../events/receiver")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Name(), func(t *testing.T) {
			stdout, stderr := invoke(t, state, "-in-process", "-fn", "receiver", "-event", "../../events/receiver/"+f.Name())
			var resp apigw.Response
			if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			switch name := f.Name(); {
			case strings.Contains(name, "bad-signature"):
				if resp.StatusCode != 401 || strings.Contains(stderr, "re-signed") {
					t.Errorf("%s: %d (%s), want 401 and no re-signing", name, resp.StatusCode, stderr)
				}
			case strings.Contains(name, "verify"):
				if want := smartcar.HashChallenge(token, "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74"); resp.StatusCode != 200 || !strings.Contains(resp.Body, want) {
					t.Errorf("%s: %d %s, want 200 with the challenge's HMAC under the stack's token", name, resp.StatusCode, resp.Body)
				}
			default:
				if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"status":"received"`) {
					t.Errorf("%s: %d %s, want 200 received", name, resp.StatusCode, resp.Body)
				}
			}
		})
	}
	t.Run("under the emulator", func(t *testing.T) {
		awstest.RIE(t)
		stdout, _ := invoke(t, state, "-fn", "receiver", "-event", "../../events/receiver/httpapi-verify.json")
		if want := smartcar.HashChallenge(token, "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74"); !strings.Contains(stdout, want) {
			t.Errorf("response %s, want the challenge's HMAC under the stack's token", stdout)
		}
	})
}

// TestSAMEnv: -sam-env writes SAM CLI's --env-vars file pointing both
// functions at the local stack's emulator as the containers reach it, and
// a copy of the template declaring the variables the template lacks.
func TestSAMEnv(t *testing.T) {
	res, state := localStack(t)
	dir := t.TempDir()
	template := filepath.Join(dir, "Stack.template.json")
	if err := os.WriteFile(template, []byte(`{"Resources": {
		"ReceiverFunction": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "asset.r"},
			"Properties": {"Environment": {"Variables": {"QUEUE_URL": {"Ref": "Queue"}, "AMT_SECRET_ID": "smartcar/amt", "MAX_DELIVERY_AGE": "1h", "LOG_LEVEL": "INFO"}}}},
		"ProcessorFunction": {"Type": "AWS::Lambda::Function", "Properties": {}},
		"PublisherFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {"EVENT_BUS_NAME": {"Ref": "Bus"}}}}},
		"Queue": {"Type": "AWS::SQS::Queue"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "sam-env.json")
	invoke(t, state, "-sam-env", envFile, "-sam-template", template)

	var files map[string]map[string]string
	b, err := os.ReadFile(envFile)
	if err != nil || json.Unmarshal(b, &files) != nil {
		t.Fatalf("%s: %v: %s", envFile, err, b)
	}
	endpoint := strings.Replace(res.Endpoint, "127.0.0.1", "host.docker.internal", 1)
	recv, proc := files["ReceiverFunction"], files["ProcessorFunction"]
	for k, want := range map[string]string{
		"QUEUE_URL": strings.Replace(res.QueueURL, "127.0.0.1", "host.docker.internal", 1), "AMT_SECRET_ID": res.SecretID,
		"MAX_DELIVERY_AGE": "0", "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
	} {
		if recv[k] != want {
			t.Errorf("ReceiverFunction %s = %q, want %q", k, recv[k], want)
		}
	}
	for k, want := range map[string]string{
		"EVENTS_TABLE": res.EventsTable, "STATE_TABLE": res.StateTable,
		"DLQ_URL": strings.Replace(res.DLQURL, "127.0.0.1", "host.docker.internal", 1), "AWS_ENDPOINT_URL": endpoint,
	} {
		if proc[k] != want {
			t.Errorf("ProcessorFunction %s = %q, want %q", k, proc[k], want)
		}
	}
	pub := files["PublisherFunction"]
	for k, want := range map[string]string{
		"EVENT_BUS_NAME": res.EventBusName, "EVENT_SOURCE": res.EventSource, "STATE_TABLE": res.StateTable, "AWS_ENDPOINT_URL": endpoint,
	} {
		if pub[k] != want {
			t.Errorf("PublisherFunction %s = %q, want %q", k, pub[k], want)
		}
	}

	var doc struct {
		Resources map[string]struct {
			Metadata   map[string]any
			Properties struct {
				Environment struct{ Variables map[string]any }
			}
		}
	}
	b, err = os.ReadFile(filepath.Join(dir, "Stack.sam-local.template.json"))
	if err != nil || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("SAM template copy: %v: %s", err, b)
	}
	for id, vars := range files {
		declared := doc.Resources[id].Properties.Environment.Variables
		for k := range vars {
			if _, ok := declared[k]; !ok {
				t.Errorf("%s does not declare %s: SAM CLI would not set it", id, k)
			}
		}
	}
	if got := doc.Resources["ReceiverFunction"].Properties.Environment.Variables["QUEUE_URL"]; got == "" {
		t.Error("the copy lost the template's own value of QUEUE_URL")
	}
	if doc.Resources["ReceiverFunction"].Metadata["aws:asset:path"] != "asset.r" {
		t.Error("the copy lost the asset metadata SAM CLI finds the code by")
	}
}

// TestSAMEnvWithoutBus: a stack deployed before the publisher has no
// event bus, nor a PublisherFunction for the --env-vars file to name.
func TestSAMEnvWithoutBus(t *testing.T) {
	res := devstack.Resources{QueueURL: "https://sqs/q", DLQURL: "https://sqs/d", EventsTable: "e", StateTable: "s", SecretID: "x"}
	files := samEnvVars(devstack.Target{Stack: "Old"}, res, "host.docker.internal")
	if _, ok := files["PublisherFunction"]; ok || len(files) != 2 {
		t.Errorf("files for %v, want ReceiverFunction and ProcessorFunction alone", slices.Collect(maps.Keys(files)))
	}
	res.EventBusName, res.EventSource = "bus", "src"
	if pub := samEnvVars(devstack.Target{Stack: "New"}, res, "")["PublisherFunction"]; pub["EVENT_BUS_NAME"] != "bus" || pub["STATE_TABLE"] != "s" {
		t.Errorf("PublisherFunction's variables %v", pub)
	}
}
