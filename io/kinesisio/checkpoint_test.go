package kinesisio

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/pinpipe/pinpipe/io/positions"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// The checkpoint store and the lease, against the test PostgreSQL.

func TestCheckpointStore(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	// Several workers open the store at once: the table is created once.
	stores := make([]*checkpointStore, 4)
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = openCheckpoints(ctx, checkpointConfig{DSN: dsn, Job: "job-a"}, "test")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		defer stores[i].close()
	}
	s := stores[0]
	other, err := openCheckpoints(ctx, checkpointConfig{DSN: dsn, Job: "job-b"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()

	save := func(s *checkpointStore, stream string, pos map[string]shardPosition) {
		t.Helper()
		if err := s.save(ctx, stream, pos); err != nil {
			t.Fatal(err)
		}
	}
	load := func(s *checkpointStore, stream string) map[string]shardPosition {
		t.Helper()
		m, err := s.load(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if got := load(s, "st"); len(got) != 0 {
		t.Fatalf("a new store holds %v", got)
	}
	save(s, "st", map[string]shardPosition{"shard-0": {Seq: "49590338271490256608559692538361571095921575989136588898"}, "shard-1": {Seq: "900"}})
	save(other, "st", map[string]shardPosition{"shard-0": {Seq: "5"}})
	save(s, "other-stream", map[string]shardPosition{"shard-0": {Seq: "7"}})
	// Forward moves; backward ones (a shorter number is smaller) do not.
	save(s, "st", map[string]shardPosition{"shard-0": {Seq: "9999"}, "shard-1": {Seq: "1000"}})
	// A closed shard stays closed, with its last position.
	save(s, "st", map[string]shardPosition{"shard-2": {Seq: "300", Closed: true}})
	save(s, "st", map[string]shardPosition{"shard-2": {Seq: "200"}})
	// An empty closed shard.
	save(s, "st", map[string]shardPosition{"shard-3": {Closed: true}})

	want := map[string]shardPosition{
		"shard-0": {Seq: "49590338271490256608559692538361571095921575989136588898"},
		"shard-1": {Seq: "1000"},
		"shard-2": {Seq: "300", Closed: true},
		"shard-3": {Closed: true},
	}
	if diff := cmp.Diff(want, load(stores[3], "st")); diff != "" {
		t.Errorf("job-a's positions in st (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]shardPosition{"shard-0": {Seq: "5"}}, load(other, "st")); diff != "" {
		t.Errorf("job-b's positions in st (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]shardPosition{"shard-0": {Seq: "7"}}, load(s, "other-stream")); diff != "" {
		t.Errorf("job-a's positions in other-stream (-want +got):\n%s", diff)
	}
	var updated time.Time
	if err := s.conn.QueryRow(ctx, "SELECT max(updated_at) FROM "+CheckpointTable).Scan(&updated); err != nil || time.Since(updated) > time.Minute {
		t.Errorf("updated_at %v (%v)", updated, err)
	}
}

func TestLease(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	first, err := AcquireLease(ctx, dsn, "orders", []string{"s-pin", "s-geo"})
	if err != nil {
		t.Fatal(err)
	}
	// Another job name, or other streams, are no conflict.
	l, err := AcquireLease(ctx, dsn, "reports", []string{"s-pin"})
	if err != nil {
		t.Fatalf("another job: %v", err)
	}
	l.Close()
	l, err = AcquireLease(ctx, dsn, "orders", []string{"s-user"})
	if err != nil {
		t.Fatalf("another stream: %v", err)
	}
	l.Close()

	_, err = AcquireLease(ctx, dsn, "orders", []string{"s-user", "s-geo"})
	if err == nil {
		t.Fatal("a second job with the same name took the lease")
	}
	for _, want := range []string{`job "orders" is already reading stream s-geo`, `pinpipe kinesis job=orders`, "backend pid", "--job-name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	// The refused attempt let go of what it had taken (s-user).
	l, err = AcquireLease(ctx, dsn, "orders", []string{"s-user"})
	if err != nil {
		t.Fatalf("s-user after a refused attempt: %v", err)
	}
	l.Close()
	if err := first.Check(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	l, err = AcquireLease(ctx, dsn, "orders", []string{"s-pin", "s-geo"})
	if err != nil {
		t.Fatalf("after the first job let go: %v", err)
	}
	l.Close()
}

func TestRootsFromCheckpoints(t *testing.T) {
	shard := func(id, parent, adjacent string) types.Shard {
		s := types.Shard{ShardId: aws.String(id)}
		if parent != "" {
			s.ParentShardId = aws.String(parent)
		}
		if adjacent != "" {
			s.AdjacentParentShardId = aws.String(adjacent)
		}
		return s
	}
	shards := []types.Shard{
		shard("s0", "expired", ""), // split into s2 and s3
		shard("s1", "", ""),
		shard("s2", "s0", ""),
		shard("s3", "s0", ""),
		shard("s5", "", ""), // merged with s6 into s7
		shard("s6", "", ""),
		shard("s7", "s5", "s6"),
		shard("s8", "", ""), // split into s9; a LATEST start skipped s8
		shard("s9", "s8", ""),
		shard("s10", "", ""), // split into s11, not finished
		shard("s11", "s10", ""),
		shard("s12", "", ""), // s12, s13 merged into s14; s13 finished
		shard("s13", "", ""),
		shard("s14", "s12", "s13"),
	}
	pos := map[string]shardPosition{
		"s0":  {Seq: "10", Closed: true},
		"s2":  {Seq: "20"},
		"s5":  {Closed: true},
		"s9":  {Seq: "90"},
		"s10": {Seq: "100"},
		"s13": {Seq: "130", Closed: true},
	}
	want := []rootShard{
		{ShardID: "s1"},                // no position: TRIM_HORIZON
		{ShardID: "s2", LastSeq: "20"}, // its parent is closed: after its checkpoint
		{ShardID: "s3"},                // its parent is closed: from its beginning
		{ShardID: "s6"},                // the adjacent parent, unfinished
		{ShardID: "s7"},                // its parent is closed
		{ShardID: "s9", LastSeq: "90"}, // s8 skipped: its child has a position
		{ShardID: "s10", LastSeq: "100"},
		{ShardID: "s12"}, // s14 waits for it: s12's element takes it on
	}
	if diff := cmp.Diff(want, rootsFromCheckpoints(shards, pos, false)); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	// With durable positions, a child's position finishes only the parents
	// the job never read: s10's last records may still wait for a window
	// when s11's first ones are written, so s10 is read again, and s11
	// after it; s8 (no row) is still skipped.
	durable := map[string]shardPosition{"s10": {Seq: "100"}, "s11": {Seq: "110"}, "s9": {Seq: "90"}}
	var got []string
	for _, r := range rootsFromCheckpoints(shards, durable, true) {
		got = append(got, r.ShardID+"@"+r.LastSeq)
	}
	if want := []string{"s0@", "s1@", "s5@", "s6@", "s9@90", "s10@100", "s12@", "s13@"}; !slices.Equal(got, want) {
		t.Errorf("durable roots: %v, want %v", got, want)
	}
	// Without positions the roots are rootShards' from TRIM_HORIZON.
	var ids []string
	for _, r := range rootsFromCheckpoints(shards, nil, false) {
		ids = append(ids, r.ShardID)
	}
	if diff := cmp.Diff(rootShards(shards, startTrimHorizon), ids); diff != "" {
		t.Errorf("roots without positions (-rootShards +got):\n%s", diff)
	}
}

// TestTrackerKeepsFinishedShards: with a checkpoint store, a shard that
// leaves the restriction stays in Finished, through checkpoints and the
// coder, until claimRecorded; and only the end-of-call checkpoint splits.
func TestTrackerKeepsFinishedShards(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{{ShardID: "a", Start: startPos{Kind: startTrimHorizon}}, {ShardID: "b", Start: startPos{Kind: startTrimHorizon}}}})
	tr.keepFinished, tr.checkpointOnly = true, true
	if !tr.TryClaim(claimRecord{ShardID: "a", Seq: "5", Arrival: 1}) || !tr.TryClaim(claimEnd{ShardID: "a", Children: []string{"c"}}) ||
		!tr.TryClaim(claimRecord{ShardID: "b", Seq: "7", Arrival: 1}) || !tr.TryClaim(claimStop{ShardID: "b"}) {
		t.Fatalf("claims failed: %v", tr.GetError())
	}
	if p, r, _ := tr.TrySplit(0.5); r != nil || p == nil {
		t.Errorf("a dynamic split was made: %v / %v", p, r)
	}
	tr.processing = true
	if _, r, _ := tr.TrySplit(0); r != nil {
		t.Errorf("a split during a call was made: %v", r)
	}
	tr.processing = false
	_, res, err := tr.TrySplit(0)
	if err != nil || res == nil {
		t.Fatalf("checkpoint: %v, %v", res, err)
	}
	got, err := decodeRestriction(encodeRestriction(res.(restriction)))
	if err != nil {
		t.Fatal(err)
	}
	want := restriction{
		Shards:   []shardCheckpoint{{ShardID: "c", Start: startPos{Kind: startTrimHorizon}, Watermark: 1}},
		Finished: []finishedShard{{ShardID: "a", LastSeq: "5", Closed: true}, {ShardID: "b", LastSeq: "7"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(restriction{})); diff != "" {
		t.Fatalf("residual (-want +got):\n%s", diff)
	}
	tr = newTracker(got)
	tr.keepFinished = true
	tr.TryClaim(claimStop{ShardID: "c"})
	if tr.IsDone() {
		t.Fatal("done before the finished shards were recorded")
	}
	tr.TryClaim(claimRecorded{})
	if !tr.IsDone() || len(tr.rest.Finished) != 0 {
		t.Fatalf("after claimRecorded: %v", tr.rest)
	}
	// A version 1 encoding (before Finished) still decodes.
	v1 := encodeRestriction(restriction{Shards: []shardCheckpoint{{ShardID: "x", LastSeq: "9"}}})
	v1 = append([]byte{1}, v1[1:len(v1)-1]...) // version 1, no Finished count
	if r, err := decodeRestriction(v1); err != nil || r.Shards[0].LastSeq != "9" {
		t.Errorf("version 1: %v, %v", r, err)
	}
}

// TestReadRecordsOnlyTheNextCall drives the reader with a checkpoint store:
// nothing a call reads is recorded before the runner calls the restriction
// again (after the bundle is durable), and then exactly the last record
// the previous calls emitted; a closed shard is recorded as read to its end
// on the call after its end.
func TestReadRecordsOnlyTheNextCall(t *testing.T) {
	noIteratorCache(t)
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	f := newFake("s0")
	past := time.Now().Add(-time.Minute)
	f.put("s0", past, "r0", "r1", "r2", "r3", "r4")
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	fn.Checkpoints = checkpointConfig{DSN: dsn, Job: "unit"}
	store, err := openCheckpoints(ctx, fn.Checkpoints, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer store.close()
	defer fn.Teardown()
	recorded := func() map[string]shardPosition {
		t.Helper()
		m, err := store.load(ctx, fn.Stream)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The runner's loop (see drive), checking the table before each call:
	// it holds what the calls before the previous one emitted, never what
	// the previous one did.
	var out []Record
	emit := func(_ beam.EventTime, r Record) { out = append(out, r) }
	we := newWatermarkEstimator(math.MinInt64 / 2)
	rest := fn.CreateInitialRestriction(rootShard{ShardID: "s0"})
	durable := "" // the last record emitted by the calls before the previous one
	previous := ""
	for call := 0; ; call++ {
		if call > 10 {
			t.Fatalf("not done after 10 calls: %v", rest)
		}
		got := recorded()
		latest := got["s0"].Seq
		if s := got["s2"].Seq; s != "" && compareSeq(s, latest) > 0 {
			latest = s
		}
		if want := durable; latest != want {
			t.Errorf("before call %d: recorded %+v, want the last record of the calls before the previous one (%q)", call, got, want)
		}
		durable = previous
		rt := fn.CreateTracker(rest)
		pc, err := fn.ProcessElement(ctx, we, rt, rootShard{ShardID: "s0"}, emit)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 0 {
			previous = out[len(out)-1].SequenceNumber
		}
		if !pc.ShouldResume() {
			break
		}
		_, res, err := rt.TrySplit(0)
		if err != nil {
			t.Fatal(err)
		}
		if rest, err = decodeRestriction(encodeRestriction(res.(restriction))); err != nil {
			t.Fatal(err)
		}
		if call == 1 {
			f.addChild("s2", "s0", "")
			f.put("s2", past.Add(time.Second), "c0", "c1")
		}
		if call == 3 {
			fn.UntilMillis = time.Now().UnixMilli() // the child finishes once caught up
		}
		time.Sleep(checkpointEvery) // past the recording interval
	}
	if diff := cmp.Diff([]string{"r0", "r1", "r2", "r3", "r4", "c0", "c1"}, data(out)); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	final := recorded()
	if !final["s0"].Closed || final["s0"].Seq != out[4].SequenceNumber || final["s2"].Seq != out[6].SequenceNumber || final["s2"].Closed {
		t.Errorf("at the end: %+v, want s0 closed after r4 (%s), s2 open after c1 (%s)", final, out[4].SequenceNumber, out[6].SequenceNumber)
	}
}

// TestRecordSpans: the sinks' spans move a shard's checkpoint only along
// an unbroken run from the shard's start through the old checkpoint; spans
// beyond a gap wait in SpanTable until the gap is filled; a shard whose
// end the reader saw is closed once its checkpoint reaches its last
// record, and only then.
func TestRecordSpans(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	if err := CreatePositionTables(ctx, conn); err != nil {
		t.Fatal(err)
	}
	const big = "49590338271490256608559692538361571095921575989136588898"
	span := func(from, to string) positions.Span {
		return positions.Span{Stream: "st", Part: "shardId-000000000001", From: from, To: to}
	}
	record := func(spans ...positions.Span) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return RecordSpans(ctx, tx, "j", spans) }); err != nil {
			t.Fatal(err)
		}
	}
	end := func(last string) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return recordEnd(ctx, tx, "j", "st", "shardId-000000000001", last) }); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		t.Helper()
		var seq string
		var closed bool
		if err := conn.QueryRow(ctx, `SELECT sequence_number, closed FROM `+CheckpointTable+` WHERE job = 'j' AND shard = 'shardId-000000000001'`).Scan(&seq, &closed); err != nil {
			t.Fatal(err)
		}
		var waiting []string
		rows, _ := conn.Query(ctx, `SELECT from_seq || '-' || to_seq FROM `+SpanTable+` WHERE job = 'j' ORDER BY from_seq::numeric`)
		for rows.Next() {
			var w string
			rows.Scan(&w)
			waiting = append(waiting, w)
		}
		return fmt.Sprintf("seq=%s closed=%v waiting=%v", seq, closed, waiting)
	}
	check := func(want string) {
		t.Helper()
		if got := state(); got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	resume := func(want string) {
		t.Helper()
		at, ok, err := DurableStart(ctx, conn, "j", "st", "shardId-000000000001")
		if err != nil || (want == "") == ok || at != want {
			t.Errorf("DurableStart = %q, %v, %v; want %q", at, ok, err, want)
		}
	}
	resume("")                 // no checkpoint yet
	record(span("100", "200")) // ahead of a gap: the shard's first records wait for their window
	check("seq= closed=false waiting=[100-200]")
	resume("") // only spans beyond a gap: the shard is read from its start again
	record(span("0", "50"))
	check("seq=50 closed=false waiting=[100-200]")
	resume("51")
	end("300") // the reader reached the shard's end after record 300
	check("seq=50 closed=false waiting=[100-200]")
	record(span("51", "99"))
	check("seq=200 closed=false waiting=[]")
	record(span("150", "160")) // re-read after a restart: nothing moves back
	check("seq=200 closed=false waiting=[]")
	record(span("201", big))
	check("seq=" + big + " closed=true waiting=[]")
	resume("49590338271490256608559692538361571095921575989136588899")
}
