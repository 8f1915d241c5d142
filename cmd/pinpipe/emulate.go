package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
)

func init() {
	addCommand("emulate", "send random posts through the gateway, as the original's posting scripts did", emulateCmd)
}

func emulateCmd(fs *flag.FlagSet) func(context.Context) error {
	var (
		cfg       emulator.Config
		apiKeyEnv string
	)
	fs.StringVar(&cfg.Source, "source", "", "PostgreSQL DSN of the source database (see pinpipe seed); without it, posts are generated "+
		"(the rows pinpipe seed --posts=P --seed=S loads)")
	fs.IntVar(&cfg.Posts, "posts", sourcedb.DefaultOptions().Posts, "without --source: the number of generated posts to pick from")
	fs.StringVar(&cfg.Gateway, "gateway", "http://127.0.0.1:8082", "base URL of the gateway (pinpipe gateway, or an API Gateway stage URL)")
	fs.StringVar(&cfg.Target, "target", emulator.TargetKafka, "kafka (POST /topics/<prefix>.<table>) or kinesis (PUT /streams/streaming-<prefix>-<table>/record)")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", "pinpipe", "prefix of the topics or streams")
	fs.Float64Var(&cfg.Rate, "rate", 0, "posts per second over all workers (0: as fast as the gateway takes them)")
	fs.StringVar(&cfg.Pace, "pace", "", "seed: wait 0 or 1 s before each post, as the original script did (instead of --rate)")
	fs.Int64Var(&cfg.Count, "count", 0, "posts to send (0: until interrupted; with --all: every post)")
	fs.BoolVar(&cfg.All, "all", false, "send every post of the source exactly once, in a random order drawn from --seed, "+
		"then stop (instead of picking posts at random with replacement, as the original did)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed: which posts are picked (and made, without --source); 0: a random one, printed at the start so that the run can be repeated")
	fs.IntVar(&cfg.Concurrency, "concurrency", 1, "posts in flight at once (each worker has its own database connection)")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", emulator.DefaultMaxAttempts, "tries of a record before it counts as failed (transient failures only: connection errors, 408, 429, 5xx)")
	fs.DurationVar(&cfg.GiveUpAfter, "give-up-after", emulator.DefaultGiveUpAfter, "stop the run once requests have failed and none has succeeded for this long (a gateway that is down at the start fails the run at once)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", emulator.DefaultRequestTimeout, "timeout of one HTTP request")
	fs.StringVar(&apiKeyEnv, "api-key-env", "", "name of an environment variable holding the API key to send as x-api-key")
	metricsListen := metricsListenFlag(fs)
	return func(ctx context.Context) error {
		if apiKeyEnv != "" {
			cfg.APIKey = os.Getenv(apiKeyEnv)
			if cfg.APIKey == "" {
				return usageErrorf("--api-key-env=%s: that environment variable is empty or unset", apiKeyEnv)
			}
		}
		if err := cfg.Check(); err != nil {
			return usageErrorf("%v", err)
		}
		if cfg.Seed == 0 {
			cfg.Seed = rand.Uint64() | 1
		}
		note("pinpipe emulate: seed %d (--seed=%d repeats this run's posts)", cfg.Seed, cfg.Seed)
		// Progress: a line rewritten in place on a terminal, else a line
		// (or a log) every 5 s.
		cfg.Progress = os.Stderr
		if jsonLogs() {
			cfg.Progress = lineLogger{}
		}
		if jsonLogs() || !isTerminal(os.Stderr) {
			cfg.ProgressLines, cfg.ProgressInterval = true, 5*time.Second
		}
		if *metricsListen != "" {
			cfg.OnStart = registerEmulateMetrics(promRegistry)
			stop, err := serveMetrics(*metricsListen, nil)
			if err != nil {
				return err
			}
			defer stop()
		}
		sum, err := emulator.Run(ctx, cfg)
		if sum.Posts > 0 || err == nil {
			fmt.Println("pinpipe emulate: " + sum.String())
		}
		// Interrupting a run is how one without --count ends.
		if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
			return err
		}
		if sum.Failed > 0 {
			return fmt.Errorf("%d of %d posts were not delivered whole (their failures are logged above)", sum.Failed, sum.Posts)
		}
		return nil
	}
}

// isTerminal says whether f is a terminal (a character device), where a
// progress line rewritten in place makes sense.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
