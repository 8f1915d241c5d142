package kafkaio

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

func TestWatermarkFollowsTimestampsMinusDelay(t *testing.T) {
	fn := &readFn{MaxDelay: 2 * time.Second}
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(mtime.MinTimestamp, rest{}, topicPartition{}))
	if got := we.CurrentWatermark(); !got.Equal(mtime.MinTimestamp.ToTime()) {
		t.Fatalf("initial watermark %v, want the beginning of time", got)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	we.ObserveTimestamp(t0.Add(10 * time.Second))
	if got, want := we.CurrentWatermark(), t0.Add(8*time.Second); !got.Equal(want) {
		t.Errorf("watermark %v, want %v (newest timestamp minus the delay)", got, want)
	}
	// An out-of-order record does not move it back.
	we.ObserveTimestamp(t0)
	if got, want := we.CurrentWatermark(), t0.Add(8*time.Second); !got.Equal(want) {
		t.Errorf("watermark %v went back from %v", got, want)
	}
	// Caught up: now minus the delay, however old the last record was.
	now := t0.Add(time.Hour)
	we.idle(now)
	if got, want := we.CurrentWatermark(), now.Add(-2*time.Second); !got.Equal(want) {
		t.Errorf("idle watermark %v, want %v", got, want)
	}
	// A later idle before the clock passes it does not move it back either.
	we.idle(t0)
	if got, want := we.CurrentWatermark(), now.Add(-2*time.Second); !got.Equal(want) {
		t.Errorf("watermark %v went back from %v", got, want)
	}
	// The state is what travels across checkpoints.
	again := fn.CreateWatermarkEstimator(fn.WatermarkEstimatorState(we))
	if !again.CurrentWatermark().Equal(we.CurrentWatermark()) {
		t.Errorf("restored watermark %v, want %v", again.CurrentWatermark(), we.CurrentWatermark())
	}
}

func TestProcessingTimeWatermarkHasNoDelay(t *testing.T) {
	fn := &readFn{MaxDelay: time.Minute, ProcessingTime: true}
	we := fn.CreateWatermarkEstimator(0)
	now := time.UnixMilli(1_700_000_000_000)
	we.ObserveTimestamp(now)
	if got := we.CurrentWatermark(); !got.Equal(now) {
		t.Errorf("watermark %v, want %v", got, now)
	}
}

func TestDiscoveryWatermark(t *testing.T) {
	fn := &discoverFn{}
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(0, rest{}, "t"))
	if !we.first() {
		t.Fatal("a new estimator is not at its first listing")
	}
	next := time.UnixMilli(1_700_000_010_000)
	we.set(next)
	if we.first() || !we.CurrentWatermark().Equal(next) {
		t.Errorf("after a listing: first = %v, watermark %v; want false, %v", we.first(), we.CurrentWatermark(), next)
	}
	we.set(next.Add(-time.Second))
	if !we.CurrentWatermark().Equal(next) {
		t.Errorf("watermark went back to %v", we.CurrentWatermark())
	}
	if got := fn.CreateWatermarkEstimator(fn.WatermarkEstimatorState(we)); got.first() {
		t.Error("restored estimator forgot the first listing")
	}
}

// The watermark reported for a partition is the lowest of its Read's
// partitions heard from lately, while its own travels on unchanged.
func TestHoldsShareTheLowestWatermark(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	read := t.Name()
	holds.set(read, "t/0", 100, now)
	holds.set(read, "t/1", 50, now.Add(-time.Minute)) // not heard from for a minute: another worker's, or gone
	holds.set(read, "t/2", 300, now)
	holds.set(read+"-other", "t/0", 1, now) // another Read
	if low, ok := holds.min(read, now, 10*time.Second); !ok || low != 100 {
		t.Errorf("min = %d, %v; want 100", low, ok)
	}
	holds.drop(read, "t/0")
	if low, _ := holds.min(read, now, 10*time.Second); low != 300 {
		t.Errorf("min after a partition is done = %d, want 300", low)
	}
	holds.drop(read, "t/1")
	holds.drop(read, "t/2")
	holds.drop(read+"-other", "t/0")
	if _, ok := holds.min(read, now, time.Second); ok {
		t.Error("holds left after every partition is done")
	}

	we := &watermarkEstimator{state: 500, limit: 200, limited: true}
	if got := we.CurrentWatermark().UnixMilli(); got != 200 {
		t.Errorf("limited watermark %d, want 200", got)
	}
	if got := (&readFn{}).WatermarkEstimatorState(we); got != 500 {
		t.Errorf("state %d, want the partition's own 500", got)
	}
	we.limit = 900
	if got := we.CurrentWatermark().UnixMilli(); got != 500 {
		t.Errorf("watermark %d, want 500: a limit above it does not raise it", got)
	}
}
