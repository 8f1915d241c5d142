package streaming

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/positions"
)

// TestWindowFilesReplaced: the files a re-read writes replace those of the
// run a crash cut short, however differently its panes cut the records:
// every row once, none lost.
func TestWindowFilesReplaced(t *testing.T) {
	dir := t.TempDir()
	f := &writePaneFn{Files: dir, Prefix: "pin"}
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	w := window.IntervalWindow{Start: mtime.FromTime(start), End: mtime.FromTime(start.Add(time.Minute))}
	sp := func(from, to int64) positions.Span {
		return positions.Span{Stream: "t", Part: "0", From: itoa(from), To: itoa(to)}
	}
	paneOf := func(spans []positions.Span, offsets ...int64) pane {
		var p pane
		p.Spans = spans
		for _, o := range offsets {
			p.Rows = append(p.Rows, paneRow{Stream: "t", Part: "0", Pos: itoa(o), Row: []byte(`{"ind":` + itoa(o) + `}`)})
		}
		return p
	}
	write := func(p pane) {
		t.Helper()
		if err := f.writeFiles(context.Background(), w, p); err != nil {
			t.Fatal(err)
		}
	}
	lines := func() []string {
		t.Helper()
		names, _ := filepath.Glob(filepath.Join(dir, "window=*", "*.jsonl"))
		var out []string
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.Fields(string(b))...)
		}
		slices.Sort(out)
		return out
	}
	// The first run: records 0..9 durable, then 10..20 of this window in a
	// pane whose positions the crash kept from being recorded (offsets 11
	// to 14 are another window's).
	write(paneOf([]positions.Span{sp(0, 9)}, 0, 5, 9))
	write(paneOf([]positions.Span{sp(10, 10), sp(15, 20)}, 10, 15, 20))
	// The restart reads from 10 again, in other panes: 10..16, then 17..30.
	write(paneOf([]positions.Span{sp(10, 10), sp(15, 16)}, 10, 15))
	write(paneOf([]positions.Span{sp(17, 30)}, 20, 25, 30))
	want := []string{`{"ind":0}`, `{"ind":10}`, `{"ind":15}`, `{"ind":20}`, `{"ind":25}`, `{"ind":30}`, `{"ind":5}`, `{"ind":9}`}
	if got := lines(); !slices.Equal(got, want) {
		t.Errorf("rows in the files: %v, want %v", got, want)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "window=2026-01-02T03:04:00Z", "pin-2026-01-02T03:04:00Z-t-0-*.jsonl"))
	if len(names) != 4 {
		t.Errorf("files %v, want 4 named by window, partition and positions", names)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSpanItem: a record's span, post and file row travel as one item; a
// record already later than the allowed lateness by its partition's
// watermark moves to that watermark minus the lateness (so that the
// windowing keeps its span) and is not counted.
func TestSpanItem(t *testing.T) {
	fn := &spanItemFn{Lateness: time.Minute, Table: "pin", Counts: true, Files: true}
	fn.Setup()
	ctx := context.Background()
	wm := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	rec := kafkaSourceRecord(kafkaio.Record{Topic: "t", Partition: 2, Offset: 9, From: 7, Watermark: wm.UnixMilli(),
		Value: []byte(`{"index": 5, "category": "art", "title": "x"}`)})
	span := positions.Span{Stream: "t", Part: "2", From: "7", To: "9"}
	var ets []mtime.Time
	var items []paneItem
	emit := func(et beam.EventTime, it paneItem) { ets, items = append(ets, et), append(items, it) }
	fn.ProcessElement(ctx, mtime.FromTime(wm.Add(-30*time.Second)), rec, emit)
	fn.ProcessElement(ctx, mtime.FromTime(wm.Add(-2*time.Minute)), rec, emit)
	bad := rec
	bad.Value = []byte(`not json`)
	fn.ProcessElement(ctx, mtime.FromTime(wm), bad, emit)

	if it := items[0]; !it.Post || it.Category != "art" || it.Ind != 5 || it.Span != span || len(it.Row) == 0 {
		t.Errorf("on time: %+v", it)
	}
	if ets[0] != mtime.FromTime(wm.Add(-30*time.Second)) {
		t.Errorf("on time, moved to %v", ets[0])
	}
	if it := items[1]; it.Post || it.Span != span || len(it.Row) == 0 || ets[1] != mtime.FromTime(wm.Add(-time.Minute)) {
		t.Errorf("late: %+v at %v, want its span and row at the watermark minus the lateness, not counted", it, ets[1])
	}
	if it := items[2]; it.Post || it.Row != nil || it.Span != span {
		t.Errorf("a dead letter: %+v, want its span alone", it)
	}

	// A pane gathers distinct posts and merged spans.
	var fnp paneFn
	a := fnp.AddInput(fnp.AddInput(fnp.CreateAccumulator(), items[0]), items[2])
	b := fnp.AddInput(fnp.CreateAccumulator(), paneItem{Post: true, Category: "art", Ind: 5, Span: positions.Span{Stream: "t", Part: "2", From: "10", To: "12"}})
	p := fnp.ExtractOutput(fnp.MergeAccumulators(a, b))
	if !slices.Equal(p.Categories["art"], []int64{5}) || !slices.Equal(p.Spans, []positions.Span{{Stream: "t", Part: "2", From: "7", To: "12"}}) || len(p.Rows) != 1 {
		t.Errorf("pane %+v", p)
	}
}
