// Command pinpipe runs the pinpipe system: the batch and streaming
// pipelines, the data generator and the ingestion services, as subcommands
// of one binary.
//
//	pinpipe <command> [flags]
//
// Beam's own flags (--runner, --endpoint, --environment_type, Dataflow's
// --project and so on) are accepted by every pipeline command. Runner
// workers start this binary with --worker and no command.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// command is one subcommand: its flags are registered on the global flag set
// (beside Beam's) only when it is the one chosen.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet) func(ctx context.Context) error
}

var commands = map[string]command{
	"batch":    {"run the bounded batch pipeline over S3-sink objects", batchCmd},
	"generate": {"generate realistic raw post data", generateCmd},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: pinpipe <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nrun 'pinpipe <command> -help' for its flags\n")
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	// A runner's worker starts the binary with flags and no command: parse
	// them and let beam.Init take over.
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		flag.Usage = usage
		flag.Parse()
		beam.Init()
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "pinpipe: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	run := cmd.flags(flag.CommandLine)
	flag.CommandLine.Init("pinpipe "+name, flag.ExitOnError)
	if err := flag.CommandLine.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pinpipe %s: unexpected arguments %q\n", name, flag.Args())
		os.Exit(2)
	}
	beam.Init()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		slog.Error("pinpipe "+name+" failed", "err", err)
		os.Exit(1)
	}
}
