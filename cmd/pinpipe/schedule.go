package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/pinpipe/pinpipe/pipelines/batch"
)

func init() {
	addCommand("schedule", "run the batch job incrementally on a timer (for those without Airflow)", scheduleCmd)
}

func scheduleCmd(fs *flag.FlagSet) func(context.Context) error {
	o := batch.Options{Incremental: true}
	every := fs.Duration("every", 24*time.Hour, "time between runs")
	runNow := fs.Bool("now", true, "run once at start, then every --every")
	fs.StringVar(&o.Input, "input", "", "directory or s3://bucket/prefix holding topics/<prefix>.<table>/partition=*/ (required)")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "pinpipe", "topic prefix")
	fs.StringVar(&o.Output, "output", "", "directory or s3://bucket/prefix for the outputs (required)")
	formatFlags(fs, &o)
	fs.IntVar(&o.Shards, "shards", 0, "buckets of ind on the output's first run (default: from the input's size); later runs keep the output's")
	fs.StringVar(&o.Warehouse, "warehouse", "", "PostgreSQL DSN to load the clean tables into after each run")
	return func(ctx context.Context) error {
		if *every <= 0 {
			return usageErrorf("--every must be positive, not %v", *every)
		}
		if err := checkFormat(o.Format); err != nil {
			return err
		}
		var runs, failed int
		run := func() {
			start := time.Now()
			runs++
			sum, err := batch.Run(ctx, o)
			next := time.Now().Add(*every).Format(time.RFC3339)
			if err != nil {
				failed++
				// A failed run is retried at the next tick; the manifest is
				// only written after a successful one.
				// The cause on one line; the whole error (a plan dump,
				// for a failed Beam job) at debug level.
				slog.Error("scheduled batch run failed", "err", rootCause(err.Error()), "next", next)
				slog.Debug("scheduled batch run failed: the whole error", "err", err.Error())
				return
			}
			printRunSummary(o, sum)
			note("pinpipe schedule: run %d finished at %s in %s; outputs in %s; next run at %s",
				runs, time.Now().Format(time.RFC3339), time.Since(start).Round(time.Millisecond), o.Output, next)
		}
		load := ""
		if o.Warehouse != "" {
			load = ", then loading the warehouse " + dsnPlace(o.Warehouse)
		}
		first := "now"
		if !*runNow {
			first = time.Now().Add(*every).Format(time.RFC3339)
		}
		note("pinpipe schedule: every %v, an incremental batch run over %s (topics %s.{pin,geo,user}) into %s (%s)%s; first run %s; Ctrl-C stops it",
			*every, o.Input, o.TopicPrefix, o.Output, o.Format, load, first)
		defer func() {
			note("pinpipe schedule: stopped after %d runs (%d failed); outputs in %s", runs, failed, o.Output)
		}()
		if *runNow {
			run()
		}
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				run()
			}
		}
	}
}
