package smb

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/klauspost/compress/s2"
)

// A run file is an s2-compressed stream of records sorted by key, each
// record its length as a uvarint followed by its bytes, whose first bytes are
// the key as a varint. Reading one back allocates nothing per record.

// runBlockSize is the s2 block of a run file. A merge holds one block of
// each of its runs, so blocks are small: a bucket merged from a hundred runs
// needs a few MiB, not the hundreds s2's default 1 MiB blocks would take.
const runBlockSize = 64 << 10

// Buffer holds rows in memory until they are written as one sorted run:
// the rows back to back in byte chunks and a pointer-free index, so a full
// buffer costs the garbage collector nothing to scan. Chunks, not one slice,
// so that growing never copies the rows held (doubling one slice copied
// each byte about twice).
type Buffer struct {
	chunks [][]byte
	index  []entry
	size   int
}

type entry struct {
	key   int64
	chunk uint32
	off   uint32
	end   uint32
}

// A buffer's chunks grow from firstChunk, doubling with the buffer, to
// chunkSize; a longer row gets a chunk of its own. Many buckets' buffers
// that each get few rows stay small.
const firstChunk, chunkSize = 4 << 10, 256 << 10

// Add appends a row. Its bytes must start with key as a varint
// (binary.AppendVarint), which is how a reader gets the key back.
func (b *Buffer) Add(key int64, row []byte) {
	last := len(b.chunks) - 1
	if last < 0 || len(b.chunks[last])+len(row) > cap(b.chunks[last]) {
		b.chunks = append(b.chunks, make([]byte, 0, max(min(chunkSize, max(firstChunk, b.size)), len(row))))
		last++
	}
	c := b.chunks[last]
	off := len(c)
	b.chunks[last] = append(c, row...)
	b.index = append(b.index, entry{key, uint32(last), uint32(off), uint32(off + len(row))})
	b.size += len(row)
}

// Len is the number of rows; Size their bytes.
func (b *Buffer) Len() int  { return len(b.index) }
func (b *Buffer) Size() int { return b.size + 24*len(b.index) }

// Reset empties the buffer. It keeps its first (small) chunk for reuse and
// lets the rest go, so that many idle buffers hold little.
func (b *Buffer) Reset() {
	if len(b.chunks) > 0 {
		first := b.chunks[0][:0]
		clear(b.chunks)
		b.chunks = append(b.chunks[:0], first)
	}
	if cap(b.index) > chunkSize/24 {
		b.index = nil
	}
	b.index, b.size = b.index[:0], 0
}

// WriteRun sorts the buffer by key and writes it to name as a run file.
func (b *Buffer) WriteRun(ctx context.Context, fs filesystem.Interface, name string) error {
	slices.SortFunc(b.index, func(x, y entry) int {
		switch {
		case x.key < y.key:
			return -1
		case x.key > y.key:
			return 1
		}
		return 0
	})
	w, err := fs.OpenWrite(ctx, name)
	if err != nil {
		return fmt.Errorf("creating run %s: %w", name, err)
	}
	zw := s2.NewWriter(w, s2.WriterConcurrency(1), s2.WriterBlockSize(runBlockSize))
	var n [binary.MaxVarintLen64]byte
	for _, e := range b.index {
		row := b.chunks[e.chunk][e.off:e.end]
		zw.Write(n[:binary.PutUvarint(n[:], uint64(len(row)))])
		if _, err := zw.Write(row); err != nil {
			w.Close()
			return fmt.Errorf("writing run %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		w.Close()
		return fmt.Errorf("writing run %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("closing run %s: %w", name, err)
	}
	return nil
}

// RunReader streams a run file's rows in key order.
type RunReader struct {
	name string
	rc   io.ReadCloser
	r    *bufio.Reader
	row  []byte
	key  int64
	err  error
}

// OpenRun opens a run file for reading.
func OpenRun(ctx context.Context, fs filesystem.Interface, name string) (*RunReader, error) {
	rc, err := fs.OpenRead(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("opening run %s: %w", name, err)
	}
	return &RunReader{name: name, rc: rc, r: bufio.NewReaderSize(s2.NewReader(rc, s2.ReaderMaxBlockSize(runBlockSize)), 16<<10)}, nil
}

// Next advances to the next row, false at the end or on an error (Err).
func (r *RunReader) Next() bool {
	if r.err != nil {
		return false
	}
	n, err := binary.ReadUvarint(r.r)
	if err == io.EOF {
		return false
	}
	if err == nil && n > 1<<30 {
		err = errors.New("row length out of range")
	}
	if err == nil {
		if uint64(cap(r.row)) < n {
			r.row = make([]byte, n)
		}
		r.row = r.row[:n]
		_, err = io.ReadFull(r.r, r.row)
	}
	if err == nil {
		var k int
		if r.key, k = binary.Varint(r.row); k <= 0 {
			err = errors.New("row without a key")
		}
	}
	if err != nil {
		r.err = fmt.Errorf("reading run %s: %w", r.name, err)
		return false
	}
	return true
}

// Key and Row are the current row's; Row is valid until the next Next.
func (r *RunReader) Key() int64  { return r.key }
func (r *RunReader) Row() []byte { return r.row }
func (r *RunReader) Err() error  { return r.err }

// Close releases the file.
func (r *RunReader) Close() error { return r.rc.Close() }
