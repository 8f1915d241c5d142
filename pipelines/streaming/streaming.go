// Package streaming is the unbounded pipeline: it reads the three streams
// (Kinesis) or topics (Kafka) as they arrive, cleans them with the same
// transforms as the batch job, and writes continuously: upserts keyed by ind
// into PostgreSQL, dead letters into their own table, optional windowed
// files, and a metric no batch job gives, posts per category per event-time
// window.
//
// # What survives a crash
//
// With Options.Positions (Kafka or Kinesis, with a PostgreSQL), no source
// position is
// recorded before every output of its records is written: rows and dead
// letters in the bundle that read them, then the window panes, which carry
// each record's span of source positions (positions.Span: Kafka offsets,
// Kinesis sequence numbers) beside the category posts and the file rows.
// A pane's file is written, then its posts and spans in one transaction
// (kafkaio.RecordSpans, kinesisio.RecordSpans); the read resumes each
// partition or shard at the end of the first unbroken run of spans
// (kafkaio.DurableStart; a Kinesis shard's checkpoint is that run's end),
// so a restart reads again whatever fed a window that had not fired. Re-reading
// is harmless: rows upsert by ind, a dead letter is kept once, panes add
// distinct posts, and window files are named by window, partition and
// position run, each replacing those of the run it repeats.
//
// Per runner: on prism (in process or a job server) the guarantee survives
// SIGKILL at any moment, open windows included, since it lives in
// PostgreSQL, not in a process (TestRestartAfterKill,
// TestRestartAfterKillWindowOpen, TestKinesisRestartAfterKillWindowOpen). On Flink (with --checkpointing_interval)
// and Dataflow, the runner also restores window state and read positions
// from one checkpoint after a failure, and a Dataflow drain fires the open
// windows; a new job resumes from the positions table. Neither is tested
// here. A record dropped as later than the allowed lateness may leave a gap
// in its partition's spans: nothing is lost, but restarts re-read from it.
//
// With Options.Iceberg the file output is Iceberg tables, each pane one
// snapshot committed before its positions, exactly once (iceberg.go).
//
// Without Positions (no PostgreSQL: --files alone) Kafka commits its
// group's offsets once the bundle that read the records is committed, and
// Kinesis keeps no position at all (it starts at --start): a re-read may
// write rows into the per-bundle files twice.
package streaming

import (
	"fmt"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.Function2x0(categoryKey)
	register.Emitter2[string, int64]()
	register.Combiner3[[]int64, int64, []int64](&distinctIndsFn{})
	register.DoFn4x0[beam.Window, string, []int64, func(postgres.CategoryPosts)](&toCategoryPostsFn{})
	register.Emitter1[postgres.CategoryPosts]()
}

// Options configure the streaming job.
type Options struct {
	// Source reads one table's raw records as []byte elements timestamped
	// with their arrival time.
	Source Source
	// Sink is the PostgreSQL DSN the tables are upserted into.
	Sink string
	// Files, when set, is a directory or s3:// prefix for windowed JSON-lines
	// files of the clean rows.
	Files string
	// Window is the size of the event-time windows of the files and the
	// category counts.
	Window time.Duration
	// AllowedLateness is how long after a window's end late records still
	// update its count; later records only reach the tables.
	AllowedLateness time.Duration

	// DurableSource, used instead of Source when set, also gives each
	// record's span of source positions; with Positions, the spans are
	// recorded there under Job once every output of their records is
	// written (see "Durable positions" in durable.go), and the source
	// resumes from them.
	DurableSource DurableSource
	// Positions is the PostgreSQL DSN of the durable positions
	// (kafkaio.PositionTable); usually Sink.
	Positions string
	// Job names the positions.
	Job string
	// Iceberg, when its Warehouse is set, makes the file output Iceberg
	// tables (one per clean table, in Iceberg.Namespace) instead of
	// JSON-lines files, committed exactly once per pane (iceberg.go); it
	// needs Positions.
	Iceberg icebergio.Options
}

// Source reads the raw records of one table.
type Source func(s beam.Scope, table string) beam.PCollection

// DefaultAllowedLateness is how late a post may arrive and still count in
// its window's category count: producers retry for minutes at most.
const DefaultAllowedLateness = 5 * time.Minute

// Build adds the streaming pipeline to s.
func Build(s beam.Scope, o Options) error {
	if o.Source == nil && o.DurableSource.Read == nil {
		return fmt.Errorf("streaming: no source")
	}
	if o.Positions != "" && (o.DurableSource.Read == nil || o.Job == "") {
		return fmt.Errorf("streaming: durable positions need a source that gives them and a job name")
	}
	iceberg := o.Iceberg.Warehouse != ""
	if iceberg && o.Positions == "" {
		return fmt.Errorf("streaming: Iceberg output commits exactly once by the durable positions: give --sink or --checkpoint-dsn (PostgreSQL)")
	}
	if iceberg {
		if err := o.Iceberg.Check(); err != nil {
			return err
		}
	}
	if o.Sink == "" && o.Files == "" && !iceberg {
		return fmt.Errorf("streaming: give --sink (PostgreSQL) or --files, or both")
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.AllowedLateness < 0 {
		return fmt.Errorf("streaming: allowed lateness cannot be negative")
	}
	for _, table := range transforms.Tables {
		ts := s.Scope(table)
		var values, spans beam.PCollection
		if o.DurableSource.Read != nil {
			values, spans = o.DurableSource.Read(ts, table)
		} else {
			values = o.Source(ts, table)
		}
		c := transforms.Clean(ts, table, values)
		if o.Sink != "" {
			postgres.WriteRows(ts, o.Sink, table, c.Rows)
			// One dead-letter writer per table rather than one behind a
			// Flatten: prism runs a Flatten itself, which would put the
			// writer in a stage of its own. Fused with the read, the dead
			// letters are written before the read's position is recorded
			// (see kinesisio's checkpoints and kafkaio's commits).
			postgres.WriteDeadLetters(ts, o.Sink, c.DeadLetters)
		}
		if o.Files != "" && o.Positions == "" {
			files.WriteWindowedJSONLines(ts, files.Join(o.Files, table), table,
				beam.WindowInto(ts, window.NewFixedWindows(o.Window), c.Rows))
		}
		counts := table == transforms.TablePin && o.Sink != ""
		switch {
		case o.Positions != "":
			// Each record's span, post and file row travel as one pane
			// item, and a pane's positions are recorded only once its
			// posts and file are written. The files are written from
			// the panes, named by source positions.
			fileDir, sink := "", ""
			if o.Files != "" {
				fileDir = files.Join(o.Files, table)
			}
			if counts {
				sink = o.Sink
			}
			items := beam.ParDo(ts, &spanItemFn{Lateness: o.AllowedLateness, Table: table, Counts: counts, Files: o.Files != "" || iceberg}, spans)
			panes := durablePanes(ts, items, o.Window, o.AllowedLateness)
			beam.ParDo0(ts, &writePaneFn{Sink: sink, Positions: o.Positions, Store: o.DurableSource.Store, Job: o.Job, Files: fileDir, Prefix: table, Iceberg: o.Iceberg}, panes)
		case counts:
			postgres.WriteCategoryCounts(ts, o.Sink, CategoryPosts(ts, c.Rows, o.Window, o.AllowedLateness))
		}
	}
	return nil
}

// CategoryPosts gathers the posts (distinct inds) of each category in fixed
// event-time windows. A window fires when the watermark passes its end,
// early every few seconds of processing time while it is open, and again
// for each late pin within the allowed lateness. Panes are discarding: each
// carries the posts new since the last firing, and the sink adds them up
// (postgres.WriteCategoryCounts). It is the counts' path without durable
// positions; with them the posts travel in the durable panes (durable.go).
func CategoryPosts(s beam.Scope, pins beam.PCollection, size, lateness time.Duration) beam.PCollection {
	s = s.Scope("streaming.CategoryPosts")
	windowed := countWindows(s, pins, size, lateness)
	inds := beam.CombinePerKey(s, &distinctIndsFn{}, beam.ParDo(s, categoryKey, windowed))
	return beam.ParDo(s, &toCategoryPostsFn{}, inds)
}

// countWindows is the windowing of the category counts: fixed windows
// firing when the watermark passes their end, early every 5 s of
// processing time while open, and again for each late element within the
// allowed lateness; discarding panes.
func countWindows(s beam.Scope, col beam.PCollection, size, lateness time.Duration) beam.PCollection {
	return beam.WindowInto(s, window.NewFixedWindows(size), col,
		beam.Trigger(trigger.AfterEndOfWindow().
			EarlyFiring(trigger.AfterProcessingTime().PlusDelay(5*time.Second)).
			LateFiring(trigger.AfterCount(1))),
		beam.AllowedLateness(lateness),
		beam.PanesDiscard())
}

// categoryKey keys a pin's ind by its category; pins without one are not
// counted.
func categoryKey(p transforms.Pin, emit func(string, int64)) {
	if p.Category != nil {
		emit(*p.Category, p.Ind)
	}
}

// distinctIndsFn collects distinct inds, so that a re-sent post counts once.
type distinctIndsFn struct{}

func (distinctIndsFn) CreateAccumulator() []int64 { return nil }

func (distinctIndsFn) AddInput(a []int64, ind int64) []int64 {
	if i, found := slices.BinarySearch(a, ind); !found {
		a = slices.Insert(a, i, ind)
	}
	return a
}

func (distinctIndsFn) MergeAccumulators(a, b []int64) []int64 {
	a = append(a, b...)
	slices.Sort(a)
	return slices.Compact(a)
}

func (distinctIndsFn) ExtractOutput(a []int64) []int64 { return a }

type toCategoryPostsFn struct{}

func (f *toCategoryPostsFn) ProcessElement(w beam.Window, category string, inds []int64, emit func(postgres.CategoryPosts)) {
	iw, ok := w.(window.IntervalWindow)
	if !ok || len(inds) == 0 {
		return
	}
	emit(postgres.CategoryPosts{
		WindowStart: iw.Start.ToTime().UTC(), WindowEnd: iw.End.ToTime().UTC(),
		Category: category, Inds: inds,
	})
}
