package batch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/transforms"
)

// BenchmarkMergeBucket merges one bucket, as mergeBucketFn does: the
// generator's posts (with its re-sent duplicates and missing parts) cleaned
// into several sorted runs per table, k-way merged, deduplicated, joined,
// written as the bucket's table files and folded into insight partials and
// fact runs. allocs/op over rows/op is the merge's allocations per row; the
// target is a constant per bucket plus at most a small one per row.
func BenchmarkMergeBucket(b *testing.B) {
	const posts = 20_000
	ctx := context.Background()
	dir := b.TempDir()
	opts := generate.Defaults()
	opts.Posts, opts.Out, opts.FlushSize = posts, filepath.Join(dir, "input"), 2_000
	if _, err := generate.Write(ctx, opts); err != nil {
		b.Fatal(err)
	}
	fs, err := filesystem.New(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	runDir := filepath.Join(dir, "runs")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		b.Fatal(err)
	}
	// One bucket, spilled into several runs per table, as a bundle of
	// input files spills in the job.
	sources := map[string][]string{}
	var rows int64
	for _, t := range transforms.Tables {
		inputs, err := filepath.Glob(filepath.Join(opts.Out, "topics", opts.TopicPrefix+"."+t, "partition=*", "*.json"))
		if err != nil || len(inputs) == 0 {
			b.Fatalf("no %s input: %v", t, err)
		}
		c := NewRunCleaner(fs, t, 1, runDir, 1<<20)
		var runs []RunFile
		for _, in := range inputs {
			rs, _, _, err := c.CleanFile(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, rs...)
		}
		last, err := c.Flush(ctx)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		for _, r := range append(runs, last...) {
			sources[t] = append(sources[t], r.Path)
			rows += r.Rows
		}
	}
	if len(sources[transforms.TablePin]) < 3 {
		b.Fatalf("%d pin runs, want several", len(sources[transforms.TablePin]))
	}
	for _, format := range []string{FormatParquet, FormatJSONL} {
		b.Run(format, func(b *testing.B) {
			factDir := filepath.Join(dir, "facts-"+format)
			cfg := MergeConfig{Format: format, TablesDir: filepath.Join(dir, "tables-"+format), RunID: "bench", RunDir: factDir, Buckets: 4}
			for _, d := range []string{factDir, filepath.Join(cfg.TablesDir, transforms.TablePin), filepath.Join(cfg.TablesDir, transforms.TableGeo), filepath.Join(cfg.TablesDir, transforms.TableUser)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				p, _, tables, facts, err := MergeBucket(ctx, fs, fs, cfg, 0, sources)
				if err != nil {
					b.Fatal(err)
				}
				if len(tables) != 3 || len(facts) == 0 || len(p.ByCountry) == 0 {
					b.Fatalf("merged into %d table files, %d fact runs, %d country counts", len(tables), len(facts), len(p.ByCountry))
				}
				b.StopTimer()
				for _, f := range facts {
					os.Remove(f.Path)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(rows), "rows/op")
		})
	}
}
