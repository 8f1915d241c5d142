package streaming

import (
	"context"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/transforms"
)

// Iceberg output (--table-format=iceberg)
//
// With Options.Iceberg, the file output goes to Iceberg tables instead of
// JSON-lines files: each pane commits its rows to the table as one snapshot
// (icebergio.StreamWriter.Commit: a Parquet file per partition and span of
// positions, the window and spans in the snapshot summary), and only then
// are the pane's positions recorded. A restart re-reads what fed a pane
// whose positions were not recorded; a span already in the table is
// skipped, one cut differently replaces the files it repeats, so each
// record's row is in its window's files once.

// writeIceberg commits the pane's rows to the table, one data file per
// span of positions, the rows of each in the order of their records.
func (f *writePaneFn) writeIceberg(ctx context.Context, iw window.IntervalWindow, p pane) error {
	if len(p.Rows) == 0 {
		return nil
	}
	s := transforms.SchemaOf(f.Prefix)
	parser := transforms.NewJSONRowParser(&s)
	sortRows(p.Rows)
	ip := icebergio.Pane{Job: f.Job, Table: f.Prefix, WindowStart: iw.Start.ToTime(), WindowEnd: iw.End.ToTime()}
	for _, sp := range p.Spans {
		sr := icebergio.SpanRows{Span: sp}
		for _, r := range p.Rows {
			if !inSpan(r, sp) {
				continue
			}
			_, row, err := parser.Parse(r.Row)
			if err != nil {
				return fmt.Errorf("streaming: a %s row of the pane: %w", f.Prefix, err)
			}
			sr.Rows = append(sr.Rows, append([]byte(nil), row...))
		}
		ip.Spans = append(ip.Spans, sr)
	}
	_, err := f.ice.Commit(ctx, ip)
	return err
}
