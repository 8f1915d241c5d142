package streaming

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/runners"
)

// TestStreamingOnPrismJobServer submits the streaming job, with its
// unbounded Kafka read, to a standalone prism job server with
// --runner=universal and LOOPBACK workers: the path a Flink job server takes.
func TestStreamingOnPrismJobServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a prism job server")
	}
	dsn := testDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker, err := kafka.Start(ctx, kafka.Options{Listen: "127.0.0.1:0", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	gw, err := gateway.New(gateway.Config{KafkaBrokers: []string{broker.Addr()}, TopicPrefix: "js", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()
	const posts = 60
	if sum, err := emulator.Run(ctx, emulator.Config{Posts: posts, All: true, Seed: 3, Gateway: srv.URL,
		Target: "kafka", TopicPrefix: "js", Concurrency: 4}); err != nil || sum.Failed > 0 {
		t.Fatalf("emulate: %+v %v", sum, err)
	}

	endpoint := testenv.PrismJobServer(t)

	testenv.SetFlags(t, "runner", "universal", "endpoint", endpoint, "environment_type", "LOOPBACK")
	p, s := beam.NewPipelineWithRoot()
	src := KafkaSource([]string{broker.Addr()}, "js", kafkaio.ReadStart(kafkaio.StartEarliest), kafkaio.ReadUntilLatest())
	if err := Build(s, Options{Source: src, Sink: dsn}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	if _, err := runners.Run(runCtx, p); err != nil {
		t.Fatalf("the streaming job on the prism job server: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"pin_stream", "geo_stream", "user_stream"} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != posts {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, posts)
		}
	}
}
