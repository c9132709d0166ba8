package pipeline_test

import (
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/pipeline"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

// TestSettingsAgree checks the relations the settings rely on.
func TestSettingsAgree(t *testing.T) {
	if pipeline.QueueVisibilityTimeout < 6*pipeline.ProcessorTimeout {
		t.Errorf("visibility %v < 6 × processor timeout %v", pipeline.QueueVisibilityTimeout, pipeline.ProcessorTimeout)
	}
	if processor.DefaultLease >= pipeline.QueueVisibilityTimeout || processor.DefaultLease <= pipeline.ProcessorTimeout {
		t.Errorf("lease %v must outlast a processor run (%v) and expire inside the visibility timeout (%v)",
			processor.DefaultLease, pipeline.ProcessorTimeout, pipeline.QueueVisibilityTimeout)
	}
	if processor.DefaultMaxReceiveCount != pipeline.MaxReceiveCount {
		t.Errorf("processor assumes %d receives, the queue allows %d", processor.DefaultMaxReceiveCount, pipeline.MaxReceiveCount)
	}
	if processor.DefaultIdempotencyTTL < pipeline.DLQRetention+pipeline.IdempotencyMargin {
		t.Errorf("eventIds are remembered %v, less than the DLQ's retention %v plus %v: a redriven message would run again",
			processor.DefaultIdempotencyTTL, pipeline.DLQRetention, pipeline.IdempotencyMargin)
	}
	if pipeline.ReceiverTimeout.Seconds() >= 15 {
		t.Error("receiver timeout must stay below Smartcar's 15 s")
	}
}
