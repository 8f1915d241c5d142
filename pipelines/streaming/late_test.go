package streaming

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn4x0[beam.Window, string, []int64, func(string)](&panePostsFn{})
	register.Function2x0(postKey)
	register.Emitter1[string]()
	register.Function2x0(lateTestRecord)
	register.Emitter1[SourceRecord]()
	register.Function2x0(lateTestValue)
	register.Emitter1[[]byte]()
	register.DoFn2x0[string, func([]byte)](&noneFn{})
	register.DoFn2x0[[]byte, func(SourceRecord)](&noneRecordFn{})
}

// late is the timeline of the late-data tests: windows of a minute, an
// allowed lateness of two.
const (
	lateWindow   = time.Minute
	lateLateness = 2 * time.Minute
)

func ms(d time.Duration) int64 { return base.Add(d).UnixMilli() }

// lateStream is the tests' TestStream of "<ind> <category> [<source
// watermark, seconds>]" posts:
//   - posts 1 and 2 in the first window [0, 1m); processing time advances
//     6 s (the early firing's delay is 5 s): an early pane;
//   - post 6 in the first window, then the watermark passes its end: the
//     on-time pane;
//   - post 3 in the first window with the watermark at 1m30s, within the
//     lateness: a late pane that updates the count;
//   - the watermark passes 3m20s, beyond the window's end plus the
//     lateness (3m): post 4, in the first window, is dropped (its source
//     showed it late: its partition's watermark was at 3m20s too);
//   - post 5 in the window [3m, 4m), on time.
func lateStream(s beam.Scope) beam.PCollection {
	c := teststream.NewConfig()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(c.AdvanceWatermark(ms(0)))
	must(c.AddElements(ms(10*time.Second), "1 art", "2 art"))
	c.AdvanceProcessingTime((6 * time.Second).Milliseconds())
	must(c.AddElements(ms(15*time.Second), "6 art"))
	must(c.AdvanceWatermark(ms(90 * time.Second)))
	must(c.AddElements(ms(20*time.Second), "3 art"))
	must(c.AdvanceWatermark(ms(200 * time.Second)))
	must(c.AddElements(ms(30*time.Second), "4 art 200"))
	must(c.AddElements(ms(190*time.Second), "5 travel"))
	must(c.AdvanceWatermarkToInfinity())
	return teststream.Create(s, c)
}

// panePostsFn gives each post of a pane with its window's start.
type panePostsFn struct{}

func (panePostsFn) ProcessElement(w beam.Window, _ string, inds []int64, emit func(string)) {
	iw := w.(window.IntervalWindow)
	for _, ind := range inds {
		emit(fmt.Sprintf("%s %d", iw.Start.ToTime().UTC().Sub(base), ind))
	}
}

func postKey(line string, emit func(string, int64)) {
	f := strings.Fields(line)
	var n int64
	fmt.Sscan(f[0], &n)
	emit(f[1], n)
}

// TestCategoryWindowFirings: the category windows (countWindows) fire
// for each post within the allowed lateness, with discarding panes (each
// post in one pane: the sink adds them up); a post beyond the lateness
// fires nothing. (Prism, v2.77, gives every pane as EARLY and cuts the
// panes its own way, so the panes' timing and number are not asserted.)
func TestCategoryWindowFirings(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	posts := beam.ParDo(s, postKey, lateStream(s))
	panes := beam.CombinePerKey(s, &distinctIndsFn{}, countWindows(s, posts, lateWindow, lateLateness))
	got := beam.ParDo(s, &panePostsFn{}, panes)
	passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), got), "0s 1", "0s 2", "0s 6", "0s 3", "3m0s 5")
	ptest.RunAndValidate(t, p)
}

func lateTestRecord(line string, emit func(SourceRecord)) {
	f := strings.Fields(line)
	ind, category := f[0], f[1]
	var wm int64
	if len(f) > 2 {
		var sec int
		fmt.Sscan(f[2], &sec)
		wm = ms(time.Duration(sec) * time.Second)
	}
	emit(SourceRecord{Span: positions.Span{Stream: "late", Part: "0", From: ind, To: ind}, Watermark: wm,
		Value: fmt.Appendf(nil, `{"index": %s, "category": %q, "title": "t"}`, ind, category)})
}

func lateTestValue(line string, emit func([]byte)) {
	lateTestRecord(line, func(r SourceRecord) { emit(r.Value) })
}

// noneFn emits nothing: the tables other than pin get no records.
type noneFn struct{}

func (noneFn) ProcessElement(string, func([]byte)) {}

// noneRecordFn emits no SourceRecord.
type noneRecordFn struct{}

func (noneRecordFn) ProcessElement([]byte, func(SourceRecord)) {}

// TestLateDataCounts runs the job's durable path (window panes that carry
// posts and positions) on lateStream: the pin within the allowed lateness
// updates its window's count, the one beyond it does not (its row is still
// written), and is counted late by the estimate before the windowing
// (MetricLate); the positions of every post are recorded, the late one's
// included.
func TestLateDataCounts(t *testing.T) {
	dsn := testDSN(t)
	p, s := beam.NewPipelineWithRoot()
	posts := lateStream(s)
	src := DurableSource{Store: KafkaPositions, Read: func(s beam.Scope, table string) (beam.PCollection, beam.PCollection) {
		if table != transforms.TablePin {
			none := beam.ParDo(s, &noneFn{}, posts)
			return none, beam.ParDo(s, &noneRecordFn{}, none)
		}
		return beam.ParDo(s, lateTestValue, posts), beam.ParDo(s, lateTestRecord, posts)
	}}
	if err := Build(s, Options{DurableSource: src, Sink: dsn, Positions: dsn, Job: "late", Window: lateWindow, AllowedLateness: lateLateness}); err != nil {
		t.Fatal(err)
	}
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	late := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == transforms.MetricsNamespace && strings.HasPrefix(c.Name(), "records_late_") {
			late[c.Name()] += c.Result()
		}
	}
	if late[MetricLate(transforms.TablePin)] != 1 || len(late) != 1 {
		t.Errorf("late records: %v, want %s = 1 (post 4)", late, MetricLate(transforms.TablePin))
	}

	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	var from, to int64
	if err := conn.QueryRow(ctx, "SELECT min(from_offset), max(to_offset) FROM kafka_positions WHERE job = 'late' AND to_offset >= from_offset").Scan(&from, &to); err != nil || from != 1 || to != 6 {
		t.Errorf("durable positions [%d, %d] (%v), want [1, 6]", from, to, err)
	}
	rows := tableRows(ctx, conn)
	if n := rows(postgres.StreamPinTable); n != 6 {
		t.Errorf("%s: %d rows, want 6 (the post beyond the lateness too)", postgres.StreamPinTable, n)
	}
	q, err := conn.Query(ctx, "SELECT window_start, category, ind FROM "+postgres.CategoryPostsTable+" ORDER BY window_start, ind")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for q.Next() {
		var start time.Time
		var category string
		var ind int64
		if err := q.Scan(&start, &category, &ind); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d", start.Sub(base), category, ind))
	}
	want := []string{"0s art 1", "0s art 2", "0s art 3", "0s art 6", "3m0s travel 5"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("category posts %v, want %v (post 3 within the lateness counted, post 4 beyond it not)", got, want)
	}
}
