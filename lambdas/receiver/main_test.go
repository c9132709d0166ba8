package main

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const testToken = events.TestToken

// receiverEvents is the documented answer to each events/receiver file:
// VERIFY is answered with the challenge's HMAC, a signed event with
// {"status":"received","eventId":...} once it is in the queue, a forged one
// with 401. body is the events/bodies file each was built from.
var receiverEvents = map[string]struct {
	body   string
	status int
}{
	"httpapi-verify.json":               {"verify.json", 200},
	"httpapi-vehicle-state.json":        {"vehicle_state.json", 200},
	"httpapi-vehicle-state-base64.json": {"vehicle_state.json", 200},
	"httpapi-vehicle-error.json":        {"vehicle_error.json", 200},
	"httpapi-bad-signature.json":        {"vehicle_state.json", 401},
	"rest-verify.json":                  {"verify.json", 200},
	"rest-vehicle-state.json":           {"vehicle_state.json", 200},
	"rest-vehicle-error.json":           {"vehicle_error.json", 200},
	"rest-bad-signature.json":           {"vehicle_error.json", 401},
}

// TestBootstrap runs the real binary (linux, this machine's architecture)
// under the Lambda Runtime Interface Emulator, as `sam local invoke` does,
// against the AWS emulator, and invokes it with every events/receiver file.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	q, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "bootstrap"))})
	if err != nil {
		t.Fatal(err)
	}
	secretID := awstest.Name(t, "bootstrap")
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secretID), SecretString: aws.String(testToken),
	}); err != nil {
		t.Fatal(err)
	}
	bin, size := awstest.BuildBootstrap(t, ".")
	t.Logf("receiver bootstrap: %d bytes (linux, host architecture)", size)
	// The events/ files are recordings: their meta.deliveredAt (January
	// 2026) would be refused as replays. The binary has no clock to set, so
	// the check is turned off, which also proves MAX_DELIVERY_AGE reaches it
	// (pkg/functions tests the check itself with a fixed clock).
	fn := awstest.StartFunction(t, bin, "receiver", awstest.FunctionEnv(awstest.Endpoint(t),
		map[string]string{"QUEUE_URL": *q.QueueUrl, "AMT_SECRET_ID": secretID, "MAX_DELIVERY_AGE": "0"}))

	files, err := os.ReadDir("../../events/receiver")
	if err != nil {
		t.Fatal(err)
	}
	var wantQueued []string
	for _, f := range files {
		want, ok := receiverEvents[f.Name()]
		if !ok {
			t.Errorf("events/receiver/%s: no documented answer in receiverEvents", f.Name())
			continue
		}
		body := events.MustRead("bodies/" + want.body)
		var envelope struct {
			EventID string `json:"eventId"`
			Data    struct {
				Challenge string `json:"challenge"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &envelope); err != nil {
			t.Fatal(err)
		}
		wantBody := "SC-Signature" // the 401's reason
		switch {
		case want.status != 200:
		case envelope.Data.Challenge != "":
			wantBody = `{"challenge":"` + smartcar.HashChallenge(testToken, envelope.Data.Challenge) + `"}`
		default:
			wantBody = `"status":"received","eventId":"` + envelope.EventID + `"`
			wantQueued = append(wantQueued, string(body))
		}

		id := "invoke-" + strings.TrimSuffix(f.Name(), ".json")
		res := fn.Invoke(t, id, events.MustRead("receiver/"+f.Name()))
		if res.Status != 200 || res.FunctionError != "" {
			t.Fatalf("%s: emulator answered %d (%s): %s\n%s", f.Name(), res.Status, res.FunctionError, res.Payload, fn.Output)
		}
		var resp apigw.Response
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			t.Fatalf("%s: %v: %s", f.Name(), err, res.Payload)
		}
		if resp.StatusCode != want.status || !strings.Contains(resp.Body, wantBody) {
			t.Errorf("%s: %d %s, want %d with %s", f.Name(), resp.StatusCode, resp.Body, want.status, wantBody)
		}
		// WARN and ERROR lines carry the request id the function read from
		// the Runtime API; INFO lines leave it out (see README, Logs).
		fn.AwaitOutput(t, "REPORT RequestId: "+id)
		if want.status == 401 {
			if !strings.Contains(fn.Output.String(), `"requestId":"`+id+`"`) {
				t.Errorf("%s: signature.failed lacks the invocation's request id %s\n%s", f.Name(), id, fn.Output)
			}
		}
	}

	// Every acknowledged event is in the queue, byte for byte; nothing else is.
	var queued []string
	for range 10 {
		out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			queued = append(queued, aws.ToString(m.Body))
		}
	}
	slices.Sort(queued)
	slices.Sort(wantQueued)
	if !slices.Equal(queued, wantQueued) {
		t.Errorf("queue holds %d messages, want the %d acknowledged bodies byte for byte:\n%q", len(queued), len(wantQueued), queued)
	}
}

// TestBootstrapInitError checks that a misconfigured function says why: on
// stderr, and to the Runtime API's /runtime/init/error, whose report the
// emulator returns as the invocation's answer (502), as Lambda does.
func TestBootstrapInitError(t *testing.T) {
	bin, _ := awstest.BuildBootstrap(t, ".")
	fn := awstest.StartFunction(t, bin, "receiver", awstest.FunctionEnv("",
		map[string]string{"AMT_SECRET_ID": "x", "MAX_BODY_BYTES": "lots"}))
	res := fn.Invoke(t, "invoke-init-error", events.MustRead("receiver/httpapi-verify.json"))
	if res.Status != 502 || res.FunctionError != "Runtime.InitError" {
		t.Fatalf("emulator answered %d (%s): %s, want 502 Runtime.InitError\n%s", res.Status, res.FunctionError, res.Payload, fn.Output)
	}
	fn.AwaitOutput(t, "receiver: init failed")
	var report struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(res.Payload, &report); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"QUEUE_URL", "MAX_BODY_BYTES"} {
		if !strings.Contains(report.ErrorMessage, name) {
			t.Errorf("init error report does not name %s: %s", name, res.Payload)
		}
		if !strings.Contains(fn.Output.String(), name) {
			t.Errorf("stderr does not name %s: %s", name, fn.Output)
		}
	}
}

// BenchmarkColdStart measures the function's init, which builds its
// clients but does no network I/O.
func BenchmarkColdStart(b *testing.B) {
	awstest.BenchmarkColdStart(b, ".", map[string]string{
		"QUEUE_URL": "http://127.0.0.1:1/q", "AMT_SECRET_ID": "s",
		"EVENTS_TABLE": "e", "STATE_TABLE": "s", "DLQ_URL": "http://127.0.0.1:1/d",
	})
}
