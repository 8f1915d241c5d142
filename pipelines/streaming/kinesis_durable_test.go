package streaming

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

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
	k := newKinesisJobTest(t, "kw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc, prefix, rows := k.kc, k.prefix, k.rows

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
	startEarlyInWindow(t, time.Minute)
	putBad()
	const posts = 900 // 20 s of posts
	sent := k.emulate(ctx, posts, 5, 45)

	filesDir := t.TempDir()
	env := kinesisJobEnv(k.endpoint)
	args := []string{"stream", "--source=kinesis", "--topic-prefix=" + prefix, "--sink=" + k.dsn, "--files=" + filesDir,
		"--window=1m", "--job-name=window-open"}
	first := testenv.Start(t, k.bin, env, args...)
	waitRunning(t, first, "the first job", 90*time.Second, "the first job's first 60 posts", func() bool {
		return rows(postgres.StreamPinTable) >= 60
	})
	first.Kill()
	time.Sleep(time.Second) // a transaction the dead job had sent is over by now
	atKill := rows(postgres.StreamPinTable)
	requireNothingFired(t, rows, kinesisio.CheckpointTable+" WHERE job = 'window-open' AND sequence_number <> ''",
		kinesisio.SpanTable+" WHERE job = 'window-open'")
	requireMidStream(t, sent, "the job was killed", "a kill")
	t.Logf("killed with %d of %d posts in %s, no window fired", atKill, posts, postgres.StreamPinTable)

	second := testenv.Start(t, k.bin, env, args...)
	putBad()
	drainWhenComplete(t, second, "the second job", sent, rows, posts, len(bad))
	checkExact(t, k.conn, filesDir, time.Minute, posts, len(bad), func(table string) []sourceRecord {
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
			if err := k.conn.QueryRow(ctx, `SELECT sequence_number FROM `+kinesisio.CheckpointTable+` WHERE job = 'window-open' AND stream = $1 AND shard = $2`,
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
