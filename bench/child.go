package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// unknown marks a count an engine does not report.
const unknown = -1

// tableCounts are one table's record counts as an engine reports them.
type tableCounts struct {
	// Read is every non-blank input line; Clean the lines that became a
	// row; Rows what is left after deduplication (one per ind).
	Read  int64 `json:"read"`
	Clean int64 `json:"clean"`
	Rows  int64 `json:"rows"`
	// Rejected are the lines rejected (dead letters), RejectedBy the same
	// by reason (transforms.Reason*), for an engine that counts them by
	// reason; with RejectedBy nil the engine did not count them itself (see
	// rejected).
	Rejected   int64            `json:"rejected"`
	RejectedBy map[string]int64 `json:"rejected_by"`
}

// rejected is the table's rejected lines: as the engine counted them, else
// read minus clean (every line read becomes a row or a reject), else
// unknown.
func (c tableCounts) rejected() int64 {
	switch {
	case c.RejectedBy != nil:
		return c.Rejected
	case c.Read != unknown && c.Clean != unknown:
		return c.Read - c.Clean
	}
	return unknown
}

// childResult is what a child reports to the parent.
type childResult struct {
	Tables map[string]tableCounts `json:"tables"`
	// Phases are the engine's own timings of its steps, in seconds, in
	// order, for the observations.
	Phases []phase `json:"phases,omitempty"`
}

type phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// phaseTimer records the steps of a child.
type phaseTimer struct {
	last   time.Time
	phases []phase
}

func newPhaseTimer() *phaseTimer { return &phaseTimer{last: time.Now()} }

func (t *phaseTimer) done(name string) {
	now := time.Now()
	t.phases = append(t.phases, phase{name, now.Sub(t.last).Seconds()})
	t.last = now
}

func runChild(ctx context.Context, mode string) error {
	if *input == "" || *result == "" {
		return fmt.Errorf("-child needs -input and -result")
	}
	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if *memOut != "" {
		stop := watchPeakHeap(*memOut + ".peak")
		defer stop()
	}
	var res childResult
	var err error
	switch mode {
	case "beam-clean":
		res, err = beamClean(ctx, *input, *output, false)
	case "beam-cleanfiles":
		res, err = beamClean(ctx, *input, *output, true)
	case "beam-full":
		res, err = beamFull(ctx, *input, *output)
	case "go-clean":
		res, err = goClean(*input)
	case "go-full":
		res, err = goFull(*input, *output)
	case "duckdb-clean":
		res, err = duckClean(ctx, *input)
	case "duckdb-full":
		res, err = duckFull(ctx, *input, *output)
	default:
		return fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		return err
	}
	if *memOut != "" {
		if err := writeHeapProfile(*memOut); err != nil {
			return err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(*result, b, 0o644)
}

// watchPeakHeap writes a heap profile to name whenever the live heap grows
// 10% past the largest seen, so that the last one written shows what was
// live near the peak.
func watchPeakHeap(name string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			live := sample[0].Value.Uint64()
			if live < peak+peak/10 || live < 64<<20 {
				continue
			}
			peak = live
			f, err := os.Create(name)
			if err != nil {
				return
			}
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
			fmt.Fprintf(os.Stderr, "bench: live heap %d MiB, heap profile written to %s\n", live>>20, name)
		}
	}()
	return func() { close(done); <-finished }
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// nonNil returns m, or an empty map when m is nil: a summary without rejects
// still counted them.
func nonNil(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
