package files

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/segmentio/encoding/json"
)

func init() {
	register.DoFn3x1[context.Context, beam.Window, beam.X, error](&writeWindowedFn{})
}

// WriteWindowedJSONLines writes a windowed PCollection as JSON lines, one
// file per window and bundle: <dir>/window=<start>/<prefix>-<start>-<random>.jsonl
// with the window's start in UTC (RFC 3339). A window's files are complete
// once the watermark has passed its end.
func WriteWindowedJSONLines(s beam.Scope, dir, prefix string, col beam.PCollection) {
	s = s.Scope("files.WriteWindowedJSONLines")
	beam.ParDo0(s, &writeWindowedFn{Dir: dir, Prefix: prefix}, col)
}

type windowFile struct {
	w   io.WriteCloser
	buf *bufio.Writer
}

type writeWindowedFn struct {
	Dir    string
	Prefix string

	fs    filesystem.Interface
	files map[string]*windowFile
}

func (f *writeWindowedFn) Setup(ctx context.Context) error {
	fs, err := filesystem.New(ctx, f.Dir)
	f.fs = fs
	return err
}

func (f *writeWindowedFn) Teardown() {
	if f.fs != nil {
		f.fs.Close()
	}
}

func (f *writeWindowedFn) StartBundle(context.Context) { f.files = map[string]*windowFile{} }

func (f *writeWindowedFn) ProcessElement(ctx context.Context, w beam.Window, v beam.X) error {
	start := "global"
	if iw, ok := w.(window.IntervalWindow); ok {
		start = iw.Start.ToTime().UTC().Format(time.RFC3339)
	}
	wf := f.files[start]
	if wf == nil {
		name := Join(f.Dir, "window="+start, f.Prefix+"-"+start+"-"+randomID()+".jsonl")
		w, err := f.fs.OpenWrite(ctx, name)
		if err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		wf = &windowFile{w: w, buf: bufio.NewWriterSize(w, 1<<16)}
		f.files[start] = wf
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wf.buf.Write(b)
	return wf.buf.WriteByte('\n')
}

func (f *writeWindowedFn) FinishBundle(context.Context) error {
	var first error
	for _, wf := range f.files {
		err := wf.buf.Flush()
		if cerr := wf.w.Close(); err == nil {
			err = cerr
		}
		if first == nil {
			first = err
		}
	}
	f.files = nil
	return first
}
