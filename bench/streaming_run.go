package main

// The streaming benchmark's runs: fixed-rate latency runs and the peak
// search, and the analysis of what their records went through.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// stAnalysis is what the records of one phase of a load measured.
type stAnalysis struct {
	Rate          float64
	Dur           time.Duration
	Posts         int
	Records, OK   int
	Errors        int // records sent and not answered 200
	NotSent       int // records still waiting for a connection at the sender's cutoff
	Visible       int // records answered 200 whose row is visible
	Missing       int // records answered 200 whose row is not
	VisibleErrors int // records not answered 200 whose row is visible all the same
	Negative      int // rows committed before the sender had its 200
	// Lat is the end-to-end latency (commit - 200) of the visible records
	// answered 200; ByTable the same by table.
	Lat     stQuantiles
	ByTable [3]stQuantiles
	// HTTP is from each request's due time to its 200 (so it includes
	// waiting for a free connection); Lag from its due time to when the
	// schedule released it (the sender's own lateness).
	HTTP, Lag stQuantiles
	// Achieved is the posts a second whose three records were answered
	// 200, over the phase's length or, if longer, from its start to the
	// last 200 of its records.
	Achieved float64
	// Committed is the posts a second made visible within the phase's
	// window of time (rows committed in it, of any post, over three).
	Committed float64
	Samples   []stSample
	// HTTPSamples and LagSamples are each answered record's HTTP latency
	// and sender lag, at its due time (seconds from the phase's start).
	HTTPSamples, LagSamples []stSample
	Txn                     [3]stTxnStats
	Timeline                []stWindow
}

// stTxnStats describe the transactions (one a bundle of the sink) that
// made a table's rows of the phase visible.
type stTxnStats struct {
	Txns       int
	PerSecond  float64
	RowsPerTxn float64
	// NewestP50 is the median over transactions of the latency of the
	// newest record each one committed: the shortest path through the job.
	NewestP50 time.Duration
	// GapP50 is the median time between consecutive commits.
	GapP50 time.Duration
}

// stWindow is the latency of the records answered in a slice of the phase.
type stWindow struct {
	From, To float64 // seconds from the phase's start
	Lat      stQuantiles
}

// stAnalyze analyses phase p of the load s, given the commits of the
// load's rows (indexed by ind - s.First).
func stAnalyze(s *stSent, p int, commits [3][]stCommit) stAnalysis {
	phase := s.Phases[p]
	start := s.Start
	for _, ph := range s.Phases[:p] {
		start = start.Add(ph.Dur)
	}
	t0, t1 := start.UnixNano(), start.Add(phase.Dur).UnixNano()
	lo, hi := s.PhasePosts[p], s.PhasePosts[p+1]
	a := stAnalysis{Rate: phase.Rate, Dur: phase.Dur, Posts: hi - lo}
	var all, http, lag []time.Duration
	var byTable [3][]time.Duration
	type txn struct {
		at, newest int64
		n          int
	}
	var txns [3]map[int64]*txn
	okPosts := 0
	lastOK := int64(0)
	for t := range 3 {
		txns[t] = map[int64]*txn{}
	}
	for i := lo; i < hi; i++ {
		postOK := true
		for t := range 3 {
			k := 3*i + t
			if s.Due[k] == 0 {
				postOK = false
				continue // not scheduled (interrupted)
			}
			a.Records++
			c := commits[t][i]
			if s.OK[k] == 0 {
				if s.Sent[k] == 0 {
					a.NotSent++
				} else {
					a.Errors++
				}
				postOK = false
				if c.At != 0 {
					a.VisibleErrors++
				}
				continue
			}
			a.OK++
			http = append(http, time.Duration(s.OK[k]-s.Due[k]))
			lag = append(lag, time.Duration(s.Released[k]-s.Due[k]))
			at := float64(s.Due[k]-t0) / 1e9
			a.HTTPSamples = append(a.HTTPSamples, stSample{At: at, Lat: http[len(http)-1]})
			a.LagSamples = append(a.LagSamples, stSample{At: at, Lat: lag[len(lag)-1]})
			lastOK = max(lastOK, s.OK[k])
			if c.At == 0 {
				a.Missing++
				continue
			}
			a.Visible++
			d := time.Duration(c.At - s.OK[k])
			if d < 0 {
				a.Negative++
			}
			all = append(all, d)
			byTable[t] = append(byTable[t], d)
			a.Samples = append(a.Samples, stSample{At: float64(s.OK[k]-t0) / 1e9, Lat: d})
			x := txns[t][c.Xact]
			if x == nil {
				x = &txn{at: c.At}
				txns[t][c.Xact] = x
			}
			x.n++
			x.newest = max(x.newest, s.OK[k])
		}
		if postOK {
			okPosts++
		}
	}
	a.Lat, a.HTTP, a.Lag = stSummarize(all), stSummarize(http), stSummarize(lag)
	for t := range 3 {
		a.ByTable[t] = stSummarize(byTable[t])
	}
	a.Achieved = float64(okPosts) / max(phase.Dur.Seconds(), float64(lastOK-t0)/1e9)

	// Rows of any post of the load committed within the phase's window.
	committed := 0
	for t := range 3 {
		for _, c := range commits[t] {
			if c.At >= t0 && c.At < t1 {
				committed++
			}
		}
	}
	a.Committed = float64(committed) / 3 / phase.Dur.Seconds()

	for t := range 3 {
		var ats []int64
		var newest []time.Duration
		rows := 0
		for _, x := range txns[t] {
			ats = append(ats, x.at)
			newest = append(newest, time.Duration(x.at-x.newest))
			rows += x.n
		}
		if len(ats) == 0 {
			continue
		}
		slices.Sort(ats)
		var gaps []time.Duration
		for i := 1; i < len(ats); i++ {
			gaps = append(gaps, time.Duration(ats[i]-ats[i-1]))
		}
		a.Txn[t] = stTxnStats{Txns: len(ats), PerSecond: float64(len(ats)) / phase.Dur.Seconds(),
			RowsPerTxn: float64(rows) / float64(len(ats)), NewestP50: stSummarize(newest).P50, GapP50: stSummarize(gaps).P50}
	}

	// Ten windows (at most 10 s each, at least 1 s).
	w := max(1, min(10, phase.Dur.Seconds()/10))
	for from := 0.0; from < phase.Dur.Seconds()-1e-9; from += w {
		var lats []time.Duration
		for _, smp := range a.Samples {
			if smp.At >= from && smp.At < from+w {
				lats = append(lats, smp.Lat)
			}
		}
		a.Timeline = append(a.Timeline, stWindow{From: from, To: from + w, Lat: stSummarize(lats)})
	}
	return a
}

// stRun is one fixed-rate run.
type stRun struct {
	Source     string
	Rate       float64
	Prefix     string
	Partitions int
	Shards     int
	Live       time.Duration // job start to the first probe post seen
	A          stAnalysis
	Warmup     stAnalysis
	CPU        map[string]float64
	// PerRecord is each process's CPU time per record answered 200 while
	// the CPU was measured.
	PerRecord  map[string]time.Duration
	Drain      time.Duration // end of the load to the last row becoming visible
	LoadBefore string
	LoadAfter  string
	JobExit    string
	Dials      int64
	FirstError string
}

func (e *stEnv) latencyRun(ctx context.Context, src string, rate float64) (*stRun, error) {
	r := &stRun{Source: src, Rate: rate, Prefix: fmt.Sprintf("%s%d", src, int(rate)), LoadBefore: loadAvg()}
	stLog("%s at %.0f posts/s: starting the job (load average %s)", src, rate, r.LoadBefore)
	j, err := e.startJob(ctx, src, r.Prefix, rate)
	if err != nil {
		return nil, err
	}
	r.Partitions, r.Shards, r.Live = j.partitions, j.shards, j.live
	phases := []stPhase{{"measured", rate, e.o.duration}}
	if e.o.warmup > 0 {
		phases = append([]stPhase{{"warm-up", rate, e.o.warmup}}, phases...)
	}
	stLog("%s at %.0f posts/s: sending for %s (%s of them warm-up)", src, rate, e.o.warmup+e.o.duration, e.o.warmup)
	sent := stSend(ctx, j.target(), phases, 0, e.o.conns, e.o.sendGrace, e.cpu)
	end := time.Now()
	ok := 0
	for _, t := range sent.OK {
		if t != 0 {
			ok++
		}
	}
	n := int64(sent.Posts())
	stLog("%s at %.0f posts/s: %d of %d records answered 200; waiting for the rows", src, rate, ok, len(sent.OK))
	visible, lastAt := j.waitRows(ctx, 0, n, ok, e.o.drainTimeout, 10*time.Minute)
	r.Drain = max(0, lastAt.Sub(end))
	commits, err := j.commits(ctx, 0, n)
	j.stop()
	if err != nil {
		return nil, err
	}
	r.JobExit, r.Dials, r.FirstError = j.exit, sent.Dials, sent.FirstError
	m := len(phases) - 1
	r.A = stAnalyze(sent, m, commits)
	if m > 0 {
		r.Warmup = stAnalyze(sent, 0, commits)
	}
	r.CPU = stCPUBusy(sent.CPU[m], sent.CPU[m+1])
	r.PerRecord = stPerRecord(sent, sent.CPU[m], sent.CPU[m+1])
	r.LoadAfter = loadAvg()
	stLog("%s at %.0f posts/s: %d rows visible; measured: %.0f posts/s answered (HTTP p99 %s), p50 %s p95 %s p99 %s max %s, "+
		"%d missing, %d errors; CPUs busy %.2f (job %.2f)", src, rate, visible, r.A.Achieved, stMS(r.A.HTTP.P99), stMS(r.A.Lat.P50),
		stMS(r.A.Lat.P95), stMS(r.A.Lat.P99), stMS(r.A.Lat.Max), r.A.Missing, r.A.Errors, r.CPU["machine"], r.CPU["stream job"])
	return r, ctx.Err()
}

// stPeakRun is the peak search on one source.
type stPeakRun struct {
	Source     string
	Partitions int
	Shards     int
	Live       time.Duration
	Steps      []stPeakStep
	Peak       float64
	JobExit    string
	LoadBefore string
	LoadAfter  string
}

// stPeakStep is one step's measurements and verdict.
type stPeakStep struct {
	stStep
	A         stAnalysis
	CPU       map[string]float64
	PerRecord map[string]time.Duration
	OK        bool
	Why       string
}

func (e *stEnv) peakRun(ctx context.Context, src string, rates []float64) (*stPeakRun, error) {
	rates = slices.Sorted(slices.Values(rates))
	r := &stPeakRun{Source: src, LoadBefore: loadAvg()}
	stLog("peak on %s: starting the job (load average %s)", src, r.LoadBefore)
	j, err := e.startJob(ctx, src, src+"peak", rates[len(rates)-1])
	if err != nil {
		return nil, err
	}
	r.Partitions, r.Shards, r.Live = j.partitions, j.shards, j.live
	next := int64(0)
	for _, rate := range rates {
		if ctx.Err() != nil {
			break
		}
		stLog("peak on %s: %.0f posts/s for %s", src, rate, e.o.peakStep)
		sent := stSend(ctx, j.target(), []stPhase{{"step", rate, e.o.peakStep}}, next, e.o.conns, e.o.sendGrace, e.cpu)
		ok := 0
		for _, t := range sent.OK {
			if t != 0 {
				ok++
			}
		}
		n := int64(sent.Posts())
		j.waitRows(ctx, next, next+n, ok, e.o.drainTimeout, 2*e.o.peakStep+e.o.drainTimeout)
		commits, err := j.commits(ctx, next, next+n)
		if err != nil {
			j.stop()
			return nil, err
		}
		next += n
		a := stAnalyze(sent, 0, commits)
		dur := e.o.peakStep.Seconds()
		st := stPeakStep{
			stStep: stStep{Rate: rate, Achieved: a.Achieved, Errors: a.Errors, Missing: a.Missing,
				SendLagLate: stLateMedian(a.LagSamples, dur), SendLagP99: a.Lag.P99,
				HTTPLate: stLateMedian(a.HTTPSamples, dur), HTTPSlope: stTrend(a.HTTPSamples, dur, 0.25), HTTPP99: a.HTTP.P99,
				Slope: stTrend(a.Samples, dur, 0.25), LateP50: stLateMedian(a.Samples, dur)},
			A: a, CPU: stCPUBusy(sent.CPU[0], sent.CPU[1]), PerRecord: stPerRecord(sent, sent.CPU[0], sent.CPU[1]),
		}
		st.OK, st.Why = stJudge(st.stStep, e.o.criteria)
		r.Steps = append(r.Steps, st)
		verdict := "sustained"
		if !st.OK {
			verdict = "NOT sustained: " + st.Why
		}
		stLog("peak on %s: %.0f posts/s: %.0f answered/s (HTTP last-quarter p50 %s, p99 %s, slope %.3f), %.0f visible/s, p50 %s p99 %s, "+
			"slope %.3f, last-quarter p50 %s, CPUs busy %.2f: %s", src, rate, a.Achieved, stMS(st.HTTPLate), stMS(st.HTTPP99), st.HTTPSlope,
			a.Committed, stMS(a.Lat.P50), stMS(a.Lat.P99), st.Slope, stMS(st.LateP50), st.CPU["machine"], verdict)
		if !st.OK {
			break
		}
	}
	j.stop()
	r.JobExit = j.exit
	steps := make([]stStep, len(r.Steps))
	for i, s := range r.Steps {
		steps[i] = s.stStep
	}
	r.Peak = stPeak(steps, e.o.criteria)
	r.LoadAfter = loadAvg()
	return r, ctx.Err()
}

// stBusiest are the processes by CPUs kept busy, most first, without the
// machine's total.
func stBusiest(cpu map[string]float64) []string {
	var names []string
	for n := range cpu {
		if n != "machine" {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(cpu[b], cpu[a]) })
	return names
}

// stPerRecord is each process's CPU time between two readings divided by
// the records of the load answered 200 between them.
func stPerRecord(s *stSent, a, b stCPUTimes) map[string]time.Duration {
	lo, hi := a.At.UnixNano(), b.At.UnixNano()
	n := 0
	for _, t := range s.OK {
		if t >= lo && t < hi {
			n++
		}
	}
	out := map[string]time.Duration{}
	if n == 0 {
		return out
	}
	for name, t := range b.Procs {
		if t0, ok := a.Procs[name]; ok {
			out[name] = (t - t0) / time.Duration(n)
		}
	}
	return out
}
