package devstack

import (
	"context"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

// Target says which stack a tool works on: the local one (the default) or
// a deployed one, found by its CloudFormation stack name.
type Target struct {
	Stack     string
	StateFile string
}

// AddFlags registers -stack and -state on fs.
func (t *Target) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.Stack, "stack", "", "deployed CloudFormation stack to work on (default: the local stack of `make dev`)")
	fs.StringVar(&t.StateFile, "state", StateFile(), "state file of the local stack")
}

// Resolve returns the target's resources and an AWS config to reach them.
// A deployed stack's resources come from its outputs, with the standard AWS
// configuration (profile, region, credentials).
func (t Target) Resolve(ctx context.Context) (Resources, aws.Config, error) {
	if t.Stack == "" {
		r, err := ReadState(t.StateFile)
		if err != nil {
			return r, aws.Config{}, err
		}
		cfg, err := moto.Config(ctx, r.Endpoint)
		return r, cfg, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Resources{}, cfg, fmt.Errorf("aws config: %w", err)
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(t.Stack)})
	if err != nil {
		return Resources{}, cfg, fmt.Errorf("stack %s: %w", t.Stack, err)
	}
	if len(out.Stacks) == 0 {
		return Resources{}, cfg, fmt.Errorf("stack %s not found", t.Stack)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	r := Resources{
		QueueURL: outputs["QueueUrl"], DLQURL: outputs["DlqUrl"],
		EventsTable: outputs["EventsTableName"], StateTable: outputs["StateTableName"],
		ReceiverURL: outputs["WebhookUrl"],
	}
	if r.QueueURL == "" || r.DLQURL == "" || r.StateTable == "" {
		return r, cfg, fmt.Errorf("stack %s lacks the outputs QueueUrl, DlqUrl, StateTableName: is it this project's stack?", t.Stack)
	}
	q := sqs.NewFromConfig(cfg)
	for _, qa := range []struct {
		url string
		arn *string
	}{{r.QueueURL, &r.QueueARN}, {r.DLQURL, &r.DLQARN}} {
		got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(qa.url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return r, cfg, fmt.Errorf("queue %s: %w", qa.url, err)
		}
		*qa.arn = got.Attributes[string(types.QueueAttributeNameQueueArn)]
	}
	return r, cfg, nil
}
