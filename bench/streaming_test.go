package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestStQuantile(t *testing.T) {
	var lats []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 ms, unsorted
		lats = append(lats, ms(float64(i)))
	}
	q := stSummarize(lats)
	if q.N != 100 || q.Min != ms(1) || q.Max != ms(100) || q.P50 != ms(50) || q.P95 != ms(95) || q.P99 != ms(99) {
		t.Errorf("1..100 ms: %+v", q)
	}
	if q.Mean != ms(50.5) {
		t.Errorf("mean %v, want 50.5ms", q.Mean)
	}
	if lats[0] != ms(100) {
		t.Error("stSummarize sorted its input")
	}
	// Nearest rank: of 10 values, p95 and p99 are the largest, p50 the 5th.
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if q := stSummarize(ten); q.P50 != 5 || q.P95 != 10 || q.P99 != 10 {
		t.Errorf("1..10: %+v", q)
	}
	if q := stSummarize([]time.Duration{7}); q.P50 != 7 || q.P99 != 7 || q.Min != 7 {
		t.Errorf("one value: %+v", q)
	}
	if q := stSummarize(nil); q.N != 0 || q.P99 != 0 {
		t.Errorf("none: %+v", q)
	}
}

func TestStSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	if s := stSlope(xs, []float64{1, 3, 5, 7, 9}); math.Abs(s-2) > 1e-12 {
		t.Errorf("slope of 2x+1: %v", s)
	}
	if s := stSlope(xs, []float64{4, 4, 4, 4, 4}); s != 0 {
		t.Errorf("flat: %v", s)
	}
	if s := stSlope([]float64{1}, []float64{3}); s != 0 {
		t.Errorf("one point: %v", s)
	}
	if s := stSlope([]float64{2, 2}, []float64{1, 5}); s != 0 {
		t.Errorf("same x: %v", s)
	}
}

// samples makes a step of dur seconds at n records a second whose latency
// is base plus growth per second of the step, plus noise.
func samples(dur float64, n int, base time.Duration, growth, noise float64, seed uint64) []stSample {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []stSample
	for i := range int(dur * float64(n)) {
		at := float64(i) / float64(n)
		lat := base.Seconds() + growth*at + noise*(r.Float64()-0.5)
		out = append(out, stSample{At: at, Lat: time.Duration(lat * float64(time.Second))})
	}
	return out
}

func TestStTrend(t *testing.T) {
	// Keeping up: latency around 200 ms, noisy (±150 ms), no trend.
	if s := stTrend(samples(20, 3000, 200*time.Millisecond, 0, 0.3, 1), 20, 0.25); math.Abs(s) > 0.01 {
		t.Errorf("steady: slope %v", s)
	}
	// Processing 80% of the load: the backlog grows by 0.2 s a second.
	if s := stTrend(samples(20, 3000, 200*time.Millisecond, 0.2, 0.3, 2), 20, 0.25); math.Abs(s-0.2) > 0.02 {
		t.Errorf("falling behind: slope %v, want 0.2", s)
	}
	// A burst in the first quarter (the transition) is skipped.
	smp := samples(20, 1000, 100*time.Millisecond, 0, 0, 3)
	for i := range smp {
		if smp[i].At < 4 {
			smp[i].Lat = time.Duration((4 - smp[i].At) * float64(time.Second))
		}
	}
	if s := stTrend(smp, 20, 0.25); math.Abs(s) > 1e-9 {
		t.Errorf("burst at the start: slope %v", s)
	}
	xs, ys := stBucketMedians([]stSample{{0.1, ms(10)}, {0.5, ms(30)}, {0.9, ms(20)}, {2.5, ms(5)}}, 0, 3, 1)
	if len(xs) != 2 || xs[0] != 0.5 || xs[1] != 2.5 || ys[0] != 0.02 || ys[1] != 0.005 {
		t.Errorf("bucket medians: %v %v", xs, ys)
	}
}

func TestStJudge(t *testing.T) {
	c := stDefaultCriteria
	good := stStep{Rate: 1000, Achieved: 999, SendLagLate: ms(1), SendLagP99: ms(2), HTTPLate: ms(3), HTTPP99: ms(10), Slope: 0.01, LateP50: ms(200)}
	// A stall raises the tails, not the last quarter's medians nor the trends.
	stalled := good
	stalled.SendLagP99, stalled.HTTPP99 = 3*time.Second, 4*time.Second
	if ok, why := stJudge(stalled, c); !ok {
		t.Errorf("a step with a stall not sustained: %s", why)
	}
	if ok, why := stJudge(good, c); !ok {
		t.Errorf("good step not sustained: %s", why)
	}
	cases := []struct {
		name   string
		change func(*stStep)
		prefix string
	}{
		{"sender lag", func(s *stStep) { s.SendLagLate = 2 * time.Second; s.Achieved = 700 }, "sender"},
		{"errors", func(s *stStep) { s.Errors = 3 }, "gateway"},
		{"slow gateway", func(s *stStep) { s.Achieved = 800; s.HTTPP99 = 3 * time.Second }, "gateway"},
		{"gateway short", func(s *stStep) { s.Achieved = 800 }, "gateway"},
		{"gateway late", func(s *stStep) { s.HTTPLate = 1500 * time.Millisecond }, "gateway"},
		{"gateway queueing", func(s *stStep) { s.HTTPSlope = 0.1 }, "gateway"},
		{"missing", func(s *stStep) { s.Missing = 1 }, "pipeline"},
		{"growing", func(s *stStep) { s.Slope = 0.2 }, "pipeline"},
		{"high", func(s *stStep) { s.LateP50 = 6 * time.Second }, "pipeline"},
	}
	for _, tc := range cases {
		s := good
		tc.change(&s)
		ok, why := stJudge(s, c)
		if ok || len(why) < len(tc.prefix) || why[:len(tc.prefix)] != tc.prefix {
			t.Errorf("%s: ok=%v why=%q, want not sustained by the %s", tc.name, ok, why, tc.prefix)
		}
	}
	steps := []stStep{good, good, good, good}
	for i := range steps {
		steps[i].Rate = float64(1000 * (i + 1))
		steps[i].Achieved = steps[i].Rate
	}
	steps[2].Slope = 0.3 // 3000 fails; 4000 "passes" but comes after a failure
	if p := stPeak(steps, c); p != 2000 {
		t.Errorf("peak %v, want 2000", p)
	}
	steps[0].Errors = 1
	if p := stPeak(steps, c); p != 0 {
		t.Errorf("peak %v with the first step failed, want 0", p)
	}
}

func TestStAnalyze(t *testing.T) {
	// Two phases of 1 s at 10 posts/s: 10 warm-up posts, 10 measured.
	s := &stSent{Phases: []stPhase{{"warm-up", 10, time.Second}, {"measured", 10, time.Second}}, First: 100,
		PhasePosts: []int{0, 10, 20}, Start: time.Unix(1000, 0)}
	s.Due, s.Released, s.Sent, s.OK = make([]int64, 60), make([]int64, 60), make([]int64, 60), make([]int64, 60)
	var commits [3][]stCommit
	for t := range 3 {
		commits[t] = make([]stCommit, 20)
	}
	for k := range 60 {
		due := s.Start.UnixNano() + int64(k)*int64(time.Second)/30
		s.Due[k], s.Released[k], s.Sent[k], s.OK[k] = due, due+int64(time.Millisecond), due+int64(time.Millisecond), due+int64(2*time.Millisecond)
		// Each post's records commit 100 ms after their 200, in
		// transactions of one post.
		commits[k%3][k/3] = stCommit{At: s.OK[k] + int64(100*time.Millisecond), Xact: int64(k / 3)}
	}
	// In the measured phase: post 12's geo failed (no 200), post 13's pin
	// was never sent (cut off), post 15's user row is missing, post 17's
	// pin row committed 1 s late.
	s.OK[3*12+1] = 0
	s.Sent[3*13], s.OK[3*13] = 0, 0
	commits[0][13] = stCommit{}
	commits[1][12] = stCommit{}
	commits[2][15] = stCommit{}
	commits[0][17].At += int64(time.Second)
	a := stAnalyze(s, 1, commits)
	if a.Posts != 10 || a.Records != 30 || a.OK != 28 || a.Errors != 1 || a.NotSent != 1 || a.Missing != 1 || a.Visible != 27 || a.VisibleErrors != 0 {
		t.Errorf("counts: %+v", a)
	}
	if a.Lat.N != 27 || a.Lat.P50 != ms(100) || a.Lat.Max != ms(1100) || a.Lat.Min != ms(100) {
		t.Errorf("latency: %+v", a.Lat)
	}
	if a.HTTP.P50 != ms(2) || a.Lag.P50 != ms(1) {
		t.Errorf("http %v lag %v", a.HTTP, a.Lag)
	}
	if a.Achieved != 8 { // posts 12 and 13 had a record not answered
		t.Errorf("achieved %v, want 8", a.Achieved)
	}
	if a.Txn[0].Txns != 9 || a.Txn[0].RowsPerTxn != 1 || a.Txn[0].NewestP50 != ms(100) {
		t.Errorf("pin transactions: %+v", a.Txn[0])
	}
	if len(a.Timeline) != 1 || a.Timeline[0].From != 0 || a.Timeline[0].To != 1 || a.Timeline[0].Lat.N != 27 { // windows of 1 s at least
		t.Errorf("timeline: %+v", a.Timeline)
	}
	// A record answered late stretches the span the rate is taken over:
	// the last 200 came 2 s after the measured phase began.
	s.OK[3*19+2] = s.Start.Add(3 * time.Second).UnixNano()
	if a := stAnalyze(s, 1, commits); a.Achieved != 4 {
		t.Errorf("achieved %v over a 2 s span, want 4", a.Achieved)
	}
	if len(a.HTTPSamples) != 28 || a.HTTPSamples[0].Lat != ms(2) || a.LagSamples[0].Lat != ms(1) || a.HTTPSamples[0].At != 0 {
		t.Errorf("HTTP and lag samples: %d %+v %+v", len(a.HTTPSamples), a.HTTPSamples[0], a.LagSamples[0])
	}
	if d := stLateMedian([]stSample{{1, ms(1)}, {7.5, ms(9)}, {8, ms(5)}, {9, ms(7)}}, 10); d != ms(7) {
		t.Errorf("last-quarter median %v, want 7ms", d)
	}
	w := stAnalyze(s, 0, commits)
	if w.Records != 30 || w.Visible != 30 || w.Lat.Max != ms(100) {
		t.Errorf("warm-up: %+v", w)
	}
}

// TestStGeneratedPostsClean: every post the benchmark sends cleans into a
// row of each table, so that a missing row is the pipeline's doing.
func TestStGeneratedPostsClean(t *testing.T) {
	for _, ind := range []int64{0, 1, 2, 3, 999, 123456, stProbeBase} {
		for i := ind; i < ind+300; i++ {
			recs := stGenerator.Records(stGenerator.Post(i))
			p, _, err1 := transforms.CleanPinRecord(recs["pin"])
			g, _, err2 := transforms.CleanGeoRecord(recs["geo"])
			u, _, err3 := transforms.CleanUserRecord(recs["user"])
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatalf("post %d: %v %v %v", i, err1, err2, err3)
			}
			if p.Ind != i || g.Ind != i || u.Ind != i {
				t.Fatalf("post %d: inds %d %d %d", i, p.Ind, g.Ind, u.Ind)
			}
		}
	}
}

func TestStTarget(t *testing.T) {
	k := stTarget{source: "kafka", gateway: "http://gw", prefix: "p"}
	if k.url("pin") != "http://gw/topics/p.pin" || k.method() != "POST" || string(k.body("pin", 7, []byte(`{"index":7}`))) != `{"records":[{"value":{"index":7}}]}` {
		t.Errorf("kafka: %s %s %s", k.method(), k.url("pin"), k.body("pin", 7, []byte(`{"index":7}`)))
	}
	n := stTarget{source: "kinesis", gateway: "http://gw", prefix: "p"}
	want := `{"StreamName":"streaming-p-geo","Data":{"ind":7},"PartitionKey":"7"}`
	if n.url("geo") != "http://gw/streams/streaming-p-geo/record" || n.method() != "PUT" || string(n.body("geo", 7, []byte(`{"ind":7}`))) != want {
		t.Errorf("kinesis: %s %s %s", n.method(), n.url("geo"), n.body("geo", 7, []byte(`{"ind":7}`)))
	}
	if stShards(stOptions{}, 100) != 1 || stShards(stOptions{}, 1000) != 2 || stShards(stOptions{}, 4000) != 5 || stShards(stOptions{shards: 3}, 4000) != 3 {
		t.Error("stShards")
	}
}

func TestStPerRecord(t *testing.T) {
	base := time.Unix(1000, 0)
	s := &stSent{OK: []int64{0, base.Add(time.Second).UnixNano(), base.Add(2 * time.Second).UnixNano(),
		base.Add(3 * time.Second).UnixNano(), base.Add(20 * time.Second).UnixNano()}}
	a := stCPUTimes{At: base, Procs: map[string]time.Duration{"gateway": time.Second, "kfake": 0}}
	b := stCPUTimes{At: base.Add(10 * time.Second), Procs: map[string]time.Duration{"gateway": 1300 * time.Millisecond, "kfake": 30 * time.Millisecond, "new": time.Second}}
	per := stPerRecord(s, a, b) // three records answered within [a, b)
	if per["gateway"] != 100*time.Millisecond || per["kfake"] != 10*time.Millisecond || len(per) != 2 {
		t.Errorf("per record: %v", per)
	}
	busy := stCPUBusy(a, b)
	if busy["gateway"] != 0.03 || busy["kfake"] != 0.003 {
		t.Errorf("busy: %v", busy)
	}
}
