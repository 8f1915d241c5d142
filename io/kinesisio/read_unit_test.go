package kinesisio

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
)

// The reader's logic against fakeKinesis, driven the way a runner drives a
// splittable DoFn: ProcessElement, then a checkpoint whose residual goes
// through the coder into a new tracker.

func fakeReadFn(t *testing.T, api kinesisAPI, start startPos) *readFn {
	return &readFn{
		Stream:       streamName(t), // shardStates is keyed by stream: no sharing between tests
		Start:        start,
		PollInterval: 10 * time.Millisecond,
		MaxDelay:     0,
		Limit:        3,
		api:          api,
	}
}

type driven struct {
	out  []Record
	rest restriction
	we   *watermarkEstimator
}

// drive runs at most calls ProcessElement calls on rest, calling between
// after each checkpoint.
func drive(t *testing.T, fn *readFn, rest restriction, calls int, between func(call int)) driven {
	t.Helper()
	d := driven{we: newWatermarkEstimator(math.MinInt64 / 2)}
	emit := func(_ beam.EventTime, r Record) { d.out = append(d.out, r) }
	for i := 0; i < calls; i++ {
		rt := fn.CreateTracker(rest)
		pc, err := fn.ProcessElement(context.Background(), d.we, rt, rootShard{ShardID: "root"}, emit)
		if err != nil {
			t.Fatalf("ProcessElement call %d: %v", i, err)
		}
		if !pc.ShouldResume() {
			if !rt.IsDone() {
				t.Fatalf("call %d stopped with work left: %v", i, rt.GetRestriction())
			}
			d.rest = rt.GetRestriction().(restriction)
			return d
		}
		_, res, err := rt.TrySplit(0)
		if err != nil || !rt.IsDone() {
			t.Fatalf("checkpoint after call %d: %v (done %v)", i, err, rt.IsDone())
		}
		rest, err = decodeRestriction(encodeRestriction(res.(restriction)))
		if err != nil {
			t.Fatal(err)
		}
		if between != nil {
			between(i)
		}
		time.Sleep(min(pc.ResumeDelay(), time.Second))
	}
	d.rest = rest
	return d
}

func data(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Data))
	}
	return out
}

func noIteratorCache(t *testing.T) {
	cacheIterators = false
	t.Cleanup(func() { cacheIterators = true })
}

func TestReadResumesAfterLastEmitted(t *testing.T) {
	noIteratorCache(t)
	f := newFake("s0")
	old := time.Now().Add(-time.Minute)
	f.put("s0", old, "r00", "r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08", "r09")
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 4, func(call int) {
		if call == 0 {
			f.put("s0", time.Now(), "r10", "r11", "r12", "r13", "r14")
		}
	})
	want := []string{"r00", "r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08", "r09", "r10", "r11", "r12", "r13", "r14"}
	if diff := cmp.Diff(want, data(d.out)); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	// Every iterator after the first continues after the last record
	// emitted: there is no other state to resume from.
	emitted := map[string]bool{}
	for _, r := range d.out {
		emitted[r.SequenceNumber] = true
	}
	opens := 0
	for _, c := range f.log() {
		if !strings.HasPrefix(c, "GetShardIterator") {
			continue
		}
		opens++
		if opens == 1 {
			if c != "GetShardIterator s0 TRIM_HORIZON" {
				t.Errorf("first iterator: %q", c)
			}
			continue
		}
		f := strings.Fields(c)
		if f[2] != "AFTER_SEQUENCE_NUMBER" || !emitted[f[3]] {
			t.Errorf("iterator not after an emitted record: %q", c)
		}
	}
	if opens < 5 {
		t.Errorf("%d iterators opened, want one per GetRecords call", opens)
	}
	if got := d.rest.Shards[0].LastSeq; got != d.out[len(d.out)-1].SequenceNumber {
		t.Errorf("checkpoint LastSeq %s, want the last emitted %s", got, d.out[len(d.out)-1].SequenceNumber)
	}
}

func TestReadThrottlingBacksOff(t *testing.T) {
	f := newFake("s0")
	f.put("s0", time.Now().Add(-time.Minute), "a", "b")
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	f.failNext("GetRecords", throttled, throttled)
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	rt := fn.CreateTracker(fn.CreateInitialRestriction(rootShard{ShardID: "s0"}))
	we := newWatermarkEstimator(0)
	var out []Record
	emit := func(_ beam.EventTime, r Record) { out = append(out, r) }
	pc, err := fn.ProcessElement(context.Background(), we, rt, rootShard{ShardID: "s0"}, emit)
	if err != nil {
		t.Fatalf("throttling failed the bundle: %v", err)
	}
	if !pc.ShouldResume() || pc.ResumeDelay() < 100*time.Millisecond || len(out) != 0 {
		t.Fatalf("after throttling: resume %v in %v with %d records, want a resume after a backoff and none", pc.ShouldResume(), pc.ResumeDelay(), len(out))
	}
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 5, nil)
	if diff := cmp.Diff([]string{"a", "b"}, data(d.out)); diff != "" {
		t.Errorf("records after the backoff (-want +got):\n%s", diff)
	}
	// The second throttle doubled the wait.
	var times []string
	for _, c := range f.log() {
		if strings.HasPrefix(c, "GetRecords") {
			times = append(times, c)
		}
	}
	if len(times) < 3 {
		t.Errorf("GetRecords calls %v, want the two throttled ones and a good one", times)
	}
}

func TestReadExpiredIteratorReopens(t *testing.T) {
	f := newFake("s0")
	f.put("s0", time.Now().Add(-time.Minute), "a", "b", "c", "d", "e")
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 1, nil)
	f.failNext("GetRecords", &types.ExpiredIteratorException{Message: aws.String("expired")})
	f.put("s0", time.Now(), "f")
	d2 := drive(t, fn, d.rest, 3, nil)
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e", "f"}, data(append(d.out, d2.out...))); diff != "" {
		t.Errorf("records around an expired iterator (-want +got):\n%s", diff)
	}
	var reopened bool
	for _, c := range f.log() {
		reopened = reopened || strings.HasPrefix(c, "GetShardIterator s0 AFTER_SEQUENCE_NUMBER "+d.out[len(d.out)-1].SequenceNumber)
	}
	if !reopened {
		t.Errorf("no iterator reopened after the last record; calls: %v", f.log())
	}
}

func TestReadShardEndHandsOverToChildren(t *testing.T) {
	f := newFake("s0", "s1")
	past := time.Now().Add(-time.Minute)
	f.put("s0", past, "a0", "a1")
	f.put("s1", past, "d0")
	f.addChild("s2", "s0", "") // s0 split into s2 and s3
	f.addChild("s3", "s0", "")
	f.put("s2", past.Add(time.Second), "b0")
	f.put("s3", past.Add(time.Second), "b1")
	f.addChild("s4", "s3", "s1") // s3 and s1 merged into s4: s3's element takes it
	f.put("s4", past.Add(2*time.Second), "c0")

	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	fn.UntilMillis = time.Now().UnixMilli() // open shards finish once caught up
	a := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 10, nil)
	b := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s1"}), 10, nil)
	if !a.rest.isDone() || !b.rest.isDone() {
		t.Fatalf("not done: %v, %v", a.rest, b.rest)
	}
	got := data(a.out)
	if diff := cmp.Diff([]string{"a0", "a1"}, got[:2]); diff != "" {
		t.Errorf("the parent first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b0", "b1"}, sortedCopy(got[2:4])); diff != "" {
		t.Errorf("then the split's children (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c0"}, got[4:]); diff != "" {
		t.Errorf("then the merge's child (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"d0"}, data(b.out)); diff != "" {
		t.Errorf("the adjacent parent's element (-want +got):\n%s", diff)
	}
	for _, r := range a.out {
		want := map[string]string{"a0": "s0", "a1": "s0", "b0": "s2", "b1": "s3", "c0": "s4"}[string(r.Data)]
		if r.ShardID != want || r.Stream != fn.Stream || r.PartitionKey != "pk-"+string(r.Data) || r.ArrivalTime.IsZero() {
			t.Errorf("record %+v, want it from shard %s", r, want)
		}
	}
	var listed bool
	for _, c := range f.log() {
		listed = listed || c == "ListShards s0"
	}
	if !listed {
		t.Errorf("children not listed after the ended shard: %v", f.log())
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestReadIdleAdvancesWatermark(t *testing.T) {
	f := newFake("s0")
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	fn.MaxDelay = time.Second
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 1, nil)
	want := time.Now().Add(-time.Second)
	if got := d.we.CurrentWatermark(); got.Before(want.Add(-500*time.Millisecond)) || got.After(want) {
		t.Errorf("idle watermark %v, want about now - 1 s (%v)", got, want)
	}
	// A record that arrives later than that is held to its arrival time.
	f.put("s0", want.Add(10*time.Second), "future")
	d2 := drive(t, fn, d.rest, 1, nil)
	if got := d2.we.CurrentWatermark(); !got.Equal(time.UnixMilli(want.Add(10 * time.Second).UnixMilli())) {
		t.Errorf("watermark %v after a record at %v", got, want.Add(10*time.Second))
	}
}

func TestReadLatestPinsItsStart(t *testing.T) {
	noIteratorCache(t)
	f := newFake("s0")
	f.put("s0", time.Now().Add(-time.Minute), "old1", "old2")
	fn := fakeReadFn(t, f, startPos{Kind: startLatest})
	fn.MaxDelay = time.Second
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 1, nil)
	if len(d.out) != 0 {
		t.Fatalf("LATEST read old records: %v", data(d.out))
	}
	pin := d.rest.Shards[0].Start
	if pin.Kind != startLatest || pin.Millis == 0 {
		t.Fatalf("start not pinned: %v", pin)
	}
	f.put("s0", time.Now(), "new1", "new2")
	d2 := drive(t, fn, d.rest, 1, nil)
	if diff := cmp.Diff([]string{"new1", "new2"}, data(d2.out)); diff != "" {
		t.Errorf("after the checkpoint (-want +got):\n%s", diff)
	}
	if l := f.log(); !slices.Contains(l, "GetShardIterator s0 AT_TIMESTAMP") {
		t.Errorf("the resumed LATEST read did not use its pinned time: %v", l)
	}
}

func TestReadAtTimestampFallsBackWhenTheServerHangs(t *testing.T) {
	wait := atTimestampWait
	atTimestampWait = 100 * time.Millisecond
	t.Cleanup(func() { atTimestampWait = wait })
	f := newFake("s0")
	f.hangAtTimestamp = true
	start := time.Now().Add(-30 * time.Second)
	f.put("s0", start.Add(-time.Second), "before1", "before2")
	f.put("s0", start, "at")
	f.put("s0", start.Add(time.Second), "after")
	fn := fakeReadFn(t, f, startPos{Kind: startAtTimestamp, Millis: start.UnixMilli()})
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 2, nil)
	if diff := cmp.Diff([]string{"at", "after"}, data(d.out)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if l := f.log(); !slices.Contains(l, "GetShardIterator s0 TRIM_HORIZON") {
		t.Errorf("no TRIM_HORIZON fallback: %v", l)
	}
}

func TestReadUntilEndsTheRestriction(t *testing.T) {
	f := newFake("s0")
	until := time.Now().Add(-10 * time.Second)
	f.put("s0", until.Add(-time.Second), "in1", "in2", "in3", "in4")
	f.put("s0", until, "out1")
	fn := fakeReadFn(t, f, startPos{Kind: startTrimHorizon})
	fn.UntilMillis = until.UnixMilli()
	d := drive(t, fn, fn.CreateInitialRestriction(rootShard{ShardID: "s0"}), 5, nil)
	if !d.rest.isDone() {
		t.Fatalf("not done: %v", d.rest)
	}
	if diff := cmp.Diff([]string{"in1", "in2", "in3", "in4"}, data(d.out)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestPacing(t *testing.T) {
	var s shardState
	t0 := time.Now()
	s.paced(t0, 100)
	if got := s.nextCall().Sub(t0); got != minCallInterval {
		t.Errorf("after a small call: wait %v, want %v (5 calls a second)", got, minCallInterval)
	}
	s.paced(t0, 4<<20)
	if got := s.nextCall().Sub(t0); got != 2*time.Second {
		t.Errorf("after 4 MiB: wait %v, want 2 s (2 MiB a second)", got)
	}
	var b shardState
	throttled := &types.ProvisionedThroughputExceededException{}
	for i, max := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		before := time.Now()
		n, th := b.failed(throttled)
		wait := b.nextCall().Sub(before)
		if !th || n != i+1 || wait < max/2-time.Millisecond || wait > max+10*time.Millisecond {
			t.Errorf("throttle %d: count %d throttled %v wait %v, want up to %v", i+1, n, th, wait, max)
		}
	}
	b.succeeded()
	if n, _ := b.failed(throttled); n != 1 {
		t.Errorf("a success did not reset the backoff: %d", n)
	}
}

func TestRecordCoder(t *testing.T) {
	// Records cross shuffles: they must survive Beam's coder, time and all.
	r := Record{Stream: "s", ShardID: "shardId-000000000001", SequenceNumber: "4959", PartitionKey: "k",
		Data: []byte{0, 1, 2, 255}, ArrivalTime: time.UnixMilli(1700000000123).UTC()}
	got := beamRoundTrip(t, r)
	if !got.ArrivalTime.Equal(r.ArrivalTime) {
		t.Errorf("arrival time %v, want %v", got.ArrivalTime, r.ArrivalTime)
	}
	got.ArrivalTime = r.ArrivalTime
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestReadOptionsValidate(t *testing.T) {
	for name, opt := range map[string]ReadOptionFn{
		"poll":   ReadPollInterval(0),
		"lag":    ReadMaxDelay(-time.Second),
		"limit":  ReadMaxRecordsPerCall(10001),
		"limit0": ReadMaxRecordsPerCall(0),
		"start":  ReadAtTimestamp(time.Time{}),
		"until":  ReadUntil(time.Time{}),
	} {
		if err := opt(&readOption{}); err == nil {
			t.Errorf("%s: invalid option accepted", name)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Read with an invalid option did not panic")
			}
		}()
		_, s := beam.NewPipelineWithRoot()
		Read(s, "s", ReadPollInterval(0))
	}()
}
