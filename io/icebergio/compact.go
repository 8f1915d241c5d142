package icebergio

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/transforms"
)

// Compaction (pinpipe tables rewrite-files)
//
// The streaming job leaves one small Parquet file per pane, partition and
// span of positions. RewriteFiles merges them into files of about a target
// size, committed as one replace snapshot per table, without breaking the
// stream's exactly-once: StreamWriter.Commit recognises a pane committed
// before a crash by its span file's path in the current snapshot, and a
// re-read that cuts a span differently replaces the files of the window,
// job and partition that start inside it. Merging such a file away would
// make the restarted job add its rows again.
//
// So only settled span files are merged: those whose span ends before the
// position where the job's reading of that stream and partition resumes
// after a restart (for Kafka, the end of the first unbroken run of durable
// positions, kafkaio.DurableStart). The job never reads those records
// again, so it never looks for those paths again. Every other file (spans
// at or past the resume position, spans of a job whose positions cannot be
// read, the batch job's bucket files, which are one per bucket already) is
// left as it is and reported. The merged files go to <table>/data/
// compacted/, outside every span directory, so no stream commit replaces
// them. An explicit --start that rewinds a job (it forgets the job's
// positions) re-reads settled records and adds their rows again once their
// span files are merged; without compaction such a re-read replaces them.
//
// The replaced files stay in the previous snapshots, for time travel, until
// `tables expire-snapshots` expires those and removes the files only they
// named; `tables clean-orphans` never sees the merged files as orphans,
// since the current snapshot names them.

// SummaryCompaction is the snapshot summary property of a snapshot
// RewriteFiles committed: how many files it merged into how many.
const SummaryCompaction = "pinpipe.compaction"

// DefaultTargetFileSize is the size RewriteFiles merges files up to:
// Iceberg's own write.target-file-size-bytes default, 512 MiB, is for
// engines that write in parallel; 128 MiB keeps one merged file's rows
// within what one process buffers while writing it.
const DefaultTargetFileSize = 128 << 20

// compactedDir is where merged files go under a table's location: apart
// from the stream's span directories (see StreamWriter.spanFile).
const compactedDir = "/data/compacted/"

// ResumeFunc says where a streaming job's reading of a stream's partition
// or shard resumes after a restart (the first position it reads again),
// and false when the job has no positions there. The streaming package
// gives one for each position store (streaming.PositionStore.Resume).
type ResumeFunc func(ctx context.Context, job, stream, part string) (next string, ok bool, err error)

// RewriteOptions configure RewriteFiles.
type RewriteOptions struct {
	// TargetFileSize is the size to merge files up to; 0 means
	// DefaultTargetFileSize.
	TargetFileSize int64
	// DryRun plans and reports, and writes and commits nothing.
	DryRun bool
	// Resume finds the settled span files; nil: none is settled.
	Resume ResumeFunc

	// beforeCommit, in tests, runs after the merged files are written and
	// before the snapshot is committed: a stream commit there makes the
	// commit race.
	beforeCommit func()
}

// Rewrite is what RewriteFiles did to one table.
type Rewrite struct {
	Table string
	// Merged are the groups of files merged, each into one new file.
	Merged []MergedFile
	// Left are the data files left as they are, with why.
	Left []LeftFile
	// SnapshotID is the replace snapshot committed (0: none, as with
	// DryRun or nothing to merge).
	SnapshotID int64
}

// MergedFile is one file RewriteFiles wrote (or, with DryRun, would
// write) from Inputs.
type MergedFile struct {
	Path    string // "" with DryRun
	Inputs  []string
	Records int64
	Bytes   int64 // of the inputs
}

// LeftFile is a data file RewriteFiles did not merge, and why.
type LeftFile struct {
	Path   string
	Reason string
}

// Reasons a file is left as it is.
const (
	LeftNotSpan     = "not a stream span file"
	LeftUnsettled   = "its span is not settled (the job may read it again after a restart)"
	LeftNoPositions = "the job's positions cannot be read"
	LeftAlone       = "nothing to merge it with"
	LeftLarge       = "already at the target size"
)

// RewriteFiles merges each table's settled small files of the namespace
// (see Compaction above), one replace snapshot per table. A commit that
// loses the race to another (a running stream job's) is retried against
// the reloaded table, and planned again when a file it merges is gone.
func RewriteFiles(ctx context.Context, o Options, ro RewriteOptions) ([]Rewrite, error) {
	if ro.TargetFileSize <= 0 {
		ro.TargetFileSize = DefaultTargetFileSize
	}
	var out []Rewrite
	err := eachTable(ctx, o, func(name string, tbl *table.Table) error {
		rw, err := rewriteTable(ctx, ro, name, tbl)
		if err != nil {
			return fmt.Errorf("iceberg: rewriting the files of %s: %w", name, err)
		}
		out = append(out, rw)
		return nil
	})
	return out, err
}

// rewriteTable plans, writes and commits one table's merge.
func rewriteTable(ctx context.Context, ro RewriteOptions, name string, tbl *table.Table) (Rewrite, error) {
	_, clean := transforms.TableOf(name) // the stream writes only the clean tables
	resumes := map[[3]string]resumeAt{}  // the store is read once per partition, whatever the retries
	for plans := 1; ; plans++ {
		fs, err := tbl.FS(ctx)
		if err != nil {
			return Rewrite{}, err
		}
		current, err := currentFiles(ctx, tbl, fs)
		if err != nil {
			return Rewrite{}, err
		}
		if !clean {
			rw := Rewrite{Table: name}
			for _, p := range slices.Sorted(maps.Keys(current)) {
				rw.Left = append(rw.Left, LeftFile{p, LeftNotSpan})
			}
			return rw, nil
		}
		rw, groups, err := plan(ctx, ro, name, tbl, current, resumes)
		if err != nil || ro.DryRun || len(groups) == 0 {
			return rw, err
		}
		added, err := writeMerged(ctx, fs, tbl, transforms.SchemaOf(name), rw.Merged, groups)
		if err != nil {
			return Rewrite{}, err
		}
		if ro.beforeCommit != nil {
			ro.beforeCommit()
		}
		removed := slices.Concat(groups...)
		props := iceberg.Properties{SummaryCompaction: fmt.Sprintf("pinpipe tables rewrite-files: %d files into %d", len(removed), len(added))}
		snap, err := commitReplace(ctx, tbl, removed, added, props)
		if err == nil {
			rw.SnapshotID = snap
			return rw, nil
		}
		// The merged files are in no snapshot: remove them (clean-orphans
		// would find them otherwise).
		if rmErr := files.RemoveFiles(ctx, dataFilePaths(added)...); rmErr != nil {
			return Rewrite{}, errors.Join(err, rmErr)
		}
		if !errors.Is(err, errReplan) || plans == 10 {
			return Rewrite{}, err
		}
	}
}

// errReplan: a file the commit would replace is gone from the table (a
// concurrent rewrite-files merged it).
var errReplan = errors.New("a file to merge is no longer in the table")

// commitReplace commits one snapshot replacing removed by added. A commit
// that loses the race to another (a stream job's pane) is retried against
// the table reloaded (tbl is refreshed), as long as every file it replaces
// is still there: a stream commit adds files, or replaces unsettled ones,
// never one of these; else errReplan.
func commitReplace(ctx context.Context, tbl *table.Table, removed, added []iceberg.DataFile, props iceberg.Properties) (int64, error) {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		tx := tbl.NewTransaction()
		err := tx.ReplaceDataFilesWithDataFiles(ctx, removed, added, props)
		if err == nil {
			var after *table.Table
			if after, err = tx.Commit(ctx); err == nil {
				return after.CurrentSnapshot().SnapshotID, nil
			}
		}
		if !commitConflict(err) || attempt == 100 {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait/2 + mrand.N(wait)):
		}
		wait = min(2*wait, time.Second)
		if err := tbl.Refresh(ctx); err != nil {
			return 0, err
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return 0, err
		}
		current, err := currentFiles(ctx, tbl, fs)
		if err != nil {
			return 0, err
		}
		if !allIn(removed, current) {
			return 0, errReplan
		}
	}
}

func allIn(dfs []iceberg.DataFile, current map[string]iceberg.DataFile) bool {
	for _, df := range dfs {
		if _, ok := current[df.FilePath()]; !ok {
			return false
		}
	}
	return true
}

// resumeAt is a looked-up resume position (err: it could not be read).
type resumeAt struct {
	next string
	ok   bool
	err  error
}

// candidate is a file that may be merged, with what orders it.
type candidate struct {
	df   iceberg.DataFile
	key  string // window, job, stream, part: the span's directory
	from string
}

// plan picks the files to merge and groups them, in order of window, job,
// stream, partition and span (the compacted files first), up to the
// target size; a group of one file is left alone.
func plan(ctx context.Context, ro RewriteOptions, name string, tbl *table.Table, current map[string]iceberg.DataFile, resumes map[[3]string]resumeAt) (Rewrite, [][]iceberg.DataFile, error) {
	rw := Rewrite{Table: name}
	loc := strings.TrimRight(strings.TrimPrefix(tbl.Location(), "file://"), "/")
	var cands []candidate
	for _, p := range slices.Sorted(maps.Keys(current)) {
		df := current[p]
		if df.FileSizeBytes() >= ro.TargetFileSize {
			rw.Left = append(rw.Left, LeftFile{p, LeftLarge})
			continue
		}
		rest, ok := strings.CutPrefix(strings.TrimPrefix(p, "file://"), loc+compactedDir)
		if ok && !strings.Contains(rest, "/") {
			cands = append(cands, candidate{df: df})
			continue
		}
		window, job, sp, ok := parseSpanFile(loc, p)
		if !ok {
			rw.Left = append(rw.Left, LeftFile{p, LeftNotSpan})
			continue
		}
		k := [3]string{job, sp.Stream, sp.Part}
		r, seen := resumes[k]
		if !seen {
			if ro.Resume != nil {
				r.next, r.ok, r.err = ro.Resume(ctx, job, sp.Stream, sp.Part)
			}
			if err := ctx.Err(); err != nil {
				return rw, nil, err
			}
			resumes[k] = r
		}
		switch {
		case ro.Resume == nil || r.err != nil:
			reason := LeftNoPositions
			if r.err != nil {
				reason += ": " + r.err.Error()
			}
			rw.Left = append(rw.Left, LeftFile{p, reason})
		case !r.ok || positions.Compare(sp.To, r.next) >= 0:
			rw.Left = append(rw.Left, LeftFile{p, LeftUnsettled})
		default:
			cands = append(cands, candidate{df: df, key: strings.Join([]string{window, job, sp.Stream, sp.Part}, "\x00"), from: sp.From})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.key, b.key), positions.Compare(a.from, b.from))
	})
	var groups [][]iceberg.DataFile
	var g []iceberg.DataFile
	var size int64
	flush := func() {
		if len(g) == 1 {
			rw.Left = append(rw.Left, LeftFile{g[0].FilePath(), LeftAlone})
		} else if len(g) > 1 {
			groups = append(groups, g)
			m := MergedFile{Bytes: size}
			for _, df := range g {
				m.Inputs = append(m.Inputs, df.FilePath())
				m.Records += df.Count()
			}
			rw.Merged = append(rw.Merged, m)
		}
		g, size = nil, 0
	}
	for _, c := range cands {
		if size > 0 && size+c.df.FileSizeBytes() > ro.TargetFileSize {
			flush()
		}
		g = append(g, c.df)
		size += c.df.FileSizeBytes()
	}
	flush()
	return rw, groups, nil
}

// parseSpanFile reads the window, job and span of a span file's path
// (<loc>/data/window=<start>/job=<job>/<stream>/<part>/<from>-<to>.parquet,
// see StreamWriter.spanFile); false for any other path.
func parseSpanFile(loc, path string) (window, job string, sp positions.Span, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(path, "file://"), loc+"/data/window=")
	if !ok {
		return "", "", sp, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || !strings.HasPrefix(parts[1], "job=") {
		return "", "", sp, false
	}
	from, to, ok := strings.Cut(strings.TrimSuffix(parts[4], ".parquet"), "-")
	if !ok || !strings.HasSuffix(parts[4], ".parquet") || !decimal(from) || !decimal(to) {
		return "", "", sp, false
	}
	var errs [3]error
	job, errs[0] = url.PathUnescape(strings.TrimPrefix(parts[1], "job="))
	sp.Stream, errs[1] = url.PathUnescape(parts[2])
	sp.Part, errs[2] = url.PathUnescape(parts[3])
	sp.From, sp.To = from, to
	return parts[0], job, sp, errors.Join(errs[:]...) == nil
}

func decimal(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// writeMerged writes each group's rows, in the group's order, as one
// Parquet file under <table>/data/compacted/ (io/parquetio: the schema's
// field ids), and describes the files for the manifest. The rows are not
// sorted by ind: that would hold a whole group in memory; each input's rows
// are in the order of their records.
func writeMerged(ctx context.Context, fs iceio.IO, tbl *table.Table, s transforms.Schema, merged []MergedFile, groups [][]iceberg.DataFile) ([]iceberg.DataFile, error) {
	loc := strings.TrimRight(strings.TrimPrefix(tbl.Location(), "file://"), "/")
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	sc := tbl.Schema()
	var out []iceberg.DataFile
	for i, g := range groups {
		path := fmt.Sprintf("%s%s%s-%s-%05d.parquet", loc, compactedDir, time.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(id[:]), i)
		if err := mergeFiles(ctx, fs, path, s, g); err != nil {
			files.RemoveFiles(ctx, dataFilePaths(out)...)
			return nil, err
		}
		df, err := table.FileToDataFile(ctx, fs, path, sc, *iceberg.UnpartitionedSpec, 0, nil)
		if err != nil {
			files.RemoveFiles(ctx, append(dataFilePaths(out), path)...)
			return nil, fmt.Errorf("reading the footer of %s: %w", path, err)
		}
		merged[i].Path = path
		out = append(out, df)
	}
	return out, nil
}

func dataFilePaths(dfs []iceberg.DataFile) []string {
	var out []string
	for _, df := range dfs {
		out = append(out, df.FilePath())
	}
	return out
}

// mergeFiles writes the rows of inputs, in order, as one file at path.
func mergeFiles(ctx context.Context, fs iceio.IO, path string, s transforms.Schema, inputs []iceberg.DataFile) error {
	var buf bytes.Buffer
	pw := parquetio.NewWriter(&buf, s)
	for _, df := range inputs {
		if err := copyRows(fs, df, s, pw); err != nil {
			return fmt.Errorf("reading %s: %w", df.FilePath(), err)
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

func copyRows(fs iceio.IO, df iceberg.DataFile, s transforms.Schema, pw *parquetio.Writer) error {
	f, err := fs.Open(df.FilePath())
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := parquetio.NewReader(f, df.FileSizeBytes(), s)
	if err != nil {
		return err
	}
	var n int64
	for r.Next() {
		if err := pw.Write(r.Row()); err != nil {
			return err
		}
		n++
	}
	if err := r.Err(); err != nil {
		return err
	}
	if n != df.Count() {
		return fmt.Errorf("%d rows, the manifest says %d", n, df.Count())
	}
	return nil
}
