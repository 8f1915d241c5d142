package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn3x1[context.Context, string, func(int, transforms.Batch), error](&readTableFn{})
}

// ManifestFile records, beside an incremental run's output, which input
// objects the clean tables already hold.
const ManifestFile = "manifest.json"

// manifest is what an incremental run needs to know of the earlier ones:
// the objects processed, and the layout of the tables they are in.
type manifest struct {
	TopicPrefix string   `json:"topic_prefix"`
	Format      string   `json:"format"`
	Shards      int      `json:"shards"`
	Inputs      []string `json:"inputs"`
}

// planIncremental lists the input, reads the manifest and returns the
// objects not processed yet, per table, with the manifest to write after a
// successful run. previous says whether there are earlier tables to merge.
func planIncremental(ctx context.Context, o Options) (newFiles map[string][]string, next manifest, previous bool, err error) {
	var m manifest
	b, err := files.ReadFile(ctx, files.Join(o.Output, ManifestFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, m, false, fmt.Errorf("incremental: reading %s: %w", ManifestFile, err)
		}
		if m.TopicPrefix != o.TopicPrefix || m.Format != o.Format || m.Shards != o.Shards {
			return nil, m, false, fmt.Errorf("incremental: %s was written with --topic-prefix=%s --format=%s --shards=%d; run with the same, or without --incremental to rebuild",
				files.Join(o.Output, ManifestFile), m.TopicPrefix, m.Format, m.Shards)
		}
		previous = true
	case isNotExist(err):
		m = manifest{TopicPrefix: o.TopicPrefix, Format: o.Format, Shards: o.Shards}
	default:
		return nil, m, false, fmt.Errorf("incremental: reading the manifest: %w", err)
	}
	done := map[string]bool{}
	for _, in := range m.Inputs {
		done[in] = true
	}
	newFiles = map[string][]string{}
	for _, t := range transforms.Tables {
		for _, g := range InputGlobs(o.Input, o.TopicPrefix, t) {
			names, err := files.Expand(ctx, g)
			if err != nil {
				return nil, m, false, fmt.Errorf("listing %s: %w", g, err)
			}
			for _, n := range names {
				if !done[n] {
					newFiles[t] = append(newFiles[t], n)
					m.Inputs = append(m.Inputs, n)
				}
			}
		}
	}
	slices.Sort(m.Inputs)
	return newFiles, m, previous, nil
}

func isNotExist(err error) bool {
	// Beam's S3 filesystem reports a missing object with the SDK's
	// NoSuchKey error; local files with fs.ErrNotExist.
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "NoSuchKey") || strings.Contains(err.Error(), "StatusCode: 404")
}

func writeManifest(ctx context.Context, output string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return files.WriteFile(ctx, files.Join(output, ManifestFile), append(b, '\n'))
}

// readTables reads the clean tables an earlier run wrote back into per-shard
// batches, so that they merge with the new rows in JoinBatches.
func readTables(s beam.Scope, dir, format string, shards int) beam.PCollection {
	s = s.Scope("batch.ReadTables")
	var globs []string
	for _, t := range transforms.Tables {
		globs = append(globs, files.Join(dir, t, "part-*."+format))
	}
	names := files.MatchFiles(s, beam.CreateList(s, globs))
	return beam.ParDo(s, &readTableFn{Format: format, Shards: shards}, names)
}

type readTableFn struct {
	Format string
	Shards int
}

func (f *readTableFn) ProcessElement(ctx context.Context, name string, emit func(int, transforms.Batch)) error {
	b, err := readTableFile(ctx, name, f.Format)
	if err != nil {
		return fmt.Errorf("reading the earlier table %s: %w", name, err)
	}
	// The shard count is the manifest's, so the file is one shard; re-shard
	// anyway rather than trust a file name.
	byShard := map[int]*transforms.Batch{}
	get := func(ind int64) *transforms.Batch {
		sh := transforms.ShardOf(ind, f.Shards)
		if byShard[sh] == nil {
			byShard[sh] = &transforms.Batch{Shard: sh}
		}
		return byShard[sh]
	}
	for _, p := range b.Pins {
		get(p.Ind).Pins = append(get(p.Ind).Pins, p)
	}
	for _, g := range b.Geos {
		get(g.Ind).Geos = append(get(g.Ind).Geos, g)
	}
	for _, u := range b.Users {
		get(u.Ind).Users = append(get(u.Ind).Users, u)
	}
	for sh, batch := range byShard {
		emit(sh, *batch)
	}
	return nil
}
