package icebergio

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pinpipe/pinpipe/internal/icebergtest"
	"github.com/pinpipe/pinpipe/transforms"
)

// resumeAtMap is a position store in memory: the resume position of each
// partition of the pin topic (job-1 only).
func resumeAtMap(next map[string]int64) ResumeFunc {
	return func(_ context.Context, job, stream, part string) (string, bool, error) {
		n, ok := next[part]
		if job != "job-1" || stream != "pinpipe.pin" || !ok {
			return "", false, nil
		}
		return strconv.FormatInt(n, 10), true, nil
	}
}

// snapshotInds reads the inds of a table's snapshot (0: the current one)
// with iceberg-go's scan, sorted, duplicates kept.
func snapshotInds(t *testing.T, tbl *table.Table, snap int64) []int64 {
	t.Helper()
	var opts []table.ScanOption
	if snap != 0 {
		opts = append(opts, table.WithSnapshotID(snap))
	}
	return icebergtest.Inds(t, tbl, opts...)
}

// commitPanes commits, for each window start minute and partition, spans
// of ten records each, [10k, 10k+9] for k in spans, with rows ind =
// 1000*part + offset.
func commitPanes(t *testing.T, w *StreamWriter, minutes []int, parts []int64, spans []int64) {
	t.Helper()
	for _, m := range minutes {
		win := time.Date(2026, 12, 7, 22, m, 0, 0, time.UTC)
		for _, k := range spans {
			var srs []SpanRows
			for _, part := range parts {
				from := 10*k + int64(m)*100
				var inds []int64
				for _, off := range seq(from, from+9) {
					inds = append(inds, 1000*part+off)
				}
				srs = append(srs, spanRows(t, strconv.FormatInt(part, 10), from, from+9, inds...))
			}
			if _, err := w.Commit(context.Background(), Pane{Job: "job-1", Table: transforms.TablePin, WindowStart: win, WindowEnd: win.Add(time.Minute), Spans: srs}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fileCount(t *testing.T, tbl *table.Table) int {
	t.Helper()
	fs, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cur, err := currentFiles(context.Background(), tbl, fs)
	if err != nil {
		t.Fatal(err)
	}
	return len(cur)
}

// TestRewriteFilesMergesSettled: the stream's many small span files, in
// two windows and two partitions, are merged where their spans are settled
// (partition 0 wholly, partition 1 up to its resume position): the same
// rows (iceberg-go's scan), fewer files, one new snapshot naming the
// compaction, the previous snapshot still readable with its files (time
// travel); after expire-snapshots the replaced files are gone, the merged
// ones stay, and clean-orphans finds nothing.
func TestRewriteFilesMergesSettled(t *testing.T) {
	ctx := context.Background()
	o := Options{Warehouse: t.TempDir(), Namespace: StreamNamespace("pinpipe")}
	w, err := OpenStream(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	commitPanes(t, w, []int{0, 1}, []int64{0, 1}, []int64{0, 1, 2})
	before, tbl := tableInds(t, o, transforms.TablePin)
	if len(before) != 2*2*3*10 || fileCount(t, tbl) != 12 {
		t.Fatalf("%d rows in %d files, want 120 in 12", len(before), fileCount(t, tbl))
	}
	prev := tbl.CurrentSnapshot().SnapshotID
	snaps := len(tbl.Metadata().Snapshots())
	// Partition 1 resumes at 125: window 1's spans [120, 129] is not
	// settled; window 0's ([0, 29]) and [100, 119] are.
	ro := RewriteOptions{Resume: resumeAtMap(map[string]int64{"0": 1000, "1": 125})}

	dry := ro
	dry.DryRun = true
	rws, err := RewriteFiles(ctx, o, dry)
	if err != nil || len(rws) != 1 || len(rws[0].Merged) != 1 || len(rws[0].Merged[0].Inputs) != 11 || rws[0].SnapshotID != 0 {
		t.Fatalf("--dry-run: %+v (%v), want one group of 11 files, no snapshot", rws, err)
	}
	if _, tbl = tableInds(t, o, transforms.TablePin); len(tbl.Metadata().Snapshots()) != snaps {
		t.Fatalf("--dry-run committed")
	}

	rws, err = RewriteFiles(ctx, o, ro)
	if err != nil {
		t.Fatal(err)
	}
	rw := rws[0]
	if len(rw.Merged) != 1 || len(rw.Merged[0].Inputs) != 11 || rw.Merged[0].Records != 110 || rw.SnapshotID == 0 {
		t.Fatalf("merged %+v, snapshot %d: want 11 files of 110 records into one", rw.Merged, rw.SnapshotID)
	}
	if len(rw.Left) != 1 || !strings.HasSuffix(rw.Left[0].Path, "/1/120-129.parquet") || rw.Left[0].Reason != LeftUnsettled {
		t.Errorf("left %+v, want only partition 1's [120, 129], unsettled", rw.Left)
	}
	after, tbl := tableInds(t, o, transforms.TablePin)
	if !slices.Equal(after, before) {
		t.Fatalf("after the rewrite the rows are %v, want %v", after, before)
	}
	if n := fileCount(t, tbl); n != 2 {
		t.Errorf("%d files after the rewrite, want 2 (the merged one and the unsettled span)", n)
	}
	if got := len(tbl.Metadata().Snapshots()); got != snaps+1 || tbl.CurrentSnapshot().SnapshotID != rw.SnapshotID ||
		!strings.Contains(tbl.CurrentSnapshot().Summary.Properties[SummaryCompaction], "11 files into 1") {
		t.Errorf("%d snapshots (want %d), current %+v", got, snaps+1, tbl.CurrentSnapshot().Summary)
	}
	if old := snapshotInds(t, tbl, prev); !slices.Equal(old, before) {
		t.Errorf("time travel to snapshot %d reads %d rows, want the %d of before", prev, len(old), len(before))
	}
	// Again: only the merged file and the unsettled one, nothing to do.
	if rws, err = RewriteFiles(ctx, o, ro); err != nil || rws[0].SnapshotID != 0 || len(rws[0].Merged) != 0 {
		t.Errorf("a second rewrite: %+v (%v), want nothing merged", rws, err)
	}

	if _, err := ExpireSnapshots(ctx, o, 0, 1); err != nil {
		t.Fatal(err)
	}
	for _, in := range rw.Merged[0].Inputs {
		if _, err := os.Stat(in); !os.IsNotExist(err) {
			t.Errorf("the replaced %s is still there after expire-snapshots (%v)", in, err)
		}
	}
	if _, err := os.Stat(rw.Merged[0].Path); err != nil {
		t.Errorf("the merged file: %v", err)
	}
	orphans, err := RemoveOrphans(ctx, o, 0, true)
	if err != nil || len(orphans) != 0 {
		t.Errorf("orphans after the rewrite and expiry: %+v (%v), want none", orphans, err)
	}
	if got, _ := tableInds(t, o, transforms.TablePin); !slices.Equal(got, before) {
		t.Errorf("after expiry the rows are %v", got)
	}
}

// TestRewriteFilesKeepsExactlyOnce: panes are committed, the positions of
// all but the last recorded (the job crashed between that pane's Iceberg
// commit and its positions); rewrite-files merges the settled ones; the
// restarted job commits the last pane again, with the same span and then
// re-cut wider: every row once. The same run with a compaction that takes
// every span as settled puts the last pane's rows in twice: the check is
// what keeps them once.
func TestRewriteFilesKeepsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	win := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	pane := func(from, to int64) Pane {
		return Pane{Job: "job-1", Table: transforms.TablePin, WindowStart: win, WindowEnd: win.Add(time.Minute),
			Spans: []SpanRows{spanRows(t, "0", from, to, seq(from, to)...)}}
	}
	run := func(resumeAt int64) []int64 {
		o := Options{Warehouse: t.TempDir(), Namespace: StreamNamespace("pinpipe")}
		w, err := OpenStream(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		for _, p := range []Pane{pane(0, 4), pane(5, 9), pane(10, 14)} {
			if _, err := w.Commit(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		rws, err := RewriteFiles(ctx, o, RewriteOptions{Resume: resumeAtMap(map[string]int64{"0": resumeAt})})
		if err != nil || rws[0].SnapshotID == 0 {
			t.Fatalf("rewrite: %+v (%v)", rws, err)
		}
		// The restart reads from 10 again: the pane as it was, then more
		// records make it [10, 17].
		if _, err := w.Commit(ctx, pane(10, 14)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(ctx, pane(10, 17)); err != nil {
			t.Fatal(err)
		}
		_, tbl := tableInds(t, o, transforms.TablePin)
		return snapshotInds(t, tbl, 0)
	}
	if got := run(10); !slices.Equal(got, seq(0, 17)) {
		t.Fatalf("with the settled spans merged the table has %v, want 0 to 17 once each", got)
	}
	// Negative check: merging the unsettled [10, 14] too (a compaction
	// that ignored the positions) loses the path the restart looks for.
	got := run(1 << 40)
	if want := slices.Sorted(slices.Values(append(seq(0, 17), seq(10, 14)...))); !slices.Equal(got, want) {
		t.Fatalf("a compaction of unsettled spans gave %v; want the duplicates %v that show why settledness matters", got, want)
	}
}

// TestRewriteFilesCommitRace: a stream pane commits between the
// compaction's plan and its commit; the compaction's commit loses the race,
// is retried against the reloaded table, and both land: every row once.
func TestRewriteFilesCommitRace(t *testing.T) {
	ctx := context.Background()
	o := Options{Warehouse: t.TempDir(), Namespace: StreamNamespace("pinpipe")}
	w, err := OpenStream(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	commitPanes(t, w, []int{0}, []int64{0}, []int64{0, 1, 2, 3})
	_, tbl := tableInds(t, o, transforms.TablePin)
	snaps := len(tbl.Metadata().Snapshots())
	planned := tbl.CurrentSnapshot().SnapshotID
	raced := false
	ro := RewriteOptions{Resume: resumeAtMap(map[string]int64{"0": 30}), beforeCommit: func() {
		if raced {
			return
		}
		raced = true
		commitPanes(t, w, []int{0}, []int64{0}, []int64{3, 4, 5}) // [30, 39] again (unsettled: skipped), then [40, 59]
	}}
	rws, err := RewriteFiles(ctx, o, ro)
	if err != nil || !raced || rws[0].SnapshotID == 0 || len(rws[0].Merged) != 1 || len(rws[0].Merged[0].Inputs) != 3 {
		t.Fatalf("rewrite: %+v (%v), raced %v; want [0, 29]'s three files merged", rws, err, raced)
	}
	inds, tbl := tableInds(t, o, transforms.TablePin)
	if !slices.Equal(inds, seq(0, 59)) {
		t.Fatalf("the table's inds %v, want 0 to 59 once each", inds)
	}
	// The compaction committed on top of the stream's panes: it was
	// retried against the reloaded table, not against what it planned on.
	if cur := tbl.CurrentSnapshot(); cur.SnapshotID != rws[0].SnapshotID || cur.ParentSnapshotID == nil || *cur.ParentSnapshotID == planned {
		t.Errorf("the current snapshot %d (parent %v) is not the compaction's %d on top of the raced panes", cur.SnapshotID, cur.ParentSnapshotID, rws[0].SnapshotID)
	}
	if got := len(tbl.Metadata().Snapshots()); got != snaps+3 {
		t.Errorf("%d snapshots, want %d (two stream panes and the compaction)", got, snaps+3)
	}
	if n := fileCount(t, tbl); n != 4 {
		t.Errorf("%d files, want 4: the merged one and [30, 39], [40, 49], [50, 59]", n)
	}
}

// TestRewriteFilesS3: on a warehouse in S3 (gofakes3 over real HTTP, a
// SQLite catalog), the stream's span files are committed, merged where
// settled, and a restart's re-commit of the unsettled pane is recognised:
// the paths RewriteFiles reads, writes and parses are s3:// ones.
func TestRewriteFilesS3(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	ctx := context.Background()
	o := Options{Warehouse: "s3://lake/warehouse", CatalogURI: filepath.Join(t.TempDir(), "catalog.sqlite"), Namespace: StreamNamespace("pinpipe")}
	w, err := OpenStream(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	commitPanes(t, w, []int{0}, []int64{0}, []int64{0, 1, 2})
	rws, err := RewriteFiles(ctx, o, RewriteOptions{Resume: resumeAtMap(map[string]int64{"0": 20})})
	if err != nil || rws[0].SnapshotID == 0 || len(rws[0].Merged) != 1 || len(rws[0].Merged[0].Inputs) != 2 {
		t.Fatalf("rewrite: %+v (%v), want [0, 9] and [10, 19] merged", rws, err)
	}
	if p := rws[0].Merged[0].Path; !strings.HasPrefix(p, "s3://lake/warehouse/pinpipe_stream/pin/data/compacted/") {
		t.Errorf("the merged file is %s", p)
	}
	if l := rws[0].Left; len(l) != 1 || !strings.HasSuffix(l[0].Path, "/20-29.parquet") || l[0].Reason != LeftUnsettled {
		t.Errorf("left %+v, want [20, 29] unsettled", l)
	}
	commitPanes(t, w, []int{0}, []int64{0}, []int64{2, 3}) // the restart: [20, 29] again, then [30, 39]
	inds, tbl := tableInds(t, o, transforms.TablePin)
	if !slices.Equal(inds, seq(0, 39)) {
		t.Fatalf("the table's inds %v, want 0 to 39 once each", inds)
	}
	if n := fileCount(t, tbl); n != 3 {
		t.Errorf("%d files, want 3", n)
	}
}
