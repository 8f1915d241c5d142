package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestOrderedKeepsOrderAndBound(t *testing.T) {
	o := Ordered[int]{Workers: 3}
	var running, peak atomic.Int32
	var got []int
	emit := func(r int) { got = append(got, r) }
	for i := range 40 {
		o.Submit(func() int {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			// Later tasks finish first.
			time.Sleep(time.Duration(40-i) * 100 * time.Microsecond)
			running.Add(-1)
			return i
		}, emit)
	}
	o.Drain(emit)
	if len(got) != 40 {
		t.Fatalf("%d results, want 40", len(got))
	}
	for i, r := range got {
		if r != i {
			t.Fatalf("result %d is %d: out of order", i, r)
		}
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want at most 3 (and more than 1)", p)
	}
}
