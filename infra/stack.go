package main

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
)

// Logical ids kept stable, so `sam local invoke` and runbooks can name them.
const (
	ReceiverFunctionID  = pipeline.ReceiverFunctionID
	ProcessorFunctionID = pipeline.ProcessorFunctionID
	PublisherFunctionID = pipeline.PublisherFunctionID
	// ReconcilerFunctionID is the reconciler's, deployed only with
	// WebhookStackProps.SmartcarCredentialsSecret.
	ReconcilerFunctionID = pipeline.ReconcilerFunctionID
)

// The publisher: it reads the vehicle-state table's stream and puts domain
// events on the event bus.
const (
	// DefaultEventSource is the events' source unless the stack is told
	// otherwise (context eventSource).
	DefaultEventSource = domainevents.Source
	publisherBatchSize = 100
	// publisherRetries is how often the event source retries a failing
	// batch (halving it each time: BisectBatchOnError) before it sends
	// the batch's shard and sequence range to the failure queue and moves
	// on.
	publisherRetries = 10
	// streamRetention is how long DynamoDB Streams keeps a record, from
	// when it was written; AWS's, not a setting.
	streamRetention = 24 * time.Hour
	// publisherMaxRecordAge is the oldest record the event source still
	// reads: a batch with an older one is given up on, like one whose
	// retries ran out. Lambda then sends PublisherFailureQueue only the
	// batch's description (shard, first and last sequence numbers); the
	// records themselves stay in the stream until streamRetention after
	// they were written. Were this the stream's retention, a record given
	// up on for its age would leave the stream as it reached the queue,
	// and the operator could not read it again; 6 hours leaves at least
	// 18 (streamRetention - publisherMaxRecordAge) for `make
	// events-redrive`, which reads the failure queue and publishes those
	// stream ranges again.
	publisherMaxRecordAge = 6 * time.Hour
	// publisherLagAlarm is the publisher's iterator age (how far behind the
	// stream's newest record it reads) that alarms, for 3 × 5 minutes.
	publisherLagAlarm = 5 * time.Minute
)

// WebhookStackProps configures the stack. Zero values take the defaults
// noted on each field.
type WebhookStackProps struct {
	awscdk.StackProps
	// ReceiverCode and ProcessorCode are the Lambdas' code: the directories
	// holding each `bootstrap` (bin/receiver, bin/processor).
	ReceiverCode  awslambda.Code
	ProcessorCode awslambda.Code
	// PublisherCode is the publisher's (bin/publisher).
	PublisherCode awslambda.Code
	// SecretName names the existing Secrets Manager secret that holds the
	// Application Management Token. Default "smartcar/amt".
	SecretName string
	// AlarmEmail, if set, subscribes an address to the alarm topic.
	AlarmEmail string
	// ThrottleRate and ThrottleBurst limit the API stage (requests per
	// second). Defaults 50 and 100.
	ThrottleRate  float64
	ThrottleBurst float64
	// ReceiverMemoryMB, ProcessorMemoryMB and PublisherMemoryMB: defaults
	// pipeline.MemoryMB.
	ReceiverMemoryMB  float64
	ProcessorMemoryMB float64
	PublisherMemoryMB float64
	// ReceiverTimeoutSeconds is the receiver's timeout: 1 to 14, below
	// Smartcar's 15 s. Default 10.
	ReceiverTimeoutSeconds float64
	// ProcessorTimeoutSeconds is the processor's timeout, 1 to 900.
	// Default 5. The queue's visibility timeout follows it (six times it
	// plus the batching window, at least 30 s), and so does the claims'
	// lease (three times it, at least 15 s).
	ProcessorTimeoutSeconds float64
	// LogLevel is the functions' LOG_LEVEL: DEBUG, INFO, WARN or ERROR.
	// Default INFO: one line per delivery and per event.
	LogLevel string
	// SystemLogLevel filters Lambda's own lines: WARN (the default) drops
	// START, END and REPORT; INFO keeps them, DEBUG adds more.
	SystemLogLevel string
	// MaxDeliveryAge is the receiver's replay window (MAX_DELIVERY_AGE): a
	// signed event delivered longer ago is refused. Default "1h"; "0"
	// disables the check.
	MaxDeliveryAge string
	// MaxReceiveCount is the redrive limit: one delivery plus retries.
	// Default pipeline.MaxReceiveCount (4: three retries).
	MaxReceiveCount float64
	// MaxBatchingWindowSeconds lets the event source gather a batch
	// (0 to 300). Default 0. The queue's visibility timeout grows with it,
	// as AWS asks: six times the function timeout plus the window.
	MaxBatchingWindowSeconds float64
	// MaxConcurrency caps concurrent processor invocations (2 to 1000).
	// Default 5.
	MaxConcurrency float64
	// LogRetention for all log groups. Default one month.
	LogRetention awslogs.RetentionDays
	// ArchiveRetentionDays is how long the archive bucket keeps the raw
	// webhooks, in whole days (at least 1). Default
	// pipeline.ArchiveRetentionDays (400).
	ArchiveRetentionDays float64
	// RemovalPolicy of the tables, the archive bucket and the log groups.
	// Default RETAIN: use DESTROY only for throwaway stacks (CloudFormation
	// deletes the archive bucket only once it is empty).
	RemovalPolicy awscdk.RemovalPolicy
	// DropLegacyStateTable removes the legacy one-item vehicle-state table
	// (construct VehicleStateTable) from the stack, once `make
	// migrate-state` has moved its vehicles: with RETAIN the table and its
	// data stay in the account, outside the stack. Default false: the
	// processor reads it (GetItem only) for vehicles not yet moved.
	DropLegacyStateTable bool
	// StateTableName, if set, names an existing vehicle-state table in the
	// entry layout (partition key vehicleId, sort key entry, both strings)
	// in the stack's account and region, such as one `make replay
	// REBUILD=<table> CREATE=1` rebuilt from the archive: the processor
	// uses it (STATE_TABLE, and the grants VehicleEntriesTable would have)
	// and output StateTableName names it. The stack's own
	// VehicleEntriesTable stays, unused, as the fallback: switching back is
	// deploying without it. Default "": the stack's own table. It must
	// follow DynamoDB's rules for table names (see ValidateTableName).
	StateTableName string
	// StateTableStreamArn is the stream of the table StateTableName names,
	// NEW_AND_OLD_IMAGES (`make replay REBUILD=<table> CREATE=1` enables it
	// and prints its ARN): the publisher reads it. Required with
	// StateTableName, and only with it (see ValidateStreamArn).
	StateTableStreamArn string
	// EventBusName, if set, names an existing EventBridge event bus in the
	// stack's account and region that the publisher puts the domain events
	// on. Default "": the stack's own bus, DomainEventBus.
	EventBusName string
	// EventSource is the domain events' source. Default DefaultEventSource;
	// see ValidateEventSource.
	EventSource string

	// SmartcarCredentialsSecret, if set, names (or, starting with "arn:",
	// is the ARN of) an existing Secrets Manager secret holding the
	// Smartcar application's {"clientId": ..., "clientSecret": ...}, and
	// deploys the reconciler (ReconcilerFunction, its alarms and outputs),
	// which polls Smartcar's API for vehicles' current state and heals
	// what the webhooks missed. Default "": no reconciler. See
	// ValidateSmartcarCredentialsSecret.
	SmartcarCredentialsSecret string
	// ReconcilerCode is the reconciler's code (bin/reconciler): required
	// with SmartcarCredentialsSecret.
	ReconcilerCode awslambda.Code
	// ReconcileEvery, if not 0, schedules a reconciliation of the stale
	// vehicles at this rate (an EventBridge Scheduler schedule): whole
	// minutes, at least 5. Needs SmartcarCredentialsSecret. Default 0: no
	// schedule (run it with make reconcile).
	ReconcileEvery time.Duration
	// ReconcileStaleAfter is how long a vehicle may go without news before
	// a scheduled run polls it (the reconciler's RECONCILE_STALE_AFTER), at
	// least a minute. Default DefaultReconcileStaleAfter.
	ReconcileStaleAfter time.Duration
	// SmartcarAPIBase and SmartcarTokenURL, if set, point the reconciler
	// at another Smartcar API and token endpoint (SMARTCAR_API_BASE,
	// SMARTCAR_TOKEN_URL): absolute https URLs. Default "": the
	// reconciler's own defaults, Smartcar's.
	SmartcarAPIBase  string
	SmartcarTokenURL string
	// SilenceAlarmAfter is how long without a webhook enqueued, in a fleet
	// that sent some in the last week, before WebhooksSilent alarms: whole
	// minutes, 5m to 24h. Default DefaultSilenceAlarmAfter.
	SilenceAlarmAfter time.Duration
	// NoSilenceAlarm leaves WebhooksSilent (and the two alarms it combines)
	// out of the stack.
	NoSilenceAlarm bool
}

// The reconciler's and the silence alarm's defaults and bounds.
const (
	DefaultReconcileStaleAfter = reconcile.DefaultStaleAfter
	DefaultSilenceAlarmAfter   = time.Hour
	// MinReconcileEvery is the shortest schedule: a run may take minutes
	// (Smartcar's rate limits pace it), and one runs at a time.
	MinReconcileEvery      = 5 * time.Minute
	MinReconcileStaleAfter = time.Minute
	MinSilenceAlarmAfter   = 5 * time.Minute
	// MaxSilenceAlarmAfter bounds WebhooksQuiet's one period: a day,
	// well inside the week WebhooksSeenThisWeek looks back (a silence
	// longer than that week can no longer alarm).
	MaxSilenceAlarmAfter = 24 * time.Hour
)

// tableName is what DynamoDB accepts as a table name.
var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// ValidateTableName reports whether name is a valid DynamoDB table name:
// 3 to 255 characters, each a letter, a digit, '_', '.' or '-'.
func ValidateTableName(name string) error {
	if !tableName.MatchString(name) {
		return fmt.Errorf("%q is not a DynamoDB table name: want 3 to 255 characters of a-z, A-Z, 0-9, '_', '.' and '-'", name)
	}
	return nil
}

// streamArn is a DynamoDB stream's ARN: its table's, then /stream/ and the
// stream's label (the time it was enabled).
var streamArn = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/([a-zA-Z0-9_.-]{3,255})/stream/[^/\s]+$`)

// ValidateStreamArn reports whether arn is the ARN of a stream of the
// DynamoDB table named table, such as
// arn:aws:dynamodb:eu-west-1:123456789012:table/<table>/stream/2025-01-31T12:00:00.000.
func ValidateStreamArn(arn, table string) error {
	m := streamArn.FindStringSubmatch(arn)
	if m == nil {
		return fmt.Errorf("%q is not a DynamoDB stream ARN (arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>: "+
			"aws dynamodb describe-table --table-name %s --query Table.LatestStreamArn)", arn, table)
	}
	if m[1] != table {
		return fmt.Errorf("%q is a stream of table %s, not of %s", arn, m[1], table)
	}
	return nil
}

// eventBusName is what EventBridge accepts as an event bus's name.
var eventBusName = regexp.MustCompile(`^[/._A-Za-z0-9-]{1,256}$`)

// ValidateEventBusName reports whether name is an EventBridge event bus's
// name (not its ARN): 1 to 256 characters, each a letter, a digit, '.',
// '_', '-' or '/'.
func ValidateEventBusName(name string) error {
	if !eventBusName.MatchString(name) {
		return fmt.Errorf("%q is not an event bus name: want 1 to 256 characters of a-z, A-Z, 0-9, '.', '_', '-' and '/' "+
			"(a bus in the stack's account and region, by name)", name)
	}
	return nil
}

// ValidateEventSource reports whether source may be the domain events'
// Source: 1 to 256 characters, not starting with "aws." (EventBridge
// keeps those for AWS services).
func ValidateEventSource(source string) error {
	switch {
	case source == "" || len(source) > 256:
		return fmt.Errorf("event source %q: want 1 to 256 characters", source)
	case strings.HasPrefix(source, "aws."):
		return fmt.Errorf("event source %q: sources starting with \"aws.\" are AWS services'", source)
	}
	return nil
}

// secretName is what Secrets Manager accepts as a secret's name; secretArn
// a secret's ARN, complete (the name, '-' and 6 random characters) or
// partial (the name alone).
var (
	secretName = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	secretArn  = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$`)
	// completeSecretArn is how CDK tells a complete ARN from a partial one
	// (aws-secretsmanager's arnIsComplete): a partial ARN whose name ends
	// in '-' and 6 letters or digits looks complete, and is taken as one.
	completeSecretArn = regexp.MustCompile(`-[A-Za-z0-9]{6}$`)
)

// ValidateSmartcarCredentialsSecret reports whether ref names an existing
// Secrets Manager secret: a name (1 to 512 of a-z, A-Z, 0-9 and /_+=.@-),
// or, starting with "arn:", a secret's ARN.
func ValidateSmartcarCredentialsSecret(ref string) error {
	if strings.HasPrefix(ref, "arn:") {
		if !secretArn.MatchString(ref) {
			return fmt.Errorf("%q is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)", ref)
		}
		return nil
	}
	if !secretName.MatchString(ref) {
		return fmt.Errorf("%q is not a Secrets Manager secret name: want 1 to 512 characters of a-z, A-Z, 0-9 and /_+=.@- (or the secret's ARN)", ref)
	}
	return nil
}

// ValidateHTTPSURL reports whether s is an absolute https URL with a host.
func ValidateHTTPSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("want an absolute https URL (such as https://api.smartcar.com), got %q", s)
	}
	return nil
}

// ValidateReconcileEvery reports whether d is a rate EventBridge Scheduler
// can run the reconciler at: whole minutes, at least MinReconcileEvery.
func ValidateReconcileEvery(d time.Duration) error {
	if d < MinReconcileEvery || d%time.Minute != 0 {
		return fmt.Errorf("want a whole number of minutes, at least %v (such as 1h or 30m), got %v", MinReconcileEvery, d)
	}
	return nil
}

// ValidateReconcileStaleAfter reports whether d is at least
// MinReconcileStaleAfter.
func ValidateReconcileStaleAfter(d time.Duration) error {
	if d < MinReconcileStaleAfter {
		return fmt.Errorf("want a duration of at least %v (such as 6h), got %v", MinReconcileStaleAfter, d)
	}
	return nil
}

// ValidateSilenceAlarmAfter reports whether d can be WebhooksQuiet's period:
// whole minutes, from MinSilenceAlarmAfter to MaxSilenceAlarmAfter.
func ValidateSilenceAlarmAfter(d time.Duration) error {
	if d < MinSilenceAlarmAfter || d > MaxSilenceAlarmAfter || d%time.Minute != 0 {
		return fmt.Errorf("want a whole number of minutes from %v to %v (such as 1h), got %v", MinSilenceAlarmAfter, MaxSilenceAlarmAfter, d)
	}
	return nil
}

// rateExpression is EventBridge Scheduler's rate expression for d, whole
// minutes: in hours when it is whole hours. The unit is singular for 1,
// plural otherwise, as Scheduler asks.
func rateExpression(d time.Duration) string {
	n, unit := int64(d/time.Minute), "minute"
	if d%time.Hour == 0 {
		n, unit = int64(d/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("rate(%d %s)", n, unit)
}

// spoken is d as a sentence says it: "1 hour", "90 minutes", "1 day".
func spoken(d time.Duration) string {
	n, unit := int64(d/time.Minute), "minute"
	switch {
	case d%(24*time.Hour) == 0:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func (p *WebhookStackProps) withDefaults() {
	if p.SecretName == "" {
		p.SecretName = "smartcar/amt"
	}
	if p.ThrottleRate == 0 {
		p.ThrottleRate = 50
	}
	if p.ThrottleBurst == 0 {
		p.ThrottleBurst = 100
	}
	if p.ReceiverMemoryMB == 0 {
		p.ReceiverMemoryMB = pipeline.MemoryMB
	}
	if p.ProcessorMemoryMB == 0 {
		p.ProcessorMemoryMB = pipeline.MemoryMB
	}
	if p.PublisherMemoryMB == 0 {
		p.PublisherMemoryMB = pipeline.MemoryMB
	}
	if p.MaxReceiveCount == 0 {
		p.MaxReceiveCount = pipeline.MaxReceiveCount
	}
	if p.MaxDeliveryAge == "" {
		p.MaxDeliveryAge = receiver.DefaultMaxDeliveryAge.String()
	}
	if p.LogLevel == "" {
		p.LogLevel = "INFO"
	}
	if p.SystemLogLevel == "" {
		p.SystemLogLevel = string(awslambda.SystemLogLevel_WARN)
	}
	if p.ReceiverTimeoutSeconds == 0 {
		p.ReceiverTimeoutSeconds = pipeline.ReceiverTimeout.Seconds()
	}
	if p.ProcessorTimeoutSeconds == 0 {
		p.ProcessorTimeoutSeconds = pipeline.ProcessorTimeout.Seconds()
	}
	if p.ReceiverTimeoutSeconds < 1 || p.ReceiverTimeoutSeconds > 14 {
		panic(fmt.Sprintf("NewWebhookStack: ReceiverTimeoutSeconds %v is outside 1..14 (Smartcar waits 15 s)", p.ReceiverTimeoutSeconds))
	}
	if p.ProcessorTimeoutSeconds < 1 || p.ProcessorTimeoutSeconds > 900 {
		panic(fmt.Sprintf("NewWebhookStack: ProcessorTimeoutSeconds %v is outside Lambda's 1..900", p.ProcessorTimeoutSeconds))
	}
	for _, mb := range []float64{p.ReceiverMemoryMB, p.ProcessorMemoryMB, p.PublisherMemoryMB} {
		if mb < 128 || mb > 10240 {
			panic(fmt.Sprintf("NewWebhookStack: memory %v MB is outside Lambda's 128..10240", mb))
		}
	}
	if p.MaxBatchingWindowSeconds < 0 || p.MaxBatchingWindowSeconds > 300 {
		panic(fmt.Sprintf("NewWebhookStack: MaxBatchingWindowSeconds %v is outside 0..300", p.MaxBatchingWindowSeconds))
	}
	if p.MaxConcurrency == 0 {
		p.MaxConcurrency = 5
	}
	if p.ArchiveRetentionDays == 0 {
		p.ArchiveRetentionDays = pipeline.ArchiveRetentionDays
	}
	if p.ArchiveRetentionDays < 1 || p.ArchiveRetentionDays != math.Trunc(p.ArchiveRetentionDays) {
		panic(fmt.Sprintf("NewWebhookStack: ArchiveRetentionDays %v is not a whole number of days, at least 1", p.ArchiveRetentionDays))
	}
	if p.StateTableName != "" {
		if err := ValidateTableName(p.StateTableName); err != nil {
			panic("NewWebhookStack: StateTableName " + err.Error())
		}
		if p.StateTableStreamArn == "" {
			panic("NewWebhookStack: StateTableName needs StateTableStreamArn, its table's stream, which the publisher reads")
		}
		if err := ValidateStreamArn(p.StateTableStreamArn, p.StateTableName); err != nil {
			panic("NewWebhookStack: StateTableStreamArn " + err.Error())
		}
	} else if p.StateTableStreamArn != "" {
		panic("NewWebhookStack: StateTableStreamArn without StateTableName: the stack's own table's stream needs no ARN")
	}
	if p.EventBusName != "" {
		if err := ValidateEventBusName(p.EventBusName); err != nil {
			panic("NewWebhookStack: EventBusName " + err.Error())
		}
	}
	if p.EventSource == "" {
		p.EventSource = DefaultEventSource
	}
	if err := ValidateEventSource(p.EventSource); err != nil {
		panic("NewWebhookStack: EventSource " + err.Error())
	}
	if p.SmartcarCredentialsSecret != "" {
		if err := ValidateSmartcarCredentialsSecret(p.SmartcarCredentialsSecret); err != nil {
			panic("NewWebhookStack: SmartcarCredentialsSecret " + err.Error())
		}
		if p.ReconcileStaleAfter == 0 {
			p.ReconcileStaleAfter = DefaultReconcileStaleAfter
		}
		if err := ValidateReconcileStaleAfter(p.ReconcileStaleAfter); err != nil {
			panic("NewWebhookStack: ReconcileStaleAfter " + err.Error())
		}
		if p.ReconcileEvery != 0 {
			if err := ValidateReconcileEvery(p.ReconcileEvery); err != nil {
				panic("NewWebhookStack: ReconcileEvery " + err.Error())
			}
		}
		for name, u := range map[string]string{"SmartcarAPIBase": p.SmartcarAPIBase, "SmartcarTokenURL": p.SmartcarTokenURL} {
			if u != "" {
				if err := ValidateHTTPSURL(u); err != nil {
					panic("NewWebhookStack: " + name + " " + err.Error())
				}
			}
		}
	} else if p.ReconcileEvery != 0 || p.ReconcileStaleAfter != 0 || p.SmartcarAPIBase != "" || p.SmartcarTokenURL != "" {
		panic("NewWebhookStack: ReconcileEvery, ReconcileStaleAfter, SmartcarAPIBase and SmartcarTokenURL configure the reconciler: " +
			"they need SmartcarCredentialsSecret")
	}
	if p.SilenceAlarmAfter == 0 {
		p.SilenceAlarmAfter = DefaultSilenceAlarmAfter
	}
	if err := ValidateSilenceAlarmAfter(p.SilenceAlarmAfter); err != nil {
		panic("NewWebhookStack: SilenceAlarmAfter " + err.Error())
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	if p.RemovalPolicy == "" {
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
}

func seconds(d float64) awscdk.Duration { return awscdk.Duration_Seconds(jsii.Number(d)) }

// NewWebhookStack defines the whole pipeline: HTTP API, receiver, queue and
// DLQ, processor, tables, raw-webhook archive, domain-event publisher and
// bus, alarms, dashboard and saved queries.
func NewWebhookStack(scope constructs.Construct, id string, props *WebhookStackProps) awscdk.Stack {
	if props == nil {
		props = &WebhookStackProps{}
	}
	p := *props
	p.withDefaults()
	if p.ReceiverCode == nil || p.ProcessorCode == nil || p.PublisherCode == nil {
		panic("NewWebhookStack: ReceiverCode, ProcessorCode and PublisherCode are required")
	}
	if p.SmartcarCredentialsSecret != "" && p.ReconcilerCode == nil {
		panic("NewWebhookStack: ReconcilerCode is required with SmartcarCredentialsSecret")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	s := &webhookStack{stack: stack, props: p}
	s.storage()
	s.archive()
	s.functions()
	s.domainEvents()
	s.reconciler()
	s.api()
	s.monitoring()
	s.outputs()
	return stack
}

// webhookStack holds the constructs shared between the parts of the stack.
type webhookStack struct {
	stack awscdk.Stack
	props WebhookStackProps

	queue, dlq              awssqs.Queue
	eventsTable, stateTable awsdynamodb.Table
	// state is the vehicle-state table the processor uses: stateTable, or
	// the table props.StateTableName names.
	state                  awsdynamodb.ITable
	legacyStateTable       awsdynamodb.Table // nil once dropped
	archiveBucket          awss3.Bucket
	archiveStream          awskinesisfirehose.CfnDeliveryStream
	secret                 awssecretsmanager.ISecret
	receiver, processor    awslambda.Function
	receiverLogs, procLogs awslogs.LogGroup
	httpAPI                awsapigatewayv2.HttpApi
	dashboard              awscloudwatch.Dashboard
	alarmTopic             awssns.Topic
	webhookURL, errorsURL  *string

	// The domain events: the publisher, the bus it puts them on (the
	// stack's own or the one props.EventBusName names), and the queue its
	// event source sends the batches it gave up on to.
	publisherFn       awslambda.Function
	publisherLogs     awslogs.LogGroup
	bus               awsevents.IEventBus
	publisherFailures awssqs.Queue

	// The reconciler, nil without props.SmartcarCredentialsSecret, and
	// the secret it reads the Smartcar application's credentials from.
	reconcilerFn      awslambda.Function
	reconcilerLogs    awslogs.LogGroup
	smartcarSecret    awssecretsmanager.ISecret
	reconcileSchedule awsscheduler.CfnSchedule // nil without props.ReconcileEvery
}

func (s *webhookStack) storage() {
	s.dlq = awssqs.NewQueue(s.stack, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		RetentionPeriod:     seconds(pipeline.DLQRetention.Seconds()),
		MaxMessageSizeBytes: jsii.Number(pipeline.MaxMessageBytes),
		Encryption:          awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:          jsii.Bool(true),
	})
	s.queue = awssqs.NewQueue(s.stack, jsii.String("EventQueue"), &awssqs.QueueProps{
		VisibilityTimeout:   seconds(s.visibility()),
		MaxMessageSizeBytes: jsii.Number(pipeline.MaxMessageBytes),
		Encryption:          awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:          jsii.Bool(true),
		DeadLetterQueue:     &awssqs.DeadLetterQueue{Queue: s.dlq, MaxReceiveCount: jsii.Number(s.props.MaxReceiveCount)},
	})
	table := func(id, key, sort, ttl string, stream awsdynamodb.StreamViewType) awsdynamodb.Table {
		props := &awsdynamodb.TableProps{
			PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(key), Type: awsdynamodb.AttributeType_STRING},
			BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
			RemovalPolicy:                    s.props.RemovalPolicy,
		}
		if sort != "" {
			props.SortKey = &awsdynamodb.Attribute{Name: jsii.String(sort), Type: awsdynamodb.AttributeType_STRING}
		}
		if ttl != "" {
			props.TimeToLiveAttribute = jsii.String(ttl)
		}
		if stream != "" {
			props.Stream = stream
		}
		return awsdynamodb.NewTable(s.stack, jsii.String(id), props)
	}
	s.eventsTable = table("EventsTable", dynamostore.EventsKey, "", dynamostore.TTLAttribute, "")
	// One item per entry of a vehicle: its details, each signal, each error.
	// Its stream carries each entry's images before and after a change: the
	// publisher turns them into domain events. (Enabling it on an existing
	// table is an in-place update.)
	s.stateTable = table("VehicleEntriesTable", dynamostore.StateKey, dynamostore.EntryKey, "", awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES)
	s.state = s.stateTable
	if s.props.StateTableName != "" {
		// A table outside the stack (a rebuild's): its ARN is the stack's
		// partition, region and account with this name; its stream is the
		// one named. The stack's own table stays, as it is, to switch back
		// to.
		s.state = awsdynamodb.Table_FromTableAttributes(s.stack, jsii.String("StateTable"), &awsdynamodb.TableAttributes{
			TableName:      jsii.String(s.props.StateTableName),
			TableStreamArn: jsii.String(s.props.StateTableStreamArn),
		})
	}
	if !s.props.DropLegacyStateTable {
		// The one-item table of earlier versions, under its construct id:
		// its logical id, and what users stored in it, are unchanged.
		s.legacyStateTable = table("VehicleStateTable", dynamostore.StateKey, "", "", "")
	}
	s.secret = awssecretsmanager.Secret_FromSecretNameV2(s.stack, jsii.String("AmtSecret"), jsii.String(s.props.SecretName))
}

// archiveErrorPrefix is where Firehose writes records it could not deliver
// as asked, under archiveErrorRoot. An error prefix with expressions must
// name the error type, !{firehose:error-output-type}, AWS says.
const (
	archiveErrorRoot   = "errors/"
	archiveErrorPrefix = archiveErrorRoot + "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
)

// archive creates the raw-webhook archive: a bucket, and the Firehose
// delivery stream (DirectPut) the processor hands every queued webhook to
// before processing it. Each record is a complete gzip member holding one
// NDJSON line, so Firehose stores them as they are (UNCOMPRESSED) and an
// object, their concatenation, is a multi-member .gz file. Objects land
// under pipeline.ArchivePrefix and the UTC hour Firehose received them:
// raw/yyyy/MM/dd/HH/.
//
// The stream is the L1 CfnDeliveryStream: the L2 S3 destination grants its
// role read, write and delete on the whole bucket (grantReadWrite); this
// role has AWS's documented S3 actions only, its object actions under the
// stream's two prefixes, and no delete.
func (s *webhookStack) archive() {
	s.archiveBucket = awss3.NewBucket(s.stack, jsii.String("ArchiveBucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     s.props.RemovalPolicy,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("archive-retention"),
			Expiration:                          awscdk.Duration_Days(jsii.Number(s.props.ArchiveRetentionDays)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
			// Objects are batches of up to pipeline.ArchiveBufferMiB, so
			// Intelligent-Tiering's per-object monitoring fee is negligible,
			// and history nobody reads moves to the cheap tiers by itself.
			// (Objects under 128 KiB, from quiet hours, stay in Standard:
			// S3's lifecycle leaves them, and they cost little.)
			Transitions: &[]*awss3.Transition{{
				StorageClass:    awss3.StorageClass_INTELLIGENT_TIERING(),
				TransitionAfter: awscdk.Duration_Days(jsii.Number(0)),
			}},
		}},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(s.archiveBucket, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-S1"),
		Reason: jsii.String("Only the archive delivery stream's role writes to this bucket (PutObject under its two prefixes) and " +
			"its readers are operators: enable CloudTrail S3 data events on it to audit access. Server access logs would " +
			"need a second bucket, itself unlogged."),
	}}, jsii.Bool(false))

	logs := awslogs.NewLogGroup(s.stack, jsii.String("ArchiveStreamLogs"), &awslogs.LogGroupProps{
		Retention:     s.props.LogRetention,
		RemovalPolicy: s.props.RemovalPolicy,
	})
	logStream := awslogs.NewLogStream(s.stack, jsii.String("ArchiveStreamS3Delivery"), &awslogs.LogStreamProps{
		LogGroup:      logs,
		LogStreamName: jsii.String("S3Delivery"),
		RemovalPolicy: s.props.RemovalPolicy,
	})
	// Firehose passes the account as the external id: no other account's
	// delivery stream can be pointed at this role (confused deputy).
	role := awsiam.NewRole(s.stack, jsii.String("ArchiveStreamRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("firehose.amazonaws.com"), nil).WithConditions(&map[string]any{
			"StringEquals": map[string]any{"sts:ExternalId": s.stack.Account()},
		}),
		Description: jsii.String("Raw-webhook archive delivery stream (writes to the archive bucket and its log group only)"),
	})
	// Exactly the S3 actions of AWS's documented policy for an S3
	// destination ("Grant Firehose access to an Amazon S3 destination", in
	// the Firehose developer guide), reads included: Firehose's own needs
	// are not specified beyond that list, and it checks its access when
	// the stream is created. Narrower than the document's resources only:
	// the object actions on the stream's two prefixes, the bucket actions
	// on the bucket.
	objects := []*string{
		s.archiveBucket.ArnForObjects(jsii.String(pipeline.ArchivePrefix + "*")),
		s.archiveBucket.ArnForObjects(jsii.String(archiveErrorRoot + "*")),
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"),
		Resources: &objects,
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"),
		Resources: jsii.Strings(*s.archiveBucket.BucketArn()),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Object ARNs: Firehose names its objects itself (prefix, UTC hour, stream name, time, random id), " +
			"so the object actions of AWS's documented Firehose-to-S3 policy (PutObject, GetObject, AbortMultipartUpload) are " +
			"granted on the archive bucket's two prefixes, raw/ and errors/, and nothing wider."),
		AppliesTo: &[]any{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<ArchiveBucket[0-9A-F]+\.Arn>\/(raw|errors)\/\*$/g`)}},
	}}, jsii.Bool(true))

	s.archiveStream = awskinesisfirehose.NewCfnDeliveryStream(s.stack, jsii.String("ArchiveStream"), &awskinesisfirehose.CfnDeliveryStreamProps{
		DeliveryStreamType: jsii.String("DirectPut"),
		// Server-side encryption of the records Firehose holds, with an
		// AWS-owned key (no KMS charge, no key policy to manage).
		DeliveryStreamEncryptionConfigurationInput: &awskinesisfirehose.CfnDeliveryStream_DeliveryStreamEncryptionConfigurationInputProperty{
			KeyType: jsii.String("AWS_OWNED_CMK"),
		},
		ExtendedS3DestinationConfiguration: &awskinesisfirehose.CfnDeliveryStream_ExtendedS3DestinationConfigurationProperty{
			BucketArn: s.archiveBucket.BucketArn(),
			RoleArn:   role.RoleArn(),
			// Explicit, so that no rule about default prefixes decides it.
			Prefix:            jsii.String(pipeline.ArchivePrefix + pipeline.ArchiveHourExpression),
			ErrorOutputPrefix: jsii.String(archiveErrorPrefix),
			// The records are gzip members already: compressing again would
			// nest them. The objects are .gz files all the same.
			CompressionFormat: jsii.String("UNCOMPRESSED"),
			FileExtension:     jsii.String(".gz"),
			BufferingHints: &awskinesisfirehose.CfnDeliveryStream_BufferingHintsProperty{
				IntervalInSeconds: jsii.Number(pipeline.ArchiveBufferInterval.Seconds()),
				SizeInMBs:         jsii.Number(pipeline.ArchiveBufferMiB),
			},
			CloudWatchLoggingOptions: &awskinesisfirehose.CfnDeliveryStream_CloudWatchLoggingOptionsProperty{
				Enabled:       jsii.Bool(true),
				LogGroupName:  logs.LogGroupName(),
				LogStreamName: logStream.LogStreamName(),
			},
		},
	})
	// Firehose checks its access when the stream is created: the role's
	// policy must exist by then.
	s.archiveStream.Node().AddDependency(role)
}

// visibility is the queue's visibility timeout in seconds: the pipeline's,
// or more when the processor's timeout or a batching window needs it
// (6 × function timeout + window, as AWS asks).
func (s *webhookStack) visibility() float64 {
	return max(pipeline.QueueVisibilityTimeout.Seconds(), 6*s.props.ProcessorTimeoutSeconds+s.props.MaxBatchingWindowSeconds)
}

// lease is the claims' lease: it outlives an invocation (three times the
// processor's timeout, at least the default) and ends inside the
// visibility timeout, as the processor checks at start-up.
func (s *webhookStack) lease() time.Duration {
	return max(processor.DefaultLease, 3*time.Duration(s.props.ProcessorTimeoutSeconds)*time.Second)
}

// function creates a Lambda with its own log group and a role that may only
// write to that log group; callers add what else it may do.
func (s *webhookStack) function(id, description string, code awslambda.Code, memory float64, timeout awscdk.Duration, env map[string]string) (awslambda.Function, awslogs.LogGroup) {
	logs := awslogs.NewLogGroup(s.stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     s.props.LogRetention,
		RemovalPolicy: s.props.RemovalPolicy,
	})
	role := awsiam.NewRole(s.stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(description + " (logs to its own log group only)"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	environment := map[string]*string{}
	for k, v := range env {
		environment[k] = jsii.String(v)
	}
	fn := awslambda.NewFunction(s.stack, jsii.String(id), &awslambda.FunctionProps{
		Description:  jsii.String(description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		MemorySize:   jsii.Number(memory),
		Timeout:      timeout,
		Role:         role,
		LogGroup:     logs,
		Environment:  &environment,
		// JSON, so that Lambda filters its own lines by level: at WARN it
		// drops START, END and REPORT (≈ 400 bytes of ≈ 1.7 KB per webhook;
		// Duration and Errors stay CloudWatch metrics). The functions'
		// lines are JSON already and pass unchanged, EMF included; their
		// LOG_LEVEL decides which are written.
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		SystemLogLevelV2:      awslambda.SystemLogLevel(s.props.SystemLogLevel),
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_DEBUG,
	})
	fn.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(id))
	return fn, logs
}

func allow(fn awslambda.Function, actions []string, resources ...*string) {
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: &resources,
	}))
}

func (s *webhookStack) functions() {
	s.receiver, s.receiverLogs = s.function(ReceiverFunctionID, "Smartcar webhook receiver: verifies, answers VERIFY, enqueues",
		s.props.ReceiverCode, s.props.ReceiverMemoryMB, seconds(s.props.ReceiverTimeoutSeconds), map[string]string{
			"AMT_SECRET_ID":    s.props.SecretName,
			"MAX_DELIVERY_AGE": s.props.MaxDeliveryAge,
			"LOG_LEVEL":        s.props.LogLevel,
		})
	s.receiver.AddEnvironment(jsii.String("QUEUE_URL"), s.queue.QueueUrl(), nil)
	allow(s.receiver, []string{"sqs:SendMessage"}, s.queue.QueueArn())
	s.secret.GrantRead(s.receiver, nil)

	s.processor, s.procLogs = s.function(ProcessorFunctionID, "Smartcar webhook processor: exactly-once state updates",
		s.props.ProcessorCode, s.props.ProcessorMemoryMB, seconds(s.props.ProcessorTimeoutSeconds), map[string]string{
			"MAX_RECEIVE_COUNT":        strconv.Itoa(int(s.props.MaxReceiveCount)),
			"QUEUE_VISIBILITY_TIMEOUT": strconv.Itoa(int(s.visibility())),
			"LEASE_DURATION":           s.lease().String(),
			// A message redriven from the DLQ must still find its event
			// remembered, or users' handlers run again.
			"DLQ_RETENTION":   pipeline.DLQRetention.String(),
			"IDEMPOTENCY_TTL": processor.DefaultIdempotencyTTL.String(),
			"LOG_LEVEL":       s.props.LogLevel,
		})
	s.processor.AddEnvironment(jsii.String("EVENTS_TABLE"), s.eventsTable.TableName(), nil)
	s.processor.AddEnvironment(jsii.String("STATE_TABLE"), s.state.TableName(), nil)
	s.processor.AddEnvironment(jsii.String("DLQ_URL"), s.dlq.QueueUrl(), nil)
	allow(s.processor, []string{"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"}, s.eventsTable.TableArn())
	allow(s.processor, []string{"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem"}, s.state.TableArn())
	if s.legacyStateTable != nil {
		s.processor.AddEnvironment(jsii.String("LEGACY_STATE_TABLE"), s.legacyStateTable.TableName(), nil)
		allow(s.processor, []string{"dynamodb:GetItem"}, s.legacyStateTable.TableArn())
	}
	allow(s.processor, []string{"sqs:SendMessage"}, s.dlq.QueueArn())
	// Every record is archived before it is processed, in batches.
	s.processor.AddEnvironment(jsii.String("ARCHIVE_STREAM"), s.archiveStream.Ref(), nil)
	allow(s.processor, []string{"firehose:PutRecordBatch"}, s.archiveStream.AttrArn())
	var window awscdk.Duration
	if s.props.MaxBatchingWindowSeconds > 0 {
		window = seconds(s.props.MaxBatchingWindowSeconds)
	}
	s.processor.AddEventSource(awslambdaeventsources.NewSqsEventSource(s.queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(pipeline.BatchSize),
		MaxBatchingWindow:       window,
		MaxConcurrency:          jsii.Number(s.props.MaxConcurrency),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
}

// sqsOnFailure is an event source mapping's on-failure destination, an SQS
// queue, as awslambdaeventsources.SqsDlq is but without its grant
// (sqs:SendMessage, sqs:GetQueueAttributes and sqs:GetQueueUrl): Lambda
// sends the failure records with the function's role, which needs
// sqs:SendMessage alone, granted where the queue is made.
type sqsOnFailure struct{ queue awssqs.IQueue }

func (d *sqsOnFailure) Bind(awslambda.IEventSourceMapping, awslambda.IFunction) *awslambda.DlqDestinationConfig {
	return &awslambda.DlqDestinationConfig{Destination: d.queue.QueueArn()}
}

// domainEvents delivers stored changes to users' systems: a Lambda reads the
// vehicle-state table's stream (the stack's own VehicleEntriesTable's, or
// that of the table props.StateTableName names) and puts domain events on
// an EventBridge bus (the stack's DomainEventBus, or the one
// props.EventBusName names).
//
// The event source reads from TRIM_HORIZON, the stream's oldest record: a
// new mapping (the first deployment with the publisher, or a switch of
// stateTableName, which replaces the mapping) starts with everything the
// stream holds. LATEST would skip what is written between the stream being
// enabled (in the same deployment) and the mapping's first poll, and, on a
// switch-over, what the processor writes to the new table before the new
// mapping exists. With TRIM_HORIZON nothing written since the stream was
// enabled is skipped. The price is repeats: on a switch-over the rebuilt
// table's stream, at most streamRetention (24 hours) of it, is read again,
// and its changes' domain events are put on the bus a second time. Each
// carries an idempotency key derived from the stored change (the same
// change, the same key), so consumers drop the repeats as duplicates.
//
// One batch per shard at a time (ParallelizationFactor 1), so that a
// vehicle's events go out in the order its entries changed. A batch is
// retried from the first record the publisher could not publish
// (ReportBatchItemFailures), or halved if the invocation failed
// (BisectBatchOnError), up to publisherRetries times; then its shard and
// sequence range go to PublisherFailureQueue (so do a batch's with a
// record older than publisherMaxRecordAge), from which `make
// events-redrive` reads the records again while the stream keeps them
// (streamRetention from when they were written).
func (s *webhookStack) domainEvents() {
	if s.props.EventBusName != "" {
		s.bus = awsevents.EventBus_FromEventBusName(s.stack, jsii.String("DomainEventBus"), jsii.String(s.props.EventBusName))
	} else {
		s.bus = awsevents.NewEventBus(s.stack, jsii.String("DomainEventBus"), &awsevents.EventBusProps{
			Description: jsii.String("Smartcar vehicle domain events (source " + s.props.EventSource + ")"),
		})
	}
	s.publisherFailures = awssqs.NewQueue(s.stack, jsii.String("PublisherFailureQueue"), &awssqs.QueueProps{
		RetentionPeriod: seconds(pipeline.DLQRetention.Seconds()),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
	})
	cdknag.NagSuppressions_AddResourceSuppressions(s.publisherFailures, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is a dead-letter queue: the publisher's stream event source sends it the shard and " +
			"sequence range of each batch it gave up on (its on-failure destination), for operators to read; nothing " +
			"consumes it, so it needs no dead-letter queue of its own."),
	}}, jsii.Bool(false))

	s.publisherFn, s.publisherLogs = s.function(PublisherFunctionID, "Smartcar domain-event publisher: the vehicle-state table's stream to EventBridge",
		s.props.PublisherCode, s.props.PublisherMemoryMB, seconds(pipeline.PublisherTimeout.Seconds()), map[string]string{
			"EVENT_SOURCE": s.props.EventSource,
			"LOG_LEVEL":    s.props.LogLevel,
		})
	s.publisherFn.AddEnvironment(jsii.String("EVENT_BUS_NAME"), s.bus.EventBusName(), nil)
	s.publisherFn.AddEnvironment(jsii.String("STATE_TABLE"), s.state.TableName(), nil)
	// Events of the configured source alone, on the one bus.
	s.publisherFn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("events:PutEvents"),
		Resources:  &[]*string{s.bus.EventBusArn()},
		Conditions: &map[string]any{"StringEquals": map[string]any{"events:source": s.props.EventSource}},
	}))
	// A vehicle's entries, to tell whether a reauth error was its last.
	allow(s.publisherFn, []string{"dynamodb:Query"}, s.state.TableArn())
	allow(s.publisherFn, []string{"sqs:SendMessage"}, s.publisherFailures.QueueArn())
	// The event source grants the stream's reads (grantStreamRead):
	// DescribeStream, GetRecords and GetShardIterator on the stream, and
	// ListStreams, which has no resource-level permissions, on "*".
	cdknag.NagSuppressions_AddResourceSuppressions(s.publisherFn.Role(), &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("dynamodb:ListStreams, which Lambda's DynamoDB event source asks of the function's role, supports " +
			"no resource-level permissions (IAM's service authorization reference): it lists stream ARNs only. The stream's " +
			"reads (DescribeStream, GetRecords, GetShardIterator) are granted on the one stream."),
		AppliesTo: &[]any{jsii.String("Resource::*")},
	}}, jsii.Bool(true))
	s.publisherFn.AddEventSource(awslambdaeventsources.NewDynamoEventSource(s.state, &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(publisherBatchSize),
		MaxBatchingWindow:       seconds(1),
		BisectBatchOnError:      jsii.Bool(true),
		ReportBatchItemFailures: jsii.Bool(true),
		RetryAttempts:           jsii.Number(publisherRetries),
		MaxRecordAge:            seconds(publisherMaxRecordAge.Seconds()),
		ParallelizationFactor:   jsii.Number(1),
		OnFailure:               &sqsOnFailure{queue: s.publisherFailures},
	}))
}

// The reconciler's metrics (EMF, dimension Service=reconciler; APIErrors
// also by Kind, the kind of error Smartcar's API answered).
const (
	reconcilerService         = "reconciler"
	metricVehiclesReconciled  = reconcile.MetricVehiclesReconciled
	metricSignalsHealed       = reconcile.MetricSignalsHealed
	metricReconcileStopped    = reconcile.MetricReconcileStopped // 1 when a run stopped on an authentication or billing error
	metricReconcileFailures   = reconcile.MetricReconcileFailures
	metricReconcilerAPIErrors = reconcile.MetricAPIErrors
)

// The reconciler's function and schedule.
const (
	reconcilerMemoryMB = 256
	reconcilerTimeout  = pipeline.ReconcilerTimeout
	// reconcilerMaxEventAge is how long an asynchronous invocation (a
	// scheduled tick) may wait, behind a run under way, before Lambda
	// drops it: one run's timeout.
	reconcilerMaxEventAge = reconcilerTimeout
	// reconcileScheduleInput is what a scheduled tick asks: the stale
	// vehicles alone.
	reconcileScheduleInput = `{"stale":true}`
)

// reconciler deploys, with props.SmartcarCredentialsSecret, the function
// that polls Smartcar's API for vehicles' current state and merges it into
// the state table through the processor's newest-wins rules: what the
// webhooks missed (a delivery Smartcar gave up on, a webhook disabled) is
// healed. With props.ReconcileEvery an EventBridge Scheduler schedule runs
// it on the stale vehicles; `make reconcile` runs it by hand.
//
// One run at a time (reserved concurrency 1): Smartcar's rate limits are
// the application's, so two runs would share one budget and each pace
// itself as if alone. A failed run is not retried (the next tick, or the
// operator, starts over), nor is a scheduled invocation that waited
// longer than a run's timeout behind another run.
func (s *webhookStack) reconciler() {
	ref := s.props.SmartcarCredentialsSecret
	if ref == "" {
		return
	}
	id := jsii.String("SmartcarCredentialsSecret")
	switch {
	case !strings.HasPrefix(ref, "arn:"):
		s.smartcarSecret = awssecretsmanager.Secret_FromSecretNameV2(s.stack, id, jsii.String(ref))
	case completeSecretArn.MatchString(ref):
		s.smartcarSecret = awssecretsmanager.Secret_FromSecretCompleteArn(s.stack, id, jsii.String(ref))
	default:
		s.smartcarSecret = awssecretsmanager.Secret_FromSecretPartialArn(s.stack, id, jsii.String(ref))
	}
	env := map[string]string{
		"RECONCILE_STALE_AFTER": s.props.ReconcileStaleAfter.String(),
		"LOG_LEVEL":             s.props.LogLevel,
	}
	if s.props.SmartcarAPIBase != "" {
		env["SMARTCAR_API_BASE"] = s.props.SmartcarAPIBase
	}
	if s.props.SmartcarTokenURL != "" {
		env["SMARTCAR_TOKEN_URL"] = s.props.SmartcarTokenURL
	}
	fn, logs := s.function(ReconcilerFunctionID, "Smartcar reconciler: polls Smartcar's API for vehicles' current state and heals the state table",
		s.props.ReconcilerCode, reconcilerMemoryMB, seconds(reconcilerTimeout.Seconds()), env)
	s.reconcilerFn, s.reconcilerLogs = fn, logs
	fn.Node().DefaultChild().(awslambda.CfnFunction).SetReservedConcurrentExecutions(jsii.Number(1))
	fn.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: jsii.Number(0),
		MaxEventAge:   seconds(reconcilerMaxEventAge.Seconds()),
	})
	fn.AddEnvironment(jsii.String("STATE_TABLE"), s.state.TableName(), nil)
	fn.AddEnvironment(jsii.String("EVENTS_TABLE"), s.eventsTable.TableName(), nil)
	fn.AddEnvironment(jsii.String("SMARTCAR_CREDENTIALS_SECRET"), s.smartcarSecret.SecretArn(), nil)
	// It lists the vehicles (Scan), reads their user ids (GetItem) and
	// entries (Query), writes them as the processor does (conditional
	// UpdateItem and PutItem), and keeps each vehicle's last poll in the
	// events table (PutItem; BatchGetItem to read them; GetItem and
	// PutItem as the processor's merge, should an event need recording).
	allow(fn, []string{"dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"}, s.state.TableArn())
	allow(fn, []string{"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem"}, s.eventsTable.TableArn())
	// GetSecretValue and DescribeSecret on the one secret. A secret
	// encrypted with a customer-managed KMS key also needs kms:Decrypt on
	// that key for this function's role, which the stack does not know of:
	// that grant (in the key's policy) is the secret owner's to make.
	s.smartcarSecret.GrantRead(fn, nil)

	if s.props.ReconcileEvery == 0 {
		return
	}
	// Scheduler assumes this role to invoke the function, for this
	// account's schedules only (confused deputy), and may invoke nothing
	// else.
	role := awsiam.NewRole(s.stack, jsii.String("ReconcileScheduleRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil).WithConditions(&map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": s.stack.Account()},
		}),
		Description: jsii.String("EventBridge Scheduler's role for the reconcile schedule (invokes the reconciler only)"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: jsii.Strings(*fn.FunctionArn()),
	}))
	s.reconcileSchedule = awsscheduler.NewCfnSchedule(s.stack, jsii.String("ReconcileSchedule"), &awsscheduler.CfnScheduleProps{
		Description:        jsii.String("Reconciles the vehicles whose state is stale with Smartcar's API"),
		ScheduleExpression: jsii.String(rateExpression(s.props.ReconcileEvery)),
		FlexibleTimeWindow: &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("OFF")},
		State:              jsii.String("ENABLED"),
		Target: &awsscheduler.CfnSchedule_TargetProperty{
			Arn:     fn.FunctionArn(),
			RoleArn: role.RoleArn(),
			Input:   jsii.String(reconcileScheduleInput),
			// Not retried: the next tick is the retry.
			RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{MaximumRetryAttempts: jsii.Number(0)},
		},
	})
	// The role's policy exists before the first tick.
	s.reconcileSchedule.Node().AddDependency(role)
}

// accessLogSettings implements awsapigatewayv2.IAccessLogSettings.
type accessLogSettings struct {
	dest   awsapigatewayv2.IAccessLogDestination
	format awsapigateway.AccessLogFormat
}

func (a *accessLogSettings) Destination() awsapigatewayv2.IAccessLogDestination { return a.dest }
func (a *accessLogSettings) Format() awsapigateway.AccessLogFormat              { return a.format }

func (s *webhookStack) api() {
	accessLogs := awslogs.NewLogGroup(s.stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     s.props.LogRetention,
		RemovalPolicy: s.props.RemovalPolicy,
	})
	s.httpAPI = awsapigatewayv2.NewHttpApi(s.stack, jsii.String("WebhookApi"), &awsapigatewayv2.HttpApiProps{
		Description:        jsii.String("Smartcar webhook callback URIs"),
		CreateDefaultStage: jsii.Bool(false),
	})
	s.httpAPI.AddStage(jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageOptions{
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit: jsii.Number(s.props.ThrottleRate), BurstLimit: jsii.Number(s.props.ThrottleBurst),
		},
		AccessLogSettings: &accessLogSettings{
			dest: awsapigatewayv2.NewLogGroupLogDestination(accessLogs),
			format: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true), RequestTime: jsii.Bool(true),
				ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true), Status: jsii.Bool(true),
				Caller: jsii.Bool(false), User: jsii.Bool(false),
			}),
		},
	})
	integration := awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("ReceiverIntegration"), s.receiver, nil)
	routes := []struct {
		path   string
		method awsapigatewayv2.HttpMethod
	}{
		{receiver.PathWebhook, awsapigatewayv2.HttpMethod_POST},
		{receiver.PathErrors, awsapigatewayv2.HttpMethod_POST},
		{receiver.PathHealth, awsapigatewayv2.HttpMethod_GET},
	}
	for _, r := range routes {
		s.httpAPI.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path: jsii.String(r.path), Methods: &[]awsapigatewayv2.HttpMethod{r.method}, Integration: integration,
		})
	}
	s.webhookURL = awscdk.Fn_Join(jsii.String(""), jsii.Strings(*s.httpAPI.ApiEndpoint(), receiver.PathWebhook))
	s.errorsURL = awscdk.Fn_Join(jsii.String(""), jsii.Strings(*s.httpAPI.ApiEndpoint(), receiver.PathErrors))
}

// custom returns one of this project's EMF metrics.
func custom(service, name, statistic string, period float64) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(emf.DefaultNamespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"Service": jsii.String(service)},
		Statistic:     jsii.String(statistic),
		Period:        seconds(period),
	})
}

// firehose returns one of the archive delivery stream's metrics.
func (s *webhookStack) firehose(name, statistic string, period float64) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/Firehose"),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"DeliveryStreamName": s.archiveStream.Ref()},
		Statistic:     jsii.String(statistic),
		Period:        seconds(period),
	})
}

// The duplicate-processing alarm fires when more than duplicateAlarmPercent
// of the records handled in duplicateAlarmPeriod seconds were duplicates
// (DuplicatesSkipped + DuplicatesDeferred), and at least
// duplicateAlarmMinimum of them. Healthy traffic has few: Smartcar redelivers
// only an answer it did not get, and the receiver answers in milliseconds;
// the cost model's 1.05 deliveries per event (about 5 % duplicates) is a
// pessimistic figure, and twice it is a cause to look for.
const (
	duplicateAlarmPercent = 10
	duplicateAlarmMinimum = 10
	duplicateAlarmPeriod  = 900
)

func (s *webhookStack) monitoring() {
	s.alarmTopic = awssns.NewTopic(s.stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Smartcar webhook alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	if s.props.AlarmEmail != "" {
		s.alarmTopic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(s.props.AlarmEmail), nil))
	}
	minute := func(m awscloudwatch.Metric, stat string) awscloudwatch.Metric {
		return m.With(&awscloudwatch.MetricOptions{Statistic: jsii.String(stat), Period: seconds(60)})
	}
	// records are the processor's outcomes per record over period seconds,
	// for rates: every record handled counts once in the denominator.
	const recordsHandled = "FILL(pe, 0) + FILL(ok, 0) + FILL(dup, 0) + FILL(dfr, 0) + FILL(perm, 0)"
	records := func(period float64) *map[string]awscloudwatch.IMetric {
		return &map[string]awscloudwatch.IMetric{
			"pe":   custom("processor", processor.MetricProcessingErrors, "Sum", period),
			"ok":   custom("processor", processor.MetricEventsProcessed, "Sum", period),
			"dup":  custom("processor", processor.MetricDuplicatesSkipped, "Sum", period),
			"dfr":  custom("processor", processor.MetricDuplicatesDeferred, "Sum", period),
			"perm": custom("processor", processor.MetricPermanentFailures, "Sum", period),
		}
	}
	processingErrorRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String("100 * FILL(pe, 0) / MAX([" + recordsHandled + ", 1])"),
		UsingMetrics: records(300),
		Label:        jsii.String("Processing errors (% of records)"),
		Period:       seconds(300),
	})
	// Duplicates, skipped (already COMPLETED) or deferred (IN_PROGRESS
	// under another message's lease), as a percentage of the records
	// handled in 15 minutes; 0 while there are fewer than
	// duplicateAlarmMinimum of them, so that one retry among a handful of
	// events does not page anyone.
	duplicateRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf("IF(FILL(dup, 0) + FILL(dfr, 0) >= %d, 100 * (FILL(dup, 0) + FILL(dfr, 0)) / MAX([%s, 1]), 0)",
			duplicateAlarmMinimum, recordsHandled)),
		UsingMetrics: records(duplicateAlarmPeriod),
		Label:        jsii.String("Duplicates skipped or deferred (% of records)"),
		Period:       seconds(duplicateAlarmPeriod),
	})
	alarms := []struct {
		id, description string
		metric          awscloudwatch.IMetric
		threshold       float64
	}{
		{"DlqNotEmptyAlarm", "Messages in the dead-letter queue: inspect with `make dlq-list`",
			minute(s.dlq.MetricApproximateNumberOfMessagesVisible(nil), "Maximum"), 0},
		{"QueueBacklogAgeAlarm", "Oldest message in the event queue is older than 5 minutes",
			minute(s.queue.MetricApproximateAgeOfOldestMessage(nil), "Maximum"), 300},
		{"QueueDepthAlarm", "More than 1000 messages waiting in the event queue",
			minute(s.queue.MetricApproximateNumberOfMessagesVisible(nil), "Maximum"), 1000},
		{"SignatureFailuresAlarm", "More than 5 signature failures in 5 minutes: forged traffic or a wrong token",
			custom("receiver", receiver.MetricSignatureFailures, "Sum", 300), 5},
		{"ReplaysRejectedAlarm", "Signed events refused as replays (meta.deliveredAt older than MAX_DELIVERY_AGE or in the future): a captured body replayed, or a clock far off",
			custom("receiver", receiver.MetricReplaysRejected, "Sum", 300), 0},
		{"ProcessingErrorRateAlarm", "Processing errors above 5% of records",
			processingErrorRate, 5},
		{"DuplicateProcessingAlarm", fmt.Sprintf("Duplicates skipped or deferred above %d%% of records in 15 minutes (at least %d): "+
			"Smartcar retrying answers it did not get, processor invocations failing after their records completed, or a DLQ redrive of completed events",
			duplicateAlarmPercent, duplicateAlarmMinimum),
			duplicateRate, duplicateAlarmPercent},
		{"Receiver5xxAlarm", "The receiver answered 5xx: events are not being persisted",
			minute(s.httpAPI.MetricServerError(nil), "Sum"), 0},
		{"ReceiverLatencyAlarm", "Receiver p99 duration above 1 second",
			minute(s.receiver.MetricDuration(nil), "p99"), 1000},
		{"ReceiverThrottlesAlarm", "The receiver Lambda is throttled",
			minute(s.receiver.MetricThrottles(nil), "Sum"), 0},
		{"ProcessorThrottlesAlarm", "The processor Lambda is throttled",
			minute(s.processor.MetricThrottles(nil), "Sum"), 0},
	}
	var alarmWidgets []awscloudwatch.IWidget
	addWidget := func(alarm awscloudwatch.Alarm, title string) {
		alarmWidgets = append(alarmWidgets, awscloudwatch.NewAlarmWidget(&awscloudwatch.AlarmWidgetProps{
			Alarm: alarm, Title: jsii.String(title), Width: jsii.Number(8), Height: jsii.Number(5),
		}))
	}
	// newAlarm creates an alarm that notifies the alarm topic, and puts
	// it on the dashboard.
	newAlarm := func(id string, props *awscloudwatch.AlarmProps) awscloudwatch.Alarm {
		alarm := awscloudwatch.NewAlarm(s.stack, jsii.String(id), props)
		alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(s.alarmTopic))
		addWidget(alarm, *props.AlarmDescription)
		return alarm
	}
	// addAlarm fires when the metric is above the threshold in periods
	// consecutive periods.
	addAlarm := func(id, description string, metric awscloudwatch.IMetric, threshold, periods float64) {
		newAlarm(id, &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(periods),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	for _, a := range alarms {
		addAlarm(a.id, a.description, a.metric, a.threshold, 1)
	}
	// The archive's. A record whose archive write failed is retried
	// unprocessed; an outage longer than its four receives (about two
	// minutes) dead-letters live traffic, so any failure is worth a look.
	addAlarm("ArchiveFailuresAlarm", "Records not archived (Firehose PutRecordBatch failed) in the last 5 minutes: they are retried "+
		"unprocessed, and dead-lettered once their retries run out (make dlq-redrive archives and processes them)",
		custom("processor", processor.MetricArchiveFailures, "Sum", 300), 0, 1)
	// Firehose delivers a buffer at least every ArchiveBufferInterval; it
	// retries a failed delivery to S3 for up to 24 hours, then drops it.
	freshness := 2 * pipeline.ArchiveBufferInterval
	addAlarm("ArchiveDeliveryAlarm", fmt.Sprintf("The archive's oldest undelivered record is older than %.0f minutes for 15 minutes: "+
		"Firehose cannot write to the archive bucket (see the ArchiveStreamLogs log group) and drops records after 24 hours of retries",
		freshness.Minutes()), s.firehose("DeliveryToS3.DataFreshness", "Maximum", 300), freshness.Seconds(), 3)
	// The publisher's. Its failed invocations (crashes, timeouts) are
	// retried up to publisherRetries times: one failing period may be a
	// hiccup the retries got through; two in a row is not. Records it
	// could not publish (PutEvents entries that failed) are no invocation
	// error: the publisher returns them as batch item failures, which
	// Lambda Errors does not count, so PublishFailuresAlarm watches its
	// PublishFailures metric. A period or two of them is a blip the retries
	// get through; three in a row will run the retries out.
	fiveMinutes := func(m awscloudwatch.Metric, stat string) awscloudwatch.Metric {
		return m.With(&awscloudwatch.MetricOptions{Statistic: jsii.String(stat), Period: seconds(300)})
	}
	iteratorAge := s.publisherFn.Metric(jsii.String("IteratorAge"), nil)
	addAlarm("PublisherErrorsAlarm", "The domain-event publisher failed in two 5-minute periods in a row: its batches are "+
		"retried, and sent to PublisherFailureQueue once their retries run out (see the PublisherFunctionLogs log group)",
		fiveMinutes(s.publisherFn.MetricErrors(nil), "Sum"), 0, 2)
	addAlarm("PublishFailuresAlarm", "The domain-event publisher could not put events on the bus (EventBridge PutEvents entries "+
		"failed) in three 5-minute periods in a row: their records are retried, and sent to PublisherFailureQueue once their "+
		"retries run out (see the PublisherFunctionLogs log group)",
		custom("publisher", publisher.MetricPublishFailures, "Sum", 300), 0, 3)
	addAlarm("PublisherFailuresAlarm", fmt.Sprintf("Stream batches the publisher gave up on are in PublisherFailureQueue: their "+
		"domain events were not all published; each message names a shard and sequence range, readable from the stream for "+
		"%.0f hours after it was written (make events-redrive publishes them again)", streamRetention.Hours()),
		minute(s.publisherFailures.MetricApproximateNumberOfMessagesVisible(nil), "Maximum"), 0, 1)
	addAlarm("PublisherLagAlarm", fmt.Sprintf("The domain-event publisher reads the state table's stream more than %.0f minutes "+
		"behind for 15 minutes: events reach users late, and batches with records older than %.0f hours are given up on "+
		"(sent to PublisherFailureQueue)", publisherLagAlarm.Minutes(), publisherMaxRecordAge.Hours()),
		fiveMinutes(iteratorAge, "Maximum"), float64(publisherLagAlarm.Milliseconds()), 3)

	// Composite alarms, shown by status on the dashboard.
	var statusAlarms []awscloudwatch.IAlarm
	if !s.props.NoSilenceAlarm {
		statusAlarms = append(statusAlarms, s.silenceAlarm(addWidget))
	}
	if s.reconcilerFn != nil {
		newAlarm("ReconcileStopped", &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String("The reconciler stopped a run on an authentication or billing error from Smartcar's API: " +
				"the Smartcar credentials (the clientId and clientSecret in the smartcarCredentialsSecret secret) or the Smartcar " +
				"application's billing need attention. Check the ReconcilerFunctionLogs log group for reconcile.stopped (its hint " +
				"and error say which), fix it, then run make reconcile"),
			Metric:             custom(reconcilerService, metricReconcileStopped, "Sum", 300),
			Threshold:          jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		newAlarm("ReconcilerErrors", &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String("The reconciler failed (an error, a crash or its 15-minute timeout) in the last 5 minutes: " +
				"that run did not finish, and is not retried (the next scheduled run, or make reconcile, starts over); see the " +
				"ReconcilerFunctionLogs log group"),
			Metric:             fiveMinutes(s.reconcilerFn.MetricErrors(nil), "Sum"),
			Threshold:          jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}

	graph := func(title string, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &metrics, Width: jsii.Number(12), Height: jsii.Number(6),
		})
	}
	s.dashboard = awscloudwatch.NewDashboard(s.stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	s.dashboard.AddWidgets(
		graph("Webhooks received, enqueued, rejected",
			custom("receiver", receiver.MetricWebhooksReceived, "Sum", 60),
			custom("receiver", receiver.MetricWebhooksEnqueued, "Sum", 60),
			custom("receiver", receiver.MetricSignatureFailures, "Sum", 60),
			custom("receiver", receiver.MetricEnqueueFailures, "Sum", 60),
			custom("receiver", receiver.MetricVerifyAnswered, "Sum", 60),
			custom("receiver", receiver.MetricReplaysRejected, "Sum", 60),
			custom("receiver", receiver.MetricDeliveredAtUnreadable, "Sum", 60)),
		graph("Receiver latency (ms), API 4xx (429: throttled) and 5xx",
			minute(s.receiver.MetricDuration(nil), "p50"), minute(s.receiver.MetricDuration(nil), "p99"),
			minute(s.httpAPI.MetricClientError(nil), "Sum"), minute(s.httpAPI.MetricServerError(nil), "Sum")),
		graph("Events processed",
			custom("processor", processor.MetricEventsProcessed, "Sum", 60),
			custom("processor", processor.MetricDuplicatesSkipped, "Sum", 60),
			custom("processor", processor.MetricDuplicatesDeferred, "Sum", 60),
			custom("processor", processor.MetricStaleSignalsIgnored, "Sum", 60),
			custom("processor", processor.MetricFutureTimestampsClamped, "Sum", 60),
			custom("processor", processor.MetricProcessingErrors, "Sum", 60),
			custom("processor", processor.MetricPermanentFailures, "Sum", 60)),
		graph("End-to-end latency (ms from Smartcar's deliveredAt)",
			custom("processor", processor.MetricEndToEndLatency, "p50", 60),
			custom("processor", processor.MetricEndToEndLatency, "p99", 60)),
		graph("Queue and DLQ",
			minute(s.queue.MetricApproximateNumberOfMessagesVisible(nil), "Maximum"),
			minute(s.queue.MetricApproximateAgeOfOldestMessage(nil), "Maximum"),
			minute(s.dlq.MetricApproximateNumberOfMessagesVisible(nil), "Maximum")),
		graph("Lambda errors and throttles",
			minute(s.receiver.MetricErrors(nil), "Sum"), minute(s.receiver.MetricThrottles(nil), "Sum"),
			minute(s.processor.MetricErrors(nil), "Sum"), minute(s.processor.MetricThrottles(nil), "Sum")),
		// Firehose's metrics come in 5-minute periods.
		graph("Archive: records in (Firehose), archive failures (processor)",
			s.firehose("IncomingRecords", "Sum", 300),
			custom("processor", processor.MetricArchiveFailures, "Sum", 300)),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title:  jsii.String("Archive delivery to S3: oldest undelivered record (s, left), success ratio (right)"),
			Left:   &[]awscloudwatch.IMetric{s.firehose("DeliveryToS3.DataFreshness", "Maximum", 300)},
			Right:  &[]awscloudwatch.IMetric{s.firehose("DeliveryToS3.Success", "Average", 300)},
			Width:  jsii.Number(12),
			Height: jsii.Number(6),
		}),
		graph("Domain events published and not (retried); publisher invocations, errors, throttles, batches given up",
			custom("publisher", publisher.MetricDomainEventsPublished, "Sum", 60),
			custom("publisher", publisher.MetricPublishFailures, "Sum", 60),
			minute(s.publisherFn.MetricInvocations(nil), "Sum"), minute(s.publisherFn.MetricErrors(nil), "Sum"),
			minute(s.publisherFn.MetricThrottles(nil), "Sum"),
			minute(s.publisherFailures.MetricApproximateNumberOfMessagesVisible(nil), "Maximum")),
		graph("Publisher iterator age (ms behind the stream's newest record)",
			minute(iteratorAge, "Maximum")),
	)
	if s.reconcilerFn != nil {
		// APIErrors has a Kind dimension whose values the reconciler
		// decides: a search graphs every kind there is.
		apiErrors := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,Kind,Service} MetricName="%s" Service="%s"', 'Sum', 300)`,
				emf.DefaultNamespace, metricReconcilerAPIErrors, reconcilerService)),
			UsingMetrics: &map[string]awscloudwatch.IMetric{},
			Label:        jsii.String("Smartcar API errors by kind"),
			Period:       seconds(300),
		})
		s.dashboard.AddWidgets(
			graph("Reconciler: vehicles reconciled, signals healed, vehicles failed, runs stopped",
				custom(reconcilerService, metricVehiclesReconciled, "Sum", 300),
				custom(reconcilerService, metricSignalsHealed, "Sum", 300),
				custom(reconcilerService, metricReconcileFailures, "Sum", 300),
				custom(reconcilerService, metricReconcileStopped, "Sum", 300)),
			graph("Reconciler: Smartcar API errors by kind; invocations, errors, throttles", apiErrors,
				fiveMinutes(s.reconcilerFn.MetricInvocations(nil), "Sum"), fiveMinutes(s.reconcilerFn.MetricErrors(nil), "Sum"),
				fiveMinutes(s.reconcilerFn.MetricThrottles(nil), "Sum")),
		)
	}
	s.dashboard.AddWidgets(alarmWidgets...)
	if len(statusAlarms) > 0 {
		s.dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Alarms: &statusAlarms, Title: jsii.String("Composite alarms"), Width: jsii.Number(8), Height: jsii.Number(3),
		}))
	}

	both := &[]awslogs.ILogGroup{s.receiverLogs, s.procLogs}
	queries := []struct{ name, query string }{
		{"event-history", "fields @timestamp, @log, message, eventId, deliveryId, messageId, receiveCount, reason, error\n" +
			"| filter eventId = \"REPLACE-WITH-EVENT-ID\"\n| sort @timestamp asc\n| limit 200"},
		{"dead-lettered", "fields @timestamp, eventId, eventType, vehicleId, messageId, receiveCount, permanent, reason\n" +
			"| filter message = \"processing.dead_lettered\"\n| sort @timestamp desc\n| limit 200"},
		{"signature-failures", "fields @timestamp, reason, eventType, mode, deliveryId, bodyBytes, signaturePrefix, userAgent, tokensTried\n" +
			"| filter message = \"signature.failed\"\n| sort @timestamp desc\n| limit 200"},
	}
	for _, q := range queries {
		awslogs.NewCfnQueryDefinition(s.stack, jsii.String("Query-"+q.name), &awslogs.CfnQueryDefinitionProps{
			Name:          jsii.String(fmt.Sprintf("%s/%s", *s.stack.StackName(), q.name)),
			QueryString:   jsii.String(q.query),
			LogGroupNames: jsii.Strings(*(*both)[0].LogGroupName(), *(*both)[1].LogGroupName()),
		})
	}
}

// silenceAlarm creates WebhooksSilent: webhooks stopped arriving, though
// vehicles sent some in the last week. CloudWatch cannot tell whether
// vehicles exist, so the week's webhooks stand for them, and the alarm
// combines two without actions of their own (put on the dashboard with
// addWidget):
//
//   - WebhooksQuiet: fewer than one WebhooksEnqueued (the receiver's, one
//     per webhook persisted to the queue) in the last
//     props.SilenceAlarmAfter, no data counting as none;
//   - WebhooksSeenThisWeek: at least one in any of the last 7 days, no
//     data counting as none.
//
// A stack that never received a webhook (or none for a week) is never
// silent; one whose webhooks stopped alarms from SilenceAlarmAfter on, for
// up to a week. 7 daily periods are CloudWatch's longest evaluation range
// (period × evaluation periods at most 604,800 seconds, 7 days, for
// periods of an hour or more: PutMetricAlarm's Period and
// EvaluationPeriods).
func (s *webhookStack) silenceAlarm(addWidget func(awscloudwatch.Alarm, string)) awscloudwatch.IAlarm {
	after := s.props.SilenceAlarmAfter
	quietDescription := fmt.Sprintf("No webhook enqueued in the last %s (no actions of its own: WebhooksSilent notifies, "+
		"if webhooks came in the last 7 days)", spoken(after))
	quiet := awscloudwatch.NewAlarm(s.stack, jsii.String("WebhooksQuiet"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(quietDescription),
		Metric:             custom("receiver", receiver.MetricWebhooksEnqueued, "Sum", after.Seconds()),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	seenDescription := "Webhooks enqueued on at least one of the last 7 days (no actions of its own: WebhooksSilent combines it with WebhooksQuiet)"
	seen := awscloudwatch.NewAlarm(s.stack, jsii.String("WebhooksSeenThisWeek"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(seenDescription),
		Metric:             custom("receiver", receiver.MetricWebhooksEnqueued, "Sum", (24 * time.Hour).Seconds()),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		EvaluationPeriods:  jsii.Number(7),
		DatapointsToAlarm:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	addWidget(quiet, quietDescription)
	addWidget(seen, seenDescription)
	silent := awscloudwatch.NewCompositeAlarm(s.stack, jsii.String("WebhooksSilent"), &awscloudwatch.CompositeAlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf("No Smartcar webhook has reached the queue for %s, though some did in the last 7 days: "+
			"vehicle data has stopped arriving. Smartcar may have disabled the webhook after failed deliveries, or the endpoint "+
			"is unreachable. Check the webhook's status in Smartcar's dashboard (re-enable or re-verify it there), the API's 4xx "+
			"and 5xx on this stack's dashboard and the receiver's log group; once webhooks arrive again, run make reconcile "+
			"SINCE=<a day before the silence began> (with smartcarCredentialsSecret deployed) to fetch what was missed from Smartcar's API", spoken(after))),
		AlarmRule: awscloudwatch.AlarmRule_AllOf(
			awscloudwatch.AlarmRule_FromAlarm(quiet, awscloudwatch.AlarmState_ALARM),
			awscloudwatch.AlarmRule_FromAlarm(seen, awscloudwatch.AlarmState_ALARM),
		),
	})
	silent.AddAlarmAction(awscloudwatchactions.NewSnsAction(s.alarmTopic))
	return silent
}

func (s *webhookStack) outputs() {
	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(s.stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(description), Value: value})
	}
	out("WebhookUrl", "Paste into Smartcar's dashboard as the vehicle data callback URI", s.webhookURL)
	out("ErrorWebhookUrl", "Optional: Smartcar's vehicle error callback URI", s.errorsURL)
	out("HealthUrl", "GET for a health check", awscdk.Fn_Join(jsii.String(""), jsii.Strings(*s.httpAPI.ApiEndpoint(), receiver.PathHealth)))
	out("QueueUrl", "Event queue", s.queue.QueueUrl())
	out("DlqUrl", "Dead-letter queue", s.dlq.QueueUrl())
	out("SecretName", "Secrets Manager secret holding the Application Management Token", jsii.String(s.props.SecretName))
	out("EventsTableName", "Idempotency table (eventId)", s.eventsTable.TableName())
	stateDescription := "Vehicle-state table (vehicleId, entry)"
	if s.props.StateTableName != "" {
		stateDescription += ": context stateTableName, outside the stack (the stack's own VehicleEntriesTable is the fallback)"
	}
	out("StateTableName", stateDescription, s.state.TableName())
	if s.legacyStateTable != nil {
		out("LegacyStateTableName", "Legacy one-item vehicle-state table (vehicleId), read until `make migrate-state` moved it", s.legacyStateTable.TableName())
	}
	out("ArchiveBucketName", "Archive of every received webhook ("+pipeline.ArchivePrefix+"yyyy/MM/dd/HH/)", s.archiveBucket.BucketName())
	out("ArchiveStreamName", "Firehose delivery stream the processor archives every webhook to", s.archiveStream.Ref())
	busDescription := "EventBridge bus the domain events are put on"
	if s.props.EventBusName != "" {
		busDescription += ": context eventBusName, outside the stack"
	}
	out("EventBusName", busDescription, s.bus.EventBusName())
	out("EventBusArn", busDescription, s.bus.EventBusArn())
	out("EventSource", "The domain events' source (match it in the bus's rules)", jsii.String(s.props.EventSource))
	out("PublisherFailureQueueUrl", "Stream batches the publisher gave up on (shard and sequence range, readable from the stream for 24 hours)",
		s.publisherFailures.QueueUrl())
	if s.reconcilerFn != nil {
		out("ReconcilerFunctionName", "The reconciler: polls Smartcar's API and heals the vehicles' state (aws lambda invoke it with events/reconciler/*.json; make reconcile runs the same code in your shell)",
			s.reconcilerFn.FunctionName())
		out("SmartcarCredentialsSecretArn", "Secrets Manager secret holding the Smartcar application's clientId and clientSecret "+
			"(context smartcarCredentialsSecret)", s.smartcarSecret.SecretArn())
	}
	out("AlarmTopicArn", "SNS topic the alarms notify", s.alarmTopic.TopicArn())
	out("DashboardUrl", "CloudWatch dashboard", awscdk.Fn_Join(jsii.String(""), jsii.Strings(
		"https://console.aws.amazon.com/cloudwatch/home?region=", *s.stack.Region(), "#dashboards:name=", *s.dashboard.DashboardName())))
}
