// Command bench measures the pinpipe batch job against a plain Go program and
// DuckDB doing the same work, on the same generated posts, side by side.
//
//	cd bench && go build -mod=mod -o work/bench . && ./work/bench [-posts 1000000,3000000,10000000]
//
// Every engine runs in a child process, so that its wall time and peak RSS
// (getrusage's ru_maxrss of the child) are its own: the pinpipe binary for the
// Beam batch job on prism and on direct, and this binary itself (-child=MODE)
// for the Beam clean-only pipeline, the plain Go program and DuckDB.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Flags shared by the parent and the children.
var (
	posts     = postsFlag("posts", []int{1_000_000}, "posts to generate and process: a number or a comma-separated list of sizes (1000000,3000000,10000000 or 1M,3M,10M); every engine runs at each size")
	workDir   = flag.String("work", "work", "directory for the generated data, outputs, logs and binaries (git-ignored)")
	format    = flag.String("format", "parquet", "format of the clean tables every full job writes: parquet or jsonl")
	shards    = flag.Int("shards", 16, "ind shards of the dedup/join step (pinpipe batch --shards and the plain Go program)")
	engines   = flag.String("engines", "all", "comma-separated engines to run, or all: "+engineNames())
	results   = flag.String("results", "", "markdown file to write the results to, with the plot next to it as <name>.svg (default RESULTS.md when the largest size is at least 1,000,000 posts, else WORK/RESULTS-<sizes>.md)")
	malformed = flag.Float64("malformed-rate", 0, "share of lines per table the generator makes malformed (rejected by every engine); the data then goes to WORK/data-<posts>-malformed-<rate>")
	loadWait  = flag.Duration("load-wait", 2*time.Minute, "before each run, wait up to this long for the 1-minute load average to drop to the quiet threshold (0.85 per core)")
	busyRetry = flag.Bool("busy-retry", true, "run an engine once more when other processes used more than a quarter of a core during its run; the quieter run is reported")
	pinpipe   = flag.String("pinpipe", "", "pinpipe binary to run (default: build ../cmd/pinpipe into WORK)")
	repeat    = flag.Int("repeat", 1, "runs per engine; the fastest is reported, all are listed")
	profile   = flag.Bool("profile", false, "also run the Beam batch job in-process on prism with CPU and heap profiles into WORK/profiles (not timed)")

	// Child-only flags.
	child  = flag.String("child", "", "internal: run one engine in this process (beam-clean, beam-cleanfiles, beam-full, go-clean, go-full, duckdb-clean, duckdb-full)")
	input  = flag.String("input", "", "internal: input directory of a child")
	output = flag.String("output", "", "internal: output directory of a child")
	result = flag.String("result", "", "internal: file a child writes its result to")
	cpuOut = flag.String("cpuprofile", "", "internal: CPU profile file of a child")
	memOut = flag.String("memprofile", "", "internal: heap profile file of a child, written at the end")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	// A runner may start this binary as a worker: let Beam take over then.
	beam.Init()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *child != "" {
		err = runChild(ctx, *child)
	} else {
		err = runBench(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}
