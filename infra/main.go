// Command infra is the CDK app that deploys the webhook pipeline. cdk.json
// runs it; `make synth`, `make deploy`, `make diff` and `make destroy` call
// the CDK CLI, which builds the Lambdas into bin/ first.
//
// Deployment settings come from context (`-c key=value` or cdk.json):
// stackName, secretName, alarmEmail, throttleRate, throttleBurst,
// maxConcurrency, maxBatchingWindowSeconds, maxDeliveryAge (a duration; 0
// disables the replay check), receiverMemoryMB, processorMemoryMB,
// publisherMemoryMB, receiverTimeoutSeconds (1 to 14),
// processorTimeoutSeconds (the queue's visibility timeout follows it),
// logLevel (the functions' LOG_LEVEL: DEBUG|INFO|WARN|ERROR),
// lambdaSystemLogLevel (Lambda's own lines: WARN drops START, END and
// REPORT; INFO keeps them), removalPolicy (retain|destroy),
// legacyStateTable (true|false: false drops the legacy one-item
// vehicle-state table from the stack once migrated),
// archiveRetentionDays (whole days the archive bucket keeps the raw
// webhooks; default 400),
// stateTableName (an existing entry-layout table, e.g. one `make replay
// REBUILD=<table> CREATE=1` rebuilt, that the processor then uses instead of
// the stack's own VehicleEntriesTable, which stays as the fallback; unset or
// empty: the stack's own),
// stateTableStreamArn (that table's NEW_AND_OLD_IMAGES stream, which the
// publisher then reads: required with stateTableName, refused without it;
// `make replay ... CREATE=1` prints it),
// eventBusName (an existing EventBridge bus, by name, in the stack's
// account and region, that the publisher puts the domain events on; unset:
// the stack's own DomainEventBus),
// eventSource (the domain events' source; default
// smartcar-webhook-receiver; at most 256 characters, not starting with
// "aws."),
// smartcarCredentialsSecret (the name, or ARN, of an existing Secrets
// Manager secret holding the Smartcar application's {"clientId": ...,
// "clientSecret": ...}: deploys the reconciler; unset or empty: no
// reconciler, and the four settings after it are refused),
// reconcileEvery (a duration, whole minutes, at least 5m: schedules a
// reconciliation of the stale vehicles; unset, empty, "off" or 0: no
// schedule),
// reconcileStaleAfter (a duration, at least 1m: how long a vehicle may go
// without news before a scheduled run polls it; default 6h),
// smartcarApiBase and smartcarTokenUrl (https URLs: another Smartcar API
// and token endpoint for the reconciler; unset: Smartcar's),
// silenceAlarmAfter (a duration, whole minutes, 5m to 24h: how long
// without a webhook before WebhooksSilent alarms, if some came in the last
// week; default 1h; "off" or 0: no silence alarm).
package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// DefaultStackName is the stack's name unless context stackName says
// otherwise.
const DefaultStackName = "SmartcarWebhookReceiver"

func main() {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		// Asset metadata lets `sam local invoke -t cdk.out/...` find the code
		// when the app runs without the CDK CLI too.
		"aws:cdk:enable-asset-metadata": true,
	}})
	props, err := propsFromContext(app)
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
	props.ReceiverCode = awslambda.Code_FromAsset(jsii.String("bin/receiver"), nil)
	props.ProcessorCode = awslambda.Code_FromAsset(jsii.String("bin/processor"), nil)
	props.PublisherCode = awslambda.Code_FromAsset(jsii.String("bin/publisher"), nil)
	if props.SmartcarCredentialsSecret != "" {
		props.ReconcilerCode = awslambda.Code_FromAsset(jsii.String("bin/reconciler"), nil)
	}
	name := contextString(app, "stackName", DefaultStackName)
	stack := NewWebhookStack(app, name, props)
	AddNagChecks(app, stack)
	app.Synth(nil)
}

func contextString(app awscdk.App, key, def string) string {
	if v := app.Node().TryGetContext(jsii.String(key)); v != nil {
		if s := fmt.Sprint(v); s != "" {
			return s
		}
	}
	return def
}

func contextNumber(app awscdk.App, key string) (float64, error) {
	s := contextString(app, key, "")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("context %s: want a non-negative number, got %q", key, s)
	}
	return n, nil
}

// propsFromContext reads the deployment settings.
func propsFromContext(app awscdk.App) (*WebhookStackProps, error) {
	p := &WebhookStackProps{
		SecretName: contextString(app, "secretName", ""),
		AlarmEmail: contextString(app, "alarmEmail", ""),
	}
	if age := contextString(app, "maxDeliveryAge", ""); age != "" {
		if d, err := time.ParseDuration(age); err != nil || d < 0 {
			return nil, fmt.Errorf("context maxDeliveryAge: want a duration such as 1h, or 0 to disable, got %q", age)
		}
		p.MaxDeliveryAge = age
	}
	p.Env = &awscdk.Environment{
		Account: jsii.String(os.Getenv("CDK_DEFAULT_ACCOUNT")),
		Region:  jsii.String(os.Getenv("CDK_DEFAULT_REGION")),
	}
	if *p.Env.Account == "" || *p.Env.Region == "" {
		p.Env = nil // environment-agnostic synth, e.g. without credentials
	}
	// Lambda's own lines have no ERROR level: DEBUG, INFO or WARN.
	for _, l := range []struct {
		key     string
		dst     *string
		allowed []string
	}{
		{"logLevel", &p.LogLevel, []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"lambdaSystemLogLevel", &p.SystemLogLevel, []string{"DEBUG", "INFO", "WARN"}},
	} {
		level := strings.ToUpper(contextString(app, l.key, ""))
		if level != "" && !slices.Contains(l.allowed, level) {
			return nil, fmt.Errorf("context %s: want %s, got %q", l.key, strings.Join(l.allowed, ", "), level)
		}
		*l.dst = level
	}
	var err error
	for key, dst := range map[string]*float64{
		"throttleRate": &p.ThrottleRate, "throttleBurst": &p.ThrottleBurst,
		"maxConcurrency": &p.MaxConcurrency, "maxBatchingWindowSeconds": &p.MaxBatchingWindowSeconds,
		"receiverMemoryMB": &p.ReceiverMemoryMB, "processorMemoryMB": &p.ProcessorMemoryMB, "publisherMemoryMB": &p.PublisherMemoryMB,
		"receiverTimeoutSeconds": &p.ReceiverTimeoutSeconds, "processorTimeoutSeconds": &p.ProcessorTimeoutSeconds,
		"archiveRetentionDays": &p.ArchiveRetentionDays,
	} {
		if *dst, err = contextNumber(app, key); err != nil {
			return nil, err
		}
	}
	// 0 would mean the default (400 days) to the stack: refused here, as a
	// fraction of a day is.
	if days := contextString(app, "archiveRetentionDays", ""); days != "" &&
		(p.ArchiveRetentionDays < 1 || p.ArchiveRetentionDays != math.Trunc(p.ArchiveRetentionDays)) {
		return nil, fmt.Errorf("context archiveRetentionDays: want a whole number of days, at least 1, got %q", days)
	}
	if name := contextString(app, "stateTableName", ""); name != "" {
		if err := ValidateTableName(name); err != nil {
			return nil, fmt.Errorf("context stateTableName: %w", err)
		}
		p.StateTableName = name
	}
	// The publisher reads the state table's stream: a table of the stack's
	// own has its ARN, one named here needs it named too.
	switch arn := contextString(app, "stateTableStreamArn", ""); {
	case p.StateTableName != "" && arn == "":
		return nil, fmt.Errorf("context stateTableStreamArn: required with stateTableName (the publisher reads %s's stream; "+
			"aws dynamodb describe-table --table-name %s --query Table.LatestStreamArn)", p.StateTableName, p.StateTableName)
	case p.StateTableName == "" && arn != "":
		return nil, fmt.Errorf("context stateTableStreamArn: only with stateTableName (the stack's own table's stream needs no ARN), got %q", arn)
	case arn != "":
		if err := ValidateStreamArn(arn, p.StateTableName); err != nil {
			return nil, fmt.Errorf("context stateTableStreamArn: %w", err)
		}
		p.StateTableStreamArn = arn
	}
	if name := contextString(app, "eventBusName", ""); name != "" {
		if err := ValidateEventBusName(name); err != nil {
			return nil, fmt.Errorf("context eventBusName: %w", err)
		}
		p.EventBusName = name
	}
	if source := contextString(app, "eventSource", ""); source != "" {
		if err := ValidateEventSource(source); err != nil {
			return nil, fmt.Errorf("context eventSource: %w", err)
		}
		p.EventSource = source
	}
	if err := reconcilerFromContext(app, p); err != nil {
		return nil, err
	}
	switch legacy := contextString(app, "legacyStateTable", "true"); legacy {
	case "true":
	case "false":
		p.DropLegacyStateTable = true
	default:
		return nil, fmt.Errorf("context legacyStateTable: want true or false, got %q", legacy)
	}
	switch rp := contextString(app, "removalPolicy", "retain"); rp {
	case "retain":
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	case "destroy":
		p.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	default:
		return nil, fmt.Errorf("context removalPolicy: want retain or destroy, got %q", rp)
	}
	return p, nil
}

// contextDuration reads a duration such as 1h or 30m; off (unset, empty,
// "off", or a zero duration) is 0.
func contextDuration(app awscdk.App, key, want string) (time.Duration, error) {
	s := contextString(app, key, "")
	if s == "" || s == "off" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("context %s: want %s, got %q", key, want, s)
	}
	return d, nil
}

// reconcilerFromContext reads the reconciler's settings and the silence
// alarm's.
func reconcilerFromContext(app awscdk.App, p *WebhookStackProps) error {
	if ref := contextString(app, "smartcarCredentialsSecret", ""); ref != "" {
		if err := ValidateSmartcarCredentialsSecret(ref); err != nil {
			return fmt.Errorf("context smartcarCredentialsSecret: %w", err)
		}
		p.SmartcarCredentialsSecret = ref
	}
	// The reconciler's settings are refused without it: a schedule asked
	// for and silently not deployed would be worse.
	needsSecret := func(key string) error {
		if p.SmartcarCredentialsSecret != "" {
			return nil
		}
		return fmt.Errorf("context %s: needs smartcarCredentialsSecret (the secret with the Smartcar application's clientId and "+
			"clientSecret, which the reconciler polls Smartcar's API with), got %s=%q without it", key, key, contextString(app, key, ""))
	}

	const everyWant = "a whole number of minutes, at least 5m (such as 1h or 30m), or off"
	every, err := contextDuration(app, "reconcileEvery", everyWant)
	if err != nil {
		return err
	}
	if every != 0 {
		if err := needsSecret("reconcileEvery"); err != nil {
			return err
		}
		if ValidateReconcileEvery(every) != nil {
			return fmt.Errorf("context reconcileEvery: want %s, got %q", everyWant, contextString(app, "reconcileEvery", ""))
		}
		p.ReconcileEvery = every
	}

	if s := contextString(app, "reconcileStaleAfter", ""); s != "" {
		if err := needsSecret("reconcileStaleAfter"); err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil || ValidateReconcileStaleAfter(d) != nil {
			return fmt.Errorf("context reconcileStaleAfter: want a duration of at least 1m (such as 6h), got %q", s)
		}
		p.ReconcileStaleAfter = d
	}

	for _, u := range []struct {
		key string
		dst *string
	}{{"smartcarApiBase", &p.SmartcarAPIBase}, {"smartcarTokenUrl", &p.SmartcarTokenURL}} {
		s := contextString(app, u.key, "")
		if s == "" {
			continue
		}
		if err := needsSecret(u.key); err != nil {
			return err
		}
		if err := ValidateHTTPSURL(s); err != nil {
			return fmt.Errorf("context %s: %w", u.key, err)
		}
		*u.dst = s
	}

	const silenceWant = "a whole number of minutes from 5m to 24h (such as 1h), or off"
	silence, err := contextDuration(app, "silenceAlarmAfter", silenceWant)
	switch {
	case err != nil:
		return err
	case contextString(app, "silenceAlarmAfter", "") == "":
		// The default, DefaultSilenceAlarmAfter.
	case silence == 0:
		p.NoSilenceAlarm = true
	case ValidateSilenceAlarmAfter(silence) != nil:
		return fmt.Errorf("context silenceAlarmAfter: want %s, got %q", silenceWant, contextString(app, "silenceAlarmAfter", ""))
	default:
		p.SilenceAlarmAfter = silence
	}
	return nil
}

// AddNagChecks applies cdk-nag's AWS Solutions rules to the app, with the
// stack's justified exceptions.
func AddNagChecks(app awscdk.App, stack awscdk.Stack) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	cdknag.NagSuppressions_AddStackSuppressions(stack, &[]*cdknag.NagPackSuppression{
		{
			Id: jsii.String("AwsSolutions-APIG4"),
			Reason: jsii.String("Smartcar cannot send an Authorization header: every webhook is authenticated by its " +
				"HMAC-SHA256 SC-Signature, checked by the receiver before anything is persisted, and /health exposes nothing."),
		},
	}, jsii.Bool(true))
}
