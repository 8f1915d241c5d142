package emulator

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets (16 per power of two,
// so a percentile is within about 4% of the true value), in constant
// memory however long the emulator runs.
type histogram struct {
	counts [64 * subBuckets]int64
	n      int64
}

const subBits = 4
const subBuckets = 1 << subBits

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - subBits - 1 // v >> exp is in [16, 32)
	return (exp+1)*subBuckets + int((v>>exp)-subBuckets)
}

// bucketMid is a value in the middle of bucket b.
func bucketMid(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	exp := b/subBuckets - 1
	lo := (uint64(subBuckets) + uint64(b%subBuckets)) << exp
	return lo + (uint64(1)<<exp)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1), or 0 for no samples.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = max(1, min(rank, h.n))
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(b)) * time.Microsecond
		}
	}
	return 0
}
