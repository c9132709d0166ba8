package devstack

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

// The Lambdas' environment variables that name resources: with -env the
// tools read the same ones.
const (
	EnvQueueURL    = "QUEUE_URL"
	EnvDLQURL      = "DLQ_URL"
	EnvEventsTable = "EVENTS_TABLE"
	EnvStateTable  = "STATE_TABLE"
	EnvSecretID    = "AMT_SECRET_ID"
	// EnvArchiveStream names the Firehose delivery stream the processor
	// archives to; EnvArchiveBucket, read by the replay tool alone, the
	// bucket it writes.
	EnvArchiveStream = "ARCHIVE_STREAM"
	EnvArchiveBucket = "ARCHIVE_BUCKET"
	// EnvLegacyStateTable names the one-item state table of an upgraded
	// stack; optional.
	EnvLegacyStateTable = "LEGACY_STATE_TABLE"
	// EnvEventBusName names the bus the publisher puts domain events on,
	// EnvEventSource their source.
	EnvEventBusName = "EVENT_BUS_NAME"
	EnvEventSource  = "EVENT_SOURCE"
	// EnvEventsTailQueueURL, read by events-tail alone, names a queue a
	// rule on the bus sends the domain events to.
	EnvEventsTailQueueURL = "EVENTS_TAIL_QUEUE_URL"
	// EnvCredentialsSecret names the secret of the Smartcar application's
	// credentials, which the reconciler reads.
	EnvCredentialsSecret = "SMARTCAR_CREDENTIALS_SECRET"
)

// envMeaning says what each variable names, for the error that finds one
// missing.
var envMeaning = map[string]string{
	EnvQueueURL:           "the event queue's URL",
	EnvDLQURL:             "the dead-letter queue's URL",
	EnvEventsTable:        "the events (idempotency) table",
	EnvStateTable:         "the vehicle-state table",
	EnvSecretID:           "the secret holding the Application Management Token",
	EnvArchiveBucket:      "the archive bucket",
	EnvEventBusName:       "the domain events' EventBridge bus",
	EnvEventsTailQueueURL: "the URL of an SQS queue a rule on the domain events' bus sends them to, which events-tail reads",
	EnvCredentialsSecret:  "the secret (name or ARN) holding the Smartcar application's clientId and clientSecret, which the reconciler reads",
}

// Target says which stack a tool works on: the local one (the default), a
// deployed one found by its CloudFormation stack name (-stack), or any
// other, named by the environment variables the Lambdas read (-env).
type Target struct {
	// Stack names a deployed CloudFormation stack of this project's CDK
	// app; its outputs name the resources.
	Stack string
	// StateFile is the local stack's state file; empty means this
	// checkout's (LocalStateFile).
	StateFile string
	// Env takes the resources from the Lambdas' environment variables
	// (QUEUE_URL, DLQ_URL, EVENTS_TABLE, STATE_TABLE, AMT_SECRET_ID) and
	// the AWS configuration from the standard chain (AWS_ENDPOINT_URL,
	// AWS_REGION, AWS_PROFILE, credentials).
	Env bool
	// Needs are the variables the tool cannot work without: under Env,
	// Resolve names every one that is not set, and looks up the ARN of
	// each queue among them.
	Needs []string
	// Getenv reads the resources' variables; nil means os.Getenv. The AWS
	// configuration always comes from the process environment.
	Getenv func(string) string
}

// AddFlags registers -stack, -env and -state on fs.
func (t *Target) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.Stack, "stack", "", "work on the deployed CloudFormation stack `NAME` (make's AWS=1 passes -stack $STACK, "+
		"SmartcarWebhookReceiver by default), reached with your AWS configuration (AWS_PROFILE or credentials, AWS_REGION). "+
		"Without -stack or -env: the local stack of this checkout's make dev")
	t.AddEnvFlag(fs)
	fs.StringVar(&t.StateFile, "state", StateFile(), "the local stack's state `file`, which make dev writes ($"+EnvStateFile+" overrides the default)")
}

// AddEnvFlag registers -env alone on fs, for a tool that has no use for a
// stack's outputs.
func (t *Target) AddEnvFlag(fs *flag.FlagSet) {
	fs.BoolVar(&t.Env, "env", false, "take the resources from the environment variables the Lambdas read ("+
		strings.Join([]string{EnvStateTable, EnvEventsTable, EnvQueueURL, EnvDLQURL, EnvSecretID}, ", ")+
		") and AWS from its standard configuration (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, credentials): "+
		"for a stack made neither by make dev nor by this CDK app")
}

// Resolve returns the target's resources and an AWS config to reach them.
// A deployed stack's resources come from its outputs, with the standard AWS
// configuration (profile, region, credentials); under Env, from the
// environment.
func (t Target) Resolve(ctx context.Context) (Resources, aws.Config, error) {
	switch {
	case t.Env && t.Stack != "":
		return Resources{}, aws.Config{}, errors.New("-env and -stack exclude each other: pass one")
	case t.Env:
		return t.fromEnv(ctx)
	case t.Stack != "":
		return t.fromStack(ctx)
	}
	r, err := t.Local()
	if err != nil {
		return r, aws.Config{}, err
	}
	cfg, err := moto.Config(ctx, r.Endpoint)
	return r, cfg, err
}

// Local returns the local stack's resources: those in the state file (by
// default this checkout's, see LocalStateFile) of the `make dev` running.
func (t Target) Local() (Resources, error) {
	path := t.StateFile
	if path == "" {
		var err error
		if path, err = LocalStateFile(); err != nil {
			return Resources{}, err
		}
	}
	return ReadState(path)
}

func (t Target) fromEnv(ctx context.Context) (Resources, aws.Config, error) {
	getenv := t.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	r := Resources{
		QueueURL: get(EnvQueueURL), DLQURL: get(EnvDLQURL),
		EventsTable: get(EnvEventsTable), StateTable: get(EnvStateTable), SecretID: get(EnvSecretID),
		LegacyStateTable: get(EnvLegacyStateTable),
		ArchiveStream:    get(EnvArchiveStream), ArchiveBucket: get(EnvArchiveBucket),
		EventBusName: get(EnvEventBusName), EventSource: get(EnvEventSource),
		EventsTailQueueURL: get(EnvEventsTailQueueURL),
		CredentialsSecret:  get(EnvCredentialsSecret),
	}
	if r.EventBusName != "" {
		r.EventSource = cmp.Or(r.EventSource, EventSource)
	}
	var missing []string
	for _, name := range t.Needs {
		if get(name) == "" {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, envMeaning[name]))
		}
	}
	if len(missing) > 0 {
		return r, aws.Config{}, fmt.Errorf("-env: %s not set: set the variables the stack's Lambdas have", strings.Join(missing, ", "))
	}
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		return r, cfg, err
	}
	if slices.Contains(t.Needs, EnvQueueURL) {
		if r.QueueARN, err = queueARN(ctx, cfg, r.QueueURL); err != nil {
			return r, cfg, WithAWSHint(fmt.Errorf("%s: %w", EnvQueueURL, err))
		}
	}
	if slices.Contains(t.Needs, EnvDLQURL) {
		if r.DLQARN, err = queueARN(ctx, cfg, r.DLQURL); err != nil {
			return r, cfg, WithAWSHint(fmt.Errorf("%s: %w", EnvDLQURL, err))
		}
	}
	return r, cfg, nil
}

func (t Target) fromStack(ctx context.Context) (Resources, aws.Config, error) {
	outputs, cfg, err := t.StackOutputs(ctx)
	if err != nil {
		return Resources{}, cfg, err
	}
	r := Resources{
		QueueURL: outputs["QueueUrl"], DLQURL: outputs["DlqUrl"],
		EventsTable: outputs["EventsTableName"], StateTable: outputs["StateTableName"],
		LegacyStateTable: outputs["LegacyStateTableName"], ReceiverURL: outputs["WebhookUrl"],
		ArchiveBucket: outputs["ArchiveBucketName"], ArchiveStream: outputs["ArchiveStreamName"],
		// A deployed stack has no queue for events-tail: its user
		// subscribes one (a rule on the bus).
		EventBusName: outputs["EventBusName"], EventSource: outputs["EventSource"],
		// Empty when the stack was deployed without a Smartcar credentials
		// secret, hence without the reconciler.
		CredentialsSecret: outputs["SmartcarCredentialsSecretArn"],
		// Stacks deployed before the SecretName output: the secret the
		// Makefile names (AMT_SECRET_ID=$(SECRET_NAME)), else the default.
		SecretID: cmp.Or(outputs["SecretName"], os.Getenv(EnvSecretID), SecretName),
	}
	if r.EventBusName != "" {
		r.EventSource = cmp.Or(r.EventSource, EventSource)
	}
	if r.QueueURL == "" || r.DLQURL == "" || r.StateTable == "" {
		return r, cfg, fmt.Errorf("stack %s lacks the outputs QueueUrl, DlqUrl, StateTableName: is it this project's stack? (-env takes the resources from environment variables instead)", t.Stack)
	}
	if r.QueueARN, err = queueARN(ctx, cfg, r.QueueURL); err != nil {
		return r, cfg, WithAWSHint(err)
	}
	if r.DLQARN, err = queueARN(ctx, cfg, r.DLQURL); err != nil {
		return r, cfg, WithAWSHint(err)
	}
	return r, cfg, nil
}

// StackOutputs returns the outputs of the deployed stack t.Stack (WebhookUrl,
// QueueUrl, ...) and the standard AWS configuration that read them.
func (t Target) StackOutputs(ctx context.Context) (map[string]string, aws.Config, error) {
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		return nil, cfg, err
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(t.Stack)})
	if err != nil {
		return nil, cfg, WithAWSHint(fmt.Errorf("stack %s: %w", t.Stack, err))
	}
	if len(out.Stacks) == 0 {
		return nil, cfg, fmt.Errorf("stack %s not found", t.Stack)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return outputs, cfg, nil
}

// LoadAWSConfig loads the standard AWS configuration (profile, region,
// credentials, AWS_ENDPOINT_URL), and refuses one without a region with a
// hint.
func LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, WithAWSHint(fmt.Errorf("aws config: %w", err))
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region configured\n" +
			"hint: set AWS_REGION to the stack's region (e.g. AWS_REGION=us-east-1), or AWS_PROFILE to a profile that has one")
	}
	return cfg, nil
}

// awsHint is the line added to an error the AWS SDK gives when it finds no
// credentials, no profile or no region.
const awsHint = "hint: set AWS_PROFILE (a profile in ~/.aws/config; run `aws sso login` first if it uses SSO) " +
	"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_REGION (the stack's region, e.g. AWS_REGION=us-east-1)"

// WithAWSHint adds a line saying what to set to err when the AWS SDK failed
// for want of credentials (their chain ends at EC2 instance metadata,
// IMDS), of a profile or of a region; other errors are returned as they are.
func WithAWSHint(err error) error {
	if err == nil || !needsAWSHint(err) {
		return err
	}
	return fmt.Errorf("%w\n%s", err, awsHint)
}

func needsAWSHint(err error) bool {
	var op *smithy.OperationError
	if errors.As(err, &op) && op.ServiceID == "ec2imds" {
		return true
	}
	msg := err.Error()
	for _, s := range []string{
		"get credentials", "failed to refresh cached credentials", "no EC2 IMDS role found", "ec2imds",
		"failed to get shared config profile", "SharedConfigProfileNotExist", "AnonymousCredentials",
		"Missing Region", "region is required", "Invalid region", "could not resolve endpoint",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	var profile config.SharedConfigProfileNotExistError
	return errors.As(err, &profile)
}

// queueARN looks up the ARN of the queue at url.
func queueARN(ctx context.Context, cfg aws.Config, url string) (string, error) {
	got, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", url, err)
	}
	return got.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}
