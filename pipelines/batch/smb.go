package batch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/internal/parallel"
	"github.com/pinpipe/pinpipe/internal/rawline"
	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/io/smb"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn5x1[context.Context, string, func(int, RunFile), func(transforms.DeadLetter), func(transforms.TableStats), error](&writeRunsFn{})
	register.DoFn7x1[context.Context, int, func(*RunFile) bool, func(transforms.Partials), func(transforms.TableStats), func(OutputFile), func(int, RunFile), error](&mergeBucketFn{})
	register.DoFn4x1[context.Context, int, func(*RunFile) bool, func(transforms.Partials), error](&mergeFactsFn{})
	register.Emitter2[int, RunFile]()
	register.Emitter1[OutputFile]()
	register.Iter1[RunFile]()
	beam.RegisterType(reflect.TypeOf((*RunFile)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*OutputFile)(nil)).Elem())
}

// RunFile is a sorted run the clean stage wrote: one table's rows of one
// bucket from part of the input. The runner shuffles only these small
// elements; the rows stay in the files. A RunFile with no Path marks a
// bucket, so that every bucket is merged even when no new row falls in it.
type RunFile struct {
	Table  string
	Bucket int
	Path   string
	Rows   int64
}

// OutputFile is a file a run wrote into the output, to be named in its
// commit: a table's bucket file, or a file of dead letters (Table empty).
type OutputFile struct {
	Table  string `json:"table,omitempty"`
	Bucket int    `json:"bucket"`
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
}

// spillBytes bounds the encoded rows the clean stage holds, across its
// workers, before it sorts them and writes them as runs: 96 MiB, or a
// quarter of the Go memory limit (GOMEMLIMIT) when one is set lower, so a
// worker given little memory spills smaller runs instead of growing. The
// job's memory is about this much for cleaning, whatever the size of its
// input.
// buffered is the bytes all sort buffers of this process hold (RunCleaner's
// and factWriter's). A runner may run many bundles of a stage at once in one
// worker process (prism does, one per split of the input), each with its own
// buffers; their sum, not each, is held to spillBytes. It is a limit on the
// worker process's memory, like a memory manager's, and carries nothing
// from one transform to another, so it holds on runners whose stages run in
// separate workers as well.
var buffered atomic.Int64

// overBudget reports that the process's sort buffers hold more than
// spillBytes, so the caller should spill its own.
func overBudget() bool { return buffered.Load() >= int64(spillBytes()) }

// mergeSlots holds the merges (of buckets, of facts) a worker process runs
// at once to one per core: each merge holds its writers' row groups, its
// runs' blocks and its fact buffers, and a runner may run many bundles of a
// merge stage at once in one process (prism does), each with its own pool.
// Like buffered, a bound on the process's memory, carrying no data.
var mergeSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// mergeSlot waits for a merge slot and returns its release.
func mergeSlot() func() {
	mergeSlots <- struct{}{}
	return func() { <-mergeSlots }
}

func spillBytes() int {
	const most, least = 96 << 20, 4 << 20
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
		return int(min(max(limit/4, least), most))
	}
	return most
}

// writeRunsFn cleans whole input files of one table and writes the clean
// rows as runs sorted by ind, one per bucket each time its buffers fill.
// Files are cleaned on every core (internal/parallel), each worker with its
// own cleaner and buffers.
type writeRunsFn struct {
	Table   string
	Buckets int
	RunDir  string
	// Progress records each object read in RunDir (see watchProgress).
	Progress bool

	fs     filesystem.Interface
	pool   parallel.Ordered[runsResult]
	states chan *RunCleaner
	stats  transforms.TableStats
	err    error
}

// RunCleaner cleans input files of one table into runs sorted by ind, one
// per bucket each time its buffers hold SpillAt bytes: the clean stage's
// work for one goroutine, without Beam (the bench's plain Go program runs
// it too).
type RunCleaner struct {
	Table   string
	Buckets int
	RunDir  string
	SpillAt int
	FS      filesystem.Interface
	// ReadBytes counts the bytes of the lines read (their newlines too).
	ReadBytes int64

	cleaner *transforms.LineCleaner
	lines   files.LineReader
	bufs    []smb.Buffer
	size    int
}

// NewRunCleaner returns a RunCleaner writing runs into runDir on fs.
func NewRunCleaner(fs filesystem.Interface, table string, buckets int, runDir string, spillAt int) *RunCleaner {
	return &RunCleaner{Table: table, Buckets: buckets, RunDir: runDir, SpillAt: spillAt, FS: fs,
		cleaner: transforms.NewLineCleaner(table), bufs: make([]smb.Buffer, buckets)}
}

type runsResult struct {
	runs  []RunFile
	dead  []transforms.DeadLetter
	stats transforms.TableStats
	err   error
}

func (f *writeRunsFn) Setup(ctx context.Context) error {
	fs, err := filesystem.New(ctx, f.RunDir)
	f.fs = fs
	return err
}

func (f *writeRunsFn) Teardown() {
	if f.fs != nil {
		f.fs.Close()
	}
}

func (f *writeRunsFn) StartBundle(context.Context, func(int, RunFile), func(transforms.DeadLetter), func(transforms.TableStats)) {
	n := runtime.GOMAXPROCS(0)
	f.states = make(chan *RunCleaner, n)
	for range n {
		f.states <- NewRunCleaner(f.fs, f.Table, f.Buckets, f.RunDir, spillBytes()/n)
	}
	f.pool = parallel.Ordered[runsResult]{Workers: n}
	f.stats = transforms.TableStats{Table: f.Table}
	f.err = nil
}

func (f *writeRunsFn) ProcessElement(ctx context.Context, name string, emit func(int, RunFile), dead func(transforms.DeadLetter), _ func(transforms.TableStats)) error {
	f.pool.Submit(func() runsResult {
		st := <-f.states
		defer func() { f.states <- st }()
		var r runsResult
		before := st.ReadBytes
		r.runs, r.dead, r.stats, r.err = st.CleanFile(ctx, name)
		if r.err == nil && f.Progress {
			writeProgress(ctx, f.RunDir, name, objectProgress{Records: r.stats.Read, Bytes: st.ReadBytes - before})
		}
		return r
	}, f.emitter(emit, dead))
	return f.err
}

func (f *writeRunsFn) FinishBundle(ctx context.Context, emit func(int, RunFile), dead func(transforms.DeadLetter), stats func(transforms.TableStats)) error {
	em := f.emitter(emit, dead)
	f.pool.Drain(em)
	for range cap(f.states) {
		st := <-f.states
		f.pool.Submit(func() runsResult {
			defer st.Close()
			var r runsResult
			r.runs, r.err = st.Flush(ctx)
			return r
		}, em)
	}
	f.pool.Drain(em)
	if f.err == nil && f.stats.Read > 0 {
		stats(f.stats)
	}
	return f.err
}

func (f *writeRunsFn) emitter(emit func(int, RunFile), dead func(transforms.DeadLetter)) func(runsResult) {
	return func(r runsResult) {
		if r.err != nil {
			f.err = errors.Join(f.err, r.err)
			return
		}
		for _, run := range r.runs {
			emit(run.Bucket, run)
		}
		for _, d := range r.dead {
			dead(d)
		}
		f.stats.Add(r.stats)
	}
}

// CleanFile reads one input file into the buffers, writing runs whenever
// they hold SpillAt bytes; it returns the runs written, the file's dead
// letters and what the cleaner counted.
func (c *RunCleaner) CleanFile(ctx context.Context, name string) (runs []RunFile, dead []transforms.DeadLetter, stats transforms.TableStats, err error) {
	err = c.lines.ReadFile(ctx, name, func(line []byte) {
		c.ReadBytes += int64(len(line)) + 1
		var ind int64
		var row []byte
		var d *transforms.DeadLetter
		// A value the S3 sink could not write as a line of text comes
		// wrapped; it is cleaned, or dead-lettered, as its original bytes.
		if v, wrapped := rawline.Unwrap(line); wrapped {
			ind, row, d = c.cleaner.CleanValue(v)
		} else {
			ind, row, d = c.cleaner.Clean(line)
		}
		switch {
		case d != nil:
			dead = append(dead, *d)
		case row != nil:
			b := &c.bufs[smb.Bucket(ind, c.Buckets)]
			before := b.Size()
			b.Add(ind, row)
			grown := b.Size() - before
			c.size += grown
			buffered.Add(int64(grown))
		}
	})
	if err != nil {
		return nil, nil, stats, fmt.Errorf("reading %s: %w", name, err)
	}
	stats = c.cleaner.Stats()
	if c.size >= c.SpillAt || overBudget() {
		runs, err = c.Flush(ctx)
	}
	return runs, dead, stats, err
}

// Close releases the input readers' clients (not the buffers: Flush first).
func (c *RunCleaner) Close() { c.lines.Close() }

// Flush writes each non-empty bucket buffer as a run and empties it.
func (c *RunCleaner) Flush(ctx context.Context) ([]RunFile, error) {
	var runs []RunFile
	for bucket := range c.bufs {
		b := &c.bufs[bucket]
		if b.Len() == 0 {
			continue
		}
		name := files.Join(c.RunDir, fmt.Sprintf("run-%s-%05d-%s.s2", c.Table, bucket, randomID()))
		if err := b.WriteRun(ctx, c.FS, name); err != nil {
			return nil, err
		}
		runs = append(runs, RunFile{Table: c.Table, Bucket: bucket, Path: name, Rows: int64(b.Len())})
		b.Reset()
	}
	buffered.Add(-int64(c.size))
	c.size = 0
	return runs, nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// mergeBucketFn merges one bucket: the runs of the three tables and, for an
// incremental run, the bucket's files of the tables already committed. It
// keeps one row per ind, joins the tables on ind as it goes, writes the
// bucket's table files (sorted by ind) and folds the posts into insight
// partials. Its memory is the merge buffers, not the bucket. Up to one
// bucket per core is merged at once.
type mergeBucketFn struct {
	Config MergeConfig
	// Previous are the committed table files to merge into.
	Previous []OutputFile

	fs, runsFS filesystem.Interface
	pool       parallel.Ordered[mergeResult]
	err        error
}

// MergeConfig says where a bucket merge writes.
type MergeConfig struct {
	Format    string
	TablesDir string
	RunID     string
	// RunDir and Buckets place the distinct-fact runs the merge writes.
	RunDir  string
	Buckets int
}

type mergeResult struct {
	partials *transforms.Partials
	stats    []transforms.TableStats
	files    []OutputFile
	facts    []RunFile
	err      error
}

func (f *mergeBucketFn) Setup(ctx context.Context) error {
	// The tables and the runs may be on different filesystems (a local
	// output, runs under an s3:// temp location).
	fs, err := filesystem.New(ctx, f.Config.TablesDir)
	if err != nil {
		return err
	}
	f.fs = fs
	f.runsFS, err = filesystem.New(ctx, f.Config.RunDir)
	return err
}

func (f *mergeBucketFn) Teardown() {
	for _, fs := range []filesystem.Interface{f.fs, f.runsFS} {
		if fs != nil {
			fs.Close()
		}
	}
}

func (f *mergeBucketFn) StartBundle(context.Context, func(transforms.Partials), func(transforms.TableStats), func(OutputFile), func(int, RunFile)) {
	f.pool = parallel.Ordered[mergeResult]{}
	f.err = nil
}

func (f *mergeBucketFn) ProcessElement(ctx context.Context, bucket int, iter func(*RunFile) bool, partials func(transforms.Partials), stats func(transforms.TableStats), out func(OutputFile), facts func(int, RunFile)) error {
	runs := map[string][]string{}
	var r RunFile
	for iter(&r) {
		if r.Path != "" {
			runs[r.Table] = append(runs[r.Table], r.Path)
		}
	}
	for _, p := range f.Previous {
		if p.Bucket == bucket {
			runs[p.Table] = append(runs[p.Table], p.Path)
		}
	}
	f.pool.Submit(func() mergeResult {
		defer mergeSlot()()
		var r mergeResult
		r.partials, r.stats, r.files, r.facts, r.err = MergeBucket(ctx, f.fs, f.runsFS, f.Config, bucket, runs)
		return r
	}, f.emitter(partials, stats, out, facts))
	return f.err
}

func (f *mergeBucketFn) FinishBundle(_ context.Context, partials func(transforms.Partials), stats func(transforms.TableStats), out func(OutputFile), facts func(int, RunFile)) error {
	f.pool.Drain(f.emitter(partials, stats, out, facts))
	return f.err
}

func (f *mergeBucketFn) emitter(partials func(transforms.Partials), stats func(transforms.TableStats), out func(OutputFile), facts func(int, RunFile)) func(mergeResult) {
	return func(r mergeResult) {
		if r.err != nil {
			f.err = errors.Join(f.err, r.err)
			return
		}
		partials(*r.partials)
		for _, st := range r.stats {
			stats(st)
		}
		for _, o := range r.files {
			out(o)
		}
		for _, run := range r.facts {
			facts(run.Bucket, run)
		}
	}
}

// MergeBucket merges one bucket: sources are, per table, its run files and
// committed bucket file (told apart by their names' ends). It writes the
// bucket's table files (on tablesFS) and its facts' runs (on runsFS, where
// the input runs are too), and returns the bucket's
// partials (counts), stats, table files and fact runs.
func MergeBucket(ctx context.Context, tablesFS, runsFS filesystem.Interface, cfg MergeConfig, bucket int, sources map[string][]string) (
	_ *transforms.Partials, _ []transforms.TableStats, tables []OutputFile, factRuns []RunFile, err error) {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	streams := make([]transforms.SortedRows, len(transforms.Tables))
	for i, t := range transforms.Tables {
		var its []smb.Iterator
		for _, name := range sources[t] {
			if isRunFile(name) {
				rr, err := smb.OpenRun(ctx, runsFS, name)
				if err != nil {
					return nil, nil, nil, nil, err
				}
				closers = append(closers, rr)
				its = append(its, rr)
				continue
			}
			it, c, err := openTableFile(ctx, name, t, cfg.Format)
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("reading the committed table file %s: %w", name, err)
			}
			closers = append(closers, c)
			its = append(its, it)
		}
		streams[i] = smb.Merge(its...)
	}
	ws := make([]*tableWriter, len(transforms.Tables))
	for i, t := range transforms.Tables {
		ws[i] = &tableWriter{fs: tablesFS, format: cfg.Format, schema: transforms.SchemaOf(t),
			name: files.Join(cfg.TablesDir, t, fmt.Sprintf("part-%05d-%s.%s", bucket, cfg.RunID, cfg.Format)),
			out:  OutputFile{Table: t, Bucket: bucket}}
		closers = append(closers, ws[i])
	}
	fw := factWriter{fs: runsFS, dir: cfg.RunDir, bufs: make([]smb.Buffer, cfg.Buckets), limit: spillBytes() / (2 * runtime.GOMAXPROCS(0))}
	partials, stats, err := transforms.DedupJoinSorted(streams[0], streams[1], streams[2], func(p transforms.Post, rows [3][]byte) error {
		if err := fw.add(ctx, p); err != nil {
			return err
		}
		for i, row := range rows {
			if row != nil {
				if err := ws[i].write(ctx, row); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("merging bucket %d: %w", bucket, err)
	}
	facts, err := fw.spill(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for _, w := range ws {
		if err := w.finish(); err != nil {
			return nil, nil, nil, nil, err
		}
		if w.out.Rows > 0 {
			tables = append(tables, w.out)
		}
	}
	return partials, stats, tables, append(fw.runs, facts...), nil
}

// factWriter buckets the facts a merge's posts state (transforms.PostFacts)
// by their key and writes them as sorted runs, for mergeFactsFn to make
// distinct: the distinct sets behind the medians are as large as the users,
// so they go through the same sort-merge as the rows rather than memory.
type factWriter struct {
	fs           filesystem.Interface
	dir          string
	bufs         []smb.Buffer
	limit        int
	size         int
	scratch, row []byte
	runs         []RunFile
}

func (w *factWriter) add(ctx context.Context, p transforms.Post) error {
	var err error
	w.scratch = transforms.PostFacts(p, w.scratch, func(fact []byte) {
		key := transforms.FactKey(fact)
		w.row = append(binary.AppendVarint(w.row[:0], key), fact...)
		b := &w.bufs[smb.Bucket(key, len(w.bufs))]
		before := b.Size()
		b.Add(key, w.row)
		grown := b.Size() - before
		w.size += grown
		buffered.Add(int64(grown))
	})
	if w.size >= w.limit || overBudget() {
		var runs []RunFile
		runs, err = w.spill(ctx)
		w.runs = append(w.runs, runs...)
	}
	return err
}

func (w *factWriter) spill(ctx context.Context) ([]RunFile, error) {
	var runs []RunFile
	for bucket := range w.bufs {
		b := &w.bufs[bucket]
		if b.Len() == 0 {
			continue
		}
		name := files.Join(w.dir, fmt.Sprintf("facts-%05d-%s.s2", bucket, randomID()))
		if err := b.WriteRun(ctx, w.fs, name); err != nil {
			return nil, err
		}
		runs = append(runs, RunFile{Table: factsTable, Bucket: bucket, Path: name, Rows: int64(b.Len())})
		b.Reset()
	}
	buffered.Add(-int64(w.size))
	w.size = 0
	return runs, nil
}

// factsTable names the distinct facts' runs.
const factsTable = "facts"

// mergeFactsFn merges one bucket of fact runs, counts each distinct fact
// once into insight partials (their histograms), and emits them.
type mergeFactsFn struct {
	RunDir string

	fs   filesystem.Interface
	pool parallel.Ordered[mergeResult]
	err  error
}

func (f *mergeFactsFn) Setup(ctx context.Context) error {
	fs, err := filesystem.New(ctx, f.RunDir)
	f.fs = fs
	return err
}

func (f *mergeFactsFn) Teardown() {
	if f.fs != nil {
		f.fs.Close()
	}
}

func (f *mergeFactsFn) StartBundle(context.Context, func(transforms.Partials)) {
	f.pool = parallel.Ordered[mergeResult]{}
	f.err = nil
}

func (f *mergeFactsFn) ProcessElement(ctx context.Context, bucket int, iter func(*RunFile) bool, partials func(transforms.Partials)) error {
	var names []string
	var r RunFile
	for iter(&r) {
		names = append(names, r.Path)
	}
	f.pool.Submit(func() mergeResult {
		defer mergeSlot()()
		p, err := MergeFacts(ctx, f.fs, names)
		return mergeResult{partials: p, err: err}
	}, f.emitter(partials))
	return f.err
}

func (f *mergeFactsFn) FinishBundle(_ context.Context, partials func(transforms.Partials)) error {
	f.pool.Drain(f.emitter(partials))
	return f.err
}

func (f *mergeFactsFn) emitter(partials func(transforms.Partials)) func(mergeResult) {
	return func(r mergeResult) {
		if r.err != nil {
			f.err = errors.Join(f.err, r.err)
			return
		}
		partials(*r.partials)
	}
}

// MergeFacts merges one bucket of fact runs and counts each distinct fact
// once into partials (their histograms).
func MergeFacts(ctx context.Context, fs filesystem.Interface, names []string) (*transforms.Partials, error) {
	var its []smb.Iterator
	for _, n := range names {
		rr, err := smb.OpenRun(ctx, fs, n)
		if err != nil {
			return nil, err
		}
		defer rr.Close()
		its = append(its, rr)
	}
	m := smb.Merge(its...)
	p := transforms.NewPartials()
	// Equal facts have equal keys; the rows of one key (one fact, or a hash
	// collision's few) are sorted and each distinct one added once.
	var group [][]byte
	var key int64
	flush := func() error {
		slices.SortFunc(group, bytes.Compare)
		for i, row := range group {
			if i > 0 && bytes.Equal(row, group[i-1]) {
				continue
			}
			_, n := binary.Varint(row)
			if err := p.AddFact(row[n:]); err != nil {
				return err
			}
		}
		group = group[:0]
		return nil
	}
	for m.Next() {
		if len(group) > 0 && m.Key() != key {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		key = m.Key()
		group = append(group, bytes.Clone(m.Row()))
	}
	if err := m.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return p, nil
}

func isRunFile(name string) bool { return bytes.HasSuffix([]byte(name), []byte(".s2")) }

// writeBatch is how many rows a table writer encodes at a time.
const writeBatch = 1024

// tableWriter writes one bucket file of one table, opened at its first row:
// no rows, no file.
type tableWriter struct {
	fs     filesystem.Interface
	format string
	schema transforms.Schema
	name   string
	out    OutputFile

	w    io.WriteCloser
	enc  rowEncoder
	done bool
}

// rowEncoder is the format-specific part of a table writer; both formats
// are written from the encoded row through the table's schema.
type rowEncoder interface {
	add(row []byte) error
	close() error
}

func (t *tableWriter) write(ctx context.Context, row []byte) error {
	if t.w == nil {
		w, err := t.fs.OpenWrite(ctx, t.name)
		if err != nil {
			return fmt.Errorf("creating %s: %w", t.name, err)
		}
		t.w = w
		t.out.Path = t.name
		t.enc = newRowEncoder(w, t.format, t.schema)
	}
	t.out.Rows++
	if err := t.enc.add(row); err != nil {
		return fmt.Errorf("writing %s: %w", t.name, err)
	}
	if t.out.Rows == writeBatch+1 {
		// A batch is in the file, the rest not yet.
		crashPoint(crashTableWrite)
	}
	return nil
}

// finish completes the file, if there is one.
func (t *tableWriter) finish() error {
	if t.w == nil || t.done {
		return nil
	}
	t.done = true
	err := t.enc.close()
	if cerr := t.w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", t.name, err)
	}
	return nil
}

// Close abandons an unfinished file (after an error).
func (t *tableWriter) Close() error {
	if t.w != nil && !t.done {
		t.done = true
		return t.w.Close()
	}
	return nil
}

func newRowEncoder(w io.Writer, format string, schema transforms.Schema) rowEncoder {
	if format == FormatParquet {
		return parquetEncoder{parquetio.NewWriter(w, schema)}
	}
	return &jsonlEncoder{bw: bufio.NewWriterSize(w, 1<<16), schema: schema}
}

type parquetEncoder struct{ w *parquetio.Writer }

func (e parquetEncoder) add(row []byte) error { return e.w.Write(row) }
func (e parquetEncoder) close() error         { return e.w.Close() }

// jsonlEncoder writes JSON lines through the schema (Schema.AppendJSON).
type jsonlEncoder struct {
	bw     *bufio.Writer
	schema transforms.Schema
	line   []byte
}

func (e *jsonlEncoder) add(row []byte) error {
	var err error
	if e.line, err = e.schema.AppendJSON(e.line[:0], row); err != nil {
		return err
	}
	e.line = append(e.line, '\n')
	_, err = e.bw.Write(e.line)
	return err
}
func (e *jsonlEncoder) close() error { return e.bw.Flush() }

// openTableFile reads a committed bucket file back as encoded rows in ind
// order (the file is sorted, which the reader checks), streaming: Parquet by
// column chunks from a local file (an S3 object is copied to a local
// temporary file first, see files.OpenLocal), JSON lines one line at a
// time. Memory is a few row groups' pages, not the file, however large the
// tables grow. Close the closer when done.
func openTableFile(ctx context.Context, name, table, format string) (smb.Iterator, io.Closer, error) {
	var rows transforms.SortedRows
	var closer io.Closer
	if format == FormatParquet {
		f, err := files.OpenLocal(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		st, err := f.Stat()
		if err == nil {
			rows, err = parquetio.NewReader(f, st.Size(), transforms.SchemaOf(table))
		}
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		closer = f
	} else {
		rc, err := files.OpenRead(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		closer = rc
		s := transforms.SchemaOf(table)
		rows = transforms.NewJSONLinesReader(rc, &s)
	}
	return &sortedCheck{SortedRows: rows, last: -1 << 63}, closer, nil
}

// sortedCheck fails a stream of rows that is not sorted by ind: a file that
// is not a bucket file of this layout.
type sortedCheck struct {
	transforms.SortedRows
	last int64
	err  error
}

func (s *sortedCheck) Next() bool {
	if s.err != nil || !s.SortedRows.Next() {
		return false
	}
	if k := s.Key(); k < s.last {
		s.err = fmt.Errorf("rows not sorted by ind (%d after %d): not a bucket file of this layout", k, s.last)
		return false
	}
	s.last = s.Key()
	return true
}

func (s *sortedCheck) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SortedRows.Err()
}

// sortedNames returns the paths of files, sorted, for a stable commit.
func sortedNames(fs []OutputFile) []OutputFile {
	out := slices.Clone(fs)
	slices.SortFunc(out, func(a, b OutputFile) int {
		if a.Table != b.Table {
			if a.Table < b.Table {
				return -1
			}
			return 1
		}
		if a.Bucket != b.Bucket {
			return a.Bucket - b.Bucket
		}
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return out
}
