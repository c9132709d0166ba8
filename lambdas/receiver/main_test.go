package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/apigw"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const testToken = "00000000-test-amt-0000-000000000000"

// TestBootstrap runs the real binary as Lambda does, against a local
// Runtime API and the emulator, and feeds it events/ files.
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
	api := awstest.NewRuntimeAPI(t)
	// The events/ files are recordings: their meta.deliveredAt (January
	// 2026) would be refused as replays. The binary has no clock to set, so
	// the check is turned off, which also proves MAX_DELIVERY_AGE reaches it
	// (pkg/functions tests the check itself with a fixed clock).
	fn := awstest.StartBootstrap(t, bin, api, awstest.LambdaEnv(api, "receiver", awstest.Endpoint(t),
		map[string]string{"QUEUE_URL": *q.QueueUrl, "AMT_SECRET_ID": secretID, "MAX_DELIVERY_AGE": "0"}))
	t.Logf("receiver bootstrap: %d bytes (host build), init %v (process start to first /next)", size, fn.Init)

	for _, tt := range []struct {
		file string
		want int
		in   string
	}{
		{"httpapi-verify.json", 200, smartcar.HashChallenge(testToken, "7d1c0e52-93f4-4a8b-b6e2-5c0f1a9d3e74")},
		{"httpapi-vehicle-state.json", 200, `"status":"received"`},
		{"rest-bad-signature.json", 401, "SC-Signature"},
	} {
		event := events.MustRead("receiver/" + tt.file)
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := api.Invoke(ictx, event)
		cancel()
		if err != nil || res.Error {
			t.Fatalf("%s: %v, %+v\n%s", tt.file, err, res, fn.Output.String())
		}
		var resp apigw.Response
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.want || !strings.Contains(resp.Body, tt.in) {
			t.Errorf("%s: %d %s, want %d with %q", tt.file, resp.StatusCode, resp.Body, tt.want, tt.in)
		}
	}
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("queue holds %d messages, %v", len(out.Messages), err)
	}
	if !strings.Contains(fn.Output.String(), `"requestId":"00000000-0000-4000-8000-`) {
		t.Error("log lines lack the invocation's request id")
	}
}

// TestBootstrapInitError checks that a misconfigured function says why.
func TestBootstrapInitError(t *testing.T) {
	bin, _ := awstest.BuildBootstrap(t, ".")
	api := awstest.NewRuntimeAPI(t)
	cmd := exec.Command(bin)
	cmd.Env = awstest.LambdaEnv(api, "receiver", "", map[string]string{"AMT_SECRET_ID": "x", "MAX_BODY_BYTES": "lots"})
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the function started without QUEUE_URL")
	}
	for _, name := range []string{"QUEUE_URL", "MAX_BODY_BYTES"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("stderr does not name %s: %s", name, out)
		}
	}
	select {
	case body := <-api.InitError():
		if !strings.Contains(body, "QUEUE_URL") || !strings.Contains(body, "Runtime.InitError") {
			t.Errorf("init error = %s", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no init error posted to the Runtime API")
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
