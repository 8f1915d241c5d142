//lint:file-ignore SA1019 the test proxy wraps ReverseProxy.Director to strip Accept-Encoding

package streaming

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKinesisRestartFromCheckpoints kills `pinpipe stream --source=kinesis`
// with SIGKILL in mid-stream, after a shard of each stream was split, and
// starts it again with the defaults (--start=committed). The job's Kinesis
// calls go through a counting proxy, so what the second run reads is
// counted, not guessed:
//   - at the kill, every record at or before a recorded checkpoint is in the
//     tables (no position recorded before its outputs were written; a
//     reader that records positions at the end of its calls fails here);
//   - the second run gets from GetRecords the records after the checkpoints,
//     and at most one batch more, not the streams again; it opens no
//     iterator on a shard recorded closed and resumes each checkpointed
//     shard AFTER_SEQUENCE_NUMBER its checkpoint;
//   - a second job under the same --job-name is refused, naming the holder;
//   - a split after the restart is followed, and the tables end with one row
//     per post.
func TestKinesisRestartFromCheckpoints(t *testing.T) {
	k := newKinesisJobTest(t, "ckpt")
	ctx := context.Background()
	kc, prefix, conn, rows := k.kc, k.prefix, k.conn, k.rows
	proxy := newCountingProxy(t, k.endpoint)

	env := kinesisJobEnv(proxy.URL)
	args := []string{"stream", "--source=kinesis", "--topic-prefix=" + prefix, "--sink=" + k.dsn, "--window=2s"}
	first := testenv.Start(t, k.bin, env, args...)

	const posts = 1000
	sent := k.emulate(ctx, posts, 11, 40)
	waitRunning(t, first, "the first job", 90*time.Second, "the first job's first 100 posts", func() bool {
		return rows(postgres.StreamPinTable) >= 100
	})
	for _, table := range transforms.Tables {
		splitOpenShard(t, kc, KinesisStream(prefix, table))
	}
	// Killed once every stream's split parent is recorded closed and one
	// of its children has a recorded position.
	waitRunning(t, first, "the first job", 60*time.Second, "the split parents recorded closed, their children under way", func() bool {
		for _, table := range transforms.Tables {
			var closed, children int
			if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE closed), count(*) FILTER (WHERE NOT closed AND shard > 'shardId-000000000001' AND sequence_number <> '')
				FROM `+kinesisio.CheckpointTable+` WHERE job = 'pinpipe-stream' AND stream = $1`, KinesisStream(prefix, table)).Scan(&closed, &children); err != nil {
				return false
			}
			if closed == 0 || children == 0 {
				return false
			}
		}
		return true
	})
	first.Kill()
	requireMidStream(t, sent, "the kill", "a kill")
	// A transaction the dead job had sent is committed or rolled back by
	// now; nothing else writes until the restart.
	time.Sleep(time.Second)
	atKill := checkpoints(t, conn, prefix)
	tablesAtKill := map[string]map[int64]bool{}
	for table, name := range map[string]string{transforms.TablePin: postgres.StreamPinTable,
		transforms.TableGeo: postgres.StreamGeoTable, transforms.TableUser: postgres.StreamUserTable} {
		tablesAtKill[table] = tableInds(t, conn, name)
	}
	t.Logf("killed with %d of %d posts in %s; checkpoints: %v", len(tablesAtKill[transforms.TablePin]), posts, postgres.StreamPinTable, atKill)
	// Every record at or before a checkpoint is in the tables: no position
	// was recorded before its outputs were written.
	for _, table := range transforms.Tables {
		stream := KinesisStream(prefix, table)
		_, recs := streamRecords(t, kc, stream)
		covered, missing := 0, 0
		for _, r := range recs {
			if p, ok := atKill[stream][r.shard]; ok && (p.closed || (p.seq != "" && cmpSeq(r.seq, p.seq) <= 0)) {
				covered++
				if !tablesAtKill[table][r.ind] {
					missing++
				}
			}
		}
		if missing > 0 || covered == 0 {
			t.Errorf("%s: %d of the %d records at or before the checkpoints were not in the tables at the kill: positions recorded before their outputs",
				stream, missing, covered)
		}
	}
	firstRun := proxy.reset()

	second := testenv.Start(t, k.bin, env, args...)
	// The same job name again: refused while the second run holds the lease.
	testenv.WaitFor(t, 30*time.Second, "the second job's lease", func() bool {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1",
			"pinpipe kinesis job=pinpipe-stream host=% pid="+strconv.Itoa(second.PID())).Scan(&n)
		return err == nil && n == 1
	})
	third := testenv.Start(t, k.bin, env, args...)
	testenv.WaitFor(t, 60*time.Second, "the third job to be refused", func() bool {
		done, _ := third.Exited()
		return done
	})
	if _, err := third.Exited(); err == nil || !strings.Contains(third.Stderr(), `is already reading stream streaming-`+prefix) ||
		!strings.Contains(third.Stderr(), "pinpipe kinesis job=pinpipe-stream host=") ||
		!strings.Contains(third.Stderr(), "pid="+strconv.Itoa(second.PID())) {
		t.Errorf("a second job under the same name: exit %v, stderr:\n%s", err, third.Stderr())
	}
	// A split after the restart, in mid-stream.
	waitRunning(t, second, "the second job", 60*time.Second, "the second job's first new posts", func() bool {
		return rows(postgres.StreamPinTable) >= len(tablesAtKill[transforms.TablePin])+50
	})
	for _, table := range transforms.Tables {
		splitOpenShard(t, kc, KinesisStream(prefix, table))
	}
	requireMidStream(t, sent, "the second split", "a split")
	drainWhenComplete(t, second, "the second job", sent, rows, posts, 0)
	secondRun := proxy.reset()

	var afterCheckpoints, total int
	for _, table := range transforms.Tables {
		stream := KinesisStream(prefix, table)
		shards, recs := streamRecords(t, kc, stream)
		total += len(recs)
		splits := 0
		for _, s := range shards {
			if s.ParentShardId != nil {
				splits++
			}
		}
		if splits != 4 {
			t.Errorf("%s: %d child shards, want 4 (two splits)", stream, splits)
		}
		after := 0
		for _, r := range recs {
			if p, ok := atKill[stream][r.shard]; !ok || !(p.closed || (p.seq != "" && cmpSeq(r.seq, p.seq) <= 0)) {
				after++
			}
		}
		afterCheckpoints += after
		t.Logf("%s: %d records, %d after the checkpoints at the kill", stream, len(recs), after)

		// The second run opened no shard recorded closed, and resumed each
		// checkpointed one after its checkpoint.
		for shard, p := range atKill[stream] {
			opens := secondRun.opens[stream+"/"+shard]
			switch {
			case p.closed && len(opens) > 0:
				t.Errorf("%s/%s was recorded closed, and the second run opened it: %v", stream, shard, opens)
			case !p.closed && p.seq != "" && (len(opens) == 0 || opens[0] != "AFTER_SEQUENCE_NUMBER "+p.seq):
				t.Errorf("%s/%s: the second run opened it at %v, want AFTER_SEQUENCE_NUMBER %s first", stream, shard, opens, p.seq)
			}
		}
		// After the drain every shard's position is its last record, and
		// every closed shard is recorded closed.
		final := checkpoints(t, conn, prefix)[stream]
		last := map[string]string{}
		for _, r := range recs {
			last[r.shard] = r.seq
		}
		for _, s := range shards {
			id := aws.ToString(s.ShardId)
			closed := s.SequenceNumberRange.EndingSequenceNumber != nil
			if got := final[id]; got.closed != closed || (last[id] != "" && got.seq != last[id]) {
				t.Errorf("%s/%s after the drain: recorded %+v, want closed=%v after %q", stream, id, got, closed, last[id])
			}
		}
	}
	t.Logf("GetRecords: the first run got %d records in %d calls; the second %d records in %d calls (largest batch %d); "+
		"%d of the %d records were after the checkpoints at the kill", firstRun.records, firstRun.calls,
		secondRun.records, secondRun.calls, secondRun.maxBatch, afterCheckpoints, total)
	if secondRun.records < afterCheckpoints {
		t.Errorf("the second run got %d records, fewer than the %d after the checkpoints", secondRun.records, afterCheckpoints)
	}
	if secondRun.records > afterCheckpoints+secondRun.maxBatch {
		t.Errorf("the second run got %d records, more than the %d after the checkpoints plus one batch (%d)", secondRun.records, afterCheckpoints, secondRun.maxBatch)
	}
	if total-afterCheckpoints < 300 {
		t.Errorf("only %d of %d records were before the checkpoints at the kill: the restart shows little", total-afterCheckpoints, total)
	}

	for _, table := range []string{postgres.StreamPinTable, postgres.StreamGeoTable, postgres.StreamUserTable} {
		inds := tableInds(t, conn, table)
		if len(inds) != posts || rows(table) != posts {
			t.Errorf("%s: %d rows, %d distinct inds, want %d", table, rows(table), len(inds), posts)
		}
		for i := range int64(posts) {
			if !inds[i] {
				t.Errorf("%s: post %d missing", table, i)
				break
			}
		}
	}
}

type position struct {
	seq    string
	closed bool
}

// checkpoints reads the default job's checkpoint table: stream -> shard ->
// position.
func checkpoints(t *testing.T, conn *pgx.Conn, prefix string) map[string]map[string]position {
	t.Helper()
	out := map[string]map[string]position{}
	q, err := conn.Query(context.Background(), `SELECT stream, shard, sequence_number, closed FROM `+kinesisio.CheckpointTable+
		` WHERE job = 'pinpipe-stream' AND stream LIKE $1`, "streaming-"+prefix+"-%")
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var stream, shard string
		var p position
		if err := q.Scan(&stream, &shard, &p.seq, &p.closed); err != nil {
			t.Fatal(err)
		}
		if out[stream] == nil {
			out[stream] = map[string]position{}
		}
		out[stream][shard] = p
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tableInds(t *testing.T, conn *pgx.Conn, table string) map[int64]bool {
	t.Helper()
	q, err := conn.Query(context.Background(), "SELECT ind FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	inds := map[int64]bool{}
	for q.Next() {
		var ind int64
		if err := q.Scan(&ind); err != nil {
			t.Fatal(err)
		}
		inds[ind] = true
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return inds
}

type shardRecord struct {
	shard, seq string
	ind        int64
}

// streamRecords reads every record of every shard of a stream, straight
// from kinesalite (streamRecordsRaw), with its ind.
func streamRecords(t *testing.T, kc *kinesis.Client, stream string) ([]types.Shard, []shardRecord) {
	t.Helper()
	shards, raw := streamRecordsRaw(t, kc, stream)
	recs := make([]shardRecord, len(raw))
	for i, r := range raw {
		recs[i] = shardRecord{shard: r.shard, seq: r.seq, ind: recordInd(t, r.data)}
	}
	return shards, recs
}

// cmpSeq compares two Kinesis sequence numbers (decimal strings).
func cmpSeq(a, b string) int {
	x, _ := new(big.Int).SetString(a, 10)
	y, _ := new(big.Int).SetString(b, 10)
	return x.Cmp(y)
}

// splitOpenShard splits the stream's first open shard in the middle of its
// hash range and waits for the stream to be active again.
func splitOpenShard(t *testing.T, kc *kinesis.Client, stream string) {
	t.Helper()
	ctx := context.Background()
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: s.ShardId,
			NewStartingHashKey: aws.String(mid.String())}); err != nil {
			t.Fatalf("SplitShard %s: %v", stream, err)
		}
		testenv.WaitFor(t, 30*time.Second, stream+" active after the split", func() bool {
			d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
			return err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
		})
		return
	}
	t.Fatalf("%s has no open shard", stream)
}

// countingProxy passes the job's Kinesis calls to kinesalite and counts
// what GetRecords returned, and where GetShardIterator opened each shard.
type countingProxy struct {
	URL string
	mu  sync.Mutex
	c   proxyCounts
}

type proxyCounts struct {
	calls, records, maxBatch int
	opens                    map[string][]string // stream/shard -> "TYPE [sequence number]" in call order
}

func newCountingProxy(t *testing.T, endpoint string) *countingProxy {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{c: proxyCounts{opens: map[string][]string{}}}
	rp := httputil.NewSingleHostReverseProxy(target)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		r.Header.Del("Accept-Encoding") // bodies in the clear, to count them
	}
	rp.ModifyResponse = func(res *http.Response) error {
		if !strings.HasSuffix(res.Request.Header.Get("X-Amz-Target"), ".GetRecords") || res.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		var out struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &out); err != nil {
			t.Errorf("a GetRecords answer that is not JSON: %v", err)
			return nil
		}
		p.mu.Lock()
		p.c.calls++
		p.c.records += len(out.Records)
		p.c.maxBatch = max(p.c.maxBatch, len(out.Records))
		p.mu.Unlock()
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetShardIterator") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var in struct{ StreamName, ShardId, ShardIteratorType, StartingSequenceNumber string }
			if json.Unmarshal(body, &in) == nil {
				p.mu.Lock()
				k := in.StreamName + "/" + in.ShardId
				p.c.opens[k] = append(p.c.opens[k], strings.TrimSpace(in.ShardIteratorType+" "+in.StartingSequenceNumber))
				p.mu.Unlock()
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// reset returns the counts so far and starts new ones.
func (p *countingProxy) reset() proxyCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.c
	p.c = proxyCounts{opens: map[string][]string{}}
	return c
}
