package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisEnv is the environment of a pinpipe process that talks to
// kinesalite at endpoint, with the static credentials KinesisClient
// uses, so that no child process reaches for real ones.
func KinesisEnv(endpoint string) []string {
	return []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_KINESIS=" + endpoint}
}

// CreateKinesisStream creates the stream name with shards shards and
// waits up to 30 s for it to be active.
func CreateKinesisStream(t testing.TB, kc *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("creating the Kinesis stream %s: %v", name, err)
	}
	WaitFor(t, 30*time.Second, name+" active", func() bool {
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
}
