package smb

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
)

// The Iceberg spec's own test vectors for the bucket transform's hash.
func TestMurmur3IcebergVectors(t *testing.T) {
	for _, c := range []struct {
		key  int64
		want uint32
	}{{34, 2017239379}, {1, 1392991556}, {0, 1669671676}} {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(c.key))
		if got := Murmur3(b[:]); got != c.want {
			t.Errorf("murmur3(long %d) = %d, want %d", c.key, got, c.want)
		}
	}
	// Iceberg's strings: murmur3("iceberg") = 1210000089.
	if got := Murmur3([]byte("iceberg")); got != 1210000089 {
		t.Errorf("murmur3(iceberg) = %d, want 1210000089", got)
	}
	counts := make([]int, 16)
	for k := range int64(160000) {
		b := Bucket(k, 16)
		if b < 0 || b >= 16 {
			t.Fatalf("bucket %d out of range", b)
		}
		counts[b]++
	}
	for b, n := range counts {
		if n < 9000 || n > 11000 {
			t.Errorf("bucket %d has %d of 160000 keys: not spread", b, n)
		}
	}
}

func row(key int64, payload string) []byte {
	return append(binary.AppendVarint(nil, key), payload...)
}

// TestRunsMerge writes rows into several runs through a filesystem and
// merges them back: every row once, in key order.
func TestRunsMerge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := filesystem.New(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var want []int64
	var its []Iterator
	for r := range 7 {
		var b Buffer
		for range rng.IntN(3000) {
			k := rng.Int64N(5000) - 100
			b.Add(k, row(k, "payload"))
			want = append(want, k)
		}
		name := filepath.Join(dir, "run"+string(rune('a'+r)))
		if err := b.WriteRun(ctx, fs, name); err != nil {
			t.Fatal(err)
		}
		rr, err := OpenRun(ctx, fs, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Close()
		its = append(its, rr)
	}
	slices.Sort(want)
	m := Merge(its...)
	var got []int64
	for m.Next() {
		k, n := binary.Varint(m.Row())
		if n <= 0 || k != m.Key() || string(m.Row()[n:]) != "payload" {
			t.Fatalf("row %q does not hold key %d", m.Row(), m.Key())
		}
		got = append(got, m.Key())
	}
	if m.Err() != nil {
		t.Fatal(m.Err())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("merged %d keys, want %d in order", len(got), len(want))
	}
}

func TestCorruptRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, _ := filesystem.New(ctx, dir)
	name := filepath.Join(dir, "bad")
	w, _ := fs.OpenWrite(ctx, name)
	w.Write([]byte("not s2 at all"))
	w.Close()
	r, err := OpenRun(ctx, fs, name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Next() || r.Err() == nil {
		t.Fatal("a corrupt run read without an error")
	}
}

func TestBucketsFor(t *testing.T) {
	if got := BucketsFor(10<<20, 64<<20, 16); got != 16 {
		t.Errorf("small input: %d buckets, want the minimum 16", got)
	}
	if got := BucketsFor(6600<<20, 64<<20, 16); got != 104 {
		t.Errorf("6.6 GB: %d buckets, want 104", got)
	}
}

// TestBufferChunks adds rows across many chunks (and one longer than a
// chunk), resets and refills: every row comes back from the run in key
// order, and a reset buffer holds only its first chunk.
func TestBufferChunks(t *testing.T) {
	ctx := context.Background()
	fs, err := filesystem.New(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var b Buffer
	for round := range 2 {
		var want []int64
		for i := range 20000 {
			k := int64((i * 7919) % 20011)
			row := binary.AppendVarint(nil, k)
			row = append(row, bytes.Repeat([]byte{byte(i)}, i%97)...)
			if i == 777 {
				row = append(row, make([]byte, chunkSize+5)...)
			}
			b.Add(k, row)
			want = append(want, k)
		}
		slices.Sort(want)
		name := filepath.Join(t.TempDir(), "run.s2")
		if err := b.WriteRun(ctx, fs, name); err != nil {
			t.Fatal(err)
		}
		r, err := OpenRun(ctx, fs, name)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for r.Next() {
			k, _ := binary.Varint(r.Row())
			if k != r.Key() {
				t.Fatalf("round %d: row of key %d read as %d", round, k, r.Key())
			}
			got = append(got, r.Key())
		}
		r.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: %d keys back, want %d, or out of order", round, len(got), len(want))
		}
		b.Reset()
		if b.Len() != 0 || b.Size() != 0 || len(b.chunks) != 1 || cap(b.chunks[0]) > firstChunk {
			t.Fatalf("after reset: %d rows, %d bytes, %d chunks", b.Len(), b.Size(), len(b.chunks))
		}
	}
}
