package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/runners"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn2x0[beam.X, func(int64)](&countRowsFn{})
	register.DoFn3x0[int, batch.RunFile, func(int64)](&countRunsFn{})
	register.DoFn2x1[context.Context, int64, error](&writeCountFn{})
	register.Emitter1[int64]()
}

// countRowsFn is the clean-only pipeline's counting sink, for any table's
// rows: each bundle counts its rows and emits the count once, when it
// finishes.
type countRowsFn struct{ n int64 }

func (f *countRowsFn) StartBundle(_ func(int64))              { f.n = 0 }
func (f *countRowsFn) ProcessElement(_ beam.X, _ func(int64)) { f.n++ }
func (f *countRowsFn) FinishBundle(emit func(int64))          { emitCount(&f.n, emit) }

// countRunsFn counts the rows of the sorted runs the clean stage wrote.
type countRunsFn struct{ n int64 }

func (f *countRunsFn) StartBundle(_ func(int64)) { f.n = 0 }
func (f *countRunsFn) ProcessElement(_ int, r batch.RunFile, _ func(int64)) {
	f.n += r.Rows
}
func (f *countRunsFn) FinishBundle(emit func(int64)) { emitCount(&f.n, emit) }

func emitCount(n *int64, emit func(int64)) {
	if *n > 0 {
		emit(*n)
	}
	*n = 0
}

// writeCountFn writes the total to a local file the parent reads.
type writeCountFn struct{ Path string }

func (f *writeCountFn) ProcessElement(_ context.Context, n int64) error {
	return os.WriteFile(f.Path, []byte(strconv.FormatInt(n, 10)), 0o644)
}

// beamClean runs a clean-only Beam pipeline on the runner chosen by
// --runner: files.ReadLines, the per-record clean composites and a counting
// sink per table; or, byFiles, files.MatchFiles, batch.CleanToRuns (the
// batch job's clean stage: rows sorted into runs on disk) and a counting sink.
func beamClean(ctx context.Context, in, out string, byFiles bool) (childResult, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return childResult{}, err
	}
	p, s := beam.NewPipelineWithRoot()
	for _, t := range transforms.Tables {
		ts := s.Scope(t)
		globs := beam.CreateList(ts, batch.InputGlobs(in, "pinpipe", t))
		var counts beam.PCollection
		if byFiles {
			// As the batch job cleans: whole files as elements, rows
			// written as sorted runs per bucket.
			runs, _, _ := batch.CleanToRuns(ts, t, max(*shards, batch.MinBuckets), filepath.Join(out, "runs"), files.MatchFiles(ts, globs))
			counts = beam.ParDo(ts, &countRunsFn{}, runs)
		} else {
			rows := transforms.Clean(ts, t, files.ReadLines(ts, globs)).Rows
			counts = beam.ParDo(ts, &countRowsFn{}, rows)
		}
		beam.ParDo0(ts, &writeCountFn{Path: filepath.Join(out, t+".count")}, stats.Sum(ts, counts))
	}
	tm := newPhaseTimer()
	if _, err := runners.Run(ctx, p); err != nil {
		return childResult{}, fmt.Errorf("clean-only pipeline: %w", err)
	}
	tm.done("pipeline")
	res := childResult{Tables: map[string]tableCounts{}, Phases: tm.phases}
	for _, t := range transforms.Tables {
		b, err := os.ReadFile(filepath.Join(out, t+".count"))
		if err != nil {
			return res, fmt.Errorf("the %s count: %w", t, err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return res, err
		}
		res.Tables[t] = tableCounts{Read: unknown, Clean: n, Rows: unknown}
	}
	return res, nil
}

// beamFull runs the pinpipe batch job in this process, for profiling it: on
// prism with the loopback environment, the runner and the SDK worker share
// the process, so one profile sees both.
func beamFull(ctx context.Context, in, out string) (childResult, error) {
	tm := newPhaseTimer()
	sum, err := batch.Run(ctx, batch.Options{Input: in, TopicPrefix: "pinpipe", Output: out, Format: *format, Shards: *shards})
	if err != nil {
		return childResult{}, err
	}
	tm.done("pipeline")
	res := childResult{Tables: map[string]tableCounts{}, Phases: tm.phases}
	for t, st := range sum {
		res.Tables[t] = tableCounts{Read: st.Read, Clean: st.Clean, Rows: st.Rows, Rejected: st.Rejected, RejectedBy: nonNil(st.RejectedBy)}
	}
	return res, nil
}
