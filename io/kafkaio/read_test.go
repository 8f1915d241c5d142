package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The tests in this file call the DoFns directly, as a runner would,
// against kfake: fast, and they can look at every checkpoint.

func TestFetcher(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kfake.Opt
	}{
		{"topic IDs (fetch v13+)", nil},
		{"topic names (Kafka 3.0, fetch v12)", []kfake.Opt{kfake.MaxVersions(kversion.V3_0_0())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 2, []string{"f"}, tc.opts...)
			ts := time.UnixMilli(1_700_000_000_000)
			c.produce(t, "f", 1, 0, 30, func(i int) time.Time { return ts.Add(time.Duration(i) * time.Second) })
			cl, err := newClient(c.brokers())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			f := newFetcher(cl)
			ctx := context.Background()

			res, err := f.fetch(ctx, "f", 1, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.records) != 20 || res.records[0].Offset != 10 || res.next != 30 || res.hwm != 30 {
				t.Fatalf("fetch at 10: %d records from %d, next %d, hwm %d", len(res.records), res.records[0].Offset, res.next, res.hwm)
			}
			if r := res.records[0]; string(r.Value) != value("f", 1, 10) || !r.Timestamp.Equal(ts.Add(10*time.Second)) {
				t.Errorf("record 10 = %q at %v", r.Value, r.Timestamp)
			}
			// Caught up: nothing, at once.
			start := time.Now()
			if res, err = f.fetch(ctx, "f", 1, 30); err != nil || len(res.records) != 0 || res.next != 30 {
				t.Errorf("fetch at the end: %d records, next %d, err %v", len(res.records), res.next, err)
			}
			if d := time.Since(start); d > 2*time.Second { // MaxWait 0: no long poll (generous for loaded machines)
				t.Errorf("fetch at the end waited %v", d)
			}
			if res, err = f.fetch(ctx, "f", 0, 0); err != nil || len(res.records) != 0 || res.hwm != 0 {
				t.Errorf("empty partition: %d records, hwm %d, err %v", len(res.records), res.hwm, err)
			}
			if _, err = f.fetch(ctx, "f", 1, 31); !errors.Is(err, kerr.OffsetOutOfRange) {
				t.Errorf("fetch past the end: %v, want OffsetOutOfRange", err)
			}
			if _, err = f.fetch(ctx, "f", 7, 0); !isRetry(err) {
				t.Errorf("fetch of a missing partition: %v, want a retry", err)
			}
			if s, e, err := f.bounds(ctx, "f", 1); s != 0 || e != 30 || err != nil {
				t.Errorf("bounds = %d, %d, %v", s, e, err)
			}
		})
	}
}

type work struct {
	r  rest
	we int64
}

// drive runs fn over tp as a runner does: ProcessElement; on a resume, the
// checkpoint (a split at 0), a wait of the resume delay and a call on the
// residual. split, when set, may
// split the running restriction (as a runner's dynamic split does) and
// return the residual, which is driven too.
func drive(t *testing.T, fn *readFn, tp topicPartition, deadline time.Duration,
	split func(rt *sdf.LockRTracker, r Record) *rest,
) (got []Record, calls int, wms []time.Time) {
	t.Helper()
	if fn.ID == "" {
		fn.ID = t.Name() // its own watermark holds
	}
	ctx := context.Background()
	r0 := fn.CreateInitialRestriction(tp)
	queue := []work{{r0, fn.InitialWatermarkEstimatorState(mtime.MinTimestamp, r0, tp)}}
	end := time.Now().Add(deadline)
	for len(queue) > 0 {
		if time.Now().After(end) {
			t.Fatalf("not done after %v: %d records, %d calls", deadline, len(got), calls)
		}
		w := queue[0]
		queue = queue[1:]
		rt := fn.CreateTracker(w.r)
		we := fn.CreateWatermarkEstimator(w.we)
		calls++
		pc, err := fn.ProcessElement(ctx, we, rt, tp, func(et beam.EventTime, r Record) {
			we.ObserveTimestamp(et.ToTime()) // as the SDK does on every emit
			got = append(got, r)
			if split != nil {
				if res := split(rt, r); res != nil {
					queue = append(queue, work{*res, we.state})
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if pc.ShouldResume() {
			if res, ok := checkpoint(t, rt); ok {
				queue = append(queue, work{res, we.state})
			}
			time.Sleep(pc.ResumeDelay())
		} else if !rt.IsDone() {
			t.Fatalf("stopped with %v not done: %v", rt.GetRestriction(), rt.GetError())
		}
		wms = append(wms, we.CurrentWatermark())
	}
	return got, calls, wms
}

// checkOnce checks that got holds records from..to-1 of tp, each once, in
// offset order.
func checkOnce(t *testing.T, got []Record, topic string, partition int32, from, to int) {
	t.Helper()
	seen := map[int64]int{}
	for i, r := range got {
		seen[r.Offset]++
		if want := value(topic, partition, int(r.Offset)); string(r.Value) != want {
			t.Errorf("offset %d has %q, want %q", r.Offset, r.Value, want)
		}
		if i > 0 && r.Offset <= got[i-1].Offset {
			t.Errorf("offset %d after %d", r.Offset, got[i-1].Offset)
		}
	}
	if len(got) != to-from {
		t.Errorf("%d records, want %d", len(got), to-from)
	}
	for o := int64(from); o < int64(to); o++ {
		if seen[o] != 1 {
			t.Errorf("offset %d read %d times", o, seen[o])
		}
	}
}

// A partition written to while it is read, in many short calls with a
// checkpoint after each: every record once, in order, the group's offset
// at the end, and the watermark following the records then the clock.
func TestReadFnTailsPartitionExactlyOnce(t *testing.T) {
	c := newCluster(t, 1, []string{"tail"})
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	ts := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	c.produce(t, "tail", 0, 0, 100, ts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 100; i < 500; i += 25 {
			time.Sleep(15 * time.Millisecond)
			c.produce(t, "tail", 0, i, i+25, ts)
		}
	}()
	fn := &readFn{Brokers: c.brokers(), Group: "tail-g", MaxDelay: time.Second, PollInterval: 5 * time.Millisecond}
	if err := fn.Setup(); err != nil {
		t.Fatal(err)
	}
	defer fn.Teardown()
	got, calls, wms := drive(t, fn, topicPartition{Topic: "tail", Partition: 0, Start: 0, End: 500}, 20*time.Second, nil)
	<-done
	checkOnce(t, got, "tail", 0, 0, 500)
	checkSpans(t, got, 0)
	if calls < 5 {
		t.Errorf("only %d calls: the test did not exercise checkpoints", calls)
	}
	for i, r := range got {
		if !r.Timestamp.Equal(ts(int(r.Offset))) || r.Topic != "tail" || string(r.Key) != fmt.Sprint(r.Offset) {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
	for i := 1; i < len(wms); i++ {
		if wms[i].Before(wms[i-1]) {
			t.Errorf("watermark went back from %v to %v", wms[i-1], wms[i])
		}
	}
	// The records are an hour old, but the partition was caught up between
	// writes: the watermark follows the clock then.
	if last := wms[len(wms)-1]; last.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("watermark %v did not follow the clock while idle", last)
	}
	if got := c.groupOffsets(t, "tail-g"); got["tail/0"] != 500 {
		t.Errorf("committed %v, want tail/0 at 500", got)
	}
}

// A runner asking to split a partition in the middle of a read is turned
// down; the read goes on, each record once.
func TestReadFnDeclinesDynamicSplit(t *testing.T) {
	c := newCluster(t, 1, []string{"split"})
	c.produce(t, "split", 0, 0, 300, nil)
	fn := &readFn{Brokers: c.brokers(), PollInterval: 5 * time.Millisecond}
	if err := fn.Setup(); err != nil {
		t.Fatal(err)
	}
	defer fn.Teardown()
	asked := 0
	got, _, _ := drive(t, fn, topicPartition{Topic: "split", Start: 0, End: 300}, 10*time.Second,
		func(rt *sdf.LockRTracker, r Record) *rest {
			if r.Offset == 40 || r.Offset == 200 {
				asked++
				if _, res, err := rt.TrySplit(0.5); err != nil || res != nil {
					t.Errorf("split at %d: %v, %v; want declined", r.Offset, res, err)
				}
			}
			return nil
		})
	if asked != 2 {
		t.Fatalf("asked for %d splits", asked)
	}
	checkOnce(t, got, "split", 0, 0, 300)
}

// Offsets deleted by retention before they are read are skipped (with a
// warning), not waited for.
func TestReadFnSkipsDeletedOffsets(t *testing.T) {
	c := newCluster(t, 1, []string{"gone"})
	c.produce(t, "gone", 0, 0, 50, nil)
	if _, err := c.adm.DeleteRecords(context.Background(), offsets("gone", 0, 20)); err != nil {
		t.Fatal(err)
	}
	fn := &readFn{Brokers: c.brokers(), PollInterval: 5 * time.Millisecond}
	if err := fn.Setup(); err != nil {
		t.Fatal(err)
	}
	defer fn.Teardown()
	got, _, _ := drive(t, fn, topicPartition{Topic: "gone", Start: 0, End: 50}, 10*time.Second, nil)
	checkOnce(t, got, "gone", 0, 20, 50)
	checkSpans(t, got, 0) // the first record accounts for the deleted offsets
}

// checkSpans checks that the records' spans [From, Offset], in the order
// they were emitted, tile the partition from start without a gap or an
// overlap, across the calls and checkpoints: what durable positions rely
// on.
func checkSpans(t *testing.T, got []Record, start int64) {
	t.Helper()
	next := start
	for _, r := range got {
		if r.From != next || r.Offset < r.From {
			t.Fatalf("record at %d spans [%d, %d], want it to start at %d", r.Offset, r.From, r.Offset, next)
		}
		next = r.Offset + 1
	}
}

// discover runs one listing of topic and returns what it emitted, the
// residual and the watermark state.
func discover(t *testing.T, fn *discoverFn, r rest, weState int64) ([]topicPartition, *rest, int64) {
	t.Helper()
	rt := fn.CreateTracker(r)
	we := fn.CreateWatermarkEstimator(weState)
	var got []topicPartition
	pc, err := fn.ProcessElement(context.Background(), we, rt, "d", func(_ beam.EventTime, tp topicPartition) {
		got = append(got, tp)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !pc.ShouldResume() {
		if !rt.IsDone() {
			t.Fatalf("discovery stopped with %v not done", rt.GetRestriction())
		}
		return got, nil, we.state
	}
	res, ok := checkpoint(t, rt)
	if !ok {
		t.Fatal("no residual")
	}
	return got, &res, we.state
}

// The first listing starts where asked; partitions added later are found
// by the next listing and read from their beginning.
func TestDiscoverStartPositionsAndNewPartitions(t *testing.T) {
	c := newCluster(t, 3, []string{"d"})
	for p := range int32(3) {
		c.produce(t, "d", p, 0, 10*int(p+1), nil)
	}
	commit := func(group string, p int32, at int64) {
		if err := commitOffset(c.adm, c.brokers(), group, "d", p, at, 0); err != nil {
			t.Fatal(err)
		}
	}
	commit("d-g", 1, 7)    // partition 1 has a commit, 0 and 2 have none
	commit("d-far", 0, 99) // beyond the end of partition 0
	if _, err := c.adm.DeleteRecords(context.Background(), offsets("d", 2, 4)); err != nil {
		t.Fatal(err)
	}
	initial := (&discoverFn{}).InitialWatermarkEstimatorState(0, rest{}, "d")
	all := rest{Start: 0, End: math.MaxInt64}
	const never = math.MaxInt64
	for _, tc := range []struct {
		name string
		fn   discoverFn
		want []topicPartition
	}{
		{"earliest", discoverFn{Start: StartEarliest}, []topicPartition{{"d", 0, 0, never}, {"d", 1, 0, never}, {"d", 2, 4, never}}},
		{"latest", discoverFn{Start: StartLatest}, []topicPartition{{"d", 0, 10, never}, {"d", 1, 20, never}, {"d", 2, 30, never}}},
		{"committed, else earliest", discoverFn{Start: StartCommitted, Group: "d-g"}, []topicPartition{{"d", 0, 0, never}, {"d", 1, 7, never}, {"d", 2, 4, never}}},
		{"committed past the end", discoverFn{Start: StartCommitted, Group: "d-far"}, []topicPartition{{"d", 0, 10, never}, {"d", 1, 0, never}, {"d", 2, 4, never}}},
		{"until latest", discoverFn{Start: StartEarliest, UntilLatest: true}, []topicPartition{{"d", 0, 0, 10}, {"d", 1, 0, 20}, {"d", 2, 4, 30}}},
		{"end offsets", discoverFn{Start: StartLatest, Ends: []partitionOffset{{"d", 0, 15}, {"d", 2, 1}}}, []topicPartition{{"d", 0, 10, 15}, {"d", 1, 20, never}, {"d", 2, 30, 30}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := tc.fn
			fn.Brokers = c.brokers()
			if err := fn.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer fn.Teardown()
			got, res, _ := discover(t, &fn, all, initial)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("listed %v\nwant     %v", got, tc.want)
			}
			if res != nil {
				t.Errorf("listing once left %v", *res)
			}
		})
	}

	t.Run("re-listing", func(t *testing.T) {
		fn := &discoverFn{Brokers: c.brokers(), Start: StartLatest, Group: "d-g", Interval: 50 * time.Millisecond}
		if err := fn.Setup(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer fn.Teardown()
		before := time.Now()
		got, res, we := discover(t, fn, all, initial)
		if len(got) != 3 || got[0].Start != 10 || res == nil || *res != (rest{Start: 3, End: math.MaxInt64}) {
			t.Fatalf("first listing %v, residual %v", got, res)
		}
		if wm := time.UnixMilli(we); wm.Before(before.Add(fn.Interval).Truncate(time.Millisecond)) {
			t.Errorf("watermark %v is not the next listing's time", wm)
		}
		// Before the next listing's time, the call only looks for a drain
		// request: nothing is listed, and it resumes soon.
		rt := fn.CreateTracker(*res)
		early := fn.CreateWatermarkEstimator(time.Now().Add(time.Hour).UnixMilli())
		pc, err := fn.ProcessElement(context.Background(), early, rt, "d", func(beam.EventTime, topicPartition) {
			t.Error("listed before the next listing's time")
		})
		if err != nil || !pc.ShouldResume() || pc.ResumeDelay() > drainCheck {
			t.Errorf("a call between listings: %v, %v; want a resume within %v", pc, err, drainCheck)
		}
		time.Sleep(time.Until(time.UnixMilli(we)))
		// Nothing new.
		if got, res, _ = discover(t, fn, *res, we); len(got) != 0 || res.Start != 3 {
			t.Fatalf("second listing %v, residual %v", got, res)
		}
		if _, err := c.adm.CreatePartitions(context.Background(), 2, "d"); err != nil {
			t.Fatal(err)
		}
		c.produce(t, "d", 3, 0, 5, nil)
		c.produce(t, "d", 4, 0, 5, nil)
		commit("d-g", 4, 2)
		// New partitions start at their beginning (or what the group
		// committed), not at latest: everything in them is new.
		got, res, _ = discover(t, fn, *res, we)
		if want := []topicPartition{{"d", 3, 0, never}, {"d", 4, 2, never}}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after adding partitions: %v, want %v", got, want)
		}
		if res == nil || res.Start != 5 {
			t.Errorf("residual %v, want from 5", res)
		}
	})

	t.Run("missing topic", func(t *testing.T) {
		fn := &discoverFn{Brokers: c.brokers(), Start: StartEarliest, Interval: time.Millisecond}
		if err := fn.Setup(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer fn.Teardown()
		rt := fn.CreateTracker(all)
		we := fn.CreateWatermarkEstimator(initial)
		pc, err := fn.ProcessElement(context.Background(), we, rt, "nope", func(beam.EventTime, topicPartition) {
			t.Error("emitted a partition of a missing topic")
		})
		if err != nil || !pc.ShouldResume() {
			t.Errorf("missing topic: %v, %v; want a resume", pc, err)
		}
	})
}

// Commits go only forward, whatever order overlapping calls make them in,
// and not more often than asked.
func TestCommitOnlyForward(t *testing.T) {
	c := newCluster(t, 1, []string{"c"})
	c.produce(t, "c", 0, 0, 10, nil)
	for _, at := range []int64{5, 3, 8, 8, 6} {
		if err := commitOffset(c.adm, c.brokers(), "c-g", "c", 0, at, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.groupOffsets(t, "c-g"); got["c/0"] != 8 {
		t.Errorf("committed %v, want 8", got)
	}
	if err := commitOffset(c.adm, c.brokers(), "c-g", "c", 0, 9, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := c.groupOffsets(t, "c-g"); got["c/0"] != 8 {
		t.Errorf("committed %v within the interval, want still 8", got)
	}
}

// With ReadProcessingTime records are stamped with the time they are read,
// and the Record keeps the Kafka timestamp.
func TestReadFnProcessingTime(t *testing.T) {
	c := newCluster(t, 1, []string{"pt"})
	old := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	c.produce(t, "pt", 0, 0, 3, func(int) time.Time { return old })
	fn := &readFn{ID: t.Name(), Brokers: c.brokers(), ProcessingTime: true, MaxDelay: time.Minute, PollInterval: time.Millisecond}
	if err := fn.Setup(); err != nil {
		t.Fatal(err)
	}
	defer fn.Teardown()
	tp := topicPartition{Topic: "pt", End: 3}
	r := fn.CreateInitialRestriction(tp)
	rt := fn.CreateTracker(r)
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(mtime.MinTimestamp, r, tp))
	before := time.Now().Truncate(time.Millisecond)
	n := 0
	if _, err := fn.ProcessElement(context.Background(), we, rt, tp, func(et beam.EventTime, r Record) {
		n++
		we.ObserveTimestamp(et.ToTime())
		if et.ToTime().Before(before) || et.ToTime().After(time.Now()) {
			t.Errorf("event time %v is not the read time", et.ToTime())
		}
		if !r.Timestamp.Equal(old) {
			t.Errorf("record timestamp %v, want %v", r.Timestamp, old)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d records, want 3", n)
	}
	if wm := we.CurrentWatermark(); wm.Before(before) {
		t.Errorf("watermark %v, want the read time (no max delay)", wm)
	}
}
