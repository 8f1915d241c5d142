package streaming

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKinesisEndToEnd: emulate → gateway → Kinesis (kinesalite) → the
// streaming job on prism → PostgreSQL, one row per post although every post
// is sent twice.
func TestKinesisEndToEnd(t *testing.T) {
	dsn := testDSN(t)
	endpoint := testenv.Kinesalite(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	kc := testenv.KinesisClient(endpoint)
	prefix := "ks" + time.Now().Format("150405")
	gatewayURL := kinesisGateway(t, kc, prefix)
	const posts = 80
	for round := 1; round <= 2; round++ {
		sum, err := emulator.Run(ctx, emulator.Config{Posts: posts, All: true, Seed: 5, Gateway: gatewayURL,
			Target: emulator.TargetKinesis, TopicPrefix: prefix, Concurrency: 4})
		if err != nil || sum.Failed > 0 {
			t.Fatalf("emulate round %d: %+v %v", round, sum, err)
		}
	}

	testenv.SetFlags(t, "runner", "prism")
	p, s := beam.NewPipelineWithRoot()
	src := KinesisSource(prefix, kinesisio.ReadEndpoint(endpoint), kinesisio.ReadRegion("us-east-1"),
		kinesisio.ReadUntil(time.Now()), kinesisio.ReadMaxDelay(500*time.Millisecond))
	if err := Build(s, Options{Source: src, Sink: dsn}); err != nil {
		t.Fatal(err)
	}
	ptest.RunAndValidate(t, p)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"pin_stream", "geo_stream", "user_stream"} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != posts {
			t.Errorf("%s: %d rows (%v), want one per post: %d", table, n, err, posts)
		}
	}
}

// createStreams creates the three streams of prefix with shards shards
// each and waits for them to be active.
func createStreams(t *testing.T, kc *kinesis.Client, prefix string, shards int32) {
	t.Helper()
	for _, table := range transforms.Tables {
		name := KinesisStream(prefix, table)
		if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
			t.Fatal(err)
		}
		waitStreamActive(t, kc, name)
	}
}

// kinesisGateway creates the three streams of prefix, with two shards
// each, and serves a gateway in front of them until the test ends; it
// returns the gateway's URL.
func kinesisGateway(t *testing.T, kc *kinesis.Client, prefix string) string {
	t.Helper()
	createStreams(t, kc, prefix, 2)
	gw, err := gateway.New(gateway.Config{Kinesis: kc, TopicPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv.URL
}

// kinesisJobEnv points a pinpipe subprocess at a Kinesis endpoint, with
// static credentials.
func kinesisJobEnv(endpoint string) []string {
	return []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_KINESIS=" + endpoint}
}
