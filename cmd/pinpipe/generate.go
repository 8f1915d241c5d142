package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/pinpipe/pinpipe/ingest/generate"
)

func init() {
	addCommand("generate", "generate realistic raw post data", generateCmd)
}

func generateCmd(fs *flag.FlagSet) func(context.Context) error {
	o := generate.Defaults()
	fs.IntVar(&o.Posts, "posts", o.Posts, "number of posts")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed: the same seed gives the same data")
	fs.StringVar(&o.Out, "out", "", "directory or s3://bucket/prefix to write to (required)")
	fs.StringVar(&o.Layout, "layout", o.Layout, "s3sink (topics/<prefix>.<table>/partition=<p>/<topic>+<p>+<offset>.json) or jsonl (<table>.jsonl)")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", o.TopicPrefix, "topic prefix for the s3sink layout")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions per topic")
	fs.IntVar(&o.FlushSize, "flush-size", o.FlushSize, "records per S3-sink object")
	fs.BoolVar(&o.Gzip, "gzip", false, "gzip the files (.json.gz)")
	fs.Float64Var(&o.DuplicateRate, "duplicate-rate", o.DuplicateRate, "share of posts sent twice")
	fs.Float64Var(&o.MissingRate, "missing-rate", o.MissingRate, "share of posts missing one of their three records")
	fs.Float64Var(&o.MalformedRate, "malformed-rate", 0, "share of lines per table that are malformed (rejected by the pipelines)")
	return func(ctx context.Context) error {
		if o.Out == "" {
			return usageErrorf("--out is required")
		}
		st, err := generate.Write(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("generated %d posts into %s: %d pin, %d geo, %d user records (%d re-sent posts, %d posts missing a part, %d malformed lines) in %d files\n",
			st.Posts, o.Out, st.Records["pin"], st.Records["geo"], st.Records["user"], st.Duplicates, st.Missing,
			st.Malformed["pin"]+st.Malformed["geo"]+st.Malformed["user"], st.Files)
		return nil
	}
}
