package devstack_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

// TestResolveEnv: with -env the resources are those the Lambdas'
// variables name, reached with the standard AWS configuration (here
// AWS_ENDPOINT_URL to the emulator); a variable the tool needs and lacks is
// named in the error, with what it should name.
func TestResolveEnv(t *testing.T) {
	awstest.SetEnv(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(awstest.Config(t))
	queue, queueARN := createQueue(t, client, awstest.Name(t, "queue"))
	dlqURL, dlqARN := createQueue(t, client, awstest.Name(t, "dlq"))
	missingQueue := strings.Replace(queue, "/queue-", "/missing-", 1)
	all := map[string]string{
		"STATE_TABLE": "vehicles", "EVENTS_TABLE": "events", "QUEUE_URL": queue, "DLQ_URL": dlqURL, "AMT_SECRET_ID": "smartcar/amt",
	}

	tests := []struct {
		name    string
		stack   string
		needs   []string
		env     map[string]string
		want    devstack.Resources
		wantErr []string // substrings of the error; none means success
	}{
		{name: "state: the state table", needs: []string{"STATE_TABLE"}, env: map[string]string{"STATE_TABLE": "vehicles", "EVENTS_TABLE": "events"},
			want: devstack.Resources{StateTable: "vehicles", EventsTable: "events"}},
		{name: "state: STATE_TABLE unset", needs: []string{"STATE_TABLE"}, env: map[string]string{"EVENTS_TABLE": "events"},
			wantErr: []string{"STATE_TABLE (the vehicle-state table) not set"}},
		{name: "state: STATE_TABLE blank", needs: []string{"STATE_TABLE"}, env: map[string]string{"STATE_TABLE": "  "},
			wantErr: []string{"STATE_TABLE"}},
		{name: "dlq list: the DLQ and its ARN", needs: []string{"DLQ_URL"}, env: map[string]string{"DLQ_URL": dlqURL},
			want: devstack.Resources{DLQURL: dlqURL, DLQARN: dlqARN}},
		{name: "dlq redrive: both queues and their ARNs", needs: []string{"DLQ_URL", "QUEUE_URL"}, env: all,
			want: devstack.Resources{QueueURL: queue, QueueARN: queueARN, DLQURL: dlqURL, DLQARN: dlqARN,
				StateTable: "vehicles", EventsTable: "events", SecretID: "smartcar/amt"}},
		{name: "dlq redrive: every missing variable named", needs: []string{"DLQ_URL", "QUEUE_URL"}, env: map[string]string{},
			wantErr: []string{"DLQ_URL (the dead-letter queue's URL)", "QUEUE_URL (the event queue's URL)"}},
		{name: "dlq: a queue that does not exist", needs: []string{"DLQ_URL"}, env: map[string]string{"DLQ_URL": missingQueue},
			wantErr: []string{"DLQ_URL", missingQueue}},
		{name: "send: the secret", needs: []string{"AMT_SECRET_ID"}, env: map[string]string{"AMT_SECRET_ID": "smartcar/amt"},
			want: devstack.Resources{SecretID: "smartcar/amt"}},
		{name: "invoke: nothing needed", env: map[string]string{}},
		{name: "-env with -stack", stack: "SmartcarWebhookReceiver", needs: []string{"STATE_TABLE"}, env: all,
			wantErr: []string{"-env and -stack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := devstack.Target{Env: true, Stack: tt.stack, Needs: tt.needs, Getenv: func(k string) string { return tt.env[k] }}
			got, cfg, err := target.Resolve(ctx)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; resources %+v", got)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("resources %+v, want %+v", got, tt.want)
			}
			// The config is the standard one: it reaches the emulator
			// through AWS_ENDPOINT_URL.
			if _, err := sqs.NewFromConfig(cfg).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue[strings.LastIndex(queue, "/")+1:])}); err != nil {
				t.Errorf("the config does not reach the emulator: %v", err)
			}
		})
	}
}

func createQueue(t *testing.T, client *sqs.Client, name string) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl), attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// newCheckout makes a directory that looks like a checkout of this project
// (a go.mod declaring its module), with a subdirectory.
func newCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+checkout.ModulePath+"\n\ngo 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "scripts", "dlq"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startDev does what make dev does with its state: takes the checkout's
// lock and describes its stack, here one at endpoint.
func startDev(t *testing.T, endpoint string) (stateFile string, unlock func()) {
	t.Helper()
	stateFile = devstack.StateFile()
	unlock, err := devstack.Lock(stateFile, devstack.LockOwner{Pid: os.Getpid(), ReceiverURL: endpoint + "/webhooks/smartcar"})
	if err != nil {
		t.Fatal(err)
	}
	if err := devstack.WriteState(stateFile, devstack.Resources{Endpoint: endpoint, Pid: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	return stateFile, unlock
}

// TestOneLocalStackPerCheckout: each checkout's make dev describes its stack
// in its own .dev/, found from anywhere inside the checkout, so the tools
// run in one checkout talk to its stack and not to another's; the lock
// refuses a second make dev in the same checkout, naming the running one,
// and not in another.
func TestOneLocalStackPerCheckout(t *testing.T) {
	t.Setenv(devstack.EnvStateFile, "")
	ctx := context.Background()
	a, b := newCheckout(t), newCheckout(t)

	t.Chdir(a)
	stateA, unlockA := startDev(t, "http://127.0.0.1:1111")
	if want := filepath.Join(a, ".dev", "stack.json"); stateA != want {
		t.Errorf("state file %s, want %s", stateA, want)
	}
	// A second make dev in the same checkout is refused, and told which.
	if _, err := devstack.Lock(devstack.StateFile(), devstack.LockOwner{Pid: 1}); err == nil {
		t.Fatal("a second make dev in the same checkout was not refused")
	} else if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) ||
		!strings.Contains(msg, "http://127.0.0.1:1111/webhooks/smartcar") || !strings.Contains(msg, "already running") {
		t.Errorf("refusal %q does not name the running make dev (pid and receiver)", msg)
	}

	t.Chdir(b)
	stateB, unlockB := startDev(t, "http://127.0.0.1:2222") // another checkout: not refused
	defer unlockB()
	if stateA == stateB {
		t.Fatalf("both checkouts use the state file %s", stateA)
	}

	for _, tc := range []struct{ dir, want string }{
		{a, "http://127.0.0.1:1111"}, {filepath.Join(a, "scripts", "dlq"), "http://127.0.0.1:1111"},
		{b, "http://127.0.0.1:2222"}, {filepath.Join(b, "scripts"), "http://127.0.0.1:2222"},
	} {
		t.Chdir(tc.dir)
		var target devstack.Target // as the tools' flags leave it
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		target.AddFlags(fs)
		res, _, err := target.Resolve(ctx)
		if err != nil || res.Endpoint != tc.want {
			t.Errorf("from %s: stack at %q, %v; want %s", tc.dir, res.Endpoint, err, tc.want)
		}
	}

	// Once a's make dev ends without removing its state (killed), its
	// tools say so rather than use an emulator that is gone; and make
	// dev starts there again.
	unlockA()
	t.Chdir(a)
	if _, _, err := (devstack.Target{}).Resolve(ctx); err == nil || !strings.Contains(err.Error(), "no longer running") {
		t.Errorf("stale state: %v, want an error saying the stack is no longer running", err)
	}
	if _, unlock := startDev(t, "http://127.0.0.1:3333"); unlock != nil {
		unlock()
	}
}

// TestDeployedStackWithoutAWSConfiguration: targeting a deployed stack with
// no region, or no credentials (the SDK's chain then ends at EC2 instance
// metadata), fails with a line saying what to set.
func TestDeployedStackWithoutAWSConfiguration(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true") // no IMDS here: fail at once
	ctx := context.Background()
	target := devstack.Target{Stack: "SmartcarWebhookReceiver"}

	_, _, err := target.Resolve(ctx)
	if err == nil || !strings.Contains(err.Error(), "\nhint: set AWS_REGION") {
		t.Errorf("no region: %v; want a hint naming AWS_REGION", err)
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	_, _, err = target.Resolve(ctx)
	if err == nil || !strings.Contains(err.Error(), "hint: set AWS_PROFILE") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v; want a hint naming AWS_PROFILE and AWS_ACCESS_KEY_ID", err)
	}
	if n := strings.Count(err.Error(), "\n"); n != 1 {
		t.Errorf("error %q: want the SDK's error and one hint line", err)
	}
	t.Setenv("AWS_PROFILE", "missing")
	if _, _, err = target.Resolve(ctx); err == nil || !strings.Contains(err.Error(), "hint: set AWS_PROFILE") {
		t.Errorf("unknown profile: %v; want the hint", err)
	}
	other := errors.New("stack SmartcarWebhookReceiver: ValidationError: Stack with id SmartcarWebhookReceiver does not exist")
	if got := devstack.WithAWSHint(other); got != other {
		t.Errorf("WithAWSHint changed an error that is not about configuration: %v", got)
	}
}

// TestDeployedStackNamesItsSecret: a deployed stack's resources come from
// its outputs, the secret's name too (SecretName); a stack deployed before
// that output falls back to AMT_SECRET_ID, as the Makefile sets it.
func TestDeployedStackNamesItsSecret(t *testing.T) {
	awstest.SetEnv(t)
	ctx := context.Background()
	cf := cloudformation.NewFromConfig(awstest.Config(t))
	deploy := func(name, secretOutput string) {
		t.Helper()
		outputs := `"QueueUrl": {"Value": {"Ref": "Queue"}}, "DlqUrl": {"Value": {"Ref": "Dlq"}},
			"StateTableName": {"Value": "vehicles"}, "EventsTableName": {"Value": "events"}, "WebhookUrl": {"Value": "https://example.com/webhooks/smartcar"}`
		if secretOutput != "" {
			outputs += `, "SecretName": {"Value": "` + secretOutput + `"}`
		}
		template := `{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "` + name + `-q"}},
			"Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "` + name + `-dlq"}}}, "Outputs": {` + outputs + `}}`
		if _, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(template)}); err != nil {
			t.Fatal(err)
		}
	}
	named, older := awstest.Name(t, "named"), awstest.Name(t, "older")
	deploy(named, "team/amt")
	deploy(older, "")
	t.Setenv(devstack.EnvSecretID, "team/older-amt")
	for stack, want := range map[string]string{named: "team/amt", older: "team/older-amt"} {
		res, _, err := devstack.Target{Stack: stack}.Resolve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.SecretID != want || res.ReceiverURL != "https://example.com/webhooks/smartcar" {
			t.Errorf("stack %s: secret %q, receiver %q; want %q", stack, res.SecretID, res.ReceiverURL, want)
		}
	}
}

// TestTargetCredentialsSecret: the Smartcar credentials secret the
// reconciler reads is a deployed stack's output SmartcarCredentialsSecretArn
// (none for a stack deployed without it), and SMARTCAR_CREDENTIALS_SECRET
// under -env.
func TestTargetCredentialsSecret(t *testing.T) {
	awstest.SetEnv(t)
	ctx := context.Background()
	cf := cloudformation.NewFromConfig(awstest.Config(t))
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smartcar/app-AbCdEf"
	deploy := func(name, secretOutput string) {
		t.Helper()
		outputs := `"QueueUrl": {"Value": {"Ref": "Queue"}}, "DlqUrl": {"Value": {"Ref": "Dlq"}}, "StateTableName": {"Value": "vehicles"}`
		if secretOutput != "" {
			outputs += `, "SmartcarCredentialsSecretArn": {"Value": "` + secretOutput + `"}`
		}
		template := `{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "` + name + `-q"}},
			"Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "` + name + `-dlq"}}}, "Outputs": {` + outputs + `}}`
		if _, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(template)}); err != nil {
			t.Fatal(err)
		}
	}
	with, without := awstest.Name(t, "with"), awstest.Name(t, "without")
	deploy(with, arn)
	deploy(without, "")
	t.Setenv(devstack.EnvCredentialsSecret, "ignored/for-a-stack")
	for stack, want := range map[string]string{with: arn, without: ""} {
		res, _, err := devstack.Target{Stack: stack}.Resolve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.CredentialsSecret != want {
			t.Errorf("stack %s: credentials secret %q, want %q", stack, res.CredentialsSecret, want)
		}
	}

	env := map[string]string{"STATE_TABLE": "vehicles", "SMARTCAR_CREDENTIALS_SECRET": " smartcar/app "}
	target := devstack.Target{Env: true, Needs: []string{devstack.EnvCredentialsSecret}, Getenv: func(k string) string { return env[k] }}
	if res, _, err := target.Resolve(ctx); err != nil || res.CredentialsSecret != "smartcar/app" {
		t.Errorf("-env: credentials secret %q, %v; want smartcar/app", res.CredentialsSecret, err)
	}
	delete(env, "SMARTCAR_CREDENTIALS_SECRET")
	if _, _, err := target.Resolve(ctx); err == nil || !strings.Contains(err.Error(), "SMARTCAR_CREDENTIALS_SECRET (the secret (name or ARN) holding the Smartcar application's clientId") {
		t.Errorf("-env without the secret: %v; want an error naming SMARTCAR_CREDENTIALS_SECRET and what it names", err)
	}
}
