package icebergio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/transforms"
)

// Snapshot summary properties of the streaming job's commits: as the Flink
// Iceberg sink records its last checkpoint in each snapshot, every commit
// names the job, the window and the spans of source positions it covers,
// so a reader (or an operator after a crash) sees which records a snapshot
// brought.
const (
	// SummaryJob is the streaming job's name (pinpipe stream --job-name).
	SummaryJob = "pinpipe.job"
	// SummaryWindow is the window the commit's rows belong to,
	// <start>/<end> in RFC 3339, UTC.
	SummaryWindow = "pinpipe.window"
	// SummarySpans are the spans of source positions (JSON, a list of
	// positions.Span) whose rows the commit added.
	SummarySpans = "pinpipe.spans"
)

// StreamNamespace is the namespace of the streaming job's tables for a
// topic prefix: apart from the batch job's (prefix), since a batch run
// makes its tables exactly its own files and would drop the stream's.
func StreamNamespace(prefix string) string { return prefix + "_stream" }

// Pane is one firing of one event-time window of one table, as the
// streaming job commits it: the rows of each span of source positions it
// covers.
type Pane struct {
	Job         string
	Table       string // a clean table (transforms.Tables)
	WindowStart time.Time
	WindowEnd   time.Time
	Spans       []SpanRows
}

// SpanRows are the rows of the records of one span, in the table's row
// encoding (transforms.EncodeRow).
type SpanRows struct {
	Span positions.Span
	Rows [][]byte
}

// StreamWriter commits the streaming job's panes to the clean tables,
// exactly once per span of positions (see Commit).
type StreamWriter struct {
	o   Options
	cat catalog.Catalog
}

// OpenStream opens the catalog for a streaming job's commits.
func OpenStream(ctx context.Context, o Options) (*StreamWriter, error) {
	cat, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	return &StreamWriter{o: o, cat: cat}, nil
}

// Close releases the catalog.
func (w *StreamWriter) Close() { Close(w.cat) }

// Commit writes each span's rows as one Parquet data file at a path made
// of the window, the job, the stream, the partition or shard and the span
// (<table>/data/window=<start>/job=<job>/<stream>/<part>/<from>-<to>.parquet),
// and commits them in one snapshot, with the window and the spans in its
// summary. It returns how many files it added.
//
// Exactly once: the streaming job records a pane's source positions only
// after Commit returns, so a crash in between makes the restarted job read
// the records again and commit the pane again. A span whose file is in the
// current snapshot was committed before (the crash came after the commit):
// it is skipped. A re-read may cut spans differently; each new file
// replaces, in the same snapshot, every file of the window, job and
// partition whose span starts inside its own (those were made by the run
// the crash cut short; the records of the files before it are not read
// again), as the JSON-lines window files do. Several workers commit to one
// table at once: a commit that loses the race reloads the table and is
// rebuilt.
func (w *StreamWriter) Commit(ctx context.Context, p Pane) (added int, err error) {
	s := transforms.SchemaOf(p.Table)
	sc := Schema(s)
	tbl, err := loadOrCreate(ctx, w.cat, w.o, p.Table, sc)
	if err != nil {
		return 0, fmt.Errorf("iceberg: table %s: %w", p.Table, err)
	}
	written := map[string]bool{}
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		added, err = w.commitOnce(ctx, tbl, s, sc, p, written)
		if err == nil || !commitConflict(err) || attempt == 100 {
			if err != nil {
				err = fmt.Errorf("iceberg: committing %s's window %s: %w", p.Table, p.WindowStart.UTC().Format(time.RFC3339), err)
			}
			return added, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait/2 + rand.N(wait)):
		}
		wait = min(2*wait, time.Second)
		if tbl, err = w.cat.LoadTable(ctx, w.o.ident(p.Table)); err != nil {
			return 0, err
		}
	}
}

// commitConflict says the catalog refused a commit because another one
// came first: the table is reloaded and the commit rebuilt. iceberg-go
// reports a moved metadata pointer as ErrCommitFailed, and a requirement
// the new current snapshot no longer meets (the transaction's base) as a
// plain error.
func commitConflict(err error) bool {
	return errors.Is(err, table.ErrCommitFailed) || strings.Contains(err.Error(), "requirement failed")
}

// commitOnce builds and commits the pane's snapshot against the table as
// loaded; written holds the files already written by an earlier attempt.
func (w *StreamWriter) commitOnce(ctx context.Context, tbl *table.Table, s transforms.Schema, sc *iceberg.Schema, p Pane, written map[string]bool) (int, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return 0, err
	}
	current, err := currentFiles(ctx, tbl, fs)
	if err != nil {
		return 0, err
	}
	loc := strings.TrimPrefix(tbl.Location(), "file://")
	var remove, add []iceberg.DataFile
	var spans []positions.Span
	for _, sr := range p.Spans {
		if len(sr.Rows) == 0 {
			continue
		}
		dir, name := w.spanFile(loc, p, sr.Span)
		path := dir + name
		if _, ok := current[path]; ok {
			continue // committed before a crash, or by an earlier attempt
		}
		for old, df := range current {
			if rest, ok := strings.CutPrefix(old, dir); ok && old != path && startsInside(rest, sr.Span) {
				remove = append(remove, df)
			}
		}
		if !written[path] {
			if err := writeSpanFile(ctx, path, s, sr.Rows); err != nil {
				return 0, err
			}
			written[path] = true
		}
		df, err := table.FileToDataFile(ctx, fs, path, sc, *iceberg.UnpartitionedSpec, 0, nil)
		if err != nil {
			return 0, fmt.Errorf("reading the footer of %s: %w", path, err)
		}
		add = append(add, df)
		spans = append(spans, sr.Span)
	}
	if len(add) == 0 {
		return 0, nil
	}
	js, err := json.Marshal(spans)
	if err != nil {
		return 0, err
	}
	props := iceberg.Properties{SummaryJob: p.Job, SummarySpans: string(js),
		SummaryWindow: p.WindowStart.UTC().Format(time.RFC3339) + "/" + p.WindowEnd.UTC().Format(time.RFC3339)}
	tx := tbl.NewTransaction()
	if len(remove) == 0 {
		err = tx.AddDataFiles(ctx, add, props)
	} else {
		err = tx.ReplaceDataFilesWithDataFiles(ctx, remove, add, props)
	}
	if err != nil {
		return 0, err
	}
	if _, err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return len(add), nil
}

// spanFile is the directory of a span's partition in the pane's window
// (ending in /) and the span's file name in it. Stream names and
// partitions hold no '/', the job's name is escaped; the name is
// <from>-<to>.parquet, both decimal.
func (w *StreamWriter) spanFile(loc string, p Pane, sp positions.Span) (dir, name string) {
	dir = strings.TrimRight(loc, "/") + "/data/window=" + p.WindowStart.UTC().Format(time.RFC3339) +
		"/job=" + url.PathEscape(p.Job) + "/" + url.PathEscape(sp.Stream) + "/" + url.PathEscape(sp.Part) + "/"
	return dir, sp.From + "-" + sp.To + ".parquet"
}

// startsInside says whether the file name (<from>-<to>.parquet) of a span
// in the same directory starts inside sp.
func startsInside(name string, sp positions.Span) bool {
	from, _, ok := strings.Cut(strings.TrimSuffix(name, ".parquet"), "-")
	if !ok || from == "" || strings.Trim(from, "0123456789") != "" || strings.Contains(name, "/") {
		return false
	}
	return positions.Compare(from, sp.From) >= 0 && positions.Compare(from, sp.To) <= 0
}

// writeSpanFile writes rows as one Parquet file, with the schema's field
// ids (io/parquetio), replacing whatever an earlier attempt left there: no
// snapshot holds it yet.
func writeSpanFile(ctx context.Context, path string, s transforms.Schema, rows [][]byte) error {
	var buf bytes.Buffer
	pw := parquetio.NewWriter(&buf, s)
	for _, r := range rows {
		if err := pw.Write(r); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := files.WriteFileAtomic(ctx, path, buf.Bytes()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// CommittedSpans lists, for each snapshot of a table from the oldest, the
// job, window and spans its summary names (snapshots without them are
// left out): what the streaming job committed, for tests and operators.
func CommittedSpans(tbl *table.Table) ([]CommittedPane, error) {
	var out []CommittedPane
	for _, snap := range tbl.Metadata().Snapshots() {
		if snap.Summary == nil || snap.Summary.Properties[SummarySpans] == "" {
			continue
		}
		c := CommittedPane{SnapshotID: snap.SnapshotID, Job: snap.Summary.Properties[SummaryJob], Window: snap.Summary.Properties[SummaryWindow]}
		if err := json.Unmarshal([]byte(snap.Summary.Properties[SummarySpans]), &c.Spans); err != nil {
			return nil, fmt.Errorf("iceberg: snapshot %d: %s: %w", snap.SnapshotID, SummarySpans, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// CommittedPane is what one snapshot of the streaming job's says it added.
type CommittedPane struct {
	SnapshotID int64
	Job        string
	Window     string
	Spans      []positions.Span
}
