package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pinpipe/pinpipe/ingest/generate"
)

// bench incremental: the batch job's --incremental runs over data that
// grows day by day. Each day adds the same number of new posts (and
// re-sends some of the day before), and pinpipe batch --incremental merges
// them into the committed buckets, reading the old tables by streaming merge:
// its peak RSS must not grow with the size of the tables it merges into.

func init() {
	if len(os.Args) > 1 && os.Args[1] == "incremental" {
		if err := incrementalMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench incremental: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

type dayRun struct {
	day        int
	totalPosts int
	wall       time.Duration
	peakRSS    int64
	load       string
}

func incrementalMain(args []string) error {
	fs := flag.NewFlagSet("bench incremental", flag.ContinueOnError)
	days := fs.Int("days", 6, "days of data")
	perDay := fs.Int("posts-per-day", 200000, "new posts each day")
	work := fs.String("work", "work", "directory for the data, output and binary")
	out := fs.String("out", "INCREMENTAL.md", "results file")
	runner := fs.String("runner", "prism", "pinpipe --runner")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Join(*work, "incremental"))
	if err != nil {
		return err
	}
	os.RemoveAll(dir)
	bin := filepath.Join(dir, "pinpipe")
	// Built in the main module, with its own go.sum (this module's need not
	// list every dependency of pinpipe's).
	build := exec.Command("go", "build", "-o", bin, "./cmd/pinpipe")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building pinpipe: %v\n%s", err, b)
	}
	input, output := filepath.Join(dir, "input"), filepath.Join(dir, "output")
	var runs []dayRun
	for d := range *days {
		o := generate.Defaults()
		// Day d's posts, and the last tenth of day d-1's re-sent.
		first := int64(d**perDay - *perDay/10*min(d, 1))
		o.Out, o.Posts, o.FirstInd, o.FirstPartition, o.Seed = input, *perDay+*perDay/10*min(d, 1), first, 3*d, uint64(d+1)
		if _, err := generate.Write(ctx, o); err != nil {
			return err
		}
		load := strings.Join(strings.Fields(loadAvg())[:min(3, len(strings.Fields(loadAvg())))], " ")
		cmd := exec.Command(bin, "batch", "--input="+input, "--output="+output, "--incremental", "--runner="+*runner)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if b, err := cmd.Output(); err != nil {
			return fmt.Errorf("day %d: %v\n%s", d+1, err, b)
		}
		r := dayRun{day: d + 1, totalPosts: (d + 1) * *perDay, wall: time.Since(start), load: load,
			peakRSS: cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10}
		fmt.Printf("day %d: %s posts in the tables, %.2f s, peak RSS %.0f MiB (load %s)\n", r.day, thousands(int64(r.totalPosts)), r.wall.Seconds(), mib(r.peakRSS), load)
		runs = append(runs, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The batch job's incremental runs over growing data\n\n")
	fmt.Fprintf(&b, "`cd bench && ./work/bench incremental -days=%d -posts-per-day=%d -runner=%s`, %s, on %s (%s, %s).\n\n",
		*days, *perDay, *runner, time.Now().UTC().Format("2006-01-02"), cpuModel(), memTotal(), "2 cores")
	fmt.Fprintf(&b, "Each day adds %s new posts and re-sends a tenth of the day before's; `pinpipe batch --incremental` merges\n", thousands(int64(*perDay)))
	fmt.Fprintf(&b, "them into the committed sorted buckets, reading the old tables by streaming merge. Its peak RSS should stay flat\n")
	fmt.Fprintf(&b, "while the tables grow; its wall time grows with them (every bucket is rewritten).\n\n")
	fmt.Fprintf(&b, "| day | posts in the tables | wall s | peak RSS MiB | load average before |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.0f | %s |\n", r.day, thousands(int64(r.totalPosts)), r.wall.Seconds(), mib(r.peakRSS), r.load)
	}
	first, last := runs[0], runs[len(runs)-1]
	fmt.Fprintf(&b, "\nPeak RSS on day %d is %.2fx day 1's, with %dx the posts in the tables.\n", last.day, float64(last.peakRSS)/float64(first.peakRSS), last.day)
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}
