package kafkaio

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

// watermarkEstimator is a partition's watermark: the newest timestamp
// emitted minus delay, pushed to now minus delay while the partition is
// caught up. Its state, the watermark in milliseconds, travels with the
// restriction across checkpoints; delay comes from the DoFn's config.
type watermarkEstimator struct {
	state int64
	delay time.Duration

	// limit, when limited, caps the watermark reported to the runner at
	// the lowest of the Read's partitions in this process (see holds); the
	// state, the partition's own, is what travels.
	limit   int64
	limited bool
}

// CurrentWatermark is read by the SDK when it checkpoints or splits.
func (e *watermarkEstimator) CurrentWatermark() time.Time {
	if e.limited && e.limit < e.state {
		return time.UnixMilli(e.limit)
	}
	return time.UnixMilli(e.state)
}

// ObserveTimestamp is called by the SDK with the event time of every
// element the DoFn emits.
func (e *watermarkEstimator) ObserveTimestamp(t time.Time) {
	e.advance(t.Add(-e.delay))
}

// idle records that the partition is caught up at now: any record still to
// come will be stamped about now or later.
func (e *watermarkEstimator) idle(now time.Time) {
	e.advance(now.Add(-e.delay))
}

// advance moves the watermark forward, never back.
func (e *watermarkEstimator) advance(t time.Time) {
	if ms := t.UnixMilli(); ms > e.state {
		e.state = ms
	}
}

// unlisted is the discovery estimator's state before a topic's first
// listing (the watermark of the impulse's elements).
var unlisted = mtime.MinTimestamp.Milliseconds()

// discoveryWatermark is the discover step's watermark. After each listing
// it moves to the time of the next one: partitions found then are emitted
// at that time, so it never holds the records' watermark back between
// listings. Its first state also tells the first listing (which uses the
// configured start position) from later ones (new partitions, read whole).
type discoveryWatermark struct {
	state int64
}

func (e *discoveryWatermark) CurrentWatermark() time.Time {
	return time.UnixMilli(e.state)
}

func (e *discoveryWatermark) first() bool { return e.state <= unlisted }

// set moves the watermark to t, never back.
func (e *discoveryWatermark) set(t time.Time) {
	if ms := t.UnixMilli(); ms > e.state {
		e.state = ms
	}
}

// staleHold is how long a partition's hold counts without news from it: a
// partition read by another worker, or finished without saying so, must
// not hold the others for ever.
const staleHold = 10 * time.Second

// holds is the latest watermark of each partition of each Read read in
// this process.
//
// A runner should hold an SDF's output watermark at the lowest of its
// restrictions' watermarks. Prism (v2.77.0) instead takes the estimate of
// the last bundle it persisted, so with one restriction per partition, a
// partition that is caught up would move the watermark to now while
// another still reads an hour-old backlog, whose records would all be
// late. Reporting the lowest watermark of the Read's partitions known here
// restores that: on prism, which runs every partition in one process,
// exactly; on a distributed runner it only holds back more, never less,
// than the runner does itself.
var holds = &partitionHolds{m: map[string]map[string]hold{}}

type partitionHolds struct {
	mu sync.Mutex
	m  map[string]map[string]hold // Read ID → "topic/partition" → hold
}

type hold struct {
	wm int64 // milliseconds
	at time.Time
}

func (h *partitionHolds) set(read, partition string, wm int64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.m[read]
	if ps == nil {
		ps = map[string]hold{}
		h.m[read] = ps
	}
	ps[partition] = hold{wm: wm, at: now}
}

// drop forgets a partition that is done.
func (h *partitionHolds) drop(read, partition string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m[read], partition)
	if len(h.m[read]) == 0 {
		delete(h.m, read)
	}
}

// min is the lowest watermark of read's partitions heard from within stale.
func (h *partitionHolds) min(read string, now time.Time, stale time.Duration) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var low int64
	found := false
	for _, ho := range h.m[read] {
		if now.Sub(ho.at) > stale {
			continue
		}
		if !found || ho.wm < low {
			low, found = ho.wm, true
		}
	}
	return low, found
}

// newReadID names one Read transform, for holds.
func newReadID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
