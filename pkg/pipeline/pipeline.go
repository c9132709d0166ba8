// Package pipeline holds the settings that shape the deployed pipeline and
// must be the same wherever it runs: the CDK stack (infra) and the local
// stack on an emulator both read them from here.
package pipeline

import "time"

const (
	// QueueVisibilityTimeout is how long a received message stays hidden.
	// AWS asks for at least six times the processor's timeout.
	QueueVisibilityTimeout = 30 * time.Second
	// Retries is how often a failed message is redelivered before it is
	// dead-lettered.
	Retries = 3
	// MaxReceiveCount is the queue's redrive limit: with SQS semantics, one
	// delivery plus Retries retries.
	MaxReceiveCount = 1 + Retries
	// DLQRetention is how long the dead-letter queue keeps a message.
	DLQRetention = 14 * 24 * time.Hour
	// IdempotencyMargin is how much longer than the dead-letter queue's
	// retention processed eventIds must be remembered, so that a message
	// redriven at the end of that retention is still known as a duplicate.
	IdempotencyMargin = 24 * time.Hour
	// MaxMessageBytes is both queues' MaximumMessageSize, SQS's largest (1
	// MiB), set explicitly because a queue made under the old default holds
	// 256 KiB: a body SQS cannot carry as text travels base64-encoded, a
	// third larger, and the receiver's largest body must still fit.
	MaxMessageBytes = 1 << 20
	// BatchSize is the most records one processor invocation receives.
	BatchSize = 10
	// ReceiverTimeout is the receiver Lambda's timeout, below Smartcar's 15 s.
	ReceiverTimeout = 10 * time.Second
	// ProcessorTimeout is the processor Lambda's timeout: at most a sixth
	// of the visibility timeout.
	ProcessorTimeout = 5 * time.Second
	// MemoryMB is both Lambdas' memory unless the stack is told otherwise.
	MemoryMB = 256
)

// The Lambdas' logical ids in the stack's template: SAM CLI and runbooks
// name the functions by them.
const (
	ReceiverFunctionID   = "ReceiverFunction"
	ProcessorFunctionID  = "ProcessorFunction"
	PublisherFunctionID  = "PublisherFunction"
	ReconcilerFunctionID = "ReconcilerFunction"
)

// ReconcilerTimeout is the reconciler's timeout, Lambda's longest: a run
// polls up to 1,000 vehicles at 2 a second, and stops starting vehicles
// shortly before it.
const ReconcilerTimeout = 15 * time.Minute

// PublisherTimeout is the domain-event publisher's timeout: a batch of up
// to 100 stream records is a few PutEvents calls (ten entries each) and a
// Query per vehicle whose reauth error went.
const PublisherTimeout = 30 * time.Second

// The archive of raw webhooks: the processor hands every record to a
// Firehose delivery stream (DirectPut) before processing it, and Firehose
// writes them in batches to the archive bucket.
const (
	// ArchivePrefix is where Firehose writes in the bucket, under the UTC
	// hour it received the records: raw/2026/11/30/17/<object>.
	// ArchiveHourExpression is how the stack asks for that hour; moto's
	// Firehose, which evaluates no expressions, appends it to a plain
	// prefix by itself.
	ArchivePrefix         = "raw/"
	ArchiveHourExpression = "!{timestamp:yyyy/MM/dd/HH}/"
	// ArchiveRetentionDays is how long archived webhooks are kept unless
	// the stack is told otherwise (context archiveRetentionDays).
	ArchiveRetentionDays = 400
	// ArchiveBufferInterval and ArchiveBufferMiB are Firehose's buffering
	// hints, both at their largest: the fewest objects (S3 bills each
	// PUT), at the price of an archive up to 15 minutes behind.
	ArchiveBufferInterval = 15 * time.Minute
	ArchiveBufferMiB      = 128
)
