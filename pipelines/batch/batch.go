// Package batch is the daily bounded pipeline: it reads the raw records the
// Kafka-to-S3 sink landed, cleans them with the shared transforms, keeps one
// row per ind, writes the clean tables, the eight insights, the dead letters
// and a summary.
package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/batch/report"
	"github.com/pinpipe/pinpipe/runners"
	"github.com/pinpipe/pinpipe/transforms"
)

// Options configure one batch run.
type Options struct {
	// Input is the directory or s3://bucket/prefix holding topics/<prefix>.<table>/partition=*/.
	Input       string
	TopicPrefix string
	// Output is the directory or s3://bucket/prefix the results go to.
	Output string
	// Format of the clean tables: parquet (default) or jsonl.
	Format string
	// Shards is how many groups of ind the rows are deduplicated and joined
	// in, and so how many files each table is written as.
	Shards int
	// Warehouse, when set, is the DSN of a PostgreSQL database the clean
	// tables are loaded into after the pipeline succeeded (see io/postgres).
	Warehouse string
	// Incremental processes only the input objects an earlier incremental
	// run into the same output has not (see ManifestFile), merging them into
	// its clean tables and recomputing the insights over all of them.
	Incremental bool

	// newFiles, when set, replaces the input globs with these objects per
	// table; previous merges the tables already in Output.
	newFiles map[string][]string
	previous bool
}

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
	if o.Format != FormatParquet && o.Format != FormatJSONL {
		return fmt.Errorf("batch: --format must be parquet or jsonl, not %q", o.Format)
	}
	if o.Shards <= 0 {
		o.Shards = 16
	}
	return nil
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
)

// Build adds the batch pipeline to s.
func Build(s beam.Scope, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	var rows, dead, stats []beam.PCollection
	for _, t := range transforms.Tables {
		ts := s.Scope(t)
		var names beam.PCollection
		if o.newFiles != nil {
			names = beam.Reshuffle(ts, beam.CreateList(ts, append([]string{}, o.newFiles[t]...)))
		} else {
			names = files.MatchFiles(ts, beam.CreateList(ts, InputGlobs(o.Input, o.TopicPrefix, t)))
		}
		c := transforms.CleanFiles(ts, t, o.Shards, names)
		rows, dead, stats = append(rows, c.Rows), append(dead, c.DeadLetters), append(stats, c.Stats)
	}
	if o.previous {
		rows = append(rows, readTables(s, files.Join(o.Output, TablesDir), o.Format, o.Shards))
	}
	joined := transforms.JoinBatches(s, rows...)
	writeTables(s, files.Join(o.Output, TablesDir), o.Format, joined.Tables)

	insights := transforms.ComputeInsights(s, joined.Partials)
	beam.ParDo0(s, &writeInsightsFn{Dir: files.Join(o.Output, InsightsDir)}, insights)

	files.WriteJSONLines(s, files.Join(o.Output, DeadLetterDir), "deadletter", beam.Flatten(s, dead...))

	summary := transforms.Summarize(s, beam.Flatten(s, append(stats, joined.Stats)...))
	beam.ParDo0(s, &writeSummaryFn{Path: files.Join(o.Output, SummaryFile)}, summary)
	return nil
}

// ClearOutput removes what an earlier run wrote, so that a re-run to the same
// output gives the same files and nothing stale.
func ClearOutput(ctx context.Context, output string) error {
	return files.Remove(ctx,
		files.Join(output, TablesDir, "*", "part-*"),
		files.Join(output, InsightsDir, "*.json"),
		files.Join(output, DeadLetterDir, "*.jsonl"),
		files.Join(output, SummaryFile),
		files.Join(output, ReportFile),
		files.Join(output, ManifestFile))
}

// Run clears the output, runs the pipeline on the runner chosen by --runner,
// loads the clean tables into the warehouse when one is set, writes the
// report and returns the summary it wrote.
func Run(ctx context.Context, o Options) (transforms.Summary, error) {
	start := time.Now()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Warehouse != "" {
		// Fail before the pipeline, not after it.
		if err := postgres.Check(ctx, o.Warehouse); err != nil {
			return nil, err
		}
	}
	var next manifest
	if o.Incremental {
		var err error
		if o.newFiles, next, o.previous, err = planIncremental(ctx, o); err != nil {
			return nil, err
		}
		// The tables are read back and rewritten shard by shard, and the
		// dead letters of earlier runs stay.
		if err := files.Remove(ctx, files.Join(o.Output, InsightsDir, "*.json"), files.Join(o.Output, SummaryFile),
			files.Join(o.Output, ReportFile)); err != nil {
			return nil, err
		}
	} else if err := ClearOutput(ctx, o.Output); err != nil {
		return nil, err
	}
	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, o); err != nil {
		return nil, err
	}
	if _, err := runners.Run(ctx, p); err != nil {
		return nil, fmt.Errorf("batch pipeline: %w", err)
	}
	if o.Incremental {
		if err := writeManifest(ctx, o.Output, next); err != nil {
			return nil, fmt.Errorf("writing the manifest: %w", err)
		}
	}
	phases := []report.Phase{{Name: "pipeline", Duration: time.Since(start)}}
	if o.Warehouse != "" {
		t := time.Now()
		if err := postgres.LoadTables(ctx, o.Warehouse, files.Join(o.Output, TablesDir), o.Format); err != nil {
			return nil, err
		}
		phases = append(phases, report.Phase{Name: "warehouse load", Duration: time.Since(t)})
	}
	sum, err := ReadSummary(ctx, o.Output)
	if err != nil {
		return nil, err
	}
	if err := writeReport(ctx, o, sum, start, phases); err != nil {
		return nil, err
	}
	return sum, nil
}

// writeReport writes <output>/report.html after the pipeline, from the
// insights and summary it wrote, rather than from a DoFn inside it: the
// run's wall time and the warehouse load are known only here, reading two
// small files back works on every runner and filesystem (s3:// too), and a
// report exists only for a run that finished.
func writeReport(ctx context.Context, o Options, sum transforms.Summary, start time.Time, phases []report.Phase) error {
	in, err := ReadInsights(ctx, o.Output)
	if err != nil {
		return err
	}
	meta := report.Meta{Started: start, WallTime: time.Since(start), Phases: phases,
		Input: o.Input, Output: o.Output, Runner: runners.Runner(), Format: o.Format, Shards: o.Shards}
	var buf bytes.Buffer
	if err := report.Render(&buf, in, sum, meta); err != nil {
		return err
	}
	if err := files.WriteFile(ctx, files.Join(o.Output, ReportFile), buf.Bytes()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// ReadInsights reads the eight insights a run wrote.
func ReadInsights(ctx context.Context, output string) (transforms.Insights, error) {
	var in transforms.Insights
	// Each file is one field of Insights under its JSON name.
	raw := map[string]json.RawMessage{}
	for _, n := range in.Named() {
		b, err := files.ReadFile(ctx, files.Join(output, InsightsDir, n.Name+".json"))
		if err != nil {
			return in, fmt.Errorf("reading insight %s: %w", n.Name, err)
		}
		raw[n.Name] = b
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, &in)
	}
	if err != nil {
		return in, fmt.Errorf("reading the insights: %w", err)
	}
	return in, nil
}

// ReadSummary reads the summary a run wrote.
func ReadSummary(ctx context.Context, output string) (transforms.Summary, error) {
	b, err := files.ReadFile(ctx, files.Join(output, SummaryFile))
	if err != nil {
		return nil, fmt.Errorf("reading the summary: %w", err)
	}
	var sum transforms.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, fmt.Errorf("reading the summary: %w", err)
	}
	return sum, nil
}
