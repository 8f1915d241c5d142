package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/encoding/json"

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

// cleaner is one worker's output: counts, and, when keeping rows, the clean
// rows by shard and the dead letters.
type cleaner struct {
	keep   bool
	counts map[string]*tableCounts
	shards []transforms.Batch
	dead   []transforms.DeadLetter
}

func newCleaner(keep bool, nShards int) *cleaner {
	c := &cleaner{keep: keep, counts: map[string]*tableCounts{}}
	for _, t := range transforms.Tables {
		c.counts[t] = &tableCounts{Rows: unknown}
	}
	if keep {
		c.shards = make([]transforms.Batch, nShards)
	}
	return c
}

func (c *cleaner) line(table string, line []byte) {
	tc := c.counts[table]
	tc.Read++
	var err error
	switch table {
	case transforms.TablePin:
		var r transforms.Pin
		if r, _, err = transforms.CleanPinRecord(line); err == nil && c.keep {
			b := &c.shards[transforms.ShardOf(r.Ind, len(c.shards))]
			b.Pins = append(b.Pins, r)
		}
	case transforms.TableGeo:
		var r transforms.Geo
		if r, _, err = transforms.CleanGeoRecord(line); err == nil && c.keep {
			b := &c.shards[transforms.ShardOf(r.Ind, len(c.shards))]
			b.Geos = append(b.Geos, r)
		}
	case transforms.TableUser:
		var r transforms.User
		if r, _, err = transforms.CleanUserRecord(line); err == nil && c.keep {
			b := &c.shards[transforms.ShardOf(r.Ind, len(c.shards))]
			b.Users = append(b.Users, r)
		}
	}
	if err != nil {
		if c.keep {
			reason := err.(*transforms.RejectError).Reason
			c.dead = append(c.dead, transforms.NewDeadLetter(table, reason, line))
		}
		return
	}
	tc.Clean++
}

// cleanAll cleans every input file on GOMAXPROCS goroutines.
func cleanAll(in string, keep bool, nShards int) ([]*cleaner, error) {
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
		cs[w] = newCleaner(keep, nShards)
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
	cs, err := cleanAll(in, false, 0)
	if err != nil {
		return childResult{}, err
	}
	tm.done("clean")
	return childResult{Tables: sumCounts(cs), Phases: tm.phases}, nil
}

// goFull is the whole job: clean, dedup and join by shard with
// transforms.DedupJoinBatch, merge the Partials into the insights, and write
// the tables, the insights and the dead letters as the batch job does.
func goFull(in, out string) (childResult, error) {
	tm := newPhaseTimer()
	cs, err := cleanAll(in, true, *shards)
	if err != nil {
		return childResult{}, err
	}
	tm.done("clean")
	res := childResult{Tables: sumCounts(cs)}

	type shardOut struct {
		batch    transforms.Batch
		partials *transforms.Partials
		stats    []transforms.TableStats
		err      error
	}
	outs := make([]shardOut, *shards)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for s := range *shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var b transforms.Batch
			for _, c := range cs {
				b.Pins = append(b.Pins, c.shards[s].Pins...)
				b.Geos = append(b.Geos, c.shards[s].Geos...)
				b.Users = append(b.Users, c.shards[s].Users...)
				c.shards[s] = transforms.Batch{}
			}
			o := &outs[s]
			o.batch, o.partials, o.stats = transforms.DedupJoinBatch(s, b)
			o.err = writeShard(filepath.Join(out, "tables"), *format, o.batch)
		}()
	}
	wg.Wait()
	tm.done("dedup+join+write tables")

	all := transforms.NewPartials()
	for s := range outs {
		if outs[s].err != nil {
			return res, outs[s].err
		}
		all.Merge(outs[s].partials)
		for _, st := range outs[s].stats {
			tc := res.Tables[st.Table]
			if tc.Rows == unknown {
				tc.Rows = 0
			}
			tc.Rows += st.Rows
			res.Tables[st.Table] = tc
		}
	}
	insights := all.Finish()
	if err := writeInsights(filepath.Join(out, "insights"), insights); err != nil {
		return res, err
	}
	var dead []transforms.DeadLetter
	for _, c := range cs {
		dead = append(dead, c.dead...)
	}
	if err := writeJSONLines(filepath.Join(out, "deadletter", "deadletter.jsonl"), dead); err != nil {
		return res, err
	}
	tm.done("insights")
	res.Phases = tm.phases
	return res, nil
}

func writeShard(dir, format string, b transforms.Batch) error {
	name := func(table string) string {
		return filepath.Join(dir, table, fmt.Sprintf("part-%05d.%s", b.Shard, format))
	}
	if err := writeRows(name(transforms.TablePin), format, b.Pins); err != nil {
		return err
	}
	if err := writeRows(name(transforms.TableGeo), format, b.Geos); err != nil {
		return err
	}
	return writeRows(name(transforms.TableUser), format, b.Users)
}

// writeRows writes one file of rows the way the batch job's table writer
// does: parquet-go with Snappy, or JSON lines.
func writeRows[R any](name, format string, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	if format == "jsonl" {
		return writeJSONLines(name, rows)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	pw := parquet.NewGenericWriter[R](f, parquet.Compression(&parquet.Snappy))
	if _, err := pw.Write(rows); err != nil {
		f.Close()
		return err
	}
	if err := pw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
