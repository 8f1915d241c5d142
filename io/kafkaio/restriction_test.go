package kafkaio

import (
	"math"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
)

type rest = offsetrange.Restriction

// checkpoint does what the SDK does when ProcessElement asks to resume:
// split at fraction 0; the primary must be done.
func checkpoint(t *testing.T, rt *sdf.LockRTracker) (residual rest, ok bool) {
	t.Helper()
	_, r, err := rt.TrySplit(0)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.IsDone() {
		t.Fatalf("primary %v not done after checkpoint", rt.GetRestriction())
	}
	if r == nil {
		return rest{}, false
	}
	return r.(rest), true
}

// A checkpoint after claiming records resumes right after the last one:
// claiming each record's own offset is what makes a resume re-read nothing.
func TestCheckpointResumesAfterLastClaimedRecord(t *testing.T) {
	fn := &readFn{}
	for _, tc := range []struct {
		name    string
		r       rest
		claims  []int64 // record offsets, gaps allowed (compaction, transaction markers)
		want    rest
		residue bool
	}{
		{"unbounded, nothing read", rest{Start: 7, End: math.MaxInt64}, nil, rest{Start: 7, End: math.MaxInt64}, true},
		{"unbounded, records read", rest{Start: 0, End: math.MaxInt64}, []int64{0, 1, 2}, rest{Start: 3, End: math.MaxInt64}, true},
		{"unbounded, offsets with gaps", rest{Start: 10, End: math.MaxInt64}, []int64{12, 15, 16}, rest{Start: 17, End: math.MaxInt64}, true},
		{"bounded, waiting for the rest", rest{Start: 0, End: 100}, []int64{0, 1}, rest{Start: 2, End: 100}, true},
		{"bounded, nothing read", rest{Start: 5, End: 100}, nil, rest{Start: 5, End: 100}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fn.CreateTracker(tc.r)
			for _, o := range tc.claims {
				if !rt.TryClaim(o) {
					t.Fatalf("TryClaim(%d) = false", o)
				}
			}
			got, ok := checkpoint(t, rt)
			if ok != tc.residue || got != tc.want {
				t.Errorf("residual = %v, %v; want %v, %v", got, ok, tc.want, tc.residue)
			}
		})
	}
}

// Reading a partition in rounds of checkpoints visits every offset exactly
// once; the trap this guards against (claiming a position before the
// record's end) re-read part of each round: 525 outputs for 500 inputs.
func TestRoundsOfCheckpointsReadEachOffsetOnce(t *testing.T) {
	fn := &readFn{}
	r := rest{Start: 0, End: math.MaxInt64}
	seen := map[int64]int{}
	next := int64(0)
	for round := 0; next < 500; round++ {
		rt := fn.CreateTracker(r)
		start := r.Start
		for o := start; o < min(start+int64(round%7+1)*3, 500); o++ { // a few records a round
			if !rt.TryClaim(o) {
				t.Fatalf("TryClaim(%d) = false", o)
			}
			seen[o]++
			next = o + 1
		}
		var ok bool
		if r, ok = checkpoint(t, rt); !ok {
			t.Fatal("no residual for an unbounded partition")
		}
		if r.Start != next {
			t.Fatalf("round %d resumes at %d, want %d", round, r.Start, next)
		}
	}
	if len(seen) != 500 {
		t.Errorf("%d offsets read, want 500", len(seen))
	}
	for o, n := range seen {
		if n != 1 {
			t.Errorf("offset %d read %d times", o, n)
		}
	}
}

// A runner's dynamic split of a partition is declined (the read only
// checkpoints), and its progress is measured against the high watermark.
func TestReadTrackerDeclinesDynamicSplits(t *testing.T) {
	fn := &readFn{}
	for _, r := range []rest{{Start: 100, End: math.MaxInt64}, {Start: 100, End: 300}} {
		rt := fn.CreateTracker(r)
		rt.Rt.(*growableTracker).end.Store(200) // the partition's high watermark, as the read saw it
		for o := int64(100); o < 120; o++ {
			rt.TryClaim(o)
		}
		p, res, err := rt.TrySplit(0.5)
		if err != nil || res != nil || p.(rest) != r {
			t.Errorf("%v: split = %v, %v, %v; want declined", r, p, res, err)
		}
		if !rt.TryClaim(int64(180)) {
			t.Errorf("%v: claim after a declined split failed", r)
		}
		if res, ok := checkpoint(t, rt); !ok || res.Start != 181 || res.End != r.End {
			t.Errorf("%v: checkpoint residual %v, %v", r, res, ok)
		}
	}
	rt := fn.CreateTracker(rest{Start: 100, End: math.MaxInt64})
	rt.Rt.(*growableTracker).end.Store(200)
	for o := int64(100); o < 120; o++ {
		rt.TryClaim(o)
	}
	if done, remaining := rt.GetProgress(); done != 20 || remaining != 81 {
		t.Errorf("progress = %v done, %v remaining; want 20, 81", done, remaining)
	}
	// Listing partitions has no commits to protect: its splits go ahead.
	d := &discoverFn{}
	drt := d.CreateTracker(d.CreateInitialRestriction("t"))
	drt.TryClaim(int64(0))
	if _, res, _ := drt.TrySplit(0.5); res == nil {
		t.Error("discovery split declined")
	}
}

// A bounded restriction whose records are all read is finished by claiming
// its end, even when the last offsets are not records (transaction
// markers), and an empty one is done from the start.
func TestBoundedRestrictionFinishes(t *testing.T) {
	fn := &readFn{}
	rt := fn.CreateTracker(rest{Start: 0, End: 10})
	for o := int64(0); o < 8; o++ {
		rt.TryClaim(o)
	}
	if rt.IsDone() {
		t.Fatal("done before the end")
	}
	if rt.TryClaim(int64(10)) {
		t.Fatal("claiming the end succeeded")
	}
	if !rt.IsDone() || rt.GetError() != nil {
		t.Errorf("done = %v, err = %v", rt.IsDone(), rt.GetError())
	}
	if rt := fn.CreateTracker(rest{Start: 5, End: 5}); !rt.IsDone() {
		t.Error("empty restriction not done")
	}
}

// Listing once ends the discovery range by claiming MaxInt64-1, which a
// growable tracker counts as done.
func TestDiscoveryRangeEnds(t *testing.T) {
	fn := &discoverFn{}
	rt := fn.CreateTracker(fn.CreateInitialRestriction("t"))
	for p := int64(0); p < 3; p++ {
		rt.TryClaim(p)
	}
	if !rt.TryClaim(int64(math.MaxInt64-1)) || !rt.IsDone() {
		t.Errorf("done = %v, err = %v", rt.IsDone(), rt.GetError())
	}
	if _, r, _ := rt.TrySplit(0); r != nil {
		t.Errorf("residual %v after the end", r)
	}
	// Checkpointing between listings resumes at the next partition number.
	rt = fn.CreateTracker(fn.CreateInitialRestriction("t"))
	rt.TryClaim(int64(0))
	rt.TryClaim(int64(1))
	if r, _ := checkpoint(t, rt); r != (rest{Start: 2, End: math.MaxInt64}) {
		t.Errorf("residual = %v", r)
	}
}

// A bounded partition's restriction has one offset past its records, the
// end marker, claimed by the call that commits the end.
func TestInitialRestriction(t *testing.T) {
	fn := &readFn{}
	if got := fn.CreateInitialRestriction(topicPartition{Start: 3, End: 10}); got != (rest{Start: 3, End: 11}) {
		t.Errorf("bounded = %v, want [3, 11)", got)
	}
	if got := fn.CreateInitialRestriction(topicPartition{Start: 3, End: math.MaxInt64}); got != (rest{Start: 3, End: math.MaxInt64}) {
		t.Errorf("unbounded = %v", got)
	}
}

func TestTruncateAndSize(t *testing.T) {
	fn := &readFn{}
	tp := topicPartition{}
	if got := fn.TruncateRestriction(fn.CreateTracker(rest{Start: 4, End: math.MaxInt64}), tp); got != (rest{Start: 4, End: 4}) {
		t.Errorf("drained unbounded = %v, want empty", got)
	}
	if got := fn.TruncateRestriction(fn.CreateTracker(rest{Start: 4, End: 9}), tp); got != (rest{Start: 4, End: 9}) {
		t.Errorf("drained bounded = %v, want kept", got)
	}
	if got := fn.RestrictionSize(tp, rest{Start: 4, End: 9}); got != 5 {
		t.Errorf("size = %v, want 5", got)
	}
	if got := fn.RestrictionSize(tp, rest{Start: 4, End: math.MaxInt64}); got != 1 {
		t.Errorf("unbounded size = %v, want 1", got)
	}
	d := &discoverFn{}
	if got := d.TruncateRestriction(d.CreateTracker(rest{Start: 3, End: math.MaxInt64}), "t"); got != (rest{Start: 3, End: 3}) {
		t.Errorf("drained discovery = %v", got)
	}
}
