package emulator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// TestThroughGateway emulates from a seeded PostgreSQL through the real
// gateway into an in-process Kafka cluster (kfake), and reads the records
// back: every post arrives, its three records equal to the source rows.
func TestThroughGateway(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	const posts, seed = 500, 11
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: posts, Seed: seed}); err != nil {
		t.Fatal(err)
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "e2e.pin", "e2e.geo", "e2e.user"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := gateway.New(gateway.Config{KafkaBrokers: cluster.ListenAddrs(), TopicPrefix: "e2e", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- gw.Serve(gctx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()

	const count = 60
	sum, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: "http://" + ln.Addr().String(), Target: emulator.TargetKafka,
		TopicPrefix: "e2e", Count: count, Seed: 3, Concurrency: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != count || sum.Records != 3*count || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}

	// Read every topic back: each post sent once (more only if a retried
	// request had got through), its records equal to its rows, the same
	// posts in every topic.
	g := generate.New(seed, posts)
	var pins map[int64]bool
	for _, table := range []string{"pin", "geo", "user"} {
		recs := consume(t, cluster.ListenAddrs(), emulator.TopicName("e2e", table), count, int(sum.Retried))
		got := map[int64]bool{}
		for _, r := range recs {
			rec := record{table: table, value: json.RawMessage(r.Value)}
			rec.ind = keyOf(t, table, rec.value)
			checkRecord(t, g, rec)
			got[rec.ind] = true
		}
		if pins == nil {
			pins = got
		} else if !maps.Equal(got, pins) {
			t.Errorf("%s holds posts %v, pin %v", table, got, pins)
		}
	}
	if len(pins) < count/2 {
		t.Errorf("only %d distinct posts of %d", len(pins), count)
	}
}

// consume reads n records from a topic from its start, failing the test if
// they do not come or more than extra more do.
func consume(t *testing.T, brokers []string, topic string, n, extra int) []*kgo.Record {
	t.Helper()
	return testenv.ConsumeKafka(t, brokers, topic, n, extra, 20*time.Second)
}
