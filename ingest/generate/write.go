package generate

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"    // s3:// paths
)

// Options says what to generate and where.
type Options struct {
	Posts int
	Seed  uint64
	// FirstInd is the ind of the first post.
	FirstInd int64
	// Out is a directory or an s3://bucket/prefix.
	Out string
	// Layout is "s3sink" (topics/<prefix>.<table>/partition=<p>/<topic>+<p>+<offset>.json)
	// or "jsonl" (<table>.jsonl).
	Layout      string
	TopicPrefix string
	Partitions  int
	// FirstPartition numbers the partitions from here, so that a second
	// generation into the same place adds objects rather than replacing them.
	FirstPartition int
	// FlushSize is the number of records in one S3-sink object.
	FlushSize int
	Gzip      bool
	// DuplicateRate is the share of posts sent twice; MissingRate the share
	// missing one of their three records; MalformedRate the share of lines,
	// per table, that are malformed and must be rejected.
	DuplicateRate, MissingRate, MalformedRate float64
}

// Defaults are the generator's believable rates.
func Defaults() Options {
	return Options{Posts: 1000, Seed: 1, Layout: "s3sink", TopicPrefix: "pinpipe", Partitions: 3, FlushSize: 500,
		DuplicateRate: 0.03, MissingRate: 0.005}
}

// Stats says what was written.
type Stats struct {
	Posts      int            `json:"posts"`
	Records    map[string]int `json:"records"`
	Duplicates int            `json:"duplicates"`
	Missing    int            `json:"missing"`
	Malformed  map[string]int `json:"malformed"`
	Files      int            `json:"files"`
}

var tables = []string{"pin", "geo", "user"}

// Write generates the posts into o.Out.
func Write(ctx context.Context, o Options) (Stats, error) {
	if o.Posts < 0 || o.Partitions < 1 || o.FlushSize < 1 {
		return Stats{}, fmt.Errorf("generate: posts must be >= 0, partitions and flush size >= 1")
	}
	if o.Layout != "s3sink" && o.Layout != "jsonl" {
		return Stats{}, fmt.Errorf("generate: unknown layout %q (want s3sink or jsonl)", o.Layout)
	}
	fs, err := filesystem.New(ctx, o.Out)
	if err != nil {
		return Stats{}, err
	}
	defer fs.Close()
	w := &layoutWriter{ctx: ctx, fs: fs, o: o, parts: map[string]*partBuf{}}
	st := Stats{Records: map[string]int{}, Malformed: map[string]int{}}
	g := New(o.Seed, o.Posts)
	r := g.rng(4, 0)

	type resend struct {
		at   int
		post int64
	}
	var pending []resend
	send := func(ind int64) error {
		recs := g.Records(g.Post(ind))
		skip := ""
		if r.Float64() < o.MissingRate {
			skip = tables[r.IntN(3)]
			st.Missing++
		}
		for _, t := range tables {
			if t == skip {
				continue
			}
			if o.MalformedRate > 0 && r.Float64() < o.MalformedRate {
				if err := w.add(t, ind, Malformed(t, r.IntN(100))); err != nil {
					return err
				}
				st.Malformed[t]++
			}
			if err := w.add(t, ind, recs[t]); err != nil {
				return err
			}
			st.Records[t]++
		}
		return nil
	}
	for i := 0; i < o.Posts; i++ {
		ind := o.FirstInd + int64(i)
		if err := send(ind); err != nil {
			return st, err
		}
		if r.Float64() < o.DuplicateRate {
			pending = append(pending, resend{at: i + 1 + r.IntN(50), post: ind})
		}
		for len(pending) > 0 && pending[0].at <= i {
			if err := send(pending[0].post); err != nil {
				return st, err
			}
			st.Duplicates++
			pending = pending[1:]
		}
	}
	for _, p := range pending {
		if err := send(p.post); err != nil {
			return st, err
		}
		st.Duplicates++
	}
	if err := w.flushAll(); err != nil {
		return st, err
	}
	st.Posts = o.Posts
	st.Files = w.files
	return st, nil
}

type partBuf struct {
	topic     string
	partition int
	offset    int64 // offset of the first buffered record
	lines     [][]byte
}

type layoutWriter struct {
	ctx   context.Context
	fs    filesystem.Interface
	o     Options
	parts map[string]*partBuf
	files int
}

func join(base string, parts ...string) string {
	return strings.TrimSuffix(base, "/") + "/" + strings.Join(parts, "/")
}

func (w *layoutWriter) add(table string, ind int64, line []byte) error {
	p := 0
	if w.o.Layout == "s3sink" {
		p = w.o.FirstPartition + int(uint64(ind)%uint64(w.o.Partitions))
	}
	k := fmt.Sprintf("%s/%d", table, p)
	b := w.parts[k]
	if b == nil {
		b = &partBuf{topic: w.o.TopicPrefix + "." + table, partition: p}
		if w.o.Layout == "jsonl" {
			b.topic = table
		}
		w.parts[k] = b
	}
	b.lines = append(b.lines, line)
	if w.o.Layout == "s3sink" && len(b.lines) >= w.o.FlushSize {
		return w.flush(b)
	}
	return nil
}

func (w *layoutWriter) flushAll() error {
	for _, b := range w.parts {
		if err := w.flush(b); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the buffered records as one object, named as the Confluent S3
// sink names it.
func (w *layoutWriter) flush(b *partBuf) error {
	if len(b.lines) == 0 {
		return nil
	}
	var name string
	if w.o.Layout == "s3sink" {
		name = join(w.o.Out, "topics", b.topic, fmt.Sprintf("partition=%d", b.partition),
			fmt.Sprintf("%s+%d+%010d.json", b.topic, b.partition, b.offset))
	} else {
		name = join(w.o.Out, b.topic+".jsonl")
	}
	if w.o.Gzip {
		name += ".gz"
	}
	f, err := w.fs.OpenWrite(w.ctx, name)
	if err != nil {
		return err
	}
	var out io.Writer = f
	var gz *gzip.Writer
	if w.o.Gzip {
		gz = gzip.NewWriter(f)
		out = gz
	}
	for _, l := range b.lines {
		if _, err := out.Write(append(l, '\n')); err != nil {
			f.Close()
			return err
		}
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	w.files++
	b.offset += int64(len(b.lines))
	b.lines = b.lines[:0]
	return nil
}
