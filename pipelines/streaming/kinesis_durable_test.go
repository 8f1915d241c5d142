package streaming

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/postgres"
)

// TestKinesisRestartAfterKillWindowOpen is TestRestartAfterKillWindowOpen
// on Kinesis (kinesalite): `pinpipe stream --source=kinesis` is killed
// with SIGKILL once records are read and written to the tables while
// their one-minute windows are open and nothing of them has fired (no
// category post, no durable position: the shards' checkpoints wait for
// the panes), then restarted with the defaults (--start=committed). The
// rows, dead letters, category counts and --files output are exact: the
// restart re-read the open windows' records, and the files it wrote
// replaced rather than doubled.
func TestKinesisRestartAfterKillWindowOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	t.Parallel()
	dsn := testDSN(t)
	endpoint := testenv.Kinesalite(t)
	bin := testenv.Pinpipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := testenv.KinesisClient(endpoint)
	prefix := "kw" + time.Now().Format("150405")
	gatewayURL := kinesisGateway(t, kc, prefix)

	// Bad records, each put twice (a client retrying), once before the
	// first job and once after the restart: each must be one dead letter.
	bad := [][]byte{[]byte(`{"index": "seven"}`), []byte(`not json at all`), []byte(`["an", "array"]`)}
	putBad := func() {
		for i, v := range bad {
			for range 2 {
				if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(KinesisStream(prefix, "pin")),
					PartitionKey: aws.String(fmt.Sprint("bad", i)), Data: v}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	putBad()
	const posts = 900 // 20 s of posts
	sent := emulateInBackground(ctx, emulator.Config{Posts: posts, All: true, Seed: 5, Gateway: gatewayURL,
		Target: emulator.TargetKinesis, TopicPrefix: prefix, Rate: 45, Concurrency: 4})

	conn := testenv.PostgresConnect(t, dsn)
	rows := tableRows(ctx, conn)
	filesDir := t.TempDir()
	env := kinesisJobEnv(endpoint)
	args := []string{"stream", "--source=kinesis", "--topic-prefix=" + prefix, "--sink=" + dsn, "--files=" + filesDir,
		"--window=1m", "--job-name=window-open"}
	first := testenv.Start(t, bin, env, args...)
	testenv.WaitFor(t, 90*time.Second, "the first job's first 60 posts", func() bool {
		if done, err := first.Exited(); done {
			t.Fatalf("the first job exited: %v", err)
		}
		return rows(postgres.StreamPinTable) >= 60
	})
	first.Kill()
	time.Sleep(time.Second) // a transaction the dead job had sent is over by now
	atKill := rows(postgres.StreamPinTable)
	if n := rows(postgres.CategoryPostsTable); n != 0 {
		t.Fatalf("%d category posts were written before the kill: not the moment this test is for", n)
	}
	if n := rows(kinesisio.CheckpointTable + " WHERE job = 'window-open' AND sequence_number <> ''"); n != 0 {
		t.Fatalf("%d shards had a durable position before the kill: not the moment this test is for", n)
	}
	if n := rows(kinesisio.SpanTable + " WHERE job = 'window-open'"); n != 0 {
		t.Fatalf("%d durable spans recorded before the kill: not the moment this test is for", n)
	}
	select {
	case err := <-sent:
		t.Fatalf("the emulator finished (%v) before the job was killed: not a kill in mid-stream; slow it down", err)
	default:
	}
	t.Logf("killed with %d of %d posts in %s, no window fired", atKill, posts, postgres.StreamPinTable)

	second := testenv.Start(t, bin, env, args...)
	putBad()
	if err := <-sent; err != nil {
		t.Fatalf("emulate: %v", err)
	}
	testenv.WaitFor(t, 120*time.Second, "every post in the tables", func() bool {
		if done, err := second.Exited(); done {
			t.Fatalf("the second job exited: %v", err)
		}
		return rows(postgres.StreamPinTable) == posts && rows(postgres.StreamGeoTable) == posts &&
			rows(postgres.StreamUserTable) == posts && rows(postgres.StreamDeadLetterTable) >= len(bad)
	})
	if err := second.Signal(os.Interrupt, 90*time.Second); err != nil {
		t.Fatalf("the second job, drained: %v", err)
	}
	checkExact(t, conn, filesDir, time.Minute, posts, len(bad), func(table string) []sourceRecord {
		return kinesisRecords(t, kc, KinesisStream(prefix, table))
	})
	// After the drain every shard's checkpoint is its last record.
	for _, table := range []string{"pin", "geo", "user"} {
		stream := KinesisStream(prefix, table)
		_, recs := streamRecordsRaw(t, kc, stream)
		last := map[string]string{}
		for _, r := range recs {
			last[r.shard] = r.seq
		}
		for shard, seq := range last {
			var got string
			if err := conn.QueryRow(ctx, `SELECT sequence_number FROM `+kinesisio.CheckpointTable+` WHERE job = 'window-open' AND stream = $1 AND shard = $2`,
				stream, shard).Scan(&got); err != nil || got != seq {
				t.Errorf("%s/%s after the drain: checkpoint %q (%v), want its last record %s", stream, shard, got, err, seq)
			}
		}
	}
}

// kinesisRecords reads every record of a stream, straight from
// kinesalite, with its arrival time (the streaming job's event time).
func kinesisRecords(t *testing.T, kc *kinesis.Client, stream string) []sourceRecord {
	t.Helper()
	_, recs := streamRecordsRaw(t, kc, stream)
	out := make([]sourceRecord, len(recs))
	for i, r := range recs {
		out[i] = sourceRecord{value: r.data, time: r.arrival}
	}
	return out
}

type rawShardRecord struct {
	shard, seq string
	data       []byte
	arrival    time.Time
}

// streamRecordsRaw reads every record of every shard of a stream.
func streamRecordsRaw(t *testing.T, kc *kinesis.Client, stream string) ([]types.Shard, []rawShardRecord) {
	t.Helper()
	ctx := context.Background()
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []rawShardRecord
	for _, s := range out.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: s.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				recs = append(recs, rawShardRecord{shard: aws.ToString(s.ShardId), seq: aws.ToString(r.SequenceNumber),
					data: r.Data, arrival: aws.ToTime(r.ApproximateArrivalTimestamp)})
			}
			if len(res.Records) == 0 && s.SequenceNumberRange.EndingSequenceNumber == nil {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out.Shards, recs
}
