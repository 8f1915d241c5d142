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

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/pinpipe/pinpipe/io/kafkaio"
)

// TestWindowFilesReplaced: the files a re-read writes replace those of the
// run a crash cut short, however differently its panes cut the records:
// every row once, none lost.
func TestWindowFilesReplaced(t *testing.T) {
	dir := t.TempDir()
	f := &writePaneFn{Files: dir, Prefix: "pin"}
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	w := window.IntervalWindow{Start: mtime.FromTime(start), End: mtime.FromTime(start.Add(time.Minute))}
	paneOf := func(spans []kafkaio.Span, offsets ...int64) pane {
		var p pane
		p.Spans = spans
		for _, o := range offsets {
			p.Rows = append(p.Rows, paneRow{Topic: "t", Partition: 0, Offset: o, Row: []byte(`{"ind":` + itoa(o) + `}`)})
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
	write(paneOf([]kafkaio.Span{{Topic: "t", Partition: 0, From: 0, To: 9}}, 0, 5, 9))
	write(paneOf([]kafkaio.Span{{Topic: "t", Partition: 0, From: 10, To: 10}, {Topic: "t", Partition: 0, From: 15, To: 20}}, 10, 15, 20))
	// The restart reads from 10 again, in other panes: 10..16, then 17..30.
	write(paneOf([]kafkaio.Span{{Topic: "t", Partition: 0, From: 10, To: 10}, {Topic: "t", Partition: 0, From: 15, To: 16}}, 10, 15))
	write(paneOf([]kafkaio.Span{{Topic: "t", Partition: 0, From: 17, To: 30}}, 20, 25, 30))
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
