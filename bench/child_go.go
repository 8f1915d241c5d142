package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/segmentio/encoding/json"

	"github.com/pinpipe/pinpipe/io/smb"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

// The plain Go program: the transforms package's functions called directly,
// one process, a goroutine per core, no Beam.

// inputFiles lists a table's S3-sink objects, as batch.InputGlobs names
// them.
func inputFiles(in, table string) ([]string, error) {
	var out []string
	for _, ext := range []string{"*.json", "*.json.gz"} {
		m, err := filepath.Glob(filepath.Join(in, "topics", "pinpipe."+table, "partition=*", ext))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

type fileJob struct{ table, name string }

func allFileJobs(in string) ([]fileJob, error) {
	var jobs []fileJob
	for _, t := range transforms.Tables {
		names, err := inputFiles(in, t)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			jobs = append(jobs, fileJob{t, n})
		}
	}
	return jobs, nil
}

// eachLine calls fn with every non-blank line of a file, without its line
// ending.
func eachLine(name string, fn func([]byte)) error {
	var data []byte
	var err error
	if strings.HasSuffix(name, ".gz") {
		var f *os.File
		if f, err = os.Open(name); err != nil {
			return err
		}
		defer f.Close()
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		data, err = io.ReadAll(gz)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	} else if data, err = os.ReadFile(name); err != nil {
		return err
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) > 0 {
			fn(line)
		}
	}
	return nil
}

// cleaner is one worker's counts of the clean-only step.
type cleaner struct {
	counts map[string]*tableCounts
}

func newCleaner() *cleaner {
	c := &cleaner{counts: map[string]*tableCounts{}}
	for _, t := range transforms.Tables {
		c.counts[t] = &tableCounts{Rows: unknown}
	}
	return c
}

func (c *cleaner) line(table string, line []byte) {
	tc := c.counts[table]
	tc.Read++
	def, ok := transforms.TableOf(table)
	if !ok {
		return
	}
	if _, _, err := def.CleanRecord(line); err == nil {
		tc.Clean++
	}
}

// cleanAll cleans every input file on GOMAXPROCS goroutines.
func cleanAll(in string) ([]*cleaner, error) {
	jobs, err := allFileJobs(in)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("no input files under %s", in)
	}
	ch := make(chan fileJob)
	workers := runtime.GOMAXPROCS(0)
	cs := make([]*cleaner, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		cs[w] = newCleaner()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if errs[w] != nil {
					continue
				}
				errs[w] = eachLine(j.name, func(l []byte) { cs[w].line(j.table, l) })
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func sumCounts(cs []*cleaner) map[string]tableCounts {
	out := map[string]tableCounts{}
	for _, t := range transforms.Tables {
		sum := tableCounts{Rows: unknown}
		for _, c := range cs {
			sum.Read += c.counts[t].Read
			sum.Clean += c.counts[t].Clean
		}
		out[t] = sum
	}
	return out
}

// goClean is the clean-only step: every record cleaned, the rows counted and
// dropped.
func goClean(in string) (childResult, error) {
	tm := newPhaseTimer()
	cs, err := cleanAll(in)
	if err != nil {
		return childResult{}, err
	}
	tm.done("clean")
	return childResult{Tables: sumCounts(cs), Phases: tm.phases}, nil
}

// goFull is the whole job with the batch job's sort-merge-bucket
// algorithm and code, without Beam: batch.RunCleaner cleans each file into
// sorted runs per bucket on a goroutine per core, batch.MergeBucket merges
// each bucket into its table files and fact runs, batch.MergeFacts counts
// the distinct facts, and the partials are finished into the insights. The
// honest "no runner" baseline: the same work, minus the runner.
func goFull(in, out string) (childResult, error) {
	ctx := context.Background()
	tm := newPhaseTimer()
	jobs, err := allFileJobs(in)
	if err != nil {
		return childResult{}, err
	}
	if len(jobs) == 0 {
		return childResult{}, fmt.Errorf("no input files under %s", in)
	}
	buckets := *shards
	if buckets <= 0 {
		var size int64
		for _, j := range jobs {
			if fi, err := os.Stat(j.name); err == nil {
				size += fi.Size()
			}
		}
		buckets = smb.BucketsFor(size, batch.BytesPerBucket, batch.MinBuckets)
	}
	runDir := filepath.Join(out, "_temp")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return childResult{}, err
	}
	fs, err := filesystem.New(ctx, runDir)
	if err != nil {
		return childResult{}, err
	}
	defer fs.Close()
	workers := runtime.GOMAXPROCS(0)

	// Clean: each worker a RunCleaner per table.
	type cleanOut struct {
		runs  []batch.RunFile
		dead  []transforms.DeadLetter
		stats []transforms.TableStats
		err   error
	}
	outs := make([]cleanOut, workers)
	ch := make(chan fileJob)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &outs[w]
			rc := map[string]*batch.RunCleaner{}
			for _, t := range transforms.Tables {
				rc[t] = batch.NewRunCleaner(fs, t, buckets, runDir, (96<<20)/workers/len(transforms.Tables))
			}
			for j := range ch {
				if o.err != nil {
					continue
				}
				runs, dead, st, err := rc[j.table].CleanFile(ctx, j.name)
				o.runs, o.dead, o.err = append(o.runs, runs...), append(o.dead, dead...), err
				o.stats = append(o.stats, st)
			}
			for _, c := range rc {
				runs, err := c.Flush(ctx)
				o.runs = append(o.runs, runs...)
				if o.err == nil {
					o.err = err
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	res := childResult{Tables: map[string]tableCounts{}}
	sources := make([]map[string][]string, buckets)
	for b := range sources {
		sources[b] = map[string][]string{}
	}
	var dead []transforms.DeadLetter
	for _, o := range outs {
		if o.err != nil {
			return res, o.err
		}
		for _, r := range o.runs {
			sources[r.Bucket][r.Table] = append(sources[r.Bucket][r.Table], r.Path)
		}
		for _, st := range o.stats {
			tc := res.Tables[st.Table]
			tc.Read += st.Read
			tc.Clean += st.Clean
			res.Tables[st.Table] = tc
		}
		dead = append(dead, o.dead...)
	}
	tm.done("clean to runs")

	// Merge each bucket, up to one per core.
	cfg := batch.MergeConfig{Format: *format, TablesDir: filepath.Join(out, "tables"), RunID: "go", RunDir: runDir, Buckets: buckets}
	type mergeOut struct {
		partials *transforms.Partials
		stats    []transforms.TableStats
		facts    []batch.RunFile
		err      error
	}
	merged := make([]mergeOut, buckets)
	sem := make(chan struct{}, workers)
	for b := range buckets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m := &merged[b]
			m.partials, m.stats, _, m.facts, m.err = batch.MergeBucket(ctx, fs, fs, cfg, b, sources[b])
		}()
	}
	wg.Wait()
	all := transforms.NewPartials()
	factRuns := make([][]string, buckets)
	for _, m := range merged {
		if m.err != nil {
			return res, m.err
		}
		all.Merge(m.partials)
		for _, st := range m.stats {
			tc := res.Tables[st.Table]
			tc.Rows += st.Rows
			res.Tables[st.Table] = tc
		}
		for _, r := range m.facts {
			factRuns[r.Bucket] = append(factRuns[r.Bucket], r.Path)
		}
	}
	tm.done("merge buckets, write tables")

	factPartials := make([]*transforms.Partials, buckets)
	errs := make([]error, buckets)
	for b := range buckets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			factPartials[b], errs[b] = batch.MergeFacts(ctx, fs, factRuns[b])
		}()
	}
	wg.Wait()
	for b := range buckets {
		if errs[b] != nil {
			return res, errs[b]
		}
		all.Merge(factPartials[b])
	}
	if err := writeInsights(filepath.Join(out, "insights"), all.Finish()); err != nil {
		return res, err
	}
	if err := writeJSONLines(filepath.Join(out, "deadletter", "deadletter.jsonl"), dead); err != nil {
		return res, err
	}
	os.RemoveAll(runDir)
	tm.done("distinct facts, insights")
	res.Phases = tm.phases
	return res, nil
}

func writeJSONLines[R any](name string, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range rows {
		if err := enc.Encode(&rows[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeInsights(dir string, in transforms.Insights) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, n := range in.Named() {
		b, err := json.MarshalIndent(n.Rows, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, n.Name+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
