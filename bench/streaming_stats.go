package main

// The streaming benchmark's pure arithmetic: latency quantiles, the trend
// of latency within a step of the peak search, and the verdict on a step.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// stQuantiles summarise a set of latencies.
type stQuantiles struct {
	N                       int
	Min, P50, P95, P99, Max time.Duration
	Mean                    time.Duration
}

// stQuantile is the nearest-rank quantile q (0 < q ≤ 1) of sorted: the
// smallest value at least a fraction q of the values are at or below.
func stQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// stSummarize computes the quantiles of lats (which it does not modify).
func stSummarize(lats []time.Duration) stQuantiles {
	if len(lats) == 0 {
		return stQuantiles{}
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	return stQuantiles{
		N: len(s), Min: s[0], Max: s[len(s)-1],
		P50: stQuantile(s, 0.50), P95: stQuantile(s, 0.95), P99: stQuantile(s, 0.99),
		Mean: time.Duration(sum / float64(len(s))),
	}
}

// stSample is one record's end-to-end latency and when it was answered,
// in seconds from the start of its step.
type stSample struct {
	At  float64
	Lat time.Duration
}

// stBucketMedians splits the samples with from ≤ At < to into buckets of
// width seconds and returns each non-empty bucket's centre and median
// latency (in seconds).
func stBucketMedians(samples []stSample, from, to, width float64) (xs, ys []float64) {
	if width <= 0 || to <= from {
		return nil, nil
	}
	n := int(math.Ceil((to - from) / width))
	buckets := make([][]time.Duration, n)
	for _, s := range samples {
		if s.At < from || s.At >= to {
			continue
		}
		i := min(int((s.At-from)/width), n-1)
		buckets[i] = append(buckets[i], s.Lat)
	}
	for i, b := range buckets {
		if len(b) == 0 {
			continue
		}
		slices.Sort(b)
		xs = append(xs, from+(float64(i)+0.5)*width)
		ys = append(ys, stQuantile(b, 0.5).Seconds())
	}
	return xs, ys
}

// stSlope is the least-squares slope of ys over xs; 0 with fewer than two
// distinct xs.
func stSlope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// stTrend is how fast the median latency grows (seconds of latency per
// second of sending) over the part of a step of length dur after its first
// skip fraction (the transition into the step), in 1-second buckets. A
// pipeline that keeps up has a slope near 0; one that processes a fraction
// f of what is sent has a slope near 1-f, since its backlog, and so the
// wait of each new record, grows by that much every second.
func stTrend(samples []stSample, dur, skip float64) float64 {
	xs, ys := stBucketMedians(samples, skip*dur, dur, 1)
	return stSlope(xs, ys)
}

// stStep is what a step of the peak search measured.
type stStep struct {
	Rate     float64 // posts a second scheduled
	Achieved float64 // posts a second whose three records were all answered 200
	// Errors counts records not answered 200; Missing the records answered
	// 200 whose row never became visible.
	Errors, Missing int
	// SendLagLate is the median of how late the sender's schedule released
	// the requests of the step's last quarter after they were due: large
	// when the sender itself cannot keep the rate (its CPU, or making the
	// bodies). SendLagP99 is the 99th percentile over the step.
	SendLagLate, SendLagP99 time.Duration
	// HTTPLate is the median time from being due to the 200 of the
	// requests due in the last quarter, waiting for a free connection
	// included, and HTTPSlope its growth (as Slope): large when the
	// gateway (or the broker behind it) answers too slowly for the rate,
	// so that requests queue. HTTPP99 is the 99th percentile over the step.
	HTTPLate  time.Duration
	HTTPSlope float64
	HTTPP99   time.Duration
	// Slope is stTrend's of the end-to-end latency; LateP50 the median
	// end-to-end latency of the records of the step's last quarter.
	Slope   float64
	LateP50 time.Duration
}

// stCriteria say when a step is sustained: when nothing queues up without
// bound, at the sender, at the gateway or in the pipeline. A stall (other
// work taking the CPUs for a moment) raises the tail but not the medians
// of the last quarter nor the trends.
type stCriteria struct {
	MinRate    float64       // fraction of the scheduled rate that must be answered (0.95)
	MaxLag     time.Duration // largest median sender lag, and HTTP latency, in the last quarter (1 s)
	MaxSlope   float64       // largest growth of the HTTP and end-to-end latencies within the step, s/s (0.05)
	MaxLateP50 time.Duration // largest median end-to-end latency in the last quarter (5 s)
}

var stDefaultCriteria = stCriteria{MinRate: 0.95, MaxLag: time.Second, MaxSlope: 0.05, MaxLateP50: 5 * time.Second}

// stJudge says whether a step was sustained and, if not, which test it
// failed first: the sender's (it could not send at the rate), the
// gateway's (requests failed, or queued up), then the pipeline's (rows
// missing, latency growing or too high).
func stJudge(s stStep, c stCriteria) (ok bool, why string) {
	switch {
	case s.SendLagLate > c.MaxLag:
		return false, fmt.Sprintf("sender: it released the requests of the last quarter %s late (median)", stMS(s.SendLagLate))
	case s.Errors > 0:
		return false, fmt.Sprintf("gateway and broker: %d requests not answered 200", s.Errors)
	case s.Achieved < c.MinRate*s.Rate || s.HTTPLate > c.MaxLag || s.HTTPSlope > c.MaxSlope:
		return false, fmt.Sprintf("gateway and broker: %.0f posts/s answered of %.0f scheduled; requests of the last quarter "+
			"answered %s after they were due (median), growing %.0f ms per second", s.Achieved, s.Rate, stMS(s.HTTPLate), 1000*s.HTTPSlope)
	case s.Missing > 0:
		return false, fmt.Sprintf("pipeline: %d rows never became visible", s.Missing)
	case s.Slope > c.MaxSlope:
		return false, fmt.Sprintf("pipeline: latency grew %.0f ms per second of the step", 1000*s.Slope)
	case s.LateP50 > c.MaxLateP50:
		return false, fmt.Sprintf("pipeline: median latency %s at the end of the step", stMS(s.LateP50))
	}
	return true, ""
}

// stLateMedian is the median latency of the samples in the last quarter
// of a step of dur seconds.
func stLateMedian(samples []stSample, dur float64) time.Duration {
	var late []time.Duration
	for _, s := range samples {
		if s.At >= 0.75*dur {
			late = append(late, s.Lat)
		}
	}
	return stSummarize(late).P50
}

// stPeak is the highest sustained rate of steps run in increasing order,
// up to the first one that was not sustained; 0 if the first was not.
func stPeak(steps []stStep, c stCriteria) float64 {
	best := 0.0
	for _, s := range slices.SortedFunc(slices.Values(steps), func(a, b stStep) int { return cmp.Compare(a.Rate, b.Rate) }) {
		if ok, _ := stJudge(s, c); !ok {
			break
		}
		best = s.Rate
	}
	return best
}

// stMS formats a duration in milliseconds.
func stMS(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
