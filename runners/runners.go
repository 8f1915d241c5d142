// Package runners turns --runner into a run, so that one binary runs its
// pipelines locally (direct, prism), on a portable job server (flink,
// universal, with --endpoint and --environment_type) or on Dataflow.
package runners

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow" // --runner=dataflow
	//lint:ignore SA1019 --runner=direct stays the default for bounded jobs (prism is there too)
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct" // --runner=direct
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"  // --runner=flink
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"  // --runner=prism
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"
	// --runner itself, the reflection-optimized runtime, the local and GCS
	// filesystems (RunOn calls beam.Run, not beamx).
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

// Flink's checkpoints. Beam Go sends every flag set on the command line to
// the runner as a pipeline option of the same name, and the Flink runner
// reads these (FlinkPipelineOptions); defining them lets the command line
// take them. Not tested here: no Flink runs on the test machine.
var (
	_ = flag.Int64("checkpointing_interval", -1, "Flink: milliseconds between checkpoints of a streaming job (-1: none); a streaming job on Flink needs it to resume after a failure")
	_ = flag.String("checkpointing_mode", "EXACTLY_ONCE", "Flink: EXACTLY_ONCE or AT_LEAST_ONCE")
)

// Names are the runners this binary can use.
var Names = []string{"direct", "prism", "flink", "universal", "dataflow"}

// Runner returns the runner chosen by --runner ("direct" when unset).
func Runner() string {
	if f := flag.Lookup("runner"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return "direct"
}

// DryRun reports a run that only translates and prints the job (Dataflow's
// --dry_run): it must not read or change any output.
func DryRun() bool {
	f := flag.Lookup("dry_run")
	return f != nil && f.Value.String() == "true" && Runner() == "dataflow"
}

// Validate checks the runner flags before a pipeline is built, so that a
// mistake is reported clearly rather than deep inside a submission.
func Validate() error { return validate(Runner()) }

func validate(r string) error {
	if !slices.Contains(Names, r) {
		return fmt.Errorf("unknown --runner=%q; use one of %v", r, Names)
	}
	if (r == "flink" || r == "universal") && *jobopts.Endpoint == "" {
		return fmt.Errorf("--runner=%s needs --endpoint=HOST:PORT of a portable job server (the Flink job server listens on 8099)", r)
	}
	return nil
}

// Run validates the flags and executes the pipeline on the chosen runner,
// waiting for it to finish.
func Run(ctx context.Context, p *beam.Pipeline) (beam.PipelineResult, error) {
	return RunOn(ctx, Runner(), p)
}

// RunOn is Run on the given runner rather than --runner's, so that a
// command that needs another runner for one job says so to that job
// instead of changing the process's flag under every other job.
func RunOn(ctx context.Context, runner string, p *beam.Pipeline) (beam.PipelineResult, error) {
	if err := validate(runner); err != nil {
		return nil, err
	}
	defer removeLoopbackPlaceholders(time.Now())
	return beam.Run(ctx, runner, p)
}

// removeLoopbackPlaceholders removes the empty files Beam's universal runner
// creates in the temp directory as the worker "binary" of a loopback job
// (prism's default environment) and never removes: one per run, so a
// scheduled job would leave one a day for ever. The file is only a name in
// the pipeline's environment, never read, so removing one of another run
// that is still going is harmless.
func removeLoopbackPlaceholders(since time.Time) {
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "beamloopbackworker-*"))
	for _, f := range files {
		info, err := os.Stat(f)
		if err == nil && info.Mode().IsRegular() && info.Size() == 0 && !info.ModTime().Before(since.Add(-time.Second)) {
			os.Remove(f)
		}
	}
}

// ForUnbounded is the runner for a job with unbounded reads: runner, but
// prism for the legacy direct runner, which cannot run unbounded
// splittable DoFns.
func ForUnbounded(runner string) string {
	if runner == "direct" {
		return "prism"
	}
	return runner
}
