// Package batch is the daily bounded pipeline: it reads the raw records the
// Kafka-to-S3 sink landed, cleans them with the shared transforms, keeps one
// row per ind, writes the clean tables, the eight insights, the dead letters
// and a summary, and publishes them with one atomic commit.
//
// The tables are sort-merge buckets (io/smb): the clean stage writes its
// rows as runs sorted by ind under the temp location and hands the runner
// only the runs' names; one merge per bucket streams its runs (and, for an
// incremental run, the bucket's committed file) into the bucket's new table
// files, deduplicating, joining and folding the insights as it goes. Memory
// is bounded by the clean stage's buffers and the merges' read buffers,
// whatever the size of the input or of the tables.
package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/io/smb"
	"github.com/pinpipe/pinpipe/pipelines/batch/report"
	"github.com/pinpipe/pinpipe/runners"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn3x1[context.Context, beam.X, func(string), error](&writeJSONFn{})
	register.Combiner2[[]OutputFile, OutputFile](&collectFilesFn{})
	register.Function2x0[string, func(OutputFile)](deadLetterFile)
	register.Function2x0[int, func(int, RunFile)](bucketMarker)
}

// Options configure one batch run.
type Options struct {
	// Input is the directory or s3://bucket/prefix holding topics/<prefix>.<table>/partition=*/.
	Input       string
	TopicPrefix string
	// Output is the directory or s3://bucket/prefix the results go to.
	Output string
	// Format of the clean tables: parquet (default), jsonl or iceberg.
	Format string
	// Iceberg says where an iceberg run's tables go and which catalog
	// registers them (Format iceberg only). Its warehouse defaults to
	// <Output>/iceberg, its namespace is the topic prefix.
	Iceberg icebergio.Options
	// Shards is the number of buckets the tables are written in (one file
	// per table and bucket). 0 picks it from the input's size on an
	// output's first run (about BytesPerBucket each, at least MinBuckets);
	// an incremental run keeps its output's.
	Shards int
	// Warehouse, when set, is the DSN of a PostgreSQL database the clean
	// tables are loaded into after the run committed (see io/postgres).
	Warehouse string
	// Incremental processes only the input objects the output's commit does
	// not list yet, merging them into its clean tables and recomputing the
	// insights over all of them.
	Incremental bool
	// MaxRejectRate is the data-quality gate: per table, the largest
	// fraction of this run's records (Rejected/Read) that may be rejected.
	// A run over it commits as usual (its dead letters too) and then fails
	// with a RejectRateError, without loading the warehouse. A table not
	// in the map, and a nil map, are not checked.
	MaxRejectRate map[string]float64
	// Progress, when set, is called every ProgressInterval (default
	// DefaultProgressInterval) while the pipeline runs, with what it has
	// read so far, and once more when it has ended.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Bucket sizing, for an output's first run.
const (
	BytesPerBucket = 64 << 20
	MinBuckets     = 16
)

func (o *Options) validate() error {
	if o.Input == "" || o.Output == "" {
		return fmt.Errorf("batch: --input and --output are required")
	}
	if o.TopicPrefix == "" {
		return fmt.Errorf("batch: --topic-prefix is required")
	}
	if o.Format == "" {
		o.Format = FormatParquet
	}
	if !slices.Contains(Formats, o.Format) {
		return fmt.Errorf("batch: --table-format must be one of %s, not %q", strings.Join(Formats, ", "), o.Format)
	}
	if o.Format == FormatIceberg {
		if o.Iceberg.Warehouse == "" {
			o.Iceberg.Warehouse = files.Join(o.Output, icebergio.WarehouseDir)
		}
		o.Iceberg.Namespace = o.TopicPrefix
		if err := o.Iceberg.Check(); err != nil {
			return err
		}
		if o.Warehouse != "" {
			return fmt.Errorf("batch: --warehouse (the PostgreSQL load) reads Parquet or JSON-lines outputs, not --table-format=iceberg; query the Iceberg tables instead")
		}
	}
	if o.Shards < 0 {
		return fmt.Errorf("batch: --shards must be positive (or 0 to pick from the input's size), not %d", o.Shards)
	}
	return nil
}

// tablesDir is where a run writes the clean tables' bucket files
// (<dir>/<table>/part-NNNNN-<run>.<format>): <output>/tables, or for
// iceberg the tables' locations in the warehouse.
func tablesDir(o Options) string {
	if o.Format == FormatIceberg {
		return o.Iceberg.Root()
	}
	return files.Join(o.Output, TablesDir)
}

// InputGlobs are the S3-sink objects of one table.
func InputGlobs(input, topicPrefix, table string) []string {
	dir := files.Join(input, "topics", topicPrefix+"."+table, "partition=*")
	return []string{files.Join(dir, "*.json"), files.Join(dir, "*.json.gz")}
}

// Output paths, relative to Options.Output.
const (
	TablesDir     = "tables"
	InsightsDir   = "insights"
	DeadLetterDir = "deadletter"
	SummaryFile   = "summary.json"
	ReportFile    = "report.html"
	// legacyManifestFile is what incremental runs of the layout before
	// sort-merge buckets kept; a full run replaces such an output.
	legacyManifestFile = "manifest.json"
)

// Files a run leaves in its temp directory for the launcher to commit.
const (
	runInsightsFile = "insights.json"
	runSummaryFile  = "summary.json"
	runFilesFile    = "files.json"
)

// plan is what one run does, decided by the launcher before the pipeline
// is built.
type plan struct {
	RunID   string
	RunDir  string
	Buckets int
	// Inputs are the objects to read per table; nil reads the input globs
	// (a dry run, which lists nothing).
	Inputs map[string][]string
	// Previous is the commit merged into, for an incremental run.
	Previous *Commit
}

// build adds the batch pipeline to s.
func build(s beam.Scope, o Options, p plan) {
	var runs, dead, stats []beam.PCollection
	for _, t := range transforms.Tables {
		ts := s.Scope(t)
		var names beam.PCollection
		if p.Inputs != nil {
			names = beam.Reshuffle(ts, beam.CreateList(ts, append([]string{}, p.Inputs[t]...)))
		} else {
			names = files.MatchFiles(ts, beam.CreateList(ts, InputGlobs(o.Input, o.TopicPrefix, t)))
		}
		r, d, st := cleanToRuns(ts, t, p.Buckets, p.RunDir, names, o.Progress != nil)
		runs, dead, stats = append(runs, r), append(dead, d), append(stats, st)
	}
	ms := s.Scope("batch.MergeBuckets")
	buckets := make([]int, p.Buckets)
	for i := range buckets {
		buckets[i] = i
	}
	runs = append(runs, beam.ParDo(ms, bucketMarker, beam.CreateList(ms, buckets)))
	grouped := beam.GroupByKey(ms, beam.Flatten(ms, runs...))
	mf := &mergeBucketFn{Config: MergeConfig{Format: fileFormat(o.Format), TablesDir: tablesDir(o), RunID: p.RunID, RunDir: p.RunDir, Buckets: p.Buckets}}
	if p.Previous != nil {
		mf.Previous = p.Previous.Tables
	}
	outs := beam.ParDoN(ms, mf, grouped)
	partials, mergeStats, tableFiles, factRuns := outs[0], outs[1], outs[2], outs[3]

	fs := s.Scope("batch.DistinctFacts")
	factPartials := beam.ParDo(fs, &mergeFactsFn{RunDir: p.RunDir}, beam.GroupByKey(fs, factRuns))
	insights := transforms.ComputeInsights(s, beam.Flatten(s, partials, factPartials))
	beam.ParDo(s, &writeJSONFn{Path: files.Join(p.RunDir, runInsightsFile)}, insights)

	deadFiles := files.WriteJSONLines(s, files.Join(o.Output, DeadLetterDir), "deadletter-"+p.RunID, beam.Flatten(s, dead...))
	// An empty OutputFile, so that the list is written when there are no files.
	outFiles := beam.Flatten(s, tableFiles, beam.ParDo(s, deadLetterFile, deadFiles), beam.Create(s, OutputFile{}))
	beam.ParDo(s, &writeJSONFn{Path: files.Join(p.RunDir, runFilesFile)}, beam.Combine(s, &collectFilesFn{}, outFiles))

	summary := transforms.Summarize(s, beam.Flatten(s, append(stats, mergeStats)...))
	beam.ParDo(s, &writeJSONFn{Path: files.Join(p.RunDir, runSummaryFile)}, summary)
}

// CleanToRuns is the batch job's clean stage: it cleans whole input files
// of one table (a PCollection of names) with the shared cleaning rules and
// writes the clean rows as runs sorted by ind into runDir. It returns the
// runs (KV<bucket, RunFile>), the dead letters and per-bundle TableStats.
func CleanToRuns(s beam.Scope, table string, buckets int, runDir string, names beam.PCollection) (runs, dead, stats beam.PCollection) {
	return cleanToRuns(s, table, buckets, runDir, names, false)
}

// cleanToRuns is CleanToRuns that, with progress, also records each object
// it read in runDir (see watchProgress).
func cleanToRuns(s beam.Scope, table string, buckets int, runDir string, names beam.PCollection, progress bool) (runs, dead, stats beam.PCollection) {
	s = s.Scope("batch.CleanToRuns")
	return beam.ParDo3(s, &writeRunsFn{Table: table, Buckets: buckets, RunDir: runDir, Progress: progress}, names)
}

func bucketMarker(b int, emit func(int, RunFile)) { emit(b, RunFile{Bucket: b}) }

func deadLetterFile(name string, emit func(OutputFile)) { emit(OutputFile{Path: name}) }

// collectFilesFn gathers the files a run wrote into one list.
type collectFilesFn struct{}

func (collectFilesFn) AddInput(a []OutputFile, f OutputFile) []OutputFile { return append(a, f) }
func (collectFilesFn) MergeAccumulators(a, b []OutputFile) []OutputFile   { return append(a, b...) }

// writeJSONFn writes its one element as a JSON file.
type writeJSONFn struct{ Path string }

func (f *writeJSONFn) ProcessElement(ctx context.Context, v beam.X, _ func(string)) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return files.WriteFile(ctx, f.Path, b)
}

// tempLocation is Beam's --temp_location (the Dataflow runner's flag,
// registered by every binary that links it), or <output>/_temp.
func tempLocation(output string) string {
	if f := flag.Lookup("temp_location"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return files.Join(output, "_temp")
}

// Run runs the batch job on the runner chosen by --runner and commits its
// output, then loads the warehouse when one is set, writes the report and
// returns the summary. A dry run returns a nil summary and touches nothing.
func Run(ctx context.Context, o Options) (transforms.Summary, error) {
	start := time.Now()
	if err := o.validate(); err != nil {
		return nil, err
	}
	// A mistake in the runner flags must fail before the output is touched.
	if err := runners.Validate(); err != nil {
		return nil, err
	}
	runID := newRunID()
	runDir, allRuns := tempDirs(tempLocation(o.Output), o.Output, runID)
	if runners.DryRun() {
		// A dry run translates and prints the job, and neither reads nor
		// changes the output.
		p, s := beam.NewPipelineWithRoot()
		build(s, o, plan{RunID: runID, RunDir: runDir, Buckets: max(o.Shards, MinBuckets)})
		_, err := runners.Run(ctx, p)
		return nil, err
	}
	if o.Warehouse != "" {
		// Fail before the pipeline, not after it.
		if err := postgres.Check(ctx, o.Warehouse); err != nil {
			return nil, err
		}
	}
	l, err := acquireLease(ctx, o.Output, runID)
	if err != nil {
		return nil, err
	}
	defer l.release(ctx)

	pl, err := planRun(ctx, o, runID, runDir)
	if err != nil {
		return nil, err
	}
	if o.Format == FormatIceberg {
		// A run that died after its commit may not have published all of it
		// to the catalog: readers get it now, not only after this run.
		if prev, err := ReadCommit(ctx, o.Output); err != nil {
			return nil, err
		} else if prev != nil && prev.Format == FormatIceberg {
			if err := publish(ctx, o, prev); err != nil {
				return nil, err
			}
		}
	}
	// Runs of this output that died left their temp files; the lease says
	// none of them is alive.
	if stale, err := files.Expand(ctx, allRuns); err == nil {
		files.RemoveFiles(ctx, stale...)
	}
	if o.Incremental && pl.Previous != nil && countInputs(pl.Inputs) == 0 {
		// A quiet day: nothing new, nothing changes, but what a run that died
		// after its commit left undone (views, garbage) is done now.
		if err := writeViews(ctx, o.Output, pl.Previous); err != nil {
			return nil, err
		}
		if err := collectGarbage(ctx, o, pl.Previous); err != nil {
			return nil, err
		}
		return transforms.NewSummary(nil), nil
	}

	p, s := beam.NewPipelineWithRoot()
	build(s, o, pl)
	stopProgress := func() {}
	if o.Progress != nil {
		every := o.ProgressInterval
		if every <= 0 {
			every = DefaultProgressInterval
		}
		stopProgress = watchProgress(ctx, runDir, countInputs(pl.Inputs), every, o.Progress)
	}
	_, err = runners.Run(ctx, p)
	stopProgress()
	if err != nil {
		return nil, fmt.Errorf("batch pipeline: %w", err)
	}
	c, err := pl.commit(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	crashPoint(crashBeforeCommit)
	if err := writeCommit(ctx, o.Output, c); err != nil {
		return nil, fmt.Errorf("committing: %w", err)
	}
	crashPoint(crashAfterCommit)
	// Committed. What follows is derived from the commit, and a later run
	// writes it again if this one dies first.
	pipelineTime := time.Since(start)
	var publishPhase []report.Phase
	if o.Format == FormatIceberg {
		t := time.Now()
		if err := publish(ctx, o, c); err != nil {
			return nil, err
		}
		publishPhase = []report.Phase{{Name: "iceberg publish", Duration: time.Since(t)}}
	}
	if err := writeViews(ctx, o.Output, c); err != nil {
		return nil, err
	}
	if err := collectGarbage(ctx, o, c); err != nil {
		return nil, fmt.Errorf("removing files the commit replaced: %w", err)
	}
	crashPoint(crashBeforeRelease)
	if names, err := files.Expand(ctx, files.Join(runDir, "*")); err == nil {
		files.RemoveFiles(ctx, names...)
	}
	phases := append([]report.Phase{{Name: "pipeline", Duration: pipelineTime}}, publishPhase...)
	if err := checkRejectRates(c.Summary, o.MaxRejectRate, o.Output); err != nil {
		// Committed, dead letters and all, for a look at what was rejected;
		// the warehouse keeps what it had.
		if rerr := writeReport(ctx, o, c, start, phases); rerr != nil {
			return nil, rerr
		}
		return c.Summary, err
	}
	if o.Warehouse != "" {
		t := time.Now()
		if err := postgres.LoadTables(ctx, o.Warehouse, files.Join(o.Output, TablesDir), o.Format); err != nil {
			return nil, err
		}
		phases = append(phases, report.Phase{Name: "warehouse load", Duration: time.Since(t)})
	}
	if err := writeReport(ctx, o, c, start, phases); err != nil {
		return nil, err
	}
	return c.Summary, nil
}

func countInputs(in map[string][]string) int {
	n := 0
	for _, names := range in {
		n += len(names)
	}
	return n
}

// publish makes the Iceberg tables' current snapshots what commit c holds
// (see io/icebergio); a table already at c's run is left as it is.
func publish(ctx context.Context, o Options, c *Commit) error {
	r := icebergio.Run{ID: c.RunID, CommittedAt: c.CommittedAt, Buckets: c.Layout.Buckets, Insights: c.Insights,
		Tables: map[string][]icebergio.File{}, Published: func(string) { crashPoint(crashMidPublish) }}
	for _, f := range c.Tables {
		r.Tables[f.Table] = append(r.Tables[f.Table], icebergio.File{Path: f.Path, Bucket: f.Bucket})
	}
	for _, f := range c.DeadLetters {
		r.DeadLetters = append(r.DeadLetters, f.Path)
	}
	return icebergio.Publish(ctx, o.Iceberg, r)
}

// planRun reads the output's commit, lists the input and decides the
// layout: an incremental run reads only objects the commit does not list,
// and merges into the commit's buckets.
func planRun(ctx context.Context, o Options, runID, runDir string) (plan, error) {
	pl := plan{RunID: runID, RunDir: runDir, Inputs: map[string][]string{}}
	prev, err := ReadCommit(ctx, o.Output)
	if err != nil {
		return pl, err
	}
	if o.Incremental && prev == nil {
		if _, err := files.ReadFile(ctx, files.Join(o.Output, legacyManifestFile)); err == nil {
			return pl, fmt.Errorf("incremental: %s was written by an older pinpipe (it has %s, no %s); run once without --incremental to rebuild it in the sort-merge-bucket layout, then incremental runs continue from there",
				o.Output, legacyManifestFile, CommitFile)
		}
	}
	done := map[string]bool{}
	if o.Incremental && prev != nil {
		if prev.TopicPrefix != o.TopicPrefix || prev.Format != o.Format || (o.Shards != 0 && o.Shards != prev.Layout.Buckets) {
			return pl, fmt.Errorf("incremental: %s was written with --topic-prefix=%s --table-format=%s --shards=%d; run with the same, or without --incremental to rebuild (and re-bucket) it",
				files.Join(o.Output, CommitFile), prev.TopicPrefix, prev.Format, prev.Layout.Buckets)
		}
		pl.Previous = prev
		for _, in := range prev.Inputs {
			done[in] = true
		}
	}
	var all []string
	for _, t := range transforms.Tables {
		for _, g := range InputGlobs(o.Input, o.TopicPrefix, t) {
			names, err := files.Expand(ctx, g)
			if err != nil {
				return pl, fmt.Errorf("listing %s: %w", g, err)
			}
			for _, n := range names {
				all = append(all, n)
				if !done[n] {
					pl.Inputs[t] = append(pl.Inputs[t], n)
				}
			}
		}
	}
	if len(all) == 0 {
		return pl, fmt.Errorf("no input objects in %s; check --input and --topic-prefix",
			files.Join(o.Input, "topics", o.TopicPrefix+".{pin,geo,user}", "partition=*", "*.json[.gz]"))
	}
	switch {
	case pl.Previous != nil:
		pl.Buckets = pl.Previous.Layout.Buckets
	case o.Shards > 0:
		pl.Buckets = o.Shards
	default:
		size, err := files.Sizes(ctx, all)
		if err != nil {
			return pl, err
		}
		pl.Buckets = smb.BucketsFor(size, BytesPerBucket, MinBuckets)
	}
	return pl, nil
}

// commit assembles the commit of a finished pipeline from what it left in
// its temp directory.
func (pl plan) commit(ctx context.Context, o Options) (*Commit, error) {
	c := &Commit{Version: commitVersion, RunID: pl.RunID, CommittedAt: time.Now().UTC(), TopicPrefix: o.TopicPrefix,
		Format: o.Format, Layout: smb.NewLayout(pl.Buckets)}
	var written []OutputFile
	for name, v := range map[string]any{runFilesFile: &written, runSummaryFile: &c.Summary, runInsightsFile: &c.Insights} {
		b, err := files.ReadFile(ctx, files.Join(pl.RunDir, name))
		if err == nil {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			return nil, fmt.Errorf("reading what the pipeline wrote: %w", err)
		}
	}
	for _, f := range written {
		switch {
		case f.Path == "":
		case f.Table == "":
			c.DeadLetters = append(c.DeadLetters, f)
		default:
			c.Tables = append(c.Tables, f)
		}
	}
	if pl.Previous != nil {
		// Earlier runs' dead letters stay; every bucket was rewritten.
		c.DeadLetters = append(slices.Clone(pl.Previous.DeadLetters), c.DeadLetters...)
		c.Inputs = slices.Clone(pl.Previous.Inputs)
	}
	for _, names := range pl.Inputs {
		c.Inputs = append(c.Inputs, names...)
	}
	slices.Sort(c.Inputs)
	c.Tables, c.DeadLetters = sortedNames(c.Tables), sortedNames(c.DeadLetters)
	return c, nil
}

// writeViews writes the committed insights and summary as the output's
// plain files, for people and tools that read them directly; each file is
// replaced atomically.
func writeViews(ctx context.Context, output string, c *Commit) error {
	for _, n := range c.Insights.Named() {
		b, err := json.MarshalIndent(n.Rows, "", "  ")
		if err != nil {
			return err
		}
		if err := files.WriteFileAtomic(ctx, files.Join(output, InsightsDir, n.Name+".json"), append(b, '\n')); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(c.Summary, "", "  ")
	if err != nil {
		return err
	}
	return files.WriteFileAtomic(ctx, files.Join(output, SummaryFile), append(b, '\n'))
}

// writeReport writes <output>/report.html after the commit, from the
// insights and summary committed: the run's wall time and the warehouse
// load are known only here, and a report exists only for a run that
// finished.
func writeReport(ctx context.Context, o Options, c *Commit, start time.Time, phases []report.Phase) error {
	meta := report.Meta{Started: start, WallTime: time.Since(start), Phases: phases,
		Input: o.Input, Output: o.Output, Runner: runners.Runner(), Format: o.Format, Shards: c.Layout.Buckets,
		Tables: report.Tables{Format: o.Format, Dir: files.Join(o.Output, TablesDir), Names: transforms.Tables}}
	if o.Format == FormatIceberg {
		meta.Tables = report.Tables{Format: o.Format, Warehouse: o.Iceberg.Warehouse, Catalog: o.Iceberg.Catalog,
			CatalogURI: o.Iceberg.CatalogURI, Namespace: o.Iceberg.Namespace, Names: icebergio.TableNames()}
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, c.Insights, c.Summary, meta); err != nil {
		return err
	}
	if err := files.WriteFileAtomic(ctx, files.Join(o.Output, ReportFile), buf.Bytes()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// ReadInsights reads the eight insights an output's commit holds.
func ReadInsights(ctx context.Context, output string) (transforms.Insights, error) {
	c, err := ReadCommit(ctx, output)
	if err == nil && c == nil {
		err = fmt.Errorf("%s has no %s: no run has committed there", output, CommitFile)
	}
	if err != nil {
		return transforms.Insights{}, err
	}
	return c.Insights, nil
}

// ReadSummary reads the summary of the run that committed the output.
func ReadSummary(ctx context.Context, output string) (transforms.Summary, error) {
	c, err := ReadCommit(ctx, output)
	if err == nil && c == nil {
		err = fmt.Errorf("%s has no %s: no run has committed there", output, CommitFile)
	}
	if err != nil {
		return nil, err
	}
	return c.Summary, nil
}
