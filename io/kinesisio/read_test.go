package kinesisio

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Pipelines on prism against kinesalite. ReadUntil makes each read finite,
// so that the pipelines end by themselves.

// startRead builds Read -> collect and runs it in the background; wait
// returns what was read.
func startRead(t *testing.T, stream string, opts ...ReadOptionFn) (wait func() []Record) {
	t.Helper()
	key := t.Name()
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &collectFn{Key: key}, Read(s, stream, opts...))
	done := make(chan struct{})
	var failed error
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := beam.Run(ctx, testRunner(), p); err != nil {
			failed = err
		}
	}()
	return func() []Record {
		t.Helper()
		<-done
		if failed != nil {
			t.Fatalf("pipeline failed: %v", failed)
		}
		return takeCollected(key)
	}
}

// checkExactlyOnce checks that got holds each put record once, with the
// shard and sequence number Kinesis gave it.
func checkExactlyOnce(t *testing.T, stream string, put []putResult, got []Record) {
	t.Helper()
	want := map[string]putResult{}
	for _, p := range put {
		want[p.Data] = p
	}
	seen := map[string]int{}
	for _, r := range got {
		d := string(r.Data)
		seen[d]++
		p, ok := want[d]
		switch {
		case !ok:
			t.Errorf("record %q was never put", d)
		case seen[d] > 1:
			t.Errorf("record %q read %d times", d, seen[d])
		case r.ShardID != p.Shard || r.SequenceNumber != p.Seq || r.PartitionKey != p.Key || r.Stream != stream || r.ArrivalTime.IsZero():
			t.Errorf("record %q read as %+v, put to %s as %s", d, r, p.Shard, p.Seq)
		}
	}
	missing := 0
	for d := range want {
		if seen[d] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("record %q was not read", d)
			}
		}
	}
	if missing > 0 || len(got) != len(put) {
		t.Fatalf("read %d records for %d put, %d missing", len(got), len(put), missing)
	}
}

// checkShardOrder checks that each shard's records came in sequence order.
func checkShardOrder(t *testing.T, got []Record) {
	t.Helper()
	last := map[string]string{}
	for _, r := range got {
		if l, ok := last[r.ShardID]; ok && compareSeq(r.SequenceNumber, l) <= 0 {
			t.Errorf("shard %s: %s came after %s", r.ShardID, r.SequenceNumber, l)
		}
		last[r.ShardID] = r.SequenceNumber
	}
}

func TestReadTrimHorizonExactlyOnce(t *testing.T) {
	ep := kinesaliteEndpoint(t)
	c := testClient(ep)
	for _, tc := range []struct {
		name  string
		cache bool
	}{{"iterator-cache", true}, {"resume-from-checkpoint-only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cacheIterators = tc.cache
			t.Cleanup(func() { cacheIterators = true })
			stream := streamName(t)
			createStream(t, c, stream, 4)
			put := putRecords(t, c, stream, entries("r", 0, 2000))
			until := time.Now().Add(time.Millisecond)

			// Small GetRecords calls: many calls, checkpoints and resumes.
			p, s := beam.NewPipelineWithRoot()
			recs := Read(s, stream, ReadEndpoint(ep), ReadUntil(until), ReadMaxDelay(100*time.Millisecond), ReadMaxRecordsPerCall(97))
			beam.ParDo0(s, &collectFn{Key: t.Name()}, recs)
			runPipeline(t, p, 60*time.Second)

			got := takeCollected(t.Name())
			checkExactlyOnce(t, stream, put, got)
			checkShardOrder(t, got)
		})
	}
}

func TestReadLatest(t *testing.T) {
	if testing.Short() {
		t.Skip("reads for several seconds while writing; not with -short")
	}
	ep := kinesaliteEndpoint(t)
	c := testClient(ep)
	stream := streamName(t)
	createStream(t, c, stream, 3)
	old := putRecords(t, c, stream, entries("old", 0, 300))

	t0 := time.Now()
	wait := startRead(t, stream, ReadEndpoint(ep), ReadLatest(), ReadUntil(t0.Add(6*time.Second)), ReadMaxDelay(200*time.Millisecond))
	// Records keep coming from before the readers open their shards until
	// after: each shard must give a gapless tail of them.
	var put []putResult
	for i := 0; time.Since(t0) < 4*time.Second; i++ {
		put = append(put, putRecords(t, c, stream, entries("new", i*10, 10))...)
		time.Sleep(100 * time.Millisecond)
	}
	got := wait()

	for _, r := range got {
		if slices.ContainsFunc(old, func(p putResult) bool { return p.Data == string(r.Data) }) {
			t.Fatalf("LATEST read %q, put before the pipeline started", r.Data)
		}
	}
	byShard := map[string][]putResult{}
	for _, p := range put {
		byShard[p.Shard] = append(byShard[p.Shard], p)
	}
	gotByShard := map[string][]string{}
	for _, r := range got {
		gotByShard[r.ShardID] = append(gotByShard[r.ShardID], string(r.Data))
	}
	for shard, ps := range byShard {
		sort.Slice(ps, func(i, j int) bool { return compareSeq(ps[i].Seq, ps[j].Seq) < 0 })
		g := gotByShard[shard]
		if len(g) == 0 {
			t.Errorf("shard %s: nothing read of the %d records put while the pipeline ran", shard, len(ps))
			continue
		}
		var tail []string
		for _, p := range ps[len(ps)-len(g):] {
			tail = append(tail, p.Data)
		}
		if !slices.Equal(tail, g) {
			t.Errorf("shard %s: read %d records that are not the tail of what was put, in order: first %q", shard, len(g), g[0])
		}
	}
	t.Logf("read %d of the %d records put while the pipeline started and ran", len(got), len(put))
}

func TestReadAtTimestamp(t *testing.T) {
	ep := kinesaliteEndpoint(t)
	c := testClient(ep)
	stream := streamName(t)
	createStream(t, c, stream, 3)
	putRecords(t, c, stream, entries("before", 0, 200))
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	// The later records go to two shards of three: kinesalite never answers
	// an AT_TIMESTAMP request on the third, and the reader must cope.
	shards := listTestShards(t, c, stream)
	var later []types.PutRecordsRequestEntry
	for i, e := range entries("after", 0, 200) {
		e.ExplicitHashKey = shards[i%2].HashKeyRange.StartingHashKey
		later = append(later, e)
	}
	put := putRecords(t, c, stream, later)
	until := time.Now().Add(time.Millisecond)

	wait := startRead(t, stream, ReadEndpoint(ep), ReadAtTimestamp(start), ReadUntil(until), ReadMaxDelay(100*time.Millisecond))
	checkExactlyOnce(t, stream, put, wait())
}

func listTestShards(t *testing.T, c *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	out, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Shards
}

func TestReadShardSplitAndMergeWhileReading(t *testing.T) {
	if testing.Short() {
		t.Skip("reads for several seconds while writing; not with -short")
	}
	ep := kinesaliteEndpoint(t)
	c := testClient(ep)
	ctx := context.Background()
	stream := streamName(t)
	createStream(t, c, stream, 2)

	t0 := time.Now()
	until := t0.Add(12 * time.Second)
	wait := startRead(t, stream, ReadEndpoint(ep), ReadUntil(until), ReadMaxDelay(200*time.Millisecond), ReadPollInterval(100*time.Millisecond))

	put := putRecords(t, c, stream, entries("p1", 0, 300))
	// Wait for the pipeline to be reading.
	for collectedCount(t.Name()) == 0 {
		if time.Since(t0) > 15*time.Second {
			t.Fatal("the pipeline read nothing within 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Split shard 0 in the middle of its hash range.
	shards := listTestShards(t, c, stream)
	lo, _ := new(big.Int).SetString(aws.ToString(shards[0].HashKeyRange.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(shards[0].HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: shards[0].ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	put = append(put, putRecords(t, c, stream, entries("p2", 0, 150))...)
	waitActive(t, c, stream)
	put = append(put, putRecords(t, c, stream, entries("p2", 150, 150))...)

	// Merge the split's upper child with shard 1, its neighbour.
	var upper string
	for _, s := range listTestShards(t, c, stream) {
		if aws.ToString(s.ParentShardId) == aws.ToString(shards[0].ShardId) && aws.ToString(s.HashKeyRange.StartingHashKey) == mid.String() {
			upper = aws.ToString(s.ShardId)
		}
	}
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: aws.String(upper), AdjacentShardToMerge: shards[1].ShardId}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	waitActive(t, c, stream)
	put = append(put, putRecords(t, c, stream, entries("p3", 0, 300))...)
	if time.Now().After(until.Add(-time.Second)) {
		t.Fatalf("the writes took until %v, too close to the read's end: the machine is too slow for this test", time.Since(t0))
	}

	got := wait()
	checkExactlyOnce(t, stream, put, got)
	checkShardOrder(t, got)

	// A child is read only after its parent was drained: in the order the
	// records reached the pipeline, the parent's last one comes before the
	// children's first.
	final := listTestShards(t, c, stream)
	first, last := map[string]int{}, map[string]int{}
	for i, r := range got {
		if _, ok := first[r.ShardID]; !ok {
			first[r.ShardID] = i
		}
		last[r.ShardID] = i
	}
	children := 0
	for _, s := range final {
		parent := aws.ToString(s.ParentShardId)
		id := aws.ToString(s.ShardId)
		if parent == "" {
			continue
		}
		f, ok := first[id]
		if !ok {
			continue
		}
		children++
		if l, ok := last[parent]; ok && l > f {
			t.Errorf("child %s's first record (#%d) came before its parent %s's last (#%d)", id, f, parent, l)
		}
	}
	if children < 3 {
		t.Errorf("records read from %d child shards, want 3 (two from the split, one from the merge)", children)
	}
	t.Logf("%d records over %d shards; shards: %s", len(got), len(first), shardSummary(final))
}

func shardSummary(shards []types.Shard) string {
	var s string
	for _, sh := range shards {
		s += fmt.Sprintf("[%s parent=%s adjacent=%s closed=%v] ", aws.ToString(sh.ShardId), aws.ToString(sh.ParentShardId),
			aws.ToString(sh.AdjacentParentShardId), sh.SequenceNumberRange.EndingSequenceNumber != nil)
	}
	return s
}
