package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
)

// built is one synthesized stack shared by the template tests: each
// synthesis starts the jsii runtime's work afresh and takes seconds.
var built struct {
	once     sync.Once
	app      awscdk.App
	stack    awscdk.Stack
	template assertions.Template
	json     map[string]any
	outdir   string
}

func codeDir(t *testing.T, dir, name string) awslambda.Code {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return awslambda.Code_FromAsset(jsii.String(path), nil)
}

// setCode gives props fake code for the functions, under dir: the three,
// and the reconciler's (used only with SmartcarCredentialsSecret).
func setCode(t *testing.T, dir string, props *WebhookStackProps) {
	props.ReceiverCode, props.ProcessorCode, props.PublisherCode = codeDir(t, dir, "receiver"), codeDir(t, dir, "processor"), codeDir(t, dir, "publisher")
	props.ReconcilerCode = codeDir(t, dir, "reconciler")
}

func stackUnderTest(t *testing.T) (assertions.Template, map[string]any) {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "infra-test-")
		if err != nil {
			t.Fatal(err)
		}
		built.outdir = filepath.Join(dir, "cdk.out")
		built.app = awscdk.NewApp(&awscdk.AppProps{
			Outdir:  jsii.String(built.outdir),
			Context: &map[string]any{"aws:cdk:enable-asset-metadata": true},
		})
		built.stack = NewWebhookStack(built.app, "TestStack", &WebhookStackProps{
			ReceiverCode:  codeDir(t, dir, "receiver"),
			ProcessorCode: codeDir(t, dir, "processor"),
			PublisherCode: codeDir(t, dir, "publisher"),
			AlarmEmail:    "ops@example.com",
			ThrottleRate:  25, ThrottleBurst: 60,
			MaxConcurrency: 7, MaxBatchingWindowSeconds: 2,
		})
		AddNagChecks(built.app, built.stack)
		built.template = assertions.Template_FromStack(built.stack, nil)
		built.json = *built.template.ToJSON()
	})
	if built.template == nil {
		t.Fatal("stack did not synthesize")
	}
	return built.template, built.json
}

type m = map[string]any

// check runs CDK assertions, which panic through jsii on failure, and
// reports a failure as a test error.
func check(t *testing.T, assertions ...func()) {
	t.Helper()
	for _, a := range assertions {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("%v", v)
				}
			}()
			a()
		}()
	}
}

func TestQueues(t *testing.T) {
	tpl, _ := stackUnderTest(t)
	// The test stack has a 2 s batching window: visibility 6 × 5 s + 2 s.
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), m{
			"VisibilityTimeout":      32,
			"MaximumMessageSize":     1 << 20,
			"SqsManagedSseEnabled":   true,
			"RedrivePolicy":          m{"maxReceiveCount": 4, "deadLetterTargetArn": assertions.Match_AnyValue()},
			"MessageRetentionPeriod": assertions.Match_Absent(),
		})
	})
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), m{
			"MessageRetentionPeriod": 14 * 24 * 3600,
			"MaximumMessageSize":     1 << 20,
			"SqsManagedSseEnabled":   true,
		})
	})
	// The publisher's failure queue: 14 days, SQS's default size.
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), m{
			"MessageRetentionPeriod": 14 * 24 * 3600,
			"MaximumMessageSize":     assertions.Match_Absent(),
			"SqsManagedSseEnabled":   true,
			"RedrivePolicy":          assertions.Match_Absent(),
		})
	})
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(3)) })
	// enforceSSL on the three queues.
	check(t, func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), m{
			"PolicyDocument": m{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&m{
				"Effect": "Deny", "Condition": m{"Bool": m{"aws:SecureTransport": "false"}},
			})})},
		}, jsii.Number(3))
	})
}

// TestVisibilityFollowsBatchingWindow: the queue's visibility timeout is at
// least 30 s and six times the processor's timeout plus the batching
// window, as AWS asks; the claims' lease outlives an invocation and ends
// inside it.
func TestVisibilityFollowsBatchingWindow(t *testing.T) {
	tests := []struct {
		timeout, window, visibility float64
		lease                       time.Duration
	}{
		{5, 0, 30, 15 * time.Second},
		{5, 2, 32, 15 * time.Second},
		{5, 40, 70, 15 * time.Second},
		{5, 300, 330, 15 * time.Second},
		{20, 0, 120, 60 * time.Second},
		{20, 10, 130, 60 * time.Second},
	}
	for _, tt := range tests {
		s := &webhookStack{props: WebhookStackProps{ProcessorTimeoutSeconds: tt.timeout, MaxBatchingWindowSeconds: tt.window}}
		if got, lease := s.visibility(), s.lease(); got != tt.visibility || lease != tt.lease || lease >= time.Duration(got)*time.Second {
			t.Errorf("timeout %vs, window %vs: visibility %vs, lease %v; want %vs, %v", tt.timeout, tt.window, got, lease, tt.visibility, tt.lease)
		}
	}
}

func TestFunctions(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(3)) })
	for id, timeout := range map[string]int{ReceiverFunctionID: 10, ProcessorFunctionID: 5, PublisherFunctionID: 30} {
		fn := resource(t, doc, id)
		props := fn["Properties"].(m)
		if props["Runtime"] != "provided.al2023" || props["Handler"] != "bootstrap" || props["Timeout"] != float64(timeout) {
			t.Errorf("%s: runtime %v handler %v timeout %v", id, props["Runtime"], props["Handler"], props["Timeout"])
		}
		if props["MemorySize"] != float64(pipeline.MemoryMB) {
			t.Errorf("%s memory %v, want the default %d", id, props["MemorySize"], pipeline.MemoryMB)
		}
		if archs, _ := props["Architectures"].([]any); len(archs) != 1 || archs[0] != "arm64" {
			t.Errorf("%s architectures = %v", id, props["Architectures"])
		}
		// Lambda's START, END and REPORT lines are ≈ 400 of ≈ 1.7 KB of
		// logs per webhook: dropped by default (pkg/cost, make bench).
		if lc, _ := props["LoggingConfig"].(m); lc["LogFormat"] != "JSON" || lc["SystemLogLevel"] != "WARN" || lc["ApplicationLogLevel"] != "DEBUG" {
			t.Errorf("%s logging config = %v, want JSON, system lines at WARN, the function's own unfiltered", id, props["LoggingConfig"])
		}
		if level := props["Environment"].(m)["Variables"].(m)["LOG_LEVEL"]; level != "INFO" {
			t.Errorf("%s LOG_LEVEL = %v, want the default INFO", id, level)
		}
		if meta, _ := fn["Metadata"].(m); meta == nil || meta["aws:asset:path"] == nil || meta["aws:asset:property"] != "Code" {
			t.Errorf("%s lacks aws:asset:path metadata (needed by sam local invoke): %v", id, fn["Metadata"])
		}
	}
	env := func(id string) m {
		return resource(t, doc, id)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	}
	recv := env(ReceiverFunctionID)
	for _, k := range []string{"QUEUE_URL", "AMT_SECRET_ID"} {
		if recv[k] == nil {
			t.Errorf("receiver env lacks %s: %v", k, recv)
		}
	}
	if recv["AMT_SECRET_ID"] != "smartcar/amt" {
		t.Errorf("AMT_SECRET_ID = %v, want the default secret name", recv["AMT_SECRET_ID"])
	}
	if recv["MAX_DELIVERY_AGE"] != "1h0m0s" {
		t.Errorf("MAX_DELIVERY_AGE = %v, want the 1h replay window", recv["MAX_DELIVERY_AGE"])
	}
	proc := env(ProcessorFunctionID)
	if proc["QUEUE_VISIBILITY_TIMEOUT"] != "32" || proc["LEASE_DURATION"] != "15s" {
		t.Errorf("processor told visibility %v and lease %v, want the queue's 32 and the default 15s", proc["QUEUE_VISIBILITY_TIMEOUT"], proc["LEASE_DURATION"])
	}
	for _, k := range []string{"EVENTS_TABLE", "STATE_TABLE", "LEGACY_STATE_TABLE", "DLQ_URL", "MAX_RECEIVE_COUNT", "DLQ_RETENTION", "IDEMPOTENCY_TTL"} {
		if proc[k] == nil {
			t.Errorf("processor env lacks %s: %v", k, proc)
		}
	}
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), m{
			"FunctionName":                   m{"Ref": ProcessorFunctionID},
			"BatchSize":                      10,
			"MaximumBatchingWindowInSeconds": 2,
			"ScalingConfig":                  m{"MaximumConcurrency": 7},
			"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
		})
	})
	check(t, func() {
		// The three functions', the API's access logs and the archive stream's.
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), m{"RetentionInDays": 30}, jsii.Number(5))
	})
}

// TestIdempotencyOutlivesTheDLQ: a message redriven from the DLQ at the end
// of its retention must still find its event remembered, or users' handlers
// run again; the processor is told the DLQ's real retention, so its start-up
// check holds it to the same rule.
func TestIdempotencyOutlivesTheDLQ(t *testing.T) {
	_, doc := stackUnderTest(t)
	retention := time.Duration(resourceByPrefix(t, doc, "AWS::SQS::Queue", "DeadLetterQueue")["Properties"].(m)["MessageRetentionPeriod"].(float64)) * time.Second
	env := resource(t, doc, ProcessorFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	ttl, err := time.ParseDuration(fmt.Sprint(env["IDEMPOTENCY_TTL"]))
	if err != nil {
		t.Fatalf("IDEMPOTENCY_TTL %v: %v", env["IDEMPOTENCY_TTL"], err)
	}
	if ttl < retention+24*time.Hour {
		t.Errorf("IDEMPOTENCY_TTL %v is shorter than the DLQ's retention %v plus a day", ttl, retention)
	}
	if told, err := time.ParseDuration(fmt.Sprint(env["DLQ_RETENTION"])); err != nil || told != retention {
		t.Errorf("processor told DLQ_RETENTION %v (%v), the DLQ keeps messages %v", env["DLQ_RETENTION"], err, retention)
	}
}

func TestTables(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(3)) })
	for _, tt := range []struct {
		keys []any
		ttl  any
	}{
		{[]any{m{"AttributeName": "eventId", "KeyType": "HASH"}}, m{"AttributeName": "expiresAt", "Enabled": true}},
		{[]any{m{"AttributeName": "vehicleId", "KeyType": "HASH"}, m{"AttributeName": "entry", "KeyType": "RANGE"}}, assertions.Match_Absent()},
		{[]any{m{"AttributeName": "vehicleId", "KeyType": "HASH"}}, assertions.Match_Absent()}, // the legacy table
	} {
		check(t, func() {
			tpl.HasResource(jsii.String("AWS::DynamoDB::Table"), m{
				"DeletionPolicy": "Retain",
				"Properties": m{
					"KeySchema":                        tt.keys,
					"BillingMode":                      "PAY_PER_REQUEST",
					"PointInTimeRecoverySpecification": m{"PointInTimeRecoveryEnabled": true},
					"TimeToLiveSpecification":          tt.ttl,
				},
			})
		})
	}
	// The legacy table keeps its construct, so its logical id and data.
	legacy := resourceByPrefix(t, doc, "AWS::DynamoDB::Table", "VehicleStateTable")["Properties"].(m)
	if keys := legacy["KeySchema"].([]any); len(keys) != 1 {
		t.Errorf("VehicleStateTable* key schema %v, want the legacy one (vehicleId)", keys)
	}
}

// TestLegacyStateTableDropped: with legacyStateTable=false the legacy
// table leaves the stack (RETAIN keeps it in the account), and the
// processor is no longer told of it.
func TestLegacyStateTableDropped(t *testing.T) {
	dir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(dir, "cdk.out")), Context: &map[string]any{"legacyStateTable": "false"}})
	props, err := propsFromContext(app)
	if err != nil || !props.DropLegacyStateTable {
		t.Fatalf("props = %+v, %v", props, err)
	}
	setCode(t, dir, props)
	doc := *assertions.Template_FromStack(NewWebhookStack(app, "Dropped", props), nil).ToJSON()
	tables := 0
	for id, r := range doc["Resources"].(m) {
		if r.(m)["Type"] == "AWS::DynamoDB::Table" {
			tables++
			if strings.HasPrefix(id, "VehicleStateTable") {
				t.Errorf("legacy table %s still in the stack", id)
			}
		}
	}
	if tables != 2 {
		t.Errorf("%d tables, want the events and entries tables", tables)
	}
	env := resource(t, doc, ProcessorFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	if env["LEGACY_STATE_TABLE"] != nil || env["STATE_TABLE"] == nil {
		t.Errorf("processor env = %v, want STATE_TABLE and no LEGACY_STATE_TABLE", env)
	}
	if doc["Outputs"].(m)["LegacyStateTableName"] != nil {
		t.Error("output LegacyStateTableName without a legacy table")
	}
}

// TestArchiveBucket: the raw-webhook archive is private, encrypted,
// TLS-only, owned by the bucket's account, and kept by default when the
// stack goes.
func TestArchiveBucket(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(1)) })
	bucket := logicalID(t, doc, "AWS::S3::Bucket", "ArchiveBucket")
	r := resource(t, doc, bucket)
	if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("bucket deletion %v, replacement %v; want the stack's Retain", r["DeletionPolicy"], r["UpdateReplacePolicy"])
	}
	props := r["Properties"].(m)
	for name, want := range map[string]string{
		"BucketEncryption":               `{"ServerSideEncryptionConfiguration":[{"ServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}`,
		"PublicAccessBlockConfiguration": `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}`,
		"OwnershipControls":              `{"Rules":[{"ObjectOwnership":"BucketOwnerEnforced"}]}`,
	} {
		if got, _ := json.Marshal(props[name]); string(got) != want {
			t.Errorf("bucket %s = %s, want %s", name, got, want)
		}
	}
	// No access logging (nag S1 is suppressed on the bucket, with its
	// reason), and no auto-delete custom resource.
	if props["LoggingConfiguration"] != nil {
		t.Errorf("bucket logging %v", props["LoggingConfiguration"])
	}
	check(t, func() { tpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(0)) })
	// TLS only: every request without it is denied, on the bucket and on
	// its objects.
	arn := m{"Fn::GetAtt": []any{bucket, "Arn"}}
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), m{
			"Bucket": m{"Ref": bucket},
			"PolicyDocument": m{"Statement": assertions.Match_ArrayWith(&[]any{m{
				"Effect": "Deny", "Action": "s3:*", "Principal": m{"AWS": "*"},
				"Condition": m{"Bool": m{"aws:SecureTransport": "false"}},
				"Resource":  []any{arn, m{"Fn::Join": []any{"", []any{arn, "/*"}}}},
			}})},
		})
	})
}

// TestArchiveRetention: objects move to Intelligent-Tiering at once, expire
// after the retention (400 days, or context archiveRetentionDays), and
// incomplete multipart uploads are aborted after a day.
func TestArchiveRetention(t *testing.T) {
	tests := []struct {
		name    string
		context map[string]any // nil: the shared test stack, built from props
		days    float64
	}{
		{"default", nil, pipeline.ArchiveRetentionDays},
		{"context", map[string]any{"archiveRetentionDays": "30"}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if tt.context == nil {
				_, doc = stackUnderTest(t)
			} else {
				doc = synthFromContext(t, tt.context)
			}
			rules := resourceByPrefix(t, doc, "AWS::S3::Bucket", "ArchiveBucket")["Properties"].(m)["LifecycleConfiguration"].(m)["Rules"].([]any)
			want := fmt.Sprintf(`[{"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1},"ExpirationInDays":%v,"Id":"archive-retention",`+
				`"Status":"Enabled","Transitions":[{"StorageClass":"INTELLIGENT_TIERING","TransitionInDays":0}]}]`, tt.days)
			if got, _ := json.Marshal(rules); string(got) != want {
				t.Errorf("lifecycle %s, want %s", got, want)
			}
		})
	}
}

// TestArchiveRetentionDaysValidated: a whole number of days, at least one;
// zero takes the default.
func TestArchiveRetentionDaysValidated(t *testing.T) {
	for days, want := range map[float64]float64{0: pipeline.ArchiveRetentionDays, 1: 1, 30: 30, 3650: 3650} {
		p := WebhookStackProps{ArchiveRetentionDays: days}
		p.withDefaults()
		if p.ArchiveRetentionDays != want {
			t.Errorf("ArchiveRetentionDays %v became %v, want %v", days, p.ArchiveRetentionDays, want)
		}
	}
	for _, days := range []float64{0.5, 1.5, -1, -400} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "ArchiveRetentionDays") {
					t.Errorf("ArchiveRetentionDays %v: panic %v, want one naming the prop", days, v)
				}
			}()
			p := WebhookStackProps{ArchiveRetentionDays: days}
			p.withDefaults()
		}()
	}
}

// TestArchiveStream: a DirectPut stream, encrypted, writing the records as
// they come (each a gzip member already) under pipeline.ArchivePrefix, in
// the largest batches Firehose allows; its delivery errors are logged, and
// its role may only write to the archive bucket and that log group.
func TestArchiveStream(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::KinesisFirehose::DeliveryStream"), jsii.Number(1)) })
	bucket := logicalID(t, doc, "AWS::S3::Bucket", "ArchiveBucket")
	role := logicalID(t, doc, "AWS::IAM::Role", "ArchiveStreamRole")
	logs := logicalID(t, doc, "AWS::Logs::LogGroup", "ArchiveStreamLogs")
	stream := resource(t, doc, "ArchiveStream")
	props := stream["Properties"].(m)
	if props["DeliveryStreamType"] != "DirectPut" || props["KinesisStreamSourceConfiguration"] != nil {
		t.Errorf("stream type %v, want DirectPut", props["DeliveryStreamType"])
	}
	if enc, _ := json.Marshal(props["DeliveryStreamEncryptionConfigurationInput"]); string(enc) != `{"KeyType":"AWS_OWNED_CMK"}` {
		t.Errorf("stream encryption %s, want an AWS-owned key", enc)
	}
	if props["S3DestinationConfiguration"] != nil {
		t.Error("stream has the deprecated S3DestinationConfiguration")
	}
	dest := props["ExtendedS3DestinationConfiguration"].(m)
	for name, want := range map[string]any{
		"BucketARN":         m{"Fn::GetAtt": []any{bucket, "Arn"}},
		"RoleARN":           m{"Fn::GetAtt": []any{role, "Arn"}},
		"Prefix":            pipeline.ArchivePrefix + pipeline.ArchiveHourExpression,
		"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
		"CompressionFormat": "UNCOMPRESSED",
		"FileExtension":     ".gz",
		"BufferingHints":    m{"IntervalInSeconds": pipeline.ArchiveBufferInterval.Seconds(), "SizeInMBs": float64(pipeline.ArchiveBufferMiB)},
		"CloudWatchLoggingOptions": m{"Enabled": true, "LogGroupName": m{"Ref": logs},
			"LogStreamName": m{"Ref": logicalID(t, doc, "AWS::Logs::LogStream", "ArchiveStreamS3Delivery")}},
		// Nothing transforms, converts, backs up or re-encrypts the records.
		"ProcessingConfiguration": nil, "DataFormatConversionConfiguration": nil, "DynamicPartitioningConfiguration": nil,
		"S3BackupMode": nil, "EncryptionConfiguration": nil,
	} {
		got, _ := json.Marshal(dest[name])
		if w, _ := json.Marshal(want); string(got) != string(w) {
			t.Errorf("destination %s = %s, want %s", name, got, w)
		}
	}
	// The role's policy exists before Firehose checks its access.
	if deps := fmt.Sprint(stream["DependsOn"]); !strings.Contains(deps, role) || !strings.Contains(deps, "ArchiveStreamRoleDefaultPolicy") {
		t.Errorf("stream depends on %v, want the role and its policy", deps)
	}
	if lg := resource(t, doc, logs); lg["DeletionPolicy"] != "Retain" || lg["Properties"].(m)["RetentionInDays"] != float64(30) {
		t.Errorf("stream log group %v", lg)
	}
	// Only Firehose, and only for this account, assumes the role.
	trust, _ := json.Marshal(resource(t, doc, role)["Properties"].(m)["AssumeRolePolicyDocument"].(m)["Statement"])
	if want := `[{"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":{"Ref":"AWS::AccountId"}}},` +
		`"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"}}]`; string(trust) != want {
		t.Errorf("role trust %s, want %s", trust, want)
	}
	// Exactly what the role may do: the S3 actions of AWS's documented
	// Firehose-to-S3 policy, the object ones under the stream's two
	// prefixes and the bucket ones on the bucket, and write its delivery
	// log.
	var got []string
	for _, pol := range policies(doc) {
		if fmt.Sprint(pol.roles) != fmt.Sprint([]any{m{"Ref": role}}) {
			continue
		}
		for _, st := range pol.statements {
			on, _ := json.Marshal(st.(m)["Resource"])
			for _, a := range asList(st.(m)["Action"]) {
				got = append(got, fmt.Sprintf("%s %s", a, on))
			}
		}
	}
	sort.Strings(got)
	arn := fmt.Sprintf(`{"Fn::GetAtt":["%s","Arn"]}`, bucket)
	objects := fmt.Sprintf(`[{"Fn::Join":["",[%s,"/raw/*"]]},{"Fn::Join":["",[%s,"/errors/*"]]}]`, arn, arn)
	want := []string{
		"logs:PutLogEvents " + fmt.Sprintf(`{"Fn::GetAtt":["%s","Arn"]}`, logs),
		"s3:AbortMultipartUpload " + objects,
		"s3:GetBucketLocation " + arn,
		"s3:GetObject " + objects,
		"s3:ListBucket " + arn,
		"s3:ListBucketMultipartUploads " + arn,
		"s3:PutObject " + objects,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive stream role may:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestArchiveGrant: the processor is told the stream and may put record
// batches on it, nothing else of Firehose; nothing else may.
func TestArchiveGrant(t *testing.T) {
	_, doc := stackUnderTest(t)
	env := func(id string) m {
		return resource(t, doc, id)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	}
	if got, _ := json.Marshal(env(ProcessorFunctionID)["ARCHIVE_STREAM"]); string(got) != `{"Ref":"ArchiveStream"}` {
		t.Errorf("processor ARCHIVE_STREAM = %s, want the stream's name", got)
	}
	if v, ok := env(ReceiverFunctionID)["ARCHIVE_STREAM"]; ok {
		t.Errorf("receiver told ARCHIVE_STREAM = %v", v)
	}
	type grant struct{ role, statement string }
	var grants []grant
	for _, pol := range policies(doc) {
		for _, st := range pol.statements {
			if b, _ := json.Marshal(st); strings.Contains(string(b), "firehose:") || strings.Contains(string(b), `"ArchiveStream"`) {
				grants = append(grants, grant{pol.role, string(b)})
			}
		}
	}
	const want = `{"Action":"firehose:PutRecordBatch","Effect":"Allow","Resource":{"Fn::GetAtt":["ArchiveStream","Arn"]}}`
	if len(grants) != 1 || !strings.HasPrefix(grants[0].role, ProcessorFunctionID+"Role") || grants[0].statement != want {
		t.Errorf("Firehose grants %v, want only the processor's %s", grants, want)
	}
}

// alarmWant is what an alarm that notifies the alarm topic watches: the
// metric (its namespace, name, dimensions as JSON, statistic and period)
// above threshold in periods consecutive periods, no data counting as
// none.
type alarmWant struct {
	prefix, namespace, metric, dimensions, statistic string
	period, threshold, periods                       float64
}

// checkAlarms checks each alarm against what it should watch, and that it
// notifies the alarm topic.
func checkAlarms(t *testing.T, doc map[string]any, wants ...alarmWant) {
	t.Helper()
	topic := fmt.Sprint([]any{m{"Ref": logicalID(t, doc, "AWS::SNS::Topic", "AlarmTopic")}})
	for _, tt := range wants {
		a := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", tt.prefix)["Properties"].(m)
		dims, _ := json.Marshal(a["Dimensions"])
		if a["Namespace"] != tt.namespace || a["MetricName"] != tt.metric || string(dims) != tt.dimensions || a["Statistic"] != tt.statistic ||
			a["Period"] != tt.period {
			t.Errorf("%s: metric %v/%v %s %v over %v s", tt.prefix, a["Namespace"], a["MetricName"], dims, a["Statistic"], a["Period"])
		}
		if a["ComparisonOperator"] != "GreaterThanThreshold" || a["Threshold"] != tt.threshold || a["EvaluationPeriods"] != tt.periods ||
			a["DatapointsToAlarm"] != nil || a["TreatMissingData"] != "notBreaching" {
			t.Errorf("%s: %v %v for %v periods (%v of them), missing data %v; want > %v for %v", tt.prefix, a["ComparisonOperator"], a["Threshold"],
				a["EvaluationPeriods"], a["DatapointsToAlarm"], a["TreatMissingData"], tt.threshold, tt.periods)
		}
		if fmt.Sprint(a["AlarmActions"]) != topic {
			t.Errorf("%s: actions %v, want the alarm topic", tt.prefix, a["AlarmActions"])
		}
	}
}

// TestArchiveAlarms: any archive failure the processor reports, and a
// delivery to S3 stuck for fifteen minutes, notify the alarm topic;
// the dashboard graphs both ends of the stream.
func TestArchiveAlarms(t *testing.T) {
	_, doc := stackUnderTest(t)
	checkAlarms(t, doc,
		alarmWant{"ArchiveFailuresAlarm", "SmartcarWebhooks", "ArchiveFailures", `[{"Name":"Service","Value":"processor"}]`, "Sum", 300, 0, 1},
		alarmWant{"ArchiveDeliveryAlarm", "AWS/Firehose", "DeliveryToS3.DataFreshness", `[{"Name":"DeliveryStreamName","Value":{"Ref":"ArchiveStream"}}]`,
			"Maximum", 300, 2 * pipeline.ArchiveBufferInterval.Seconds(), 3},
	)
	dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
	for _, metric := range []string{`\"ArchiveFailures\"`, `\"IncomingRecords\"`, `\"DeliveryToS3.Success\"`, `\"DeliveryToS3.DataFreshness\"`} {
		if !strings.Contains(string(dashboard), metric) {
			t.Errorf("dashboard lacks %s", metric)
		}
	}
}

// synthFromContext synthesizes a stack as the app does, from context.
func synthFromContext(t *testing.T, context map[string]any) map[string]any {
	t.Helper()
	dir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(dir, "cdk.out")), Context: &context})
	props, err := propsFromContext(app)
	if err != nil {
		t.Fatal(err)
	}
	setCode(t, dir, props)
	return *assertions.Template_FromStack(NewWebhookStack(app, "FromContext", props), nil).ToJSON()
}

func TestAPI(t *testing.T) {
	tpl, _ := stackUnderTest(t)
	for _, route := range []string{"POST /webhooks/smartcar", "POST /webhooks/smartcar/errors", "GET /health"} {
		check(t, func() { tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), m{"RouteKey": route}) })
	}
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Route"), jsii.Number(3)) })
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Stage"), m{
			"StageName":            "$default",
			"AutoDeploy":           true,
			"DefaultRouteSettings": m{"ThrottlingRateLimit": 25, "ThrottlingBurstLimit": 60},
			"AccessLogSettings":    m{"DestinationArn": assertions.Match_AnyValue(), "Format": assertions.Match_AnyValue()},
		})
	})
}

func TestAlarms(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	// 17, and the silence alarm's two (WebhooksQuiet, WebhooksSeenThisWeek).
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(19)) })
	want := map[string]struct {
		metric    string
		threshold float64
	}{
		"DlqNotEmptyAlarm":         {"ApproximateNumberOfMessagesVisible", 0},
		"QueueBacklogAgeAlarm":     {"ApproximateAgeOfOldestMessage", 300},
		"QueueDepthAlarm":          {"ApproximateNumberOfMessagesVisible", 1000},
		"SignatureFailuresAlarm":   {"SignatureFailures", 5},
		"Receiver5xxAlarm":         {"5xx", 0},
		"ReceiverLatencyAlarm":     {"Duration", 1000},
		"ReceiverThrottlesAlarm":   {"Throttles", 0},
		"ProcessorThrottlesAlarm":  {"Throttles", 0},
		"ProcessingErrorRateAlarm": {"", 5},
		"ReplaysRejectedAlarm":     {"ReplaysRejected", 0},
		"DuplicateProcessingAlarm": {"", 10},
		"ArchiveFailuresAlarm":     {"ArchiveFailures", 0},
		"ArchiveDeliveryAlarm":     {"DeliveryToS3.DataFreshness", 1800},
		"PublisherErrorsAlarm":     {"Errors", 0},
		"PublishFailuresAlarm":     {"PublishFailures", 0},
		"PublisherFailuresAlarm":   {"ApproximateNumberOfMessagesVisible", 0},
		"PublisherLagAlarm":        {"IteratorAge", 300000},
	}
	for prefix, w := range want {
		a := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", prefix)["Properties"].(m)
		if a["Threshold"] != w.threshold || a["ComparisonOperator"] != "GreaterThanThreshold" {
			t.Errorf("%s: threshold %v %v", prefix, a["ComparisonOperator"], a["Threshold"])
		}
		if w.metric != "" && a["MetricName"] != w.metric {
			t.Errorf("%s: metric %v, want %s", prefix, a["MetricName"], w.metric)
		}
		if actions, _ := a["AlarmActions"].([]any); len(actions) != 1 {
			t.Errorf("%s: alarm actions %v", prefix, a["AlarmActions"])
		}
	}
	sig := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", "SignatureFailuresAlarm")["Properties"].(m)
	if sig["Namespace"] != "SmartcarWebhooks" || sig["Period"] != float64(300) || sig["Statistic"] != "Sum" {
		t.Errorf("signature alarm: %v", sig)
	}
	if p99 := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", "ReceiverLatencyAlarm")["Properties"].(m); p99["ExtendedStatistic"] != "p99" {
		t.Errorf("latency alarm statistic %v", p99)
	}
	check(t, func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), m{"Protocol": "email", "Endpoint": "ops@example.com"})
	})
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1)) })
	// Every alarm has a widget on the dashboard.
	dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
	for id, r := range doc["Resources"].(m) {
		if r.(m)["Type"] == "AWS::CloudWatch::Alarm" && !strings.Contains(string(dashboard), `"`+id+`"`) {
			t.Errorf("alarm %s is not on the dashboard", id)
		}
	}
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::Logs::QueryDefinition"), jsii.Number(3)) })
	for _, q := range []string{"REPLACE-WITH-EVENT-ID", "processing.dead_lettered", "signature.failed"} {
		check(t, func() {
			tpl.HasResourceProperties(jsii.String("AWS::Logs::QueryDefinition"), m{"QueryString": assertions.Match_StringLikeRegexp(jsii.String(q))})
		})
	}
}

// TestDuplicateProcessingAlarm: Smartcar's fifth alert, duplicate
// processing. Duplicates skipped or deferred, from the processor's EMF
// metrics, above 10 % of the records handled in 15 minutes, once there are
// at least 10 of them.
func TestDuplicateProcessingAlarm(t *testing.T) {
	_, doc := stackUnderTest(t)
	a := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", "DuplicateProcessingAlarm")["Properties"].(m)
	if a["Threshold"] != float64(10) || a["ComparisonOperator"] != "GreaterThanThreshold" || a["EvaluationPeriods"] != float64(1) ||
		a["TreatMissingData"] != "notBreaching" {
		t.Errorf("alarm: %v %v over %v periods, missing data %v", a["ComparisonOperator"], a["Threshold"], a["EvaluationPeriods"], a["TreatMissingData"])
	}
	queries, _ := a["Metrics"].([]any)
	var expression string
	metrics := map[string]string{} // id -> metric name
	for _, q := range queries {
		q := q.(m)
		if e, ok := q["Expression"].(string); ok {
			expression = e
			if q["ReturnData"] != nil && q["ReturnData"] != true {
				t.Errorf("expression query %v", q)
			}
			continue
		}
		stat := q["MetricStat"].(m)
		metric := stat["Metric"].(m)
		dims, _ := json.Marshal(metric["Dimensions"])
		if metric["Namespace"] != "SmartcarWebhooks" || string(dims) != `[{"Name":"Service","Value":"processor"}]` ||
			stat["Stat"] != "Sum" || stat["Period"] != float64(900) || q["ReturnData"] != false {
			t.Errorf("metric query %v", q)
		}
		metrics[q["Id"].(string)] = metric["MetricName"].(string)
	}
	want := map[string]string{"dup": "DuplicatesSkipped", "dfr": "DuplicatesDeferred", "ok": "EventsProcessed",
		"pe": "ProcessingErrors", "perm": "PermanentFailures"}
	if fmt.Sprint(metrics) != fmt.Sprint(want) {
		t.Errorf("metrics %v, want %v", metrics, want)
	}
	const wantExpr = "IF(FILL(dup, 0) + FILL(dfr, 0) >= 10, 100 * (FILL(dup, 0) + FILL(dfr, 0)) / " +
		"MAX([FILL(pe, 0) + FILL(ok, 0) + FILL(dup, 0) + FILL(dfr, 0) + FILL(perm, 0), 1]), 0)"
	if expression != wantExpr {
		t.Errorf("expression %q, want %q", expression, wantExpr)
	}
}

func TestOutputs(t *testing.T) {
	_, doc := stackUnderTest(t)
	outputs := doc["Outputs"].(m)
	for _, name := range []string{"WebhookUrl", "ErrorWebhookUrl", "QueueUrl", "DlqUrl", "SecretName", "EventsTableName", "StateTableName", "LegacyStateTableName",
		"ArchiveBucketName", "ArchiveStreamName", "DashboardUrl", "EventBusName", "EventBusArn", "EventSource", "PublisherFailureQueueUrl"} {
		if outputs[name] == nil {
			t.Errorf("no output %s", name)
		}
	}
	// The tools read the secret's name from the stack, as every resource.
	if v := outputs["SecretName"].(m)["Value"]; v != "smartcar/amt" {
		t.Errorf("SecretName output = %v, want the stack's secret", v)
	}
	for name, want := range map[string]string{
		"ArchiveBucketName":        `{"Ref":"` + logicalID(t, doc, "AWS::S3::Bucket", "ArchiveBucket") + `"}`,
		"ArchiveStreamName":        `{"Ref":"ArchiveStream"}`,
		"EventBusName":             `{"Ref":"` + logicalID(t, doc, "AWS::Events::EventBus", "DomainEventBus") + `"}`,
		"EventBusArn":              `{"Fn::GetAtt":["` + logicalID(t, doc, "AWS::Events::EventBus", "DomainEventBus") + `","Arn"]}`,
		"EventSource":              `"smartcar-webhook-receiver"`,
		"PublisherFailureQueueUrl": `{"Ref":"` + logicalID(t, doc, "AWS::SQS::Queue", "PublisherFailureQueue") + `"}`,
	} {
		if got, _ := json.Marshal(outputs[name].(m)["Value"]); string(got) != want {
			t.Errorf("%s output = %s, want %s", name, got, want)
		}
	}
	if d := outputs["ArchiveBucketName"].(m)["Description"]; d != "Archive of every received webhook (raw/yyyy/MM/dd/HH/)" {
		t.Errorf("ArchiveBucketName description %q", d)
	}
	// Without context stateTableName, the stack's own table.
	entries := `{"Ref":"` + logicalID(t, doc, "AWS::DynamoDB::Table", "VehicleEntriesTable") + `"}`
	if got, _ := json.Marshal(outputs["StateTableName"].(m)["Value"]); string(got) != entries {
		t.Errorf("StateTableName output = %s, want %s", got, entries)
	}
	if d := outputs["StateTableName"].(m)["Description"]; d != "Vehicle-state table (vehicleId, entry)" {
		t.Errorf("StateTableName description %q", d)
	}
	env := resource(t, doc, ProcessorFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	if got, _ := json.Marshal(env["STATE_TABLE"]); string(got) != entries {
		t.Errorf("processor STATE_TABLE = %s, want %s", got, entries)
	}
}

// TestStateTableName: with context stateTableName (a table a rebuild
// filled) and stateTableStreamArn (its stream), the processor uses that
// table, with the grants the stack's own gets and on it alone, the
// publisher reads that stream and queries that table, and output
// StateTableName names it; the stack's own VehicleEntriesTable stays,
// kept, to switch back to. cdk-nag stays clean.
func TestStateTableName(t *testing.T) {
	const name = "SmartcarVehicleEntries-rebuilt.2025_01"
	const stream = "arn:aws:dynamodb:eu-west-1:123456789012:table/" + name + "/stream/2025-01-31T12:00:00.000"
	dir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(dir, "cdk.out")),
		Context: &map[string]any{"stateTableName": name, "stateTableStreamArn": stream}})
	props, err := propsFromContext(app)
	if err != nil || props.StateTableName != name || props.StateTableStreamArn != stream {
		t.Fatalf("props = %+v, %v", props, err)
	}
	setCode(t, dir, props)
	stack := NewWebhookStack(app, "SwitchedOver", props)
	AddNagChecks(app, stack)
	doc := *assertions.Template_FromStack(stack, nil).ToJSON()

	env := resource(t, doc, ProcessorFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	if env["STATE_TABLE"] != name {
		t.Errorf("processor STATE_TABLE = %v, want %s", env["STATE_TABLE"], name)
	}
	if out := doc["Outputs"].(m)["StateTableName"].(m); out["Value"] != name || !strings.Contains(fmt.Sprint(out["Description"]), "stateTableName") {
		t.Errorf("StateTableName output = %v, want %s", out, name)
	}
	// The stack's own table stays, unchanged and kept.
	entriesID := logicalID(t, doc, "AWS::DynamoDB::Table", "VehicleEntriesTable")
	entries := resource(t, doc, entriesID)
	keys, _ := json.Marshal(entries["Properties"].(m)["KeySchema"])
	if entries["DeletionPolicy"] != "Retain" ||
		string(keys) != `[{"AttributeName":"vehicleId","KeyType":"HASH"},{"AttributeName":"entry","KeyType":"RANGE"}]` {
		t.Errorf("VehicleEntriesTable %v", entries)
	}
	_, base := stackUnderTest(t)
	if id := logicalID(t, base, "AWS::DynamoDB::Table", "VehicleEntriesTable"); id != entriesID {
		t.Errorf("VehicleEntriesTable's logical id %s, was %s: CloudFormation would replace it", entriesID, id)
	}
	// Exactly the state table's actions on the named table's ARN, in the
	// stack's partition, region and account, and the stream's reads on the
	// named stream; none on the stack's own table or stream.
	arn, _ := json.Marshal(m{"Fn::Join": []any{"", []any{"arn:", m{"Ref": "AWS::Partition"}, ":dynamodb:", m{"Ref": "AWS::Region"}, ":",
		m{"Ref": "AWS::AccountId"}, ":table/" + name}}})
	streamJSON, _ := json.Marshal(stream)
	var onNamed []string // role prefix, action, on table or stream
	for _, pol := range policies(doc) {
		id, role := pol.id, pol.role
		for _, prefix := range []string{ProcessorFunctionID, PublisherFunctionID} {
			if strings.HasPrefix(role, prefix+"Role") {
				role = prefix
			}
		}
		for _, st := range pol.statements {
			for _, target := range asList(st.(m)["Resource"]) {
				b, _ := json.Marshal(target)
				if strings.Contains(string(b), entriesID) {
					t.Errorf("%s: statement %v on the stack's own table", id, st)
				}
				if !strings.Contains(string(b), name) {
					continue
				}
				on := "table"
				switch string(b) {
				case string(arn):
				case string(streamJSON):
					on = "stream"
				default:
					t.Errorf("%s (role %s): statement %v on %s, want the table %s or the stream %s", id, role, st, b, arn, stream)
				}
				for _, a := range asList(st.(m)["Action"]) {
					onNamed = append(onNamed, fmt.Sprintf("%s %s %s", role, a, on))
				}
			}
		}
	}
	sort.Strings(onNamed)
	want := []string{
		ProcessorFunctionID + " dynamodb:PutItem table", ProcessorFunctionID + " dynamodb:Query table", ProcessorFunctionID + " dynamodb:UpdateItem table",
		PublisherFunctionID + " dynamodb:DescribeStream stream", PublisherFunctionID + " dynamodb:GetRecords stream",
		PublisherFunctionID + " dynamodb:GetShardIterator stream", PublisherFunctionID + " dynamodb:Query table",
	}
	if got := strings.Join(onNamed, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("on %s and its stream:\n%s\nwant:\n%s", name, got, strings.Join(want, "\n"))
	}
	// The publisher reads the named stream, and is told the named table.
	var sources []any
	for _, r := range doc["Resources"].(m) {
		if res := r.(m); res["Type"] == "AWS::Lambda::EventSourceMapping" && fmt.Sprint(res["Properties"].(m)["FunctionName"]) == fmt.Sprint(m{"Ref": PublisherFunctionID}) {
			sources = append(sources, res["Properties"].(m)["EventSourceArn"])
		}
	}
	if len(sources) != 1 || sources[0] != stream {
		t.Errorf("publisher reads %v, want %s", sources, stream)
	}
	if env := resource(t, doc, PublisherFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m); env["STATE_TABLE"] != name {
		t.Errorf("publisher STATE_TABLE = %v, want %s", env["STATE_TABLE"], name)
	}

	ann := assertions.Annotations_FromStack(stack)
	nagRule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, msg := range append(*ann.FindError(jsii.String("*"), nagRule), *ann.FindWarning(jsii.String("*"), nagRule)...) {
		data, _ := json.Marshal(msg.Entry.Data)
		t.Errorf("cdk-nag at %s: %s", *msg.Id, data)
	}
}

// TestStateTableNameValidated: NewWebhookStack refuses a StateTableName
// DynamoDB would.
func TestStateTableNameValidated(t *testing.T) {
	for _, name := range []string{"ab", "a table", strings.Repeat("x", 256), "x/y"} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "StateTableName") {
					t.Errorf("StateTableName %q: panic %v, want one naming the prop", name, v)
				}
			}()
			p := WebhookStackProps{StateTableName: name, StateTableStreamArn: "arn:aws:dynamodb:eu-west-1:123456789012:table/" + name + "/stream/x"}
			p.withDefaults()
		}()
	}
	const abcStream = "arn:aws:dynamodb:eu-west-1:123456789012:table/abc/stream/2025-01-31T12:00:00.000"
	p := WebhookStackProps{StateTableName: "abc", StateTableStreamArn: abcStream}
	p.withDefaults()
	if p.StateTableName != "abc" || p.StateTableStreamArn != abcStream {
		t.Errorf("StateTableName became %q, StateTableStreamArn %q", p.StateTableName, p.StateTableStreamArn)
	}
	// The named table's stream: required with it, refused without it, and
	// of that table.
	for _, p := range []WebhookStackProps{
		{StateTableName: "abc"},
		{StateTableStreamArn: abcStream},
		{StateTableName: "abd", StateTableStreamArn: abcStream},
		{StateTableName: "abc", StateTableStreamArn: "arn:aws:dynamodb:eu-west-1:123456789012:table/abc"},
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "StateTableStreamArn") {
					t.Errorf("%q, %q: panic %v, want one naming StateTableStreamArn", p.StateTableName, p.StateTableStreamArn, v)
				}
			}()
			p.withDefaults()
		}()
	}
}

// TestLeastPrivilege checks every IAM statement: named actions only, on
// the stack's own resources; the one exception is the publisher's
// dynamodb:ListStreams, which has no resource-level permissions.
func TestLeastPrivilege(t *testing.T) {
	_, doc := stackUnderTest(t)
	actions := map[string][]string{}
	for _, pol := range policies(doc) {
		id, role := pol.id, pol.role
		for _, st := range pol.statements {
			stmt := st.(m)
			for _, r := range asList(stmt["Resource"]) {
				if r == "*" && (stmt["Action"] != "dynamodb:ListStreams" || !strings.HasPrefix(role, PublisherFunctionID+"Role")) {
					t.Errorf("%s: statement %v has Resource *", id, stmt)
				}
			}
			for _, a := range asList(stmt["Action"]) {
				if strings.Contains(a.(string), "*") {
					t.Errorf("%s: wildcard action %v", id, a)
				}
				actions[role] = append(actions[role], a.(string))
			}
		}
	}
	// Role logical ids carry a hash suffix.
	of := func(role string) string {
		var all []string
		for id, a := range actions {
			if strings.HasPrefix(id, role) {
				all = append(all, a...)
			}
		}
		return strings.Join(all, " ")
	}
	has := func(role string, want ...string) {
		got := of(role)
		for _, a := range want {
			if !strings.Contains(got, a) {
				t.Errorf("%s lacks %s: %s", role, a, got)
			}
		}
	}
	has(ReceiverFunctionID+"Role", "sqs:SendMessage", "secretsmanager:GetSecretValue", "logs:PutLogEvents")
	has(ProcessorFunctionID+"Role", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage")
	for _, forbidden := range []string{"dynamodb:", "sqs:ReceiveMessage", "sqs:DeleteMessage"} {
		if strings.Contains(of(ReceiverFunctionID+"Role"), forbidden) {
			t.Errorf("receiver may %s", forbidden)
		}
	}
	if strings.Contains(of(ProcessorFunctionID+"Role"), "secretsmanager") {
		t.Error("processor may read the secret")
	}
	if strings.Contains(of(ReceiverFunctionID+"Role"), "firehose:") {
		t.Error("receiver may write to the archive stream")
	}
	has(PublisherFunctionID+"Role", "events:PutEvents", "dynamodb:Query", "dynamodb:GetRecords", "sqs:SendMessage", "logs:PutLogEvents")
	for _, forbidden := range []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "secretsmanager", "firehose:", "sqs:ReceiveMessage"} {
		if strings.Contains(of(PublisherFunctionID+"Role"), forbidden) {
			t.Errorf("publisher may %s", forbidden)
		}
	}
	for _, role := range []string{ReceiverFunctionID + "Role", ProcessorFunctionID + "Role", "ArchiveStreamRole"} {
		for _, forbidden := range []string{"events:", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream", "dynamodb:ListStreams"} {
			if strings.Contains(of(role), forbidden) {
				t.Errorf("%s may %s: put domain events or read the state table's stream", role, forbidden)
			}
		}
	}
	// Per table (and its stream) and role: the legacy table is only read,
	// the entries table's stream only by the publisher.
	onTable := map[string][]string{} // table logical id prefix and attribute -> role prefix and action
	for _, pol := range policies(doc) {
		role := pol.role
		for _, fn := range []string{ReceiverFunctionID, ProcessorFunctionID, PublisherFunctionID} {
			if strings.HasPrefix(role, fn+"Role") {
				role = fn
			}
		}
		for _, st := range pol.statements {
			for _, target := range asList(st.(m)["Resource"]) {
				ref, _ := target.(m)
				att, _ := ref["Fn::GetAtt"].([]any)
				if len(att) == 0 {
					continue
				}
				for _, table := range []string{"VehicleStateTable", "VehicleEntriesTable", "EventsTable"} {
					if strings.HasPrefix(att[0].(string), table) {
						for _, a := range asList(st.(m)["Action"]) {
							key := table + "." + att[1].(string)
							onTable[key] = append(onTable[key], role+" "+a.(string))
						}
					}
				}
			}
		}
	}
	p, q := ProcessorFunctionID, PublisherFunctionID
	for table, want := range map[string][]string{
		"VehicleStateTable.Arn":         {p + " dynamodb:GetItem"},
		"VehicleEntriesTable.Arn":       {p + " dynamodb:PutItem", p + " dynamodb:Query", p + " dynamodb:UpdateItem", q + " dynamodb:Query"},
		"VehicleEntriesTable.StreamArn": {q + " dynamodb:DescribeStream", q + " dynamodb:GetRecords", q + " dynamodb:GetShardIterator"},
		"EventsTable.Arn":               {p + " dynamodb:GetItem", p + " dynamodb:PutItem", p + " dynamodb:UpdateItem"},
	} {
		got := onTable[table]
		sort.Strings(got)
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: %v, want %v", table, got, want)
		}
		delete(onTable, table)
	}
	if len(onTable) != 0 {
		t.Errorf("grants on other table attributes: %v", onTable)
	}
}

// TestNag runs cdk-nag's AWS Solutions rules: no unsuppressed error, and
// every suppression carries a reason.
func TestNag(t *testing.T) {
	_, doc := stackUnderTest(t)
	ann := assertions.Annotations_FromStack(built.stack)
	nagRule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	findings := append(*ann.FindError(jsii.String("*"), nagRule), *ann.FindWarning(jsii.String("*"), nagRule)...)
	for _, msg := range findings {
		data, _ := json.Marshal(msg.Entry.Data)
		t.Errorf("cdk-nag at %s: %s", *msg.Id, data)
	}
	meta, _ := doc["Metadata"].(m)
	nag, _ := meta["cdk_nag"].(m)
	rules, _ := nag["rules_to_suppress"].([]any)
	if len(rules) == 0 {
		t.Fatal("no stack-level suppressions recorded")
	}
	for _, r := range rules {
		if reason, _ := r.(m)["reason"].(string); len(reason) < 40 {
			t.Errorf("suppression %v has no real reason", r)
		}
	}
	// Resource suppressions: each with its reason, and a wildcard one
	// (IAM5) only for the resources it names.
	for id, r := range doc["Resources"].(m) {
		meta, _ := r.(m)["Metadata"].(m)
		nag, _ := meta["cdk_nag"].(m)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, r := range rules {
			rule := r.(m)
			if reason, _ := rule["reason"].(string); len(reason) < 40 {
				t.Errorf("%s: suppression %v has no real reason", id, rule)
			}
			if applies, _ := rule["applies_to"].([]any); rule["id"] == "AwsSolutions-IAM5" && len(applies) == 0 {
				t.Errorf("%s: IAM5 suppressed for every resource and action", id)
			}
		}
	}
}

// TestCfnLint lints the synthesized template with cfn-lint, on PATH or in
// the project's .tools/venv (`make tools`).
func TestCfnLint(t *testing.T) {
	stackUnderTest(t)
	lint := cfnLint(t)
	built.app.Synth(nil)
	runCfnLint(t, lint, filepath.Join(built.outdir, "TestStack.template.json"))
}

// cfnLint is cfn-lint's path; the test is skipped without it (failed on CI).
func cfnLint(t *testing.T) string {
	t.Helper()
	lint, err := moto.Tool("cfn-lint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cfn-lint is not installed (make tools)")
		}
		t.Skip("cfn-lint is not installed (make tools)")
	}
	return lint
}

func runCfnLint(t *testing.T, lint, template string) {
	t.Helper()
	// W3005: CDK adds an explicit DependsOn beside a GetAtt on the role.
	out, err := exec.Command(lint, "--ignore-checks", "W3005", "--", template).CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", filepath.Base(template), err, out)
	}
}

func TestPropsFromContext(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"secretName": "team/amt", "throttleRate": "10", "removalPolicy": "destroy",
	}})
	p, err := propsFromContext(app)
	if err != nil || p.SecretName != "team/amt" || p.ThrottleRate != 10 || p.RemovalPolicy != awscdk.RemovalPolicy_DESTROY {
		t.Fatalf("props = %+v, %v", p, err)
	}
	app = awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"logLevel": "debug", "lambdaSystemLogLevel": "INFO", "receiverMemoryMB": "512", "processorMemoryMB": 1024,
		"receiverTimeoutSeconds": "12", "processorTimeoutSeconds": "20", "archiveRetentionDays": "30",
	}})
	p, err = propsFromContext(app)
	if err != nil || p.LogLevel != "DEBUG" || p.SystemLogLevel != "INFO" || p.ReceiverMemoryMB != 512 || p.ProcessorMemoryMB != 1024 ||
		p.ReceiverTimeoutSeconds != 12 || p.ProcessorTimeoutSeconds != 20 || p.ArchiveRetentionDays != 30 {
		t.Fatalf("props = %+v, %v", p, err)
	}
	// Unset, the stack's default applies; cdk.json gives numbers.
	for ctx, want := range map[any]float64{nil: 0, 1: 1, 730: 730, "1": 1} {
		context := map[string]any{}
		if ctx != nil {
			context["archiveRetentionDays"] = ctx
		}
		p, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &context}))
		if err != nil {
			t.Errorf("archiveRetentionDays=%v: %v", ctx, err)
		} else if p.ArchiveRetentionDays != want {
			t.Errorf("archiveRetentionDays=%v: props.ArchiveRetentionDays = %v, want %v", ctx, p.ArchiveRetentionDays, want)
		}
	}
	for _, days := range []any{"forever", "0", 0, "1.5", "-30"} {
		app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"archiveRetentionDays": days}})
		if _, err := propsFromContext(app); err == nil || !strings.Contains(err.Error(), "archiveRetentionDays") {
			t.Errorf("context archiveRetentionDays=%v: err = %v", days, err)
		}
	}
	// stateTableName: DynamoDB's table names, 3 to 255 of [a-zA-Z0-9_.-].
	// With it, stateTableStreamArn, a stream of that table.
	streamOf := func(table string) string {
		return "arn:aws:dynamodb:eu-west-1:123456789012:table/" + table + "/stream/2025-01-31T12:00:00.000"
	}
	for _, name := range []string{"abc", "vehicle-entries.rebuilt_2024", strings.Repeat("x", 255)} {
		p, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"stateTableName": name, "stateTableStreamArn": streamOf(name)}}))
		if err != nil || p.StateTableName != name || p.StateTableStreamArn != streamOf(name) {
			t.Errorf("stateTableName=%q: props = %+v, %v", name, p, err)
		}
	}
	for _, ctx := range []map[string]any{
		{"stateTableName": "abc"},
		{"stateTableName": "abc", "stateTableStreamArn": ""},
		{"stateTableStreamArn": streamOf("abc")},
		{"stateTableName": "abc", "stateTableStreamArn": streamOf("abd")},
		{"stateTableName": "abc", "stateTableStreamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/abc"},
		{"stateTableName": "abc", "stateTableStreamArn": "2025-01-31T12:00:00.000"},
	} {
		if _, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &ctx})); err == nil || !strings.HasPrefix(err.Error(), "context stateTableStreamArn: ") {
			t.Errorf("context %v: err = %v, want one naming stateTableStreamArn", ctx, err)
		}
	}
	// eventBusName: a bus's name; eventSource: anything EventBridge takes
	// but AWS's own sources.
	app = awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"eventBusName": "team.vehicles-bus_1", "eventSource": "com.example.smartcar", "publisherMemoryMB": "512"}})
	if p, err := propsFromContext(app); err != nil || p.EventBusName != "team.vehicles-bus_1" || p.EventSource != "com.example.smartcar" || p.PublisherMemoryMB != 512 {
		t.Errorf("props = %+v, %v", p, err)
	}
	if p, err := propsFromContext(awscdk.NewApp(nil)); err != nil || p.EventBusName != "" || p.EventSource != "" || p.StateTableStreamArn != "" {
		t.Errorf("no context: props = %+v, %v; want the stack's defaults", p, err)
	}
	for ctx, value := range map[string]string{
		"eventBusName": "arn:aws:events:eu-west-1:123456789012:event-bus/team", "eventSource": "aws.smartcar", "publisherMemoryMB": "much",
	} {
		if _, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{ctx: value}})); err == nil || !strings.Contains(err.Error(), ctx) {
			t.Errorf("context %s=%s: err = %v", ctx, value, err)
		}
	}
	for _, bad := range []string{"my bus", strings.Repeat("b", 257)} {
		if _, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"eventBusName": bad}})); err == nil || !strings.Contains(err.Error(), "eventBusName") {
			t.Errorf("context eventBusName=%q: err = %v", bad, err)
		}
	}
	if _, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"eventSource": strings.Repeat("s", 257)}})); err == nil || !strings.Contains(err.Error(), "eventSource") {
		t.Errorf("context eventSource of 257 characters: err = %v", err)
	}
	if p, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"stateTableName": ""}})); err != nil || p.StateTableName != "" {
		t.Errorf("empty stateTableName: props.StateTableName = %q, %v; want the stack's own table", p.StateTableName, err)
	}
	for _, name := range []string{"ab", strings.Repeat("x", 256), "my table", "entries/rebuilt", "arn:aws:dynamodb:eu-west-1:123456789012:table/x", "tablé"} {
		app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"stateTableName": name}})
		if _, err := propsFromContext(app); err == nil || !strings.Contains(err.Error(), "stateTableName") || !strings.Contains(err.Error(), "DynamoDB table name") {
			t.Errorf("context stateTableName=%q: err = %v", name, err)
		}
	}
	for ctx, want := range map[string]string{"throttleRate": "fast", "removalPolicy": "maybe", "maxDeliveryAge": "an hour", "legacyStateTable": "no",
		"logLevel": "verbose", "lambdaSystemLogLevel": "ERROR", "receiverMemoryMB": "lots"} {
		app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{ctx: want}})
		if _, err := propsFromContext(app); err == nil || !strings.Contains(err.Error(), ctx) {
			t.Errorf("context %s=%s: err = %v", ctx, want, err)
		}
	}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func resource(t *testing.T, doc map[string]any, id string) map[string]any {
	t.Helper()
	r, ok := doc["Resources"].(m)[id].(m)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r
}

// logicalID is the logical id of the one resource of a type whose id
// starts with prefix.
func logicalID(t *testing.T, doc map[string]any, typ, prefix string) string {
	t.Helper()
	var ids []string
	for id, r := range doc["Resources"].(m) {
		if strings.HasPrefix(id, prefix) && r.(m)["Type"] == typ {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s %s*: %v, want one", typ, prefix, ids)
	}
	return ids[0]
}

func resourceByPrefix(t *testing.T, doc map[string]any, typ, prefix string) map[string]any {
	t.Helper()
	for id, r := range doc["Resources"].(m) {
		if strings.HasPrefix(id, prefix) && r.(m)["Type"] == typ {
			return r.(m)
		}
	}
	t.Fatalf("no %s %s*", typ, prefix)
	return nil
}

// entriesTableID is VehicleEntriesTable's logical id since it was added:
// enabling its stream must not change it, or CloudFormation would replace
// the table.
const entriesTableID = "VehicleEntriesTable0474C2AB"

// TestStateStream: the entries table has a NEW_AND_OLD_IMAGES stream, under
// its old logical id; the other tables have none.
func TestStateStream(t *testing.T) {
	_, doc := stackUnderTest(t)
	if id := logicalID(t, doc, "AWS::DynamoDB::Table", "VehicleEntriesTable"); id != entriesTableID {
		t.Errorf("VehicleEntriesTable's logical id %s, was %s: CloudFormation would replace it", id, entriesTableID)
	}
	for id, r := range doc["Resources"].(m) {
		if r.(m)["Type"] != "AWS::DynamoDB::Table" {
			continue
		}
		spec, _ := json.Marshal(r.(m)["Properties"].(m)["StreamSpecification"])
		want := "null"
		if id == entriesTableID {
			want = `{"StreamViewType":"NEW_AND_OLD_IMAGES"}`
		}
		if string(spec) != want {
			t.Errorf("%s stream %s, want %s", id, spec, want)
		}
	}
}

// TestPublisher: the publisher is told the bus, the source and the state
// table, and reads the entries table's stream from TRIM_HORIZON (nothing
// written since the stream was enabled is skipped), a vehicle's changes in
// order, halving and retrying a failing batch, and sends the batches it
// gives up on, after 10 retries or a record 6 hours old, to
// PublisherFailureQueue, 18 hours before the stream drops their records.
func TestPublisher(t *testing.T) {
	_, doc := stackUnderTest(t)
	bus := logicalID(t, doc, "AWS::Events::EventBus", "DomainEventBus")
	failures := logicalID(t, doc, "AWS::SQS::Queue", "PublisherFailureQueue")
	env, _ := json.Marshal(resource(t, doc, PublisherFunctionID)["Properties"].(m)["Environment"].(m)["Variables"])
	if want := `{"EVENT_BUS_NAME":{"Ref":"` + bus + `"},"EVENT_SOURCE":"smartcar-webhook-receiver","LOG_LEVEL":"INFO","STATE_TABLE":{"Ref":"` +
		entriesTableID + `"}}`; string(env) != want {
		t.Errorf("publisher env %s, want %s", env, want)
	}
	var mappings []string
	for _, r := range doc["Resources"].(m) {
		res := r.(m)
		if res["Type"] == "AWS::Lambda::EventSourceMapping" && fmt.Sprint(res["Properties"].(m)["FunctionName"]) == fmt.Sprint(m{"Ref": PublisherFunctionID}) {
			b, _ := json.Marshal(res["Properties"])
			mappings = append(mappings, string(b))
		}
	}
	want := `{"BatchSize":100,"BisectBatchOnFunctionError":true,"DestinationConfig":{"OnFailure":{"Destination":{"Fn::GetAtt":["` + failures + `","Arn"]}}},` +
		`"EventSourceArn":{"Fn::GetAtt":["` + entriesTableID + `","StreamArn"]},"FunctionName":{"Ref":"` + PublisherFunctionID + `"},` +
		`"FunctionResponseTypes":["ReportBatchItemFailures"],"MaximumBatchingWindowInSeconds":1,"MaximumRecordAgeInSeconds":21600,` +
		`"MaximumRetryAttempts":10,"ParallelizationFactor":1,"StartingPosition":"TRIM_HORIZON"}`
	if len(mappings) != 1 || mappings[0] != want {
		t.Errorf("publisher event source mappings %v, want %s", mappings, want)
	}
	if left := streamRetention - publisherMaxRecordAge; left < 18*time.Hour {
		t.Errorf("a batch given up on for its age leaves %v to redrive its records, want at least 18h", left)
	}
	// The failure queue keeps the failure records as long as the DLQ does.
	q := resource(t, doc, failures)
	if props, _ := json.Marshal(q["Properties"]); string(props) != `{"MessageRetentionPeriod":1209600,"SqsManagedSseEnabled":true}` {
		t.Errorf("failure queue %s", props)
	}
}

// TestPublisherGrants: exactly what the publisher may do (put events of
// the configured source alone), and nobody else may put events, read the
// stream or use the failure queue.
func TestPublisherGrants(t *testing.T) {
	_, doc := stackUnderTest(t)
	bus := logicalID(t, doc, "AWS::Events::EventBus", "DomainEventBus")
	failures := logicalID(t, doc, "AWS::SQS::Queue", "PublisherFailureQueue")
	logs := logicalID(t, doc, "AWS::Logs::LogGroup", PublisherFunctionID+"Logs")
	var got []string
	for _, pol := range policies(doc) {
		role := pol.role
		for _, st := range pol.statements {
			on, _ := json.Marshal(st.(m)["Resource"])
			if c, ok := st.(m)["Condition"]; ok {
				cond, _ := json.Marshal(c)
				on = append(on, " if "+string(cond)...)
			}
			publisher := strings.HasPrefix(role, PublisherFunctionID+"Role")
			for _, a := range asList(st.(m)["Action"]) {
				if publisher {
					got = append(got, fmt.Sprintf("%s %s", a, on))
				} else if strings.HasPrefix(a.(string), "events:") || strings.Contains(string(on), bus) || strings.Contains(string(on), failures) {
					t.Errorf("%s may %s on %s", role, a, on)
				}
			}
		}
	}
	sort.Strings(got)
	getAtt := func(id, attr string) string { return fmt.Sprintf(`{"Fn::GetAtt":["%s","%s"]}`, id, attr) }
	stream := getAtt(entriesTableID, "StreamArn")
	want := []string{
		"dynamodb:DescribeStream " + stream,
		"dynamodb:GetRecords " + stream,
		"dynamodb:GetShardIterator " + stream,
		`dynamodb:ListStreams "*"`,
		"dynamodb:Query " + getAtt(entriesTableID, "Arn"),
		"events:PutEvents " + getAtt(bus, "Arn") + ` if {"StringEquals":{"events:source":"smartcar-webhook-receiver"}}`,
		"logs:CreateLogStream " + getAtt(logs, "Arn"),
		"logs:PutLogEvents " + getAtt(logs, "Arn"),
		"sqs:SendMessage " + getAtt(failures, "Arn"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("publisher may:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// ListStreams on "*" is suppressed for cdk-nag on the publisher's role
	// (and its policy) alone, for that finding alone.
	for id, r := range doc["Resources"].(m) {
		meta, _ := r.(m)["Metadata"].(m)
		nag, _ := meta["cdk_nag"].(m)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, rule := range rules {
			if rule.(m)["id"] != "AwsSolutions-IAM5" {
				continue
			}
			if applies := fmt.Sprint(rule.(m)["applies_to"]); strings.Contains(applies, "Resource::*]") &&
				(!strings.HasPrefix(id, PublisherFunctionID+"Role") || applies != "[Resource::*]") {
				t.Errorf("%s: IAM5 suppressed for %s", id, applies)
			}
		}
	}
}

// TestDomainEventBus: the stack makes its bus, unless context eventBusName
// names one: then the publisher puts events on that bus, in the stack's
// account and region, and on it alone.
func TestDomainEventBus(t *testing.T) {
	tpl, doc := stackUnderTest(t)
	check(t, func() { tpl.ResourceCountIs(jsii.String("AWS::Events::EventBus"), jsii.Number(1)) })
	outputs := doc["Outputs"].(m)
	if d := outputs["EventBusName"].(m)["Description"]; d != "EventBridge bus the domain events are put on" {
		t.Errorf("EventBusName description %q", d)
	}

	doc = synthFromContext(t, map[string]any{"eventBusName": "team-vehicles", "eventSource": "com.example.vehicles"})
	for id, r := range doc["Resources"].(m) {
		if r.(m)["Type"] == "AWS::Events::EventBus" {
			t.Errorf("bus %s made, with eventBusName", id)
		}
	}
	env := resource(t, doc, PublisherFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
	if env["EVENT_BUS_NAME"] != "team-vehicles" || env["EVENT_SOURCE"] != "com.example.vehicles" {
		t.Errorf("publisher env %v", env)
	}
	arn, _ := json.Marshal(m{"Fn::Join": []any{"", []any{"arn:", m{"Ref": "AWS::Partition"}, ":events:", m{"Ref": "AWS::Region"}, ":",
		m{"Ref": "AWS::AccountId"}, ":event-bus/team-vehicles"}}})
	var puts []string
	for _, pol := range policies(doc) {
		for _, st := range pol.statements {
			if b, _ := json.Marshal(st); strings.Contains(string(b), "events:") || strings.Contains(string(b), "team-vehicles") {
				puts = append(puts, string(b))
			}
		}
	}
	if want := `{"Action":"events:PutEvents","Condition":{"StringEquals":{"events:source":"com.example.vehicles"}},"Effect":"Allow",` +
		`"Resource":` + string(arn) + `}`; len(puts) != 1 || puts[0] != want {
		t.Errorf("bus grants %v, want %s", puts, want)
	}
	outputs = doc["Outputs"].(m)
	if out := outputs["EventBusName"].(m); out["Value"] != "team-vehicles" || !strings.Contains(fmt.Sprint(out["Description"]), "eventBusName") {
		t.Errorf("EventBusName output %v", out)
	}
	if got, _ := json.Marshal(outputs["EventBusArn"].(m)["Value"]); string(got) != string(arn) {
		t.Errorf("EventBusArn output %s, want %s", got, arn)
	}
	if v := outputs["EventSource"].(m)["Value"]; v != "com.example.vehicles" {
		t.Errorf("EventSource output %v", v)
	}
}

// TestPublisherAlarms: the publisher failing two 5-minute periods in a
// row, events it could not put on the bus (a partial batch response, no
// invocation error) in three 5-minute periods in a row, a batch given up
// on, and the publisher 5 minutes behind the stream for 15 minutes notify
// the alarm topic; the dashboard graphs what the publisher does.
func TestPublisherAlarms(t *testing.T) {
	_, doc := stackUnderTest(t)
	function := `[{"Name":"FunctionName","Value":{"Ref":"` + PublisherFunctionID + `"}}]`
	queue := `[{"Name":"QueueName","Value":{"Fn::GetAtt":["` + logicalID(t, doc, "AWS::SQS::Queue", "PublisherFailureQueue") + `","QueueName"]}}]`
	checkAlarms(t, doc,
		alarmWant{"PublisherErrorsAlarm", "AWS/Lambda", "Errors", function, "Sum", 300, 0, 2},
		alarmWant{"PublishFailuresAlarm", "SmartcarWebhooks", "PublishFailures", `[{"Name":"Service","Value":"publisher"}]`, "Sum", 300, 0, 3},
		alarmWant{"PublisherFailuresAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum", 60, 0, 1},
		alarmWant{"PublisherLagAlarm", "AWS/Lambda", "IteratorAge", function, "Maximum", 300, 300000, 3},
	)
	dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
	for _, metric := range []string{`[\"SmartcarWebhooks\",\"DomainEventsPublished\",\"Service\",\"publisher\"`,
		`[\"SmartcarWebhooks\",\"PublishFailures\",\"Service\",\"publisher\"`, `\"Invocations\"`, `\"IteratorAge\"`} {
		if !strings.Contains(string(dashboard), metric) {
			t.Errorf("dashboard lacks %s", metric)
		}
	}
}

// TestEventSourceValidated: NewWebhookStack refuses a source EventBridge
// would, or one of AWS's; empty takes the default.
func TestEventSourceValidated(t *testing.T) {
	for source, want := range map[string]string{"": DefaultEventSource, "com.example.vehicles": "com.example.vehicles", "x": "x",
		strings.Repeat("s", 256): strings.Repeat("s", 256), "awsome": "awsome"} {
		p := WebhookStackProps{EventSource: source}
		p.withDefaults()
		if p.EventSource != want {
			t.Errorf("EventSource %q became %q, want %q", source, p.EventSource, want)
		}
	}
	for _, p := range []WebhookStackProps{
		{EventSource: "aws.smartcar"}, {EventSource: strings.Repeat("s", 257)},
		{EventBusName: "arn:aws:events:eu-west-1:123456789012:event-bus/x"}, {EventBusName: "my bus"},
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "Event") {
					t.Errorf("%+v: panic %v, want one naming the prop", p, v)
				}
			}()
			p.withDefaults()
		}()
	}
}

// synthChecked synthesizes a stack from context as the app does, with
// cdk-nag's checks, into its own cloud assembly: the template as a
// document, the stack (for its annotations) and the template's file.
func synthChecked(t *testing.T, context map[string]any) (map[string]any, awscdk.Stack, string) {
	t.Helper()
	dir := t.TempDir()
	outdir := filepath.Join(dir, "cdk.out")
	ctx := map[string]any{"aws:cdk:enable-asset-metadata": true}
	for k, v := range context {
		ctx[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir), Context: &ctx})
	props, err := propsFromContext(app)
	if err != nil {
		t.Fatal(err)
	}
	setCode(t, dir, props)
	stack := NewWebhookStack(app, "Checked", props)
	AddNagChecks(app, stack)
	app.Synth(nil)
	file := filepath.Join(outdir, "Checked.template.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, stack, file
}

// noNagFindings fails on any cdk-nag AWS Solutions error or warning.
func noNagFindings(t *testing.T, stack awscdk.Stack) {
	t.Helper()
	ann := assertions.Annotations_FromStack(stack)
	nagRule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, msg := range append(*ann.FindError(jsii.String("*"), nagRule), *ann.FindWarning(jsii.String("*"), nagRule)...) {
		data, _ := json.Marshal(msg.Entry.Data)
		t.Errorf("cdk-nag at %s: %s", *msg.Id, data)
	}
}

// resourcesOfType are the logical ids of a type's resources whose id
// starts with prefix.
func resourcesOfType(doc map[string]any, typ, prefix string) []string {
	var ids []string
	for id, r := range doc["Resources"].(m) {
		if r.(m)["Type"] == typ && strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// policy is an IAM policy of the template: its logical id, the roles it
// is attached to (the first one's logical id, role) and its statements.
type policy struct {
	id, role   string
	roles      []any
	statements []any
}

// policies returns the template's IAM policies.
func policies(doc map[string]any) []policy {
	var out []policy
	for id, r := range doc["Resources"].(m) {
		res := r.(m)
		if res["Type"] != "AWS::IAM::Policy" {
			continue
		}
		props := res["Properties"].(m)
		roles := props["Roles"].([]any)
		out = append(out, policy{id: id, role: roles[0].(m)["Ref"].(string), roles: roles,
			statements: props["PolicyDocument"].(m)["Statement"].([]any)})
	}
	return out
}

// grantsOf lists what the roles whose logical ids start with rolePrefix
// may do, as "action resource-JSON", sorted.
func grantsOf(doc map[string]any, rolePrefix string) []string {
	var got []string
	for _, pol := range policies(doc) {
		if !strings.HasPrefix(pol.role, rolePrefix) {
			continue
		}
		for _, st := range pol.statements {
			for _, target := range asList(st.(m)["Resource"]) {
				on, _ := json.Marshal(target)
				for _, a := range asList(st.(m)["Action"]) {
					got = append(got, fmt.Sprintf("%s %s", a, on))
				}
			}
		}
	}
	sort.Strings(got)
	return got
}

// reconcilerContext deploys the reconciler, scheduled hourly, with every
// setting given.
var reconcilerContext = map[string]any{
	"smartcarCredentialsSecret": "smartcar/app", "reconcileEvery": "1h", "reconcileStaleAfter": "3h",
	"smartcarApiBase": "https://api.example.com/v3", "smartcarTokenUrl": "https://auth.example.com/oauth/token",
}

// TestReconcilerOffByDefault: without context smartcarCredentialsSecret
// nothing of the reconciler is deployed (function, schedule, alarms,
// outputs), while the silence alarm is.
func TestReconcilerOffByDefault(t *testing.T) {
	_, base := stackUnderTest(t)
	for name, doc := range map[string]map[string]any{"props": base, "no context": synthFromContext(t, map[string]any{}),
		"empty context": synthFromContext(t, map[string]any{"smartcarCredentialsSecret": "", "reconcileEvery": "off"})} {
		t.Run(name, func(t *testing.T) {
			if _, ok := doc["Resources"].(m)[ReconcilerFunctionID]; ok {
				t.Error("ReconcilerFunction deployed")
			}
			for _, typ := range []string{"AWS::Scheduler::Schedule", "AWS::Lambda::EventInvokeConfig"} {
				if ids := resourcesOfType(doc, typ, ""); len(ids) != 0 {
					t.Errorf("%s: %v", typ, ids)
				}
			}
			for _, prefix := range []string{"Reconcile", "SmartcarCredentials"} {
				for id := range doc["Resources"].(m) {
					if strings.HasPrefix(id, prefix) {
						t.Errorf("resource %s", id)
					}
				}
				for id := range doc["Outputs"].(m) {
					if strings.HasPrefix(id, prefix) {
						t.Errorf("output %s", id)
					}
				}
			}
			if ids := resourcesOfType(doc, "AWS::Lambda::Function", ""); len(ids) != 3 {
				t.Errorf("functions %v, want the receiver, processor and publisher", ids)
			}
			if ids := resourcesOfType(doc, "AWS::CloudWatch::CompositeAlarm", "WebhooksSilent"); len(ids) != 1 {
				t.Errorf("WebhooksSilent: %v", ids)
			}
			dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
			if strings.Contains(string(dashboard), "reconciler") {
				t.Error("the dashboard graphs the reconciler")
			}
		})
	}
}

// TestReconciler: with context smartcarCredentialsSecret, the reconciler
// is built as the other functions are, runs one at a time for up to 15
// minutes, is not retried, is told its tables, secret and settings, may do
// exactly what it needs, alarms when a run stops or fails, and is named in
// the outputs; with reconcileEvery a schedule invokes it through a role of
// its own. cdk-nag and cfn-lint pass.
func TestReconciler(t *testing.T) {
	doc, stack, template := synthChecked(t, reconcilerContext)
	noNagFindings(t, stack)
	fn := resource(t, doc, ReconcilerFunctionID)
	props := fn["Properties"].(m)
	for name, want := range map[string]any{
		"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"}, "Timeout": 900.0, "MemorySize": 256.0,
		"ReservedConcurrentExecutions": 1.0, "LoggingConfig": m{"ApplicationLogLevel": "DEBUG", "LogFormat": "JSON", "SystemLogLevel": "WARN",
			"LogGroup": m{"Ref": logicalID(t, doc, "AWS::Logs::LogGroup", ReconcilerFunctionID+"Logs")}},
	} {
		got, _ := json.Marshal(props[name])
		if w, _ := json.Marshal(want); string(got) != string(w) {
			t.Errorf("reconciler %s = %s, want %s", name, got, w)
		}
	}
	if meta, _ := fn["Metadata"].(m); meta == nil || meta["aws:asset:path"] == nil || meta["aws:asset:property"] != "Code" {
		t.Errorf("reconciler lacks aws:asset:path metadata: %v", fn["Metadata"])
	}
	if lg := resource(t, doc, logicalID(t, doc, "AWS::Logs::LogGroup", ReconcilerFunctionID+"Logs")); lg["DeletionPolicy"] != "Retain" ||
		lg["Properties"].(m)["RetentionInDays"] != float64(30) {
		t.Errorf("reconciler log group %v", lg)
	}
	secretArn := `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":secretsmanager:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":secret:smartcar/app"]]}`
	env, _ := json.Marshal(props["Environment"].(m)["Variables"])
	if want := `{"EVENTS_TABLE":{"Ref":"` + logicalID(t, doc, "AWS::DynamoDB::Table", "EventsTable") + `"},"LOG_LEVEL":"INFO",` +
		`"RECONCILE_STALE_AFTER":"3h0m0s","SMARTCAR_API_BASE":"https://api.example.com/v3","SMARTCAR_CREDENTIALS_SECRET":` + secretArn + `,` +
		`"SMARTCAR_TOKEN_URL":"https://auth.example.com/oauth/token","STATE_TABLE":{"Ref":"` + entriesTableID + `"}}`; string(env) != want {
		t.Errorf("reconciler env\n%s\nwant\n%s", env, want)
	}
	invoke := resourcesOfType(doc, "AWS::Lambda::EventInvokeConfig", "")
	if len(invoke) != 1 {
		t.Fatalf("event invoke configs %v", invoke)
	}
	if got, _ := json.Marshal(resource(t, doc, invoke[0])["Properties"]); string(got) !=
		`{"FunctionName":{"Ref":"`+ReconcilerFunctionID+`"},"MaximumEventAgeInSeconds":900,"MaximumRetryAttempts":0,"Qualifier":"$LATEST"}` {
		t.Errorf("reconciler async invoke config %s", got)
	}

	// Exactly what it may do: no wildcard, nothing beyond its tables, the
	// secret and its log group.
	getAtt := func(id, attr string) string { return fmt.Sprintf(`{"Fn::GetAtt":["%s","%s"]}`, id, attr) }
	events, entries := getAtt(logicalID(t, doc, "AWS::DynamoDB::Table", "EventsTable"), "Arn"), getAtt(entriesTableID, "Arn")
	logs := getAtt(logicalID(t, doc, "AWS::Logs::LogGroup", ReconcilerFunctionID+"Logs"), "Arn")
	secretGrant := `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":secretsmanager:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":secret:smartcar/app-??????"]]}`
	want := []string{
		"dynamodb:BatchGetItem " + events,
		"dynamodb:GetItem " + events, "dynamodb:GetItem " + entries, "dynamodb:PutItem " + events, "dynamodb:PutItem " + entries,
		"dynamodb:Query " + entries, "dynamodb:Scan " + entries, "dynamodb:UpdateItem " + entries,
		"logs:CreateLogStream " + logs, "logs:PutLogEvents " + logs,
		"secretsmanager:DescribeSecret " + secretGrant, "secretsmanager:GetSecretValue " + secretGrant,
	}
	sort.Strings(want)
	if got := grantsOf(doc, ReconcilerFunctionID+"Role"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reconciler may:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, role := range []string{ReceiverFunctionID + "Role", ProcessorFunctionID + "Role", PublisherFunctionID + "Role", "ArchiveStreamRole"} {
		for _, g := range grantsOf(doc, role) {
			if strings.Contains(g, "smartcar/app") || strings.Contains(g, "lambda:") || strings.HasPrefix(g, "dynamodb:Scan") {
				t.Errorf("%s may %s", role, g)
			}
		}
	}

	// The schedule: hourly, on time, the stale vehicles, not retried, as a
	// role that may invoke the reconciler and nothing else.
	schedules := resourcesOfType(doc, "AWS::Scheduler::Schedule", "")
	if len(schedules) != 1 {
		t.Fatalf("schedules %v", schedules)
	}
	schedule := resource(t, doc, schedules[0])
	role := logicalID(t, doc, "AWS::IAM::Role", "ReconcileScheduleRole")
	sp := schedule["Properties"].(m)
	target, _ := json.Marshal(sp["Target"])
	if want := `{"Arn":` + getAtt(ReconcilerFunctionID, "Arn") + `,"Input":"{\"stale\":true}","RetryPolicy":{"MaximumRetryAttempts":0},` +
		`"RoleArn":` + getAtt(role, "Arn") + `}`; string(target) != want {
		t.Errorf("schedule target %s, want %s", target, want)
	}
	if sp["ScheduleExpression"] != "rate(1 hour)" || fmt.Sprint(sp["FlexibleTimeWindow"]) != fmt.Sprint(m{"Mode": "OFF"}) || sp["State"] != "ENABLED" {
		t.Errorf("schedule %v", sp)
	}
	if deps := fmt.Sprint(schedule["DependsOn"]); !strings.Contains(deps, "ReconcileScheduleRoleDefaultPolicy") {
		t.Errorf("schedule depends on %v, want the role's policy", deps)
	}
	trust, _ := json.Marshal(resource(t, doc, role)["Properties"].(m)["AssumeRolePolicyDocument"].(m)["Statement"])
	if want := `[{"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":{"Ref":"AWS::AccountId"}}},` +
		`"Effect":"Allow","Principal":{"Service":"scheduler.amazonaws.com"}}]`; string(trust) != want {
		t.Errorf("schedule role trust %s, want %s", trust, want)
	}
	if got := grantsOf(doc, "ReconcileScheduleRole"); strings.Join(got, "\n") != "lambda:InvokeFunction "+getAtt(ReconcilerFunctionID, "Arn") {
		t.Errorf("schedule role may %v, want lambda:InvokeFunction on the reconciler alone", got)
	}

	// Its alarms notify the alarm topic.
	topic := fmt.Sprint([]any{m{"Ref": logicalID(t, doc, "AWS::SNS::Topic", "AlarmTopic")}})
	for _, tt := range []struct{ prefix, namespace, metric, dimensions string }{
		{"ReconcileStopped", "SmartcarWebhooks", "ReconcileStopped", `[{"Name":"Service","Value":"reconciler"}]`},
		{"ReconcilerErrors", "AWS/Lambda", "Errors", `[{"Name":"FunctionName","Value":{"Ref":"` + ReconcilerFunctionID + `"}}]`},
	} {
		a := resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", tt.prefix)["Properties"].(m)
		dims, _ := json.Marshal(a["Dimensions"])
		if a["Namespace"] != tt.namespace || a["MetricName"] != tt.metric || string(dims) != tt.dimensions || a["Statistic"] != "Sum" ||
			a["Period"] != float64(300) {
			t.Errorf("%s: metric %v/%v %s %v over %v s", tt.prefix, a["Namespace"], a["MetricName"], dims, a["Statistic"], a["Period"])
		}
		if a["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || a["Threshold"] != float64(1) || a["EvaluationPeriods"] != float64(1) ||
			a["TreatMissingData"] != "notBreaching" {
			t.Errorf("%s: %v %v over %v periods, missing data %v; want >= 1 over 1", tt.prefix, a["ComparisonOperator"], a["Threshold"],
				a["EvaluationPeriods"], a["TreatMissingData"])
		}
		if fmt.Sprint(a["AlarmActions"]) != topic {
			t.Errorf("%s: actions %v, want the alarm topic", tt.prefix, a["AlarmActions"])
		}
	}
	stopped := fmt.Sprint(resourceByPrefix(t, doc, "AWS::CloudWatch::Alarm", "ReconcileStopped")["Properties"].(m)["AlarmDescription"])
	for _, words := range []string{"credentials", "billing", "reconcile.stopped"} {
		if !strings.Contains(stopped, words) {
			t.Errorf("ReconcileStopped's description lacks %q: %s", words, stopped)
		}
	}
	dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
	for _, metric := range []string{`[\"SmartcarWebhooks\",\"VehiclesReconciled\",\"Service\",\"reconciler\"`,
		`[\"SmartcarWebhooks\",\"SignalsHealed\",\"Service\",\"reconciler\"`, `[\"SmartcarWebhooks\",\"ReconcileFailures\",\"Service\",\"reconciler\"`,
		`MetricName=\\\"APIErrors\\\" Service=\\\"reconciler\\\"`} {
		if !strings.Contains(string(dashboard), metric) {
			t.Errorf("dashboard lacks %s", metric)
		}
	}

	outputs := doc["Outputs"].(m)
	if got, _ := json.Marshal(outputs["ReconcilerFunctionName"].(m)["Value"]); string(got) != `{"Ref":"`+ReconcilerFunctionID+`"}` {
		t.Errorf("ReconcilerFunctionName output %s", got)
	}
	if got, _ := json.Marshal(outputs["SmartcarCredentialsSecretArn"].(m)["Value"]); string(got) != secretArn {
		t.Errorf("SmartcarCredentialsSecretArn output %s, want %s", got, secretArn)
	}
	runCfnLint(t, cfnLint(t), template)
}

// TestReconcilerVariants: the secret by name, complete ARN or partial ARN;
// the schedule's rate, or none; the reconciler's state table follows
// stateTableName as the processor's does.
func TestReconcilerVariants(t *testing.T) {
	const complete = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smartcar/app-AbC123"
	const partial = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smartcar/app"
	const rebuilt = "rebuilt-entries"
	tests := []struct {
		name     string
		context  map[string]any
		secret   string // the env's and the output's value, JSON
		grant    string // what secretsmanager:GetSecretValue is granted on, JSON
		schedule string // "": none
		table    string // STATE_TABLE, JSON
	}{
		{"complete ARN, 30 minutes", map[string]any{"smartcarCredentialsSecret": complete, "reconcileEvery": "30m"},
			`"` + complete + `"`, `"` + complete + `"`, "rate(30 minutes)", `{"Ref":"` + entriesTableID + `"}`},
		{"partial ARN, 2 hours", map[string]any{"smartcarCredentialsSecret": partial, "reconcileEvery": "120m"},
			`"` + partial + `"`, `"` + partial + `-??????"`, "rate(2 hours)", `{"Ref":"` + entriesTableID + `"}`},
		{"name, no schedule, stateTableName", map[string]any{"smartcarCredentialsSecret": "app", "reconcileEvery": "0",
			"stateTableName": rebuilt, "stateTableStreamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/" + rebuilt + "/stream/x"},
			`{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":secretsmanager:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":secret:app"]]}`,
			`{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":secretsmanager:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":secret:app-??????"]]}`,
			"", `"` + rebuilt + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := synthFromContext(t, tt.context)
			env := resource(t, doc, ReconcilerFunctionID)["Properties"].(m)["Environment"].(m)["Variables"].(m)
			secret, _ := json.Marshal(env["SMARTCAR_CREDENTIALS_SECRET"])
			output, _ := json.Marshal(doc["Outputs"].(m)["SmartcarCredentialsSecretArn"].(m)["Value"])
			if string(secret) != tt.secret || string(output) != tt.secret {
				t.Errorf("SMARTCAR_CREDENTIALS_SECRET %s, output %s; want %s", secret, output, tt.secret)
			}
			if table, _ := json.Marshal(env["STATE_TABLE"]); string(table) != tt.table {
				t.Errorf("STATE_TABLE %s, want %s", table, tt.table)
			}
			if env["RECONCILE_STALE_AFTER"] != "6h0m0s" || env["SMARTCAR_API_BASE"] != nil || env["SMARTCAR_TOKEN_URL"] != nil {
				t.Errorf("env %v, want the default staleness and no API or token URL", env)
			}
			var read []string
			for _, g := range grantsOf(doc, ReconcilerFunctionID+"Role") {
				if strings.HasPrefix(g, "secretsmanager:") {
					read = append(read, g)
				}
			}
			if want := []string{"secretsmanager:DescribeSecret " + tt.grant, "secretsmanager:GetSecretValue " + tt.grant}; fmt.Sprint(read) != fmt.Sprint(want) {
				t.Errorf("secret grants %v, want %v", read, want)
			}
			// The state table's actions on the table STATE_TABLE names alone.
			stateTable := entriesTableID
			if tt.table != `{"Ref":"`+entriesTableID+`"}` {
				stateTable = ":table/" + rebuilt
			}
			var onState []string
			for _, g := range grantsOf(doc, ReconcilerFunctionID+"Role") {
				if strings.HasPrefix(g, "dynamodb:") && !strings.Contains(g, "EventsTable") {
					if !strings.Contains(g, stateTable) {
						t.Errorf("reconciler may %s, with STATE_TABLE %s", g, tt.table)
					}
					onState = append(onState, strings.Fields(g)[0])
				}
			}
			if want := "dynamodb:GetItem dynamodb:PutItem dynamodb:Query dynamodb:Scan dynamodb:UpdateItem"; strings.Join(onState, " ") != want {
				t.Errorf("reconciler may %v on the state table, want %s", onState, want)
			}
			schedules := resourcesOfType(doc, "AWS::Scheduler::Schedule", "")
			switch {
			case tt.schedule == "" && len(schedules) != 0:
				t.Errorf("schedules %v, want none", schedules)
			case tt.schedule != "" && (len(schedules) != 1 || resource(t, doc, schedules[0])["Properties"].(m)["ScheduleExpression"] != tt.schedule):
				t.Errorf("schedules %v, want one at %s", schedules, tt.schedule)
			}
			if roles := resourcesOfType(doc, "AWS::IAM::Role", "ReconcileScheduleRole"); (len(roles) == 1) != (tt.schedule != "") {
				t.Errorf("schedule roles %v", roles)
			}
		})
	}
}

// TestRateExpression: Scheduler's unit is singular for 1, plural
// otherwise; whole hours in hours.
func TestRateExpression(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "rate(5 minutes)", 30 * time.Minute: "rate(30 minutes)", time.Hour: "rate(1 hour)",
		90 * time.Minute: "rate(90 minutes)", 2 * time.Hour: "rate(2 hours)", 24 * time.Hour: "rate(24 hours)",
	} {
		if got := rateExpression(d); got != want {
			t.Errorf("rateExpression(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestSilenceAlarm: WebhooksSilent notifies the alarm topic when
// WebhooksQuiet (no webhook enqueued for silenceAlarmAfter, no data
// counting as none) and WebhooksSeenThisWeek (some on one of the last 7
// days) are both in alarm; neither notifies by itself. A stack that never
// received a webhook is not silent. silenceAlarmAfter=off removes all
// three.
func TestSilenceAlarm(t *testing.T) {
	_, base := stackUnderTest(t)
	tests := []struct {
		name    string
		context map[string]any // nil: the shared test stack
		period  float64        // WebhooksQuiet's; 0: no silence alarm
		spoken  string
	}{
		{"default", nil, 3600, "1 hour"},
		{"30m", map[string]any{"silenceAlarmAfter": "30m"}, 1800, "30 minutes"},
		{"24h", map[string]any{"silenceAlarmAfter": "24h"}, 86400, "1 day"},
		{"off", map[string]any{"silenceAlarmAfter": "off"}, 0, ""},
		{"0", map[string]any{"silenceAlarmAfter": "0"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := base
			if tt.context != nil {
				doc = synthFromContext(t, tt.context)
			}
			quiet := resourcesOfType(doc, "AWS::CloudWatch::Alarm", "WebhooksQuiet")
			seen := resourcesOfType(doc, "AWS::CloudWatch::Alarm", "WebhooksSeenThisWeek")
			silent := resourcesOfType(doc, "AWS::CloudWatch::CompositeAlarm", "WebhooksSilent")
			if tt.period == 0 {
				if len(quiet)+len(seen)+len(silent) != 0 {
					t.Errorf("silence alarms %v %v %v, want none", quiet, seen, silent)
				}
				return
			}
			if len(quiet) != 1 || len(seen) != 1 || len(silent) != 1 {
				t.Fatalf("silence alarms %v %v %v", quiet, seen, silent)
			}
			for _, a := range []struct {
				id, operator, missing    string
				period, periods, toAlarm float64
			}{
				{quiet[0], "LessThanThreshold", "breaching", tt.period, 1, 0},
				{seen[0], "GreaterThanOrEqualToThreshold", "notBreaching", 86400, 7, 1},
			} {
				p := resource(t, doc, a.id)["Properties"].(m)
				dims, _ := json.Marshal(p["Dimensions"])
				if p["Namespace"] != "SmartcarWebhooks" || p["MetricName"] != "WebhooksEnqueued" || string(dims) != `[{"Name":"Service","Value":"receiver"}]` ||
					p["Statistic"] != "Sum" || p["Period"] != a.period {
					t.Errorf("%s: metric %v/%v %s %v over %v s", a.id, p["Namespace"], p["MetricName"], dims, p["Statistic"], p["Period"])
				}
				toAlarm, _ := p["DatapointsToAlarm"].(float64)
				if p["ComparisonOperator"] != a.operator || p["Threshold"] != float64(1) || p["EvaluationPeriods"] != a.periods ||
					toAlarm != a.toAlarm || p["TreatMissingData"] != a.missing {
					t.Errorf("%s: %v %v over %v periods (%v to alarm), missing data %v", a.id, p["ComparisonOperator"], p["Threshold"],
						p["EvaluationPeriods"], p["DatapointsToAlarm"], p["TreatMissingData"])
				}
				// CloudWatch: period × evaluation periods at most 7 days
				// (1 day for periods under an hour).
				limit := 7 * 86400.0
				if a.period < 3600 {
					limit = 86400
				}
				if a.period*a.periods > limit {
					t.Errorf("%s evaluates %v s, CloudWatch allows %v", a.id, a.period*a.periods, limit)
				}
				if p["AlarmActions"] != nil || p["OKActions"] != nil || p["InsufficientDataActions"] != nil {
					t.Errorf("%s has actions: %v", a.id, p)
				}
			}
			p := resource(t, doc, silent[0])["Properties"].(m)
			rule, _ := json.Marshal(p["AlarmRule"])
			if want := `{"Fn::Join":["",["(ALARM(\"",{"Fn::GetAtt":["` + quiet[0] + `","Arn"]},"\") AND ALARM(\"",{"Fn::GetAtt":["` +
				seen[0] + `","Arn"]},"\"))"]]}`; string(rule) != want {
				t.Errorf("WebhooksSilent rule %s, want %s", rule, want)
			}
			if fmt.Sprint(p["AlarmActions"]) != fmt.Sprint([]any{m{"Ref": logicalID(t, doc, "AWS::SNS::Topic", "AlarmTopic")}}) {
				t.Errorf("WebhooksSilent actions %v, want the alarm topic", p["AlarmActions"])
			}
			description := fmt.Sprint(p["AlarmDescription"])
			for _, words := range []string{"for " + tt.spoken, "disabled the webhook", "unreachable", "Smartcar's dashboard", "4xx", "5xx", "make reconcile"} {
				if !strings.Contains(description, words) {
					t.Errorf("WebhooksSilent description lacks %q: %s", words, description)
				}
			}
			dashboard, _ := json.Marshal(resourceByPrefix(t, doc, "AWS::CloudWatch::Dashboard", "Dashboard")["Properties"])
			if !strings.Contains(string(dashboard), silent[0]) {
				t.Error("WebhooksSilent is not on the dashboard")
			}
		})
	}
}

// TestReconcilerContextValidated: each reconciler and silence-alarm setting
// is refused, naming its key and what it wants, when it is malformed, out of
// bounds, or given without smartcarCredentialsSecret.
func TestReconcilerContextValidated(t *testing.T) {
	const secret = "smartcar/app"
	tests := []struct {
		context map[string]any
		want    string // the error's start
		what    string // and what it says is wanted
	}{
		{m{"smartcarCredentialsSecret": "my secret"}, "context smartcarCredentialsSecret: ", "secret name"},
		{m{"smartcarCredentialsSecret": strings.Repeat("s", 513)}, "context smartcarCredentialsSecret: ", "secret name"},
		{m{"smartcarCredentialsSecret": "arn:aws:s3:::bucket"}, "context smartcarCredentialsSecret: ", "secret ARN"},
		{m{"smartcarCredentialsSecret": "arn:aws:secretsmanager:eu-west-1:1234:secret:x"}, "context smartcarCredentialsSecret: ", "secret ARN"},
		{m{"reconcileEvery": "1h"}, "context reconcileEvery: ", "needs smartcarCredentialsSecret"},
		{m{"smartcarCredentialsSecret": secret, "reconcileEvery": "3m"}, "context reconcileEvery: ", "at least 5m"},
		{m{"smartcarCredentialsSecret": secret, "reconcileEvery": "90s"}, "context reconcileEvery: ", "whole number of minutes"},
		{m{"smartcarCredentialsSecret": secret, "reconcileEvery": "5m30s"}, "context reconcileEvery: ", "whole number of minutes"},
		{m{"smartcarCredentialsSecret": secret, "reconcileEvery": "hourly"}, "context reconcileEvery: ", "whole number of minutes"},
		{m{"smartcarCredentialsSecret": secret, "reconcileEvery": "-1h"}, "context reconcileEvery: ", "whole number of minutes"},
		{m{"reconcileStaleAfter": "6h"}, "context reconcileStaleAfter: ", "needs smartcarCredentialsSecret"},
		{m{"smartcarCredentialsSecret": secret, "reconcileStaleAfter": "30s"}, "context reconcileStaleAfter: ", "at least 1m"},
		{m{"smartcarCredentialsSecret": secret, "reconcileStaleAfter": "off"}, "context reconcileStaleAfter: ", "at least 1m"},
		{m{"smartcarCredentialsSecret": secret, "reconcileStaleAfter": "a while"}, "context reconcileStaleAfter: ", "at least 1m"},
		{m{"smartcarApiBase": "https://api.example.com"}, "context smartcarApiBase: ", "needs smartcarCredentialsSecret"},
		{m{"smartcarCredentialsSecret": secret, "smartcarApiBase": "http://x"}, "context smartcarApiBase: ", "absolute https URL"},
		{m{"smartcarCredentialsSecret": secret, "smartcarApiBase": "api.smartcar.com"}, "context smartcarApiBase: ", "absolute https URL"},
		{m{"smartcarCredentialsSecret": secret, "smartcarApiBase": "https://"}, "context smartcarApiBase: ", "absolute https URL"},
		{m{"smartcarTokenUrl": "https://auth.example.com"}, "context smartcarTokenUrl: ", "needs smartcarCredentialsSecret"},
		{m{"smartcarCredentialsSecret": secret, "smartcarTokenUrl": "ftp://auth.example.com/token"}, "context smartcarTokenUrl: ", "absolute https URL"},
		{m{"silenceAlarmAfter": "90s"}, "context silenceAlarmAfter: ", "whole number of minutes from 5m to 24h"},
		{m{"silenceAlarmAfter": "4m"}, "context silenceAlarmAfter: ", "whole number of minutes from 5m to 24h"},
		{m{"silenceAlarmAfter": "25h"}, "context silenceAlarmAfter: ", "whole number of minutes from 5m to 24h"},
		{m{"silenceAlarmAfter": "never"}, "context silenceAlarmAfter: ", "or off"},
	}
	for _, tt := range tests {
		_, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &tt.context}))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.what) {
			t.Errorf("context %v: err = %v, want %q...%q", tt.context, err, tt.want, tt.what)
		}
	}
	// What is accepted, and what the stack is then told.
	p, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"smartcarCredentialsSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/smartcar-AbC123", "reconcileEvery": "5m",
		"reconcileStaleAfter": "1m", "smartcarApiBase": "https://api.example.com:8443/v3", "silenceAlarmAfter": "24h",
	}}))
	if err != nil || p.ReconcileEvery != 5*time.Minute || p.ReconcileStaleAfter != time.Minute || p.SmartcarAPIBase != "https://api.example.com:8443/v3" ||
		p.SilenceAlarmAfter != 24*time.Hour || p.NoSilenceAlarm {
		t.Errorf("props = %+v, %v", p, err)
	}
	for _, off := range []string{"off", "0", "0s"} {
		p, err := propsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"reconcileEvery": off, "silenceAlarmAfter": off}}))
		if err != nil || p.ReconcileEvery != 0 || !p.NoSilenceAlarm {
			t.Errorf("reconcileEvery and silenceAlarmAfter %q: props = %+v, %v; want both off", off, p, err)
		}
	}
	if p, err := propsFromContext(awscdk.NewApp(nil)); err != nil || p.SmartcarCredentialsSecret != "" || p.ReconcileEvery != 0 ||
		p.NoSilenceAlarm || p.SilenceAlarmAfter != 0 {
		t.Errorf("no context: props = %+v, %v; want no reconciler and the default silence alarm", p, err)
	}
}

// TestReconcilerPropsValidated: NewWebhookStack refuses what the context
// would, naming the prop.
func TestReconcilerPropsValidated(t *testing.T) {
	p := WebhookStackProps{SmartcarCredentialsSecret: "app"}
	p.withDefaults()
	if p.ReconcileStaleAfter != DefaultReconcileStaleAfter || p.SilenceAlarmAfter != DefaultSilenceAlarmAfter {
		t.Errorf("defaults: stale after %v, silence alarm after %v", p.ReconcileStaleAfter, p.SilenceAlarmAfter)
	}
	for prop, p := range map[string]WebhookStackProps{
		"SmartcarCredentialsSecret":      {SmartcarCredentialsSecret: "a secret"},
		"ReconcileEvery":                 {SmartcarCredentialsSecret: "app", ReconcileEvery: 4 * time.Minute},
		"ReconcileStaleAfter":            {SmartcarCredentialsSecret: "app", ReconcileStaleAfter: time.Second},
		"SmartcarAPIBase":                {SmartcarCredentialsSecret: "app", SmartcarAPIBase: "http://x"},
		"SmartcarTokenURL":               {SmartcarCredentialsSecret: "app", SmartcarTokenURL: "/token"},
		"need SmartcarCredentialsSecret": {ReconcileEvery: time.Hour},
		"SilenceAlarmAfter":              {SilenceAlarmAfter: 90 * time.Second},
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), prop) {
					t.Errorf("%+v: panic %v, want one naming %s", p, v, prop)
				}
			}()
			p.withDefaults()
		}()
	}
	func() {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "ReconcilerCode") {
				t.Errorf("no ReconcilerCode: panic %v", v)
			}
		}()
		dir := t.TempDir()
		props := &WebhookStackProps{SmartcarCredentialsSecret: "app"}
		setCode(t, dir, props)
		props.ReconcilerCode = nil
		NewWebhookStack(awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(dir, "cdk.out"))}), "NoCode", props)
	}()
}
