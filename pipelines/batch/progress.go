package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"

	"github.com/pinpipe/pinpipe/io/files"
)

// Progress is how far a run has read its input, for Options.Progress.
type Progress struct {
	// Objects of ObjectsTotal input objects are read, Records records and
	// Bytes bytes from them, in Elapsed since the pipeline started.
	Objects, ObjectsTotal int
	Records, Bytes        int64
	Elapsed               time.Duration
	// Final is the last report, once the pipeline has ended.
	Final bool
}

// DefaultProgressInterval is Options.ProgressInterval's default.
const DefaultProgressInterval = 5 * time.Second

// objectProgress is what the clean stage read from one input object. The
// worker that read it writes it as a small file in the run's temp dir,
// named by the object (a retried bundle rewrites the same file), and the
// launcher sums those files: no state shared between processes but the
// filesystem the run already writes to, so it works on every runner.
type objectProgress struct {
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
}

const progressPrefix = "progress-"

// writeProgress records that object was read. A failure only costs a
// progress line, so it is logged, not returned.
func writeProgress(ctx context.Context, runDir, object string, p objectProgress) {
	sum := sha256.Sum256([]byte(object))
	b, _ := json.Marshal(p)
	if err := files.WriteFile(ctx, files.Join(runDir, progressPrefix+hex.EncodeToString(sum[:12])+".json"), b); err != nil {
		log.Warnf(ctx, "batch: recording the progress of %s: %v", object, err)
	}
}

// watchProgress reports the run's progress every interval until stop is
// called; stop reports once more, as the final line.
func watchProgress(ctx context.Context, runDir string, total int, interval time.Duration, report func(Progress)) (stop func()) {
	start := time.Now()
	seen := map[string]objectProgress{}
	poll := func(final bool) {
		names, _ := files.Expand(ctx, files.Join(runDir, progressPrefix+"*.json"))
		p := Progress{ObjectsTotal: total, Final: final}
		for _, name := range names {
			op, ok := seen[name]
			if !ok {
				b, err := files.ReadFile(ctx, name)
				if err != nil || json.Unmarshal(b, &op) != nil {
					continue // not all there yet: the next poll reads it
				}
				seen[name] = op
			}
			p.Objects++
			p.Records += op.Records
			p.Bytes += op.Bytes
		}
		p.Elapsed = time.Since(start)
		report(p)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				poll(false)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		poll(true)
	}
}
