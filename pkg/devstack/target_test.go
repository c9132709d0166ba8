package devstack_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
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
