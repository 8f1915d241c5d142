package kinesisio

import (
	"sync/atomic"
	"time"
)

// watermarkEstimator holds a Read element's output watermark in Unix ms.
//
// It does not observe emitted timestamps: an element reads several shards,
// and a record from one shard says nothing about the others. The reader sets
// it from the restriction instead (the oldest of its shards' watermarks), and
// it only moves forward. The state is atomic because the runner reads it
// from another goroutine when it asks for progress or a split.
type watermarkEstimator struct {
	state atomic.Int64
}

func newWatermarkEstimator(ms int64) *watermarkEstimator {
	we := &watermarkEstimator{}
	we.state.Store(ms)
	return we
}

// CurrentWatermark returns the watermark.
func (e *watermarkEstimator) CurrentWatermark() time.Time {
	return time.UnixMilli(e.state.Load())
}

// advance moves the watermark to ms if that is later; 0 (unknown) is ignored.
func (e *watermarkEstimator) advance(ms int64) {
	if ms == 0 {
		return
	}
	for {
		cur := e.state.Load()
		if ms <= cur || e.state.CompareAndSwap(cur, ms) {
			return
		}
	}
}
