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
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
)

// beamLogger sends Beam's launcher-side logs to slog, so that --log-level
// governs them too.
type beamLogger struct{}

func (beamLogger) Log(ctx context.Context, sev beamlog.Severity, _ int, msg string) {
	level := slog.LevelInfo
	switch sev {
	case beamlog.SevDebug:
		level = slog.LevelDebug
	case beamlog.SevWarn:
		level = slog.LevelWarn
	case beamlog.SevError, beamlog.SevFatal:
		level = slog.LevelError
	}
	slog.Log(ctx, level, msg)
}

// command is one subcommand: its flags are registered on the global flag set
// (beside Beam's) only when it is the one chosen.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet) func(ctx context.Context) error
}

// commands are the subcommands; each file of this package adds its own with
// addCommand in an init function.
var commands = map[string]command{}

func addCommand(name, summary string, flags func(fs *flag.FlagSet) func(ctx context.Context) error) {
	commands[name] = command{summary, flags}
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

// logLevel is the level of the process's logs (the in-process runners log
// through slog too); --log-level=info shows the runners' progress.
var logLevel = new(slog.LevelVar)

func main() {
	logLevel.Set(slog.LevelWarn)
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the command to this file")
	flag.TextVar(logLevel, "log-level", logLevel, "log level: debug, info, warn or error")
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	// A runner's worker starts the binary with flags and no command: parse
	// them and let beam.Init take over.
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		flag.Usage = usage
		flag.Parse()
		beam.Init()
		usage()
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	// A command may take a sub-verb ("dev kafka"): registered under both words.
	if len(args) > 0 {
		if _, ok := commands[name+" "+args[0]]; ok {
			name, args = name+" "+args[0], args[1:]
		}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "pinpipe: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	run := cmd.flags(flag.CommandLine)
	flag.CommandLine.Init("pinpipe "+name, flag.ExitOnError)
	if err := flag.CommandLine.Parse(args); err != nil {
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pinpipe %s: unexpected arguments %q\n", name, flag.Args())
		os.Exit(2)
	}
	beam.Init()
	// beam.Init installs its own slog default at info level; ours follows
	// --log-level, and Beam's launcher logs go through it too.
	slog.SetDefault(logger)
	beamlog.SetLogger(beamLogger{})

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			slog.Error("cpu profile", "err", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		slog.Error("pinpipe "+name+" failed", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
