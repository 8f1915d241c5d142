package icebergio

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/internal/icebergtest"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/transforms"
)

// spanRows are the encoded pin rows of inds, titled by their ind, for the
// span [from, to] of partition part of the pin topic.
func spanRows(t *testing.T, part string, from, to int64, inds ...int64) SpanRows {
	t.Helper()
	sr := SpanRows{Span: positions.Span{Stream: "pinpipe.pin", Part: part, From: strconv.FormatInt(from, 10), To: strconv.FormatInt(to, 10)}}
	for _, ind := range inds {
		title := "post " + strconv.FormatInt(ind, 10)
		row, err := transforms.EncodeRow(nil, transforms.Pin{Ind: ind, Title: &title})
		if err != nil {
			t.Fatal(err)
		}
		sr.Rows = append(sr.Rows, row)
	}
	return sr
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// tableInds reads the table's current snapshot with iceberg-go's scan: the
// inds, sorted, and every title checked against its ind.
func tableInds(t *testing.T, o Options, name string) ([]int64, *table.Table) {
	t.Helper()
	ctx := context.Background()
	cat, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(cat)
	tbl, err := cat.LoadTable(ctx, o.ident(name))
	if err != nil {
		t.Fatal(err)
	}
	var inds []int64
	icebergtest.Batches(t, tbl, func(rec arrow.RecordBatch) {
		ind := icebergtest.Column(t, rec, "ind").(*array.Int64)
		title := icebergtest.Column(t, rec, "title").(*array.String)
		for i := range int(rec.NumRows()) {
			if want := fmt.Sprintf("post %d", ind.Value(i)); title.Value(i) != want {
				t.Errorf("ind %d has the title %q, want %q", ind.Value(i), title.Value(i), want)
			}
			inds = append(inds, ind.Value(i))
		}
	})
	slices.Sort(inds)
	return inds, tbl
}

// TestStreamCommitExactlyOnce commits the streaming job's panes as a crash
// and a restart make them: the same pane twice (the crash came after the
// Iceberg commit, before the positions were recorded), and a pane re-read
// with its span cut differently. Every row is in the table once, and the
// snapshot summaries name each commit's window and spans.
func TestStreamCommitExactlyOnce(t *testing.T) {
	ctx := context.Background()
	o := Options{Warehouse: t.TempDir(), Namespace: StreamNamespace("pinpipe")}
	w, err := OpenStream(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	win := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	pane := func(spans ...SpanRows) Pane {
		return Pane{Job: "job-1", Table: transforms.TablePin, WindowStart: win, WindowEnd: win.Add(time.Minute), Spans: spans}
	}

	first := pane(spanRows(t, "0", 0, 4, seq(0, 4)...), spanRows(t, "1", 0, 2, 100, 101, 102), spanRows(t, "2", 0, 3))
	if n, err := w.Commit(ctx, first); err != nil || n != 2 {
		t.Fatalf("the first pane: %d files added (%v), want 2 (a span without rows adds none)", n, err)
	}
	_, tbl := tableInds(t, o, transforms.TablePin)
	snaps := len(tbl.Metadata().Snapshots())
	// The same pane again: recognised and skipped, no snapshot.
	if n, err := w.Commit(ctx, first); err != nil || n != 0 {
		t.Fatalf("the first pane again: %d files added (%v), want 0", n, err)
	}
	// A pane the crashed run committed ([5, 6]) and whose positions it
	// never recorded; the restart re-reads from 5 and cuts [5, 8].
	if n, err := w.Commit(ctx, pane(spanRows(t, "0", 5, 6, 5, 6))); err != nil || n != 1 {
		t.Fatalf("the crashed run's pane: %d files (%v)", n, err)
	}
	if n, err := w.Commit(ctx, pane(spanRows(t, "0", 5, 8, seq(5, 8)...))); err != nil || n != 1 {
		t.Fatalf("the re-read pane: %d files (%v)", n, err)
	}
	inds, tbl := tableInds(t, o, transforms.TablePin)
	if want := append(seq(0, 8), 100, 101, 102); !slices.Equal(inds, want) {
		t.Fatalf("the table's inds %v, want each of %v once", inds, want)
	}
	if got := len(tbl.Metadata().Snapshots()); got != snaps+2 {
		t.Errorf("%d snapshots, want %d (the repeated pane adds none)", got, snaps+2)
	}
	committed, err := CommittedSpans(tbl)
	if err != nil {
		t.Fatal(err)
	}
	wantWindow := "2026-12-07T22:00:00Z/2026-12-07T22:01:00Z"
	var got []string
	for _, c := range committed {
		if c.Job != "job-1" || c.Window != wantWindow {
			t.Errorf("snapshot %d names job %q window %q, want job-1 %s", c.SnapshotID, c.Job, c.Window, wantWindow)
		}
		for _, s := range c.Spans {
			got = append(got, s.Part+":"+s.From+"-"+s.To)
		}
	}
	if want := []string{"0:0-4", "1:0-2", "0:5-6", "0:5-8"}; !slices.Equal(got, want) {
		t.Errorf("the summaries' spans %v, want %v", got, want)
	}
}

// TestStreamCommitsRace commits panes of several windows at once, as the
// job's workers do: the commits that lose the race to the catalog are
// rebuilt, and every row is in the table once.
func TestStreamCommitsRace(t *testing.T) {
	ctx := context.Background()
	o := Options{Warehouse: t.TempDir(), Namespace: StreamNamespace("pinpipe")}
	const workers, panes = 4, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*panes)
	for g := range workers {
		wg.Go(func() {
			w, err := OpenStream(ctx, o)
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for i := range panes {
				win := time.Date(2026, 12, 7, 22, g*panes+i, 0, 0, time.UTC)
				from := int64(10 * (g*panes + i))
				p := Pane{Job: "job", Table: transforms.TablePin, WindowStart: win, WindowEnd: win.Add(time.Minute),
					Spans: []SpanRows{spanRows(t, "0", from, from+9, seq(from, from+9)...)}}
				if _, err := w.Commit(ctx, p); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if inds, _ := tableInds(t, o, transforms.TablePin); !slices.Equal(inds, seq(0, 10*workers*panes-1)) {
		t.Fatalf("the table's inds %v, want 0 to %d once each", inds, 10*workers*panes-1)
	}
}
