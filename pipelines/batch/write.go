package batch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/encoding/json"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn2x1[context.Context, transforms.Batch, error](&writeTablesFn{})
	register.DoFn2x1[context.Context, transforms.Insights, error](&writeInsightsFn{})
	register.DoFn2x1[context.Context, transforms.Summary, error](&writeSummaryFn{})
}

// Output formats of the clean tables.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
)

// writeTables writes each shard's deduplicated rows to
// <dir>/<table>/part-<shard>.<ext>: one file per table and shard, named by
// the shard so that a re-run overwrites rather than adds.
func writeTables(s beam.Scope, dir, format string, batches beam.PCollection) {
	s = s.Scope("batch.WriteTables")
	beam.ParDo0(s, &writeTablesFn{Dir: dir, Format: format}, batches)
}

// writeTablesFn encodes and writes up to one shard per core at once, as
// the stage's bundle runs on one core on local runners.
type writeTablesFn struct {
	Dir    string
	Format string
	fs     filesystem.Interface
	sem    chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func (f *writeTablesFn) Setup(ctx context.Context) error {
	fs, err := filesystem.New(ctx, f.Dir)
	f.fs = fs
	return err
}

func (f *writeTablesFn) Teardown() {
	if f.fs != nil {
		f.fs.Close()
	}
}

func (f *writeTablesFn) StartBundle(context.Context) {
	f.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	f.err = nil
}

func (f *writeTablesFn) ProcessElement(ctx context.Context, b transforms.Batch) error {
	f.sem <- struct{}{}
	f.wg.Add(1)
	go func() {
		defer func() { <-f.sem; f.wg.Done() }()
		if err := f.write(ctx, b); err != nil {
			f.mu.Lock()
			f.err = errors.Join(f.err, err)
			f.mu.Unlock()
		}
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *writeTablesFn) FinishBundle(context.Context) error {
	f.wg.Wait()
	return f.err
}

func (f *writeTablesFn) write(ctx context.Context, b transforms.Batch) error {
	name := func(table string) string {
		return files.Join(f.Dir, table, fmt.Sprintf("part-%05d.%s", b.Shard, f.Format))
	}
	if err := writeRows(ctx, f.fs, name(transforms.TablePin), f.Format, b.Pins); err != nil {
		return err
	}
	if err := writeRows(ctx, f.fs, name(transforms.TableGeo), f.Format, b.Geos); err != nil {
		return err
	}
	return writeRows(ctx, f.fs, name(transforms.TableUser), f.Format, b.Users)
}

// writeRows writes one file of rows in the given format; no rows, no file.
func writeRows[R any](ctx context.Context, fs filesystem.Interface, name, format string, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	w, err := fs.OpenWrite(ctx, name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := encodeRows(w, format, rows); err != nil {
		w.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	return nil
}

func encodeRows[R any](w io.Writer, format string, rows []R) error {
	switch format {
	case FormatParquet:
		pw := parquet.NewGenericWriter[R](w, parquet.Compression(&parquet.Snappy))
		if _, err := pw.Write(rows); err != nil {
			return err
		}
		return pw.Close()
	case FormatJSONL:
		bw := bufio.NewWriterSize(w, 1<<16)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for i := range rows {
			if err := enc.Encode(&rows[i]); err != nil {
				return err
			}
		}
		return bw.Flush()
	}
	return fmt.Errorf("unknown format %q", format)
}

type writeInsightsFn struct{ Dir string }

func (f *writeInsightsFn) ProcessElement(ctx context.Context, in transforms.Insights) error {
	for _, n := range in.Named() {
		b, err := json.MarshalIndent(n.Rows, "", "  ")
		if err != nil {
			return err
		}
		if err := files.WriteFile(ctx, files.Join(f.Dir, n.Name+".json"), append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

type writeSummaryFn struct{ Path string }

func (f *writeSummaryFn) ProcessElement(ctx context.Context, sum transforms.Summary) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return files.WriteFile(ctx, f.Path, append(b, '\n'))
}
