package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// StreamSequences reads, with the emulator's configuration, the DynamoDB
// stream at streamARN, which must have one shard holding want records,
// and returns that shard's id and the records' sequence numbers, in order.
func StreamSequences(tb testing.TB, streamARN string, want int) (shard string, seqs []string) {
	tb.Helper()
	ctx := context.Background()
	streams := dynamodbstreams.NewFromConfig(Config(tb))
	desc, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)})
	if err != nil || len(desc.StreamDescription.Shards) != 1 {
		tb.Fatalf("describe stream: %v, %+v, want one shard", err, desc)
	}
	shard = aws.ToString(desc.StreamDescription.Shards[0].ShardId)
	it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(streamARN), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		tb.Fatal(err)
	}
	recs, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs.Records {
		seqs = append(seqs, aws.ToString(r.Dynamodb.SequenceNumber))
	}
	if len(seqs) != want {
		tb.Fatalf("the stream holds %d records, want %d", len(seqs), want)
	}
	return shard, seqs
}
