package streaming

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKinesisShardSplitWhileRunning runs `pinpipe stream` on Kinesis
// (kinesalite) while posts arrive through the gateway, and splits a shard
// of each of the three streams in mid-stream. Nothing may be lost or
// doubled: the job's windowed files, which append every record they get,
// hold exactly the records the streams hold, parents' and children's
// shards alike, and the tables one row per post.
func TestKinesisShardSplitWhileRunning(t *testing.T) {
	k := newKinesisJobTest(t, "split")
	kc, prefix, rows := k.kc, k.prefix, k.rows

	files := t.TempDir()
	job := testenv.Start(t, k.bin, kinesisJobEnv(k.endpoint),
		"stream", "--source=kinesis", "--topic-prefix="+prefix, "--sink="+k.dsn, "--files="+files, "--window=2s", "--start=earliest")

	const posts = 600
	sent := k.emulate(context.Background(), posts, 9, 40)
	waitRunning(t, job, "the job", 90*time.Second, "the job's first 100 posts", func() bool {
		return rows(postgres.StreamPinTable) >= 100
	})
	for _, table := range transforms.Tables {
		splitOpenShard(t, kc, KinesisStream(prefix, table))
	}
	requireMidStream(t, sent, "the splits", "a split")
	t.Logf("split every stream's first shard with %d of %d posts in %s", rows(postgres.StreamPinTable), posts, postgres.StreamPinTable)
	drainWhenComplete(t, job, "the job", sent, rows, posts, 0)

	for _, table := range transforms.Tables {
		stream := KinesisStream(prefix, table)
		inStream, fromChildren := streamInds(t, kc, stream)
		if fromChildren == 0 {
			t.Errorf("%s: no records in the split's children: the split was not in mid-stream", stream)
		}
		inFiles := fileInds(t, filepath.Join(files, table), table)
		if len(inStream) < posts {
			t.Errorf("%s holds %d records, want at least one per post (%d)", stream, len(inStream), posts)
		}
		if diff := cmp.Diff(inStream, inFiles); diff != "" {
			t.Errorf("%s: the job's files against the stream's records, by ind (-stream +files):\n%s", table, diff)
		}
		t.Logf("%s: %d records (%d from the split's children), as many in the files", stream, len(inStream), fromChildren)
	}
	for _, table := range []string{postgres.StreamPinTable, postgres.StreamGeoTable, postgres.StreamUserTable} {
		if got := rows(table); got != posts {
			t.Errorf("%s: %d rows, want %d", table, got, posts)
		}
	}
}

func waitStreamActive(t *testing.T, kc *kinesis.Client, stream string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(kc, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// streamInds reads every record of every shard of a stream, closed parents
// included, and returns the records' inds, sorted, and how many records
// the shards that have a parent hold.
func streamInds(t *testing.T, kc *kinesis.Client, stream string) (inds []int64, fromChildren int) {
	t.Helper()
	shards, recs := streamRecords(t, kc, stream)
	child := map[string]bool{}
	for _, s := range shards {
		child[aws.ToString(s.ShardId)] = s.ParentShardId != nil
	}
	for _, r := range recs {
		inds = append(inds, r.ind)
		if child[r.shard] {
			fromChildren++
		}
	}
	slices.Sort(inds)
	return inds, fromChildren
}

// recordInd is the post key of a raw record: "index" of a pin, "ind" of a
// geo or user record.
func recordInd(t *testing.T, data []byte) int64 {
	t.Helper()
	var r struct {
		Index *int64 `json:"index"`
		Ind   *int64 `json:"ind"`
	}
	if err := json.Unmarshal(data, &r); err != nil || (r.Index == nil && r.Ind == nil) {
		t.Fatalf("a record without its key (%v): %.200s", err, data)
	}
	if r.Index != nil {
		return *r.Index
	}
	return *r.Ind
}

// fileInds reads the inds of every row in the job's files of a table,
// sorted.
func fileInds(t *testing.T, dir, table string) []int64 {
	t.Helper()
	var inds []int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var row struct {
				Ind *int64 `json:"ind"`
			}
			if err := json.Unmarshal([]byte(line), &row); err != nil || row.Ind == nil {
				return fmt.Errorf("%s: a %s row without ind (%v): %.200s", path, table, err, line)
			}
			inds = append(inds, *row.Ind)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(inds)
	return inds
}
