package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/pinpipe/pinpipe/internal/demo"
)

func init() {
	addCommand("demo", "run the whole system on loopback ports: emulate → gateway → Kafka → S3 sink, streaming and batch jobs, a summary", demoCmd)
}

// demoCmd is what `make run` runs; the logic is internal/demo's, so that its
// test runs exactly what users run.
func demoCmd(fs *flag.FlagSet) func(context.Context) error {
	var o demo.Options
	fs.StringVar(&o.Dir, "dir", demo.DefaultDir, "data directory (Kafka, S3, the jobs' outputs); cleared at the start of every run")
	fs.Int64Var(&o.Posts, "posts", demo.DefaultPosts, "posts to send through the gateway")
	fs.StringVar(&o.Sink, "sink", "", "PostgreSQL DSN the streaming job also upserts into (pin_stream, geo_stream, user_stream, ...); "+
		"give the password in PGPASSWORD or ~/.pgpass")
	fs.Float64Var(&o.Rate, "rate", demo.DefaultRate, "posts per second")
	fs.Uint64Var(&o.Seed, "seed", demo.DefaultSeed, "random seed: which posts are made and picked")
	return func(ctx context.Context) error {
		o.Log = os.Stderr
		if jsonLogs() {
			o.Log = lineLogger{}
		} else if isTerminal(os.Stderr) {
			o.Progress = os.Stderr
		}
		res, err := demo.Run(ctx, o)
		if res.Total > 0 {
			res.Print(os.Stdout)
		}
		if err != nil {
			return err
		}
		fmt.Printf("\nopen the report: %s\n", res.Report)
		return nil
	}
}
