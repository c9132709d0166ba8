// Package devstack runs the pipeline on one machine, against an AWS
// emulator: it creates the secret, queues and tables with the deployed
// stack's settings, serves the receiver over HTTP as API Gateway would, and
// feeds the processor from the queue as Lambda's SQS event source would.
// `make dev`, the operator tools and the end-to-end tests use it.
package devstack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/checkout"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

// Resources names what a stack consists of, local or deployed.
type Resources struct {
	Endpoint    string `json:"endpoint,omitempty"` // the emulator; empty for AWS
	QueueURL    string `json:"queueUrl"`
	QueueARN    string `json:"queueArn"`
	DLQURL      string `json:"dlqUrl"`
	DLQARN      string `json:"dlqArn"`
	EventsTable string `json:"eventsTable"`
	StateTable  string `json:"stateTable"`
	// LegacyStateTable is the one-item vehicle-state table of stacks
	// deployed before the entry layout, read until its vehicles are moved;
	// empty when there is none.
	LegacyStateTable string `json:"legacyStateTable,omitempty"`
	SecretID         string `json:"secretId,omitempty"`
	// ArchiveStream is the Firehose delivery stream the processor archives
	// every webhook to, and ArchiveBucket the bucket it writes; empty for
	// a stack deployed before the archive.
	ArchiveStream string `json:"archiveStream,omitempty"`
	ArchiveBucket string `json:"archiveBucket,omitempty"`
	// CredentialsSecret names the Secrets Manager secret holding the
	// Smartcar application's {"clientId", "clientSecret"}, which the
	// reconciler reads: a deployed stack's output
	// SmartcarCredentialsSecretArn, empty for a stack deployed without
	// it (no reconciler) and for the local stack (see
	// SmartcarCredentialsSecret).
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// StateStreamARN is the vehicle-state table's stream, which the
	// publisher reads (locally, through a StreamPoller).
	StateStreamARN string `json:"stateStreamArn,omitempty"`
	// EventBusName is the EventBridge bus the publisher puts domain events
	// on, with the source EventSource; empty for a stack deployed before
	// the publisher.
	EventBusName string `json:"eventBusName,omitempty"`
	EventSource  string `json:"eventSource,omitempty"`
	// EventsTailQueueURL is a queue a rule on the bus sends every event of
	// EventSource to, which the events-tail tool reads; the local stack
	// has one, a deployed stack none.
	EventsTailQueueURL string `json:"eventsTailQueueUrl,omitempty"`
	// VisibilityTimeout is the queue's, in seconds.
	VisibilityTimeout int `json:"visibilityTimeout,omitempty"`
	// DevToken is the generated development token, kept so the tools can
	// sign deliveries; empty when the token came from SMARTCAR_AMT.
	DevToken    string `json:"devToken,omitempty"`
	ReceiverURL string `json:"receiverUrl,omitempty"`
	Pid         int    `json:"pid,omitempty"`
}

// Names of the local stack's resources.
const (
	QueueName   = "smartcar-webhooks"
	DLQName     = "smartcar-webhooks-dlq"
	EventsTable = "smartcar-webhook-events"
	StateTable  = "smartcar-vehicle-entries"
	// LegacyStateTable is the vehicle-state table of the one-item layout.
	LegacyStateTable = "smartcar-vehicle-state"
	SecretName       = "smartcar/amt"
	ArchiveStream    = "smartcar-webhook-archive"
	// ArchiveBucket is the archive's bucket (see archiveBucket).
	ArchiveBucket = "smartcar-webhook-archive"
	// EventBusName is the domain events' bus, EventsTailQueue the queue
	// its rule EventsTailRule sends them to for events-tail.
	EventBusName    = "smartcar-domain-events"
	EventsTailQueue = "smartcar-domain-events-tail"
	EventsTailRule  = "smartcar-domain-events-tail"
	// EventSource is the source of the domain events the publisher puts.
	EventSource = domainevents.Source
	// SmartcarCredentialsSecret is the local stack's secret of the
	// Smartcar application's credentials, which `make reconcile` stores
	// from SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET: Provision makes
	// none.
	SmartcarCredentialsSecret = "smartcar-credentials"
)

// ReceiverEnv is the receiver Lambda's environment for these resources.
func (r Resources) ReceiverEnv() map[string]string {
	return map[string]string{EnvQueueURL: r.QueueURL, EnvSecretID: r.SecretID}
}

// ProcessorEnv is the processor Lambda's environment for these resources.
func (r Resources) ProcessorEnv() map[string]string {
	env := map[string]string{
		EnvEventsTable: r.EventsTable, EnvStateTable: r.StateTable, EnvDLQURL: r.DLQURL,
		"MAX_RECEIVE_COUNT": strconv.Itoa(pipeline.MaxReceiveCount),
	}
	// Unknown for a deployed stack (its outputs do not give it): the
	// function's default is the stack's, where "0" would fail its init.
	if r.VisibilityTimeout > 0 {
		env["QUEUE_VISIBILITY_TIMEOUT"] = strconv.Itoa(r.VisibilityTimeout)
	}
	if r.LegacyStateTable != "" {
		env[EnvLegacyStateTable] = r.LegacyStateTable
	}
	if r.ArchiveStream != "" {
		env[EnvArchiveStream] = r.ArchiveStream
	}
	return env
}

// PublisherEnv is the publisher Lambda's environment for these resources.
func (r Resources) PublisherEnv() map[string]string {
	return map[string]string{EnvEventBusName: r.EventBusName, EnvEventSource: r.EventSource, EnvStateTable: r.StateTable}
}

// ReconcilerEnv is the reconciler Lambda's environment for these
// resources: the local stack's credentials secret is SmartcarCredentialsSecret
// (which make reconcile fills from SMARTCAR_CLIENT_ID and
// SMARTCAR_CLIENT_SECRET).
func (r Resources) ReconcilerEnv() map[string]string {
	secret := r.CredentialsSecret
	if secret == "" {
		secret = SmartcarCredentialsSecret
	}
	return map[string]string{EnvStateTable: r.StateTable, EnvEventsTable: r.EventsTable, EnvCredentialsSecret: secret}
}

// NewDevToken returns a random development token.
func NewDevToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "dev-" + hex.EncodeToString(b[:])
}

// Options change how Provision names and sets up the resources.
type Options struct {
	// Prefix is prepended to every name, so several stacks can share one
	// emulator.
	Prefix string
	// VisibilityTimeout overrides the queue's (pipeline.QueueVisibilityTimeout),
	// for tests that need redeliveries within seconds.
	VisibilityTimeout time.Duration
}

// SecretsAPI is the part of the Secrets Manager client PutSecret uses.
type SecretsAPI interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// PutSecret creates the secret in describes or, if it exists, gives it
// in's SecretString as its new value.
func PutSecret(ctx context.Context, sm SecretsAPI, in *secretsmanager.CreateSecretInput) error {
	_, err := sm.CreateSecret(ctx, in)
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: in.Name, SecretString: in.SecretString})
	}
	return err
}

// Provision creates the secret (holding token), the queue with its DLQ and
// redrive policy, the tables (events, vehicle state with its stream, and
// the legacy vehicle-state table the processor still reads), the archive
// (a bucket and a Firehose delivery stream writing to it), with the
// deployed stack's settings, and the domain events' bus, with a rule
// sending every event of EventSource to a queue for events-tail.
// Resources that exist are reused; the secret's value is replaced.
func Provision(ctx context.Context, cfg aws.Config, token string, opts Options) (Resources, error) {
	prefix := opts.Prefix
	visibility := pipeline.QueueVisibilityTimeout
	if opts.VisibilityTimeout > 0 {
		visibility = opts.VisibilityTimeout
	}
	r := Resources{EventsTable: prefix + EventsTable, StateTable: prefix + StateTable, LegacyStateTable: prefix + LegacyStateTable,
		SecretID: prefix + SecretName, VisibilityTimeout: int(visibility.Seconds())}
	err := PutSecret(ctx, secretsmanager.NewFromConfig(cfg), &secretsmanager.CreateSecretInput{Name: aws.String(r.SecretID), SecretString: aws.String(token)})
	if err != nil {
		return r, fmt.Errorf("secret: %w", err)
	}

	q := sqs.NewFromConfig(cfg)
	if r.DLQURL, r.DLQARN, err = createQueue(ctx, q, prefix+DLQName, map[string]string{
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(pipeline.DLQRetention.Seconds())),
		string(types.QueueAttributeNameMaximumMessageSize):     strconv.Itoa(pipeline.MaxMessageBytes),
	}); err != nil {
		return r, err
	}
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": r.DLQARN, "maxReceiveCount": pipeline.MaxReceiveCount})
	if r.QueueURL, r.QueueARN, err = createQueue(ctx, q, prefix+QueueName, map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout):  strconv.Itoa(int(visibility.Seconds())),
		string(types.QueueAttributeNameRedrivePolicy):      string(redrive),
		string(types.QueueAttributeNameMaximumMessageSize): strconv.Itoa(pipeline.MaxMessageBytes),
	}); err != nil {
		return r, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	if err := dynamostore.CreateTables(ctx, ddb, r.EventsTable, r.StateTable); err != nil {
		return r, err
	}
	if r.StateStreamARN, err = dynamostore.StateTableStream(ctx, ddb, r.StateTable); err != nil {
		return r, err
	}
	if err := dynamostore.CreateLegacyTable(ctx, ddb, r.LegacyStateTable); err != nil {
		return r, err
	}
	r.ArchiveBucket, r.ArchiveStream = archiveBucket(prefix), prefix+ArchiveStream
	if err := createArchive(ctx, cfg, r.ArchiveBucket, r.ArchiveStream); err != nil {
		return r, err
	}
	r.EventBusName, r.EventSource = prefix+EventBusName, EventSource
	if r.EventsTailQueueURL, err = createEventBus(ctx, cfg, q, r.EventBusName, prefix+EventsTailRule, prefix+EventsTailQueue); err != nil {
		return r, err
	}
	return r, nil
}

// createEventBus creates the bus, the queue and a rule on the bus sending
// every event of EventSource to the queue (with the queue policy AWS
// would need), and returns the queue's URL.
func createEventBus(ctx context.Context, cfg aws.Config, q *sqs.Client, bus, rule, queue string) (string, error) {
	eb := eventbridge.NewFromConfig(cfg)
	_, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)})
	var exists *ebtypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return "", fmt.Errorf("event bus %s: %w", bus, err)
	}
	url, queueARN, err := createQueue(ctx, q, queue, nil)
	if err != nil {
		return "", err
	}
	pattern, _ := json.Marshal(map[string][]string{"source": {EventSource}})
	put, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name: aws.String(rule), EventBusName: aws.String(bus), EventPattern: aws.String(string(pattern)), State: ebtypes.RuleStateEnabled,
		Description: aws.String("every domain event, to the queue events-tail reads"),
	})
	if err != nil {
		return "", fmt.Errorf("event rule %s: %w", rule, err)
	}
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect": "Allow", "Principal": map[string]string{"Service": "events.amazonaws.com"},
			"Action": "sqs:SendMessage", "Resource": queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": aws.ToString(put.RuleArn)}},
		}},
	})
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(url), Attributes: map[string]string{string(types.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return "", fmt.Errorf("queue %s: %w", queue, err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("events-tail"), Arn: aws.String(queueARN)}},
	})
	if err == nil && out.FailedEntryCount > 0 {
		err = fmt.Errorf("%s", aws.ToString(out.FailedEntries[0].ErrorMessage))
	}
	if err != nil {
		return "", fmt.Errorf("event rule %s: target %s: %w", rule, queue, err)
	}
	return url, nil
}

// archiveBucket names the archive's bucket for a stack's prefix: bucket
// names allow only 3 to 63 lower-case letters, digits, '-' and '.', so a
// prefix is represented by its hash.
func archiveBucket(prefix string) string {
	if prefix == "" {
		return ArchiveBucket
	}
	sum := sha256.Sum256([]byte(prefix))
	return ArchiveBucket + "-" + hex.EncodeToString(sum[:6])
}

// createArchive creates the archive's bucket and the delivery stream that
// writes to it, as the stack does: DirectPut, uncompressed (each record
// is a gzip member already), under pipeline.ArchivePrefix. On the
// emulator each PutRecordBatch becomes one object at once.
func createArchive(ctx context.Context, cfg aws.Config, bucket, stream string) error {
	_, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("archive bucket %s: %w", bucket, err)
	}
	fh := firehose.NewFromConfig(cfg)
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String(stream),
		DeliveryStreamType: fhtypes.DeliveryStreamTypeDirectPut,
		ExtendedS3DestinationConfiguration: &fhtypes.ExtendedS3DestinationConfiguration{
			BucketARN: aws.String("arn:aws:s3:::" + bucket),
			RoleARN:   aws.String("arn:aws:iam::123456789012:role/firehose-archive"),
			// moto appends the hour itself (see pipeline.ArchivePrefix).
			Prefix:            aws.String(pipeline.ArchivePrefix),
			CompressionFormat: fhtypes.CompressionFormatUncompressed,
		},
	})
	var inUse *fhtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("archive stream %s: %w", stream, err)
	}
	return nil
}

func createQueue(ctx context.Context, q *sqs.Client, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: %w", name, err)
	}
	got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// Where the local stack is described. Each checkout runs its own `make dev`
// and keeps its state in StateDir at its root (git-ignored): the tools run
// from a checkout talk to that checkout's stack.
const (
	StateDir = ".dev"
	// StateFileName is the state file's name in StateDir; its lock is
	// beside it, with ".lock" appended.
	StateFileName = "stack.json"
	// EnvStateFile overrides the state file's path.
	EnvStateFile = "SMARTCAR_DEV_STATE"
)

// LocalStateFile returns where the `make dev` of the checkout around the
// working directory describes its stack: $SMARTCAR_DEV_STATE if set, else
// .dev/stack.json at the checkout's root.
func LocalStateFile() (string, error) {
	if p := os.Getenv(EnvStateFile); p != "" {
		return p, nil
	}
	root, err := checkout.WorkingRoot()
	if err != nil {
		return "", fmt.Errorf("local stack: %w: run the tool from the checkout whose `make dev` it should use, or set %s (-state) to that stack's state file", err, EnvStateFile)
	}
	return filepath.Join(root, StateDir, StateFileName), nil
}

// StateFile is LocalStateFile, or "" outside a checkout (a flag's default;
// Target.Resolve then says what is wrong).
func StateFile() string {
	p, _ := LocalStateFile()
	return p
}

// WriteState records r for the tools, readable only by the user. It
// creates the state file's directory, and replaces the file in one step,
// so a tool never reads half of it.
func WriteState(path string, r Resources) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadState reads what WriteState recorded, provided the `make dev` that
// wrote it still runs (holds the lock beside it): a state file left by one
// that was killed names an emulator that is gone.
func ReadState(path string) (Resources, error) {
	var r Resources
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("no local stack is running for this checkout (%s not found): start one with `make dev`, "+
			"or pass -stack NAME for a deployed one (AWS=1 with make)", path)
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if !Running(path) {
		return r, fmt.Errorf("the local stack described in %s is no longer running (its `make dev`, pid %d, ended without removing it): "+
			"start `make dev` again", path, r.Pid)
	}
	return r, nil
}

// LockOwner is what a running `make dev` records in its lock file, for the
// message a second one gets.
type LockOwner struct {
	Pid         int    `json:"pid"`
	ReceiverURL string `json:"receiverUrl,omitempty"`
}

// Lock takes the lock beside the state file at path (path + ".lock"),
// which a `make dev` holds for as long as it runs, so that one checkout
// runs one local stack; another checkout has another state file, hence
// another lock. It records owner in the lock file. A lock already held is
// refused with an error naming its owner. The file stays when unlocked:
// removing it would let a process that opened it just before lock the
// removed file while another locks a new one.
func Lock(path string, owner LockOwner) (unlock func(), err error) {
	lockPath := path + ".lock"
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		running := "another `make dev` is already running for this checkout"
		var held LockOwner
		if b, err := os.ReadFile(lockPath); err == nil && json.Unmarshal(b, &held) == nil && held.Pid != 0 {
			running += fmt.Sprintf(" (pid %d", held.Pid)
			if held.ReceiverURL != "" {
				running += ", receiver " + held.ReceiverURL
			}
			running += ")"
		}
		return nil, fmt.Errorf("%s, described in %s: use it, or stop it with Ctrl-C in its terminal "+
			"(a second stack runs from another checkout, with another DEV_PORT)", running, path)
	}
	b, _ := json.Marshal(owner)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	return func() { f.Close() }, nil
}

// lockExclusive takes f's lock without waiting for a holder, but through a
// tool's brief probe (Running holds a shared lock for an instant): a few
// tries over 200 ms.
func lockExclusive(f *os.File) error {
	var err error
	for range 5 {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		time.Sleep(40 * time.Millisecond)
	}
	return err
}

// Running reports whether a `make dev` holds the lock beside the state
// file at path.
func Running(path string) bool {
	f, err := os.Open(path + ".lock")
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
