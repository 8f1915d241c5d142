// Command bench measures the pinpipe batch job against a plain Go program and
// DuckDB doing the same work, on the same generated posts, side by side.
//
//	cd bench && go build -mod=mod -o work/bench . && ./work/bench [-posts 1000000]
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

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Flags shared by the parent and the children.
var (
	posts   = flag.Int("posts", 1_000_000, "posts to generate and process")
	workDir = flag.String("work", "work", "directory for the generated data, outputs, logs and binaries (git-ignored)")
	format  = flag.String("format", "parquet", "format of the clean tables every full job writes: parquet or jsonl")
	shards  = flag.Int("shards", 16, "ind shards of the dedup/join step (pinpipe batch --shards and the plain Go program)")
	engines = flag.String("engines", "all", "comma-separated engines to run, or all: "+engineNames())
	results = flag.String("results", "", "markdown file to write the results to (default RESULTS.md at 1,000,000 posts, else WORK/RESULTS-<posts>.md)")
	pinpipe = flag.String("pinpipe", "", "pinpipe binary to run (default: build ../cmd/pinpipe into WORK)")
	repeat  = flag.Int("repeat", 1, "runs per engine; the fastest is reported, all are listed")
	profile = flag.Bool("profile", false, "also run the Beam batch job in-process on prism with CPU and heap profiles into WORK/profiles (not timed)")

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
