package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pinpipe/pinpipe/internal/rawline"
	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	addCommand("replay", "turn a batch run's dead letters back into input objects, to run them through the job again", replayCmd)
	helpNotes["replay"] = "After a cleaning rule is fixed: replay the dead letters into a directory, then run batch over it (README: Replaying dead letters)."
	helpExamples["replay"] = []string{
		"pinpipe replay --deadletters=out/clean --out=out/replay",
		"pinpipe replay --deadletters=s3://lake/clean --out=s3://lake/replay/2026-12-07 --table=pin",
	}
}

func replayCmd(fs *flag.FlagSet) func(context.Context) error {
	var deadletters, out, prefix, table string
	fs.StringVar(&deadletters, "deadletters", "", "a batch output (its deadletter/ files are read), or a dead-letter file or glob (required)")
	fs.StringVar(&out, "out", "", "directory or s3://bucket/prefix to write topics/<prefix>.<table>/partition=replay/ objects into, the layout batch reads: "+
		"a directory of their own, or the input itself for an --incremental run to merge them (required)")
	fs.StringVar(&prefix, "topic-prefix", "pinpipe", "topic prefix of the objects written")
	fs.StringVar(&table, "table", "", "replay only this table's dead letters (pin, geo or user; default all)")
	return func(ctx context.Context) error {
		if deadletters == "" || out == "" {
			return usageErrorf("--deadletters and --out are required")
		}
		if table != "" && !slices.Contains(transforms.Tables, table) {
			return usageErrorf("--table must be one of %s, not %q", strings.Join(transforms.Tables, ", "), table)
		}
		glob := deadletters
		if !strings.ContainsAny(glob, "*?[") && !strings.HasSuffix(glob, ".jsonl") {
			glob = files.Join(deadletters, batch.DeadLetterDir, "*.jsonl")
		}
		names, err := files.Expand(ctx, glob)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("no dead-letter files at %s", glob)
		}
		n, err := replayDeadLetters(ctx, names, out, prefix, table)
		if err != nil {
			return err
		}
		note("pinpipe replay: %d dead letters from %d files written to %s; now run: pinpipe batch --input=%s --output=<output> (--topic-prefix=%s)",
			sum(n), len(names), files.Join(out, "topics"), out, prefix)
		return nil
	}
}

// replayPartition is the partition directory replayed objects go in.
const replayPartition = "replay"

// replayDeadLetters writes the original bytes of the dead letters in the
// named files as one input object per table under out, in the S3 sink's
// layout (a value that is not one line of text in rawline's wrapped form,
// as the sink writes it), and returns how many it wrote per table.
func replayDeadLetters(ctx context.Context, names []string, out, prefix, only string) (map[string]int, error) {
	bufs := map[string]*bytes.Buffer{}
	n := map[string]int{}
	var lr files.LineReader
	defer lr.Close()
	for _, name := range names {
		var bad error
		err := lr.ReadFile(ctx, name, func(line []byte) {
			var d transforms.DeadLetter
			if bad != nil {
				return
			}
			if err := json.Unmarshal(line, &d); err != nil {
				bad = fmt.Errorf("%s: not a dead letter: %w", name, err)
				return
			}
			if !slices.Contains(transforms.Tables, d.Table) {
				bad = fmt.Errorf("%s: a dead letter of unknown table %q", name, d.Table)
				return
			}
			if only != "" && d.Table != only {
				return
			}
			payload := []byte(d.Payload)
			if d.PayloadBase64 != "" {
				b, err := base64.StdEncoding.DecodeString(d.PayloadBase64)
				if err != nil {
					bad = fmt.Errorf("%s: payload_base64: %w", name, err)
					return
				}
				payload = b
			}
			if bufs[d.Table] == nil {
				bufs[d.Table] = new(bytes.Buffer)
			}
			bufs[d.Table].Write(rawline.Encode(payload))
			bufs[d.Table].WriteByte('\n')
			n[d.Table]++
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return n, err
		}
	}
	// A partition of its own and a name of its own: replayed into the
	// input itself, the objects sit beside the sink's without replacing
	// any, and an incremental run reads them as new.
	id := time.Now().UTC().Format("20060102T150405.000Z")
	for t, b := range bufs {
		topic := prefix + "." + t
		name := files.Join(out, "topics", topic, "partition="+replayPartition, topic+"+replay+"+id+".json")
		if err := files.WriteFile(ctx, name, b.Bytes()); err != nil {
			return n, err
		}
	}
	return n, nil
}

func sum(n map[string]int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}
