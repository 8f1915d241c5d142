package streaming

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/encoding/json"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn4x0[context.Context, beam.EventTime, SourceRecord, func(beam.EventTime, paneItem)](&spanItemFn{})
	register.Function1x1(kafkaSourceRecord)
	register.Function1x1(kinesisSourceRecord)
	beam.RegisterType(reflect.TypeOf((*SourceRecord)(nil)).Elem())
	register.Function2x0(paneKey)
	register.Emitter1[paneItem]()
	register.Emitter2[beam.EventTime, paneItem]()
	register.Emitter2[int, paneItem]()
	register.Combiner3[pane, paneItem, pane](&paneFn{})
	register.DoFn4x1[context.Context, beam.Window, int, pane, error](&writePaneFn{})
	beam.RegisterType(reflect.TypeOf((*paneItem)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*pane)(nil)).Elem(), encodePane, decodePane)
}

// DurableSource reads one table's raw records, as Source does, and also
// gives them with their spans of source positions, for durable positions.
type DurableSource struct {
	// Read gives the table's raw values (as Source) and the same records
	// as a PCollection<SourceRecord>.
	Read func(s beam.Scope, table string) (values, records beam.PCollection)
	// Store is where the sinks record the spans: KafkaPositions or
	// KinesisPositions.
	Store PositionStore
}

// PositionStore names a source's table of durable positions.
type PositionStore string

const (
	// KafkaPositions is kafkaio.PositionTable (kafkaio.RecordSpans).
	KafkaPositions PositionStore = "kafka"
	// KinesisPositions is kinesisio.CheckpointTable and SpanTable
	// (kinesisio.RecordSpans).
	KinesisPositions PositionStore = "kinesis"
)

// create makes the store's tables.
func (ps PositionStore) create(ctx context.Context, conn *pgx.Conn) error {
	switch ps {
	case KafkaPositions:
		return kafkaio.CreatePositionTable(ctx, conn)
	case KinesisPositions:
		return kinesisio.CreatePositionTables(ctx, conn)
	}
	return fmt.Errorf("streaming: no position store %q", string(ps))
}

// record adds job's spans to the store inside tx.
func (ps PositionStore) record(ctx context.Context, tx pgx.Tx, job string, spans []positions.Span) error {
	switch ps {
	case KafkaPositions:
		return kafkaio.RecordSpans(ctx, tx, job, spans)
	case KinesisPositions:
		return kinesisio.RecordSpans(ctx, tx, job, spans)
	}
	return fmt.Errorf("streaming: no position store %q", string(ps))
}

// Resume is where job's reading of stream's partition or shard resumes
// after a restart, the first position it reads again (false: the job has
// no positions there): every span ending before it is settled, never read
// again, so `pinpipe tables rewrite-files` may merge its Iceberg file away
// (icebergio.ResumeFunc).
func (ps PositionStore) Resume(ctx context.Context, conn *pgx.Conn, job, stream, part string) (string, bool, error) {
	switch ps {
	case KafkaPositions:
		p, err := strconv.ParseInt(part, 10, 32)
		if err != nil {
			return "", false, fmt.Errorf("streaming: Kafka partition %q is not a number", part)
		}
		at, ok, err := kafkaio.DurableStart(ctx, conn, job, stream, int32(p))
		return strconv.FormatInt(at, 10), ok, err
	case KinesisPositions:
		return kinesisio.DurableStart(ctx, conn, job, stream, part)
	}
	return "", false, fmt.Errorf("streaming: no position store %q", string(ps))
}

// SourceRecord is a raw record with what the durable positions need: its
// span of source positions (positions.Span) and its partition's or
// shard's own watermark when it was read.
type SourceRecord struct {
	Span      positions.Span
	Watermark int64 // Unix ms, 0: not known
	Value     []byte
}

func kafkaSourceRecord(r kafkaio.Record) SourceRecord {
	return SourceRecord{Span: kafkaio.RecordSpan(r), Watermark: r.Watermark, Value: r.Value}
}

func kinesisSourceRecord(r kinesisio.Record) SourceRecord {
	return SourceRecord{Span: kinesisio.RecordSpan(r), Watermark: r.Watermark, Value: r.Data}
}

// Durable positions, and what a restart gives
//
// With Options.Positions (pinpipe stream --source=kafka with a PostgreSQL
// sink or --checkpoint-dsn) no source position is recorded before every
// output of its records is written. Rows and dead letters are written in
// the bundle that read the records (fused with the read). Each record then
// goes, as one pane item (its span of offsets, its post for the pin
// table's counts, its clean row with --files), into the table's window
// panes: one pane per window and firing. writePaneFn writes a pane's file,
// then its posts and its spans (kafkaio.RecordSpans), the last two in one
// transaction when both go to the same PostgreSQL. The source starts each partition at the
// end of the first unbroken run of recorded spans, so after a crash it
// re-reads every record whose window had not fired (and, at most, some
// that were already written: every sink is keyed, and a pane written again
// adds nothing). Nothing of the guarantee lives in one process's memory.

// paneItem is one record in a table's window panes: its span of source
// positions and what it gives the outputs that wait for the window: its
// post (Post, for the category counts) and its clean row (for the files).
// One element per record, so that a pane never holds a record's span
// without its post or row.
type paneItem struct {
	Post     bool
	Category string
	Ind      int64
	Span     positions.Span
	Row      []byte // the record's clean row as JSON, for the files (nil: none)
}

// pane is one firing of a window: the posts of each category and the
// merged spans of the records it covers.
type pane struct {
	Categories map[string][]int64 `json:"c,omitempty"`
	Spans      []positions.Span   `json:"s,omitempty"`
	Rows       []paneRow          `json:"r,omitempty"`
}

// paneRow is a clean row of the pane, for the files, with the position of
// its record.
type paneRow struct {
	Stream string `json:"t"`
	Part   string `json:"p"`
	Pos    string `json:"o"`
	Row    []byte `json:"r"`
}

func encodePane(p pane) ([]byte, error) { return json.Marshal(p) }

func decodePane(b []byte) (pane, error) {
	var p pane
	err := json.Unmarshal(b, &p)
	return p, err
}

// spanItemFn turns a record into its span. A span carries the record's
// event time, so that it lands in the record's window and becomes durable
// with its pane; a record already later than the allowed lateness by its
// partition's own watermark (which the pane step's watermark cannot pass)
// would be dropped by the windowing with its span, so its span is moved
// to that watermark minus the lateness instead.
//
// With Table set (the job writes files), the item also carries the
// record's clean row, so that the files are written from the panes, named
// by their records' positions (see writePaneFn.writeFiles).
//
// With Counts (the pin table, with a sink), the item carries the record's
// post (category and ind), unless the record was moved: a record late by
// its own partition's watermark is not counted. With Files, it carries
// the record's clean row, so that the files are written from the panes,
// named by their records' positions (see writePaneFn.writeFiles).
type spanItemFn struct {
	Lateness time.Duration
	Table    string
	Counts   bool
	Files    bool

	late beam.Counter
}

// MetricLate names a table's Beam counter of records late by their own
// partition's or shard's watermark (see spanItemFn), in
// transforms.MetricsNamespace.
func MetricLate(table string) string { return "records_late_" + table }

func (f *spanItemFn) Setup() {
	f.late = beam.NewCounter(transforms.MetricsNamespace, MetricLate(f.Table))
}

// ProcessElement counts the records late by their source's watermark: an
// estimate of those the windowing drops from the counts (the pane step's
// watermark is the slowest partition's, so a record late by its own
// partition's may still be in time there, and prism drops late elements
// without a trace).
func (f *spanItemFn) ProcessElement(ctx context.Context, et beam.EventTime, r SourceRecord, emit func(beam.EventTime, paneItem)) {
	moved := false
	if floor := mtime.FromMilliseconds(r.Watermark).Subtract(f.Lateness); r.Watermark > 0 && et < floor {
		et, moved = floor, true
		f.late.Inc(ctx, 1)
	}
	it := paneItem{Span: r.Span}
	if f.Counts || f.Files {
		row, ok := cleanRow(f.Table, r.Value)
		if ok && f.Files {
			if b, err := json.Marshal(row); err == nil {
				it.Row = b
			}
		}
		if p, isPin := row.(transforms.Pin); ok && isPin && f.Counts && !moved && p.Category != nil {
			it.Post, it.Category, it.Ind = true, *p.Category, p.Ind
		}
	}
	emit(et, it)
}

// cleanRow is a raw record's clean row, or false for a record that is a
// dead letter.
func cleanRow(table string, raw []byte) (any, bool) {
	def, ok := transforms.TableOf(table)
	if !ok {
		return nil, false
	}
	row, _, err := def.CleanRecord(raw)
	return row, err == nil
}

// paneKey puts a window's items under one key: a pane is the window's
// whole firing.
func paneKey(it paneItem, emit func(int, paneItem)) { emit(0, it) }

// paneFn gathers a pane: distinct posts per category, merged spans.
type paneFn struct{}

func (paneFn) CreateAccumulator() pane { return pane{} }

func (paneFn) AddInput(p pane, it paneItem) pane {
	if it.Post {
		if p.Categories == nil {
			p.Categories = map[string][]int64{}
		}
		a := p.Categories[it.Category]
		if i, found := slices.BinarySearch(a, it.Ind); !found {
			p.Categories[it.Category] = slices.Insert(a, i, it.Ind)
		}
	}
	p.Spans = append(p.Spans, it.Span)
	if it.Row != nil {
		p.Rows = append(p.Rows, paneRow{Stream: it.Span.Stream, Part: it.Span.Part, Pos: it.Span.To, Row: it.Row})
	}
	if len(p.Spans) >= 1024 {
		p.Spans = positions.Merge(p.Spans)
	}
	return p
}

func (paneFn) MergeAccumulators(a, b pane) pane {
	for c, inds := range b.Categories {
		if a.Categories == nil {
			a.Categories = map[string][]int64{}
		}
		m := append(a.Categories[c], inds...)
		slices.Sort(m)
		a.Categories[c] = slices.Compact(m)
	}
	a.Spans = positions.Merge(append(a.Spans, b.Spans...))
	a.Rows = append(a.Rows, b.Rows...)
	return a
}

func (paneFn) ExtractOutput(p pane) pane {
	p.Spans = positions.Merge(p.Spans)
	return p
}

// durablePanes windows a table's pane items as the category counts are
// windowed (fixed windows firing when the watermark passes their end,
// early every few seconds while open, and for each late element within
// the allowed lateness; discarding) and gathers each firing.
func durablePanes(s beam.Scope, items beam.PCollection, size, lateness time.Duration) beam.PCollection {
	s = s.Scope("streaming.DurablePanes")
	windowed := countWindows(s, items, size, lateness)
	return beam.CombinePerKey(s, &paneFn{}, beam.ParDo(s, paneKey, windowed))
}

// writePaneFn writes a pane: its category posts into Sink (if set), then
// its spans into Positions under Job; in one transaction when both are
// the same database.
type writePaneFn struct {
	Sink      string
	Positions string
	Store     PositionStore
	Job       string
	// Files, when set, is the table's directory (or prefix) of windowed
	// JSON-lines files, and Prefix their names' prefix.
	Files  string
	Prefix string
	// Iceberg, when its Warehouse is set, takes the rows instead of Files:
	// each pane is committed to the table Prefix (see iceberg.go).
	Iceberg icebergio.Options

	// Connections that outlast a PostgreSQL outage (the pane waits).
	sink, pos *postgres.Retrying
	ice       *icebergio.StreamWriter
}

func (f *writePaneFn) Setup(ctx context.Context) error {
	if f.Sink != "" {
		f.sink = &postgres.Retrying{DSN: f.Sink, Init: postgres.CreateCategoryTables}
	}
	f.pos = &postgres.Retrying{DSN: f.Positions, Init: f.Store.create}
	if f.Positions == f.Sink {
		f.pos.Init = func(ctx context.Context, conn *pgx.Conn) error {
			if err := postgres.CreateCategoryTables(ctx, conn); err != nil {
				return err
			}
			return f.Store.create(ctx, conn)
		}
		f.sink = f.pos
	}
	if f.Iceberg.Warehouse != "" {
		var err error
		if f.ice, err = icebergio.OpenStream(ctx, f.Iceberg); err != nil {
			return err
		}
	}
	for _, db := range []*postgres.Retrying{f.sink, f.pos} {
		if db != nil {
			if err := db.Do(ctx, "connecting for the window panes", func(*pgx.Conn) error { return nil }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *writePaneFn) Teardown() {
	if f.ice != nil {
		f.ice.Close()
	}
	if f.pos != nil && f.pos != f.sink {
		f.pos.Close()
	}
	if f.sink != nil {
		f.sink.Close()
	}
}

func (f *writePaneFn) ProcessElement(ctx context.Context, w beam.Window, _ int, p pane) error {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return fmt.Errorf("streaming: a pane in %v, not a fixed window", w)
	}
	posts := func(ctx context.Context, tx pgx.Tx) error {
		cats := make([]string, 0, len(p.Categories))
		for c := range p.Categories {
			cats = append(cats, c)
		}
		slices.Sort(cats)
		for _, c := range cats {
			err := postgres.InsertCategoryPosts(ctx, tx, postgres.CategoryPosts{
				WindowStart: iw.Start.ToTime().UTC(), WindowEnd: iw.End.ToTime().UTC(),
				Category: c, Inds: p.Categories[c]})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if f.ice != nil {
		if err := f.writeIceberg(ctx, iw, p); err != nil {
			return err
		}
	} else if f.Files != "" {
		if err := f.writeFiles(ctx, iw, p); err != nil {
			return err
		}
	}
	spans := func(ctx context.Context, tx pgx.Tx) error {
		return f.Store.record(ctx, tx, f.Job, p.Spans)
	}
	if f.sink != nil && len(p.Categories) > 0 && f.sink != f.pos {
		// Two databases: the posts first, then the positions that
		// depended on them.
		err := f.sink.Do(ctx, "writing a pane's posts", func(conn *pgx.Conn) error {
			return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return posts(ctx, tx) })
		})
		if err != nil {
			return err
		}
	}
	return f.pos.Do(ctx, "writing a pane's positions", func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if f.sink == f.pos {
				if err := posts(ctx, tx); err != nil {
					return err
				}
			}
			return spans(ctx, tx)
		})
	})
}

// writeFiles writes the pane's rows, one file per partition and run of
// positions the pane covers, <Files>/window=<start>/<Prefix>-<start>-
// <topic>-<partition>-<from>-<to>.jsonl, in the order of the records, each
// replaced whole (atomically on a local disk, a single upload on S3). A
// re-read after a restart makes the same window's runs again, perhaps cut
// differently; each file it writes replaces every earlier one of the
// window and partition whose run starts inside its own, so the files hold
// each record once: the earlier files that start inside the re-read were
// made by the run the crash cut short, or by this one; those before it
// hold records that are not read again.
func (f *writePaneFn) writeFiles(ctx context.Context, iw window.IntervalWindow, p pane) error {
	if len(p.Spans) == 0 {
		return nil
	}
	start := iw.Start.ToTime().UTC().Format(time.RFC3339)
	dir := files.Join(f.Files, "window="+start)
	sortRows(p.Rows)
	existing := map[string][]string{} // by stream and partition or shard
	for _, s := range p.Spans {
		var buf []byte
		for _, r := range p.Rows {
			if inSpan(r, s) {
				buf = append(buf, r.Row...)
				buf = append(buf, '\n')
			}
		}
		part := fmt.Sprintf("%s-%s-%s-%s-", f.Prefix, start, s.Stream, s.Part)
		name := files.Join(dir, fmt.Sprintf("%s%s-%s.jsonl", part, s.From, s.To))
		if len(buf) > 0 {
			if err := files.WriteFileAtomic(ctx, name, buf); err != nil {
				return fmt.Errorf("streaming: writing %s: %w", name, err)
			}
		}
		old, ok := existing[part]
		if !ok {
			var err error
			if old, err = files.Expand(ctx, files.Join(dir, part+"*.jsonl")); err != nil {
				return fmt.Errorf("streaming: listing %s: %w", dir, err)
			}
			existing[part] = old
		}
		var stale []string
		for _, o := range old {
			base := o[strings.LastIndex(o, "/")+1:]
			from, _, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(base, part), ".jsonl"), "-")
			if !ok || from == "" || strings.Trim(from, "0123456789") != "" {
				continue
			}
			if positions.Compare(from, s.From) >= 0 && positions.Compare(from, s.To) <= 0 && base != name[strings.LastIndex(name, "/")+1:] {
				stale = append(stale, o)
			}
		}
		if err := files.RemoveFiles(ctx, stale...); err != nil {
			return fmt.Errorf("streaming: replacing the files of %s: %w", dir, err)
		}
	}
	return nil
}

// sortRows puts a pane's rows in the order of their records.
func sortRows(rows []paneRow) {
	slices.SortFunc(rows, func(a, b paneRow) int {
		if c := cmp.Compare(a.Stream, b.Stream); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Part, b.Part); c != 0 {
			return c
		}
		return positions.Compare(a.Pos, b.Pos)
	})
}

// inSpan says whether a row's record is in the span.
func inSpan(r paneRow, s positions.Span) bool {
	return r.Stream == s.Stream && r.Part == s.Part && positions.Compare(r.Pos, s.From) >= 0 && positions.Compare(r.Pos, s.To) <= 0
}
