// Command pinpipe runs the pinpipe system: the batch and streaming
// pipelines, the data generator and the ingestion services, as subcommands
// of one binary.
//
//	pinpipe <command> [flags]
//
// Beam's own flags (--runner, --endpoint, --environment_type, Dataflow's
// --project and so on) are accepted by every pipeline command; `pinpipe
// <command> -h` shows the command's own flags and the runner flags that
// matter, `pinpipe <command> --help-all` every flag. Runner workers start
// this binary with --worker and no command.
//
// Exit codes: 0 done, 1 failed, 2 usage (an unknown command or flag, a bad
// flag value, a required flag missing).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"

	"github.com/pinpipe/pinpipe/runners"
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

// command is one subcommand. Its flags are registered on a flag set of its
// own, so that its help shows them apart from Beam's, and then on the
// global flag set beside Beam's, which beam.Init reads.
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

// helpNotes are a few lines a command's help shows after its summary.
var helpNotes = map[string]string{}

// pipelineCommands run Beam jobs: Beam's runner flags apply to them.
var pipelineCommands = map[string]bool{"batch": true, "stream": true, "schedule": true, "demo": true}

// usageError is a mistake in how a command was invoked: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usageErrorf makes a usage error: an invalid flag value, a missing flag.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: pinpipe <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nrun 'pinpipe <command> -h' for its flags\n")
}

// logLevel is the level of the process's logs (the in-process runners log
// through slog too); --log-level=info shows the runners' progress.
var logLevel = new(slog.LevelVar)

// logFormat is --log-format: text or json.
var logFormat = "text"

// jsonLogs reports --log-format=json: then everything the process writes to
// stderr is a JSON object a line (Beam's and the runners' logs too).
func jsonLogs() bool { return logFormat == "json" }

// defaultDrainTimeout is --drain-timeout's default: long enough for a
// streaming job to flush its windows and sinks, short enough for
// supervisors (Kubernetes waits 30 s between SIGTERM and SIGKILL).
const defaultDrainTimeout = 30 * time.Second

// drainTimeout is --drain-timeout: how long a command has to finish what
// it holds after the first SIGINT or SIGTERM.
var drainTimeout = defaultDrainTimeout

// commonFlags registers the flags every command has.
func commonFlags(fs *flag.FlagSet, cpuProfile *string) {
	fs.DurationVar(&drainTimeout, "drain-timeout", defaultDrainTimeout, "after the first SIGINT or SIGTERM, how long the command may take to finish what it holds "+
		"(a streaming job drains, servers finish requests in flight) before it stops anyway (exit 1); a second signal stops it at once")
	fs.StringVar(cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file")
	fs.TextVar(logLevel, "log-level", logLevel, "`level` of the logs: debug, info, warn or error")
	fs.Func("log-format", "`format` of the logs on stderr: text, or json (one object a line) (default text)", func(v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("must be text or json")
		}
		logFormat = v
		return nil
	})
}

// newLogger is the process's logger, as --log-level and --log-format say.
func newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevel}
	if jsonLogs() {
		return slog.New(quietPlans{slog.NewJSONHandler(w, opts)})
	}
	return slog.New(quietPlans{slog.NewTextHandler(w, opts)})
}

// noteLogger logs what the commands tell the user (start lines, progress)
// with --log-format=json: at info level, shown whatever --log-level says,
// as the text lines are.
func noteLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: min(logLevel.Level(), slog.LevelInfo)}))
}

// note tells the user something on stderr: a line of text, or an info log
// with --log-format=json.
func note(format string, args ...any) {
	if jsonLogs() {
		noteLogger().Info(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// warn warns the user on stderr: a line of text, or a warning log with
// --log-format=json; shown whatever --log-level says.
func warn(format string, args ...any) {
	if jsonLogs() {
		noteLogger().Warn(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(os.Stderr, "warning: "+format+"\n", args...)
}

// failure prints the one line of a failed command: text, or with
// --log-format=json an error log.
func failure(w io.Writer, name, msg string) {
	if jsonLogs() {
		newLogger(w).Error("pinpipe "+name+" failed", "err", msg)
		return
	}
	fmt.Fprintf(w, "pinpipe %s: %s\n", name, msg)
}

// lineLogger is a writer whose lines become info logs (progress lines with
// --log-format=json).
type lineLogger struct{}

func (lineLogger) Write(p []byte) (int, error) {
	for _, l := range strings.Split(string(p), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			noteLogger().Info(l)
		}
	}
	return len(p), nil
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain runs the command named in args and returns the exit code.
func runMain(args []string, stdout, stderr io.Writer) int {
	logLevel.Set(slog.LevelWarn)
	var cpuProfile string
	// A runner's worker starts the binary with flags and no command: parse
	// them and let beam.Init take over.
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		commonFlags(flag.CommandLine, &cpuProfile)
		flag.CommandLine.Init("pinpipe", flag.ContinueOnError)
		flag.CommandLine.SetOutput(io.Discard)
		err := flag.CommandLine.Parse(args)
		if err == nil {
			beam.Init()
		}
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "pinpipe: %s\n\n", flagError(err))
		}
		usage(stderr)
		return 2
	}
	name, cmd, args, ok := findCommand(args)
	if !ok {
		fmt.Fprintf(stderr, "pinpipe: unknown command %q; run 'pinpipe -h' for the commands\n", name)
		return 2
	}
	own := flag.NewFlagSet("pinpipe "+name, flag.ContinueOnError)
	run := cmd.flags(own)
	common := flag.NewFlagSet("common", flag.ContinueOnError)
	commonFlags(common, &cpuProfile)
	helpAll := flag.CommandLine.Bool("help-all", false, "print every flag, Beam's too")
	for _, fs := range []*flag.FlagSet{own, common} {
		fs.VisitAll(func(f *flag.Flag) { flag.CommandLine.Var(f.Value, f.Name, f.Usage) })
	}
	flag.CommandLine.Init("pinpipe "+name, flag.ContinueOnError)
	flag.CommandLine.SetOutput(io.Discard) // errors and help are printed here
	err := flag.CommandLine.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, name, cmd, own, common)
		return 0
	case err != nil:
		failure(stderr, name, fmt.Sprintf("%v (run 'pinpipe %s -h' for its flags)", flagError(err, own, common), name))
		return 2
	case *helpAll:
		fmt.Fprintf(stdout, "usage: pinpipe %s [flags]\n\nevery flag (the command's own and Beam's):\n", name)
		flag.CommandLine.SetOutput(stdout)
		flag.CommandLine.PrintDefaults()
		return 0
	case flag.NArg() > 0:
		failure(stderr, name, fmt.Sprintf("unexpected arguments %q (flags are --name=value)", flag.Args()))
		return 2
	}
	if err := flagsFromEnv(flag.CommandLine, os.LookupEnv); err != nil {
		failure(stderr, name, err.Error())
		return 2
	}
	if err := checkRequired(own); err != nil {
		failure(stderr, name, err.Error())
		return 2
	}
	if pipelineCommands[name] {
		if err := runners.Validate(); err != nil {
			failure(stderr, name, err.Error())
			return 2
		}
	}
	beam.Init()
	// beam.Init installs its own slog default at info level; ours follows
	// --log-level, and Beam's launcher logs go through it too.
	slog.SetDefault(newLogger(stderr))
	beamlog.SetLogger(beamLogger{})

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			failure(stderr, name, "--cpuprofile: "+err.Error())
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if drainTimeout <= 0 {
		failure(stderr, name, fmt.Sprintf("--drain-timeout must be positive, not %v", drainTimeout))
		return 2
	}
	if err := runStoppable(run, name); err != nil {
		if errors.Is(err, errStopped) {
			failure(stderr, name, err.Error())
			return 1
		}
		var ue *usageError
		if errors.As(err, &ue) {
			failure(stderr, name, fmt.Sprintf("%v (run 'pinpipe %s -h' for its flags)", ue, name))
			return 2
		}
		if logLevel.Level() <= slog.LevelDebug {
			if jsonLogs() {
				slog.Debug("the whole error", "err", err.Error())
			} else {
				fmt.Fprintf(stderr, "pinpipe %s: the whole error:\n%v\n", name, err)
			}
		}
		failure(stderr, name, rootCause(err.Error()))
		return 1
	}
	return 0
}

// findCommand finds the command args name (args is not empty) and returns
// its name, the command and the arguments after its name; ok is false for
// an unknown one. A command may take a sub-verb ("dev kafka"): it is
// registered under both words.
func findCommand(args []string) (name string, cmd command, rest []string, ok bool) {
	name, rest = args[0], args[1:]
	if len(rest) > 0 {
		if _, ok := commands[name+" "+rest[0]]; ok {
			name, rest = name+" "+rest[0], rest[1:]
		}
	}
	cmd, ok = commands[name]
	return name, cmd, rest, ok
}

// errStopped is a command stopped by signals before it had finished.
var errStopped = errors.New("stopped")

// runStoppable runs a command until it returns or signals stop it. The
// first SIGINT or SIGTERM cancels the command's context: it finishes what
// it holds (stream drains its reads, servers their requests) and returns.
// If it has not within --drain-timeout, or a second signal comes, it is
// left unfinished and runStoppable returns errStopped: the process exits.
func runStoppable(run func(context.Context) error, name string) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var sig os.Signal
	select {
	case err := <-done:
		return err
	case sig = <-sigs:
	}
	note("pinpipe %s: %v: finishing what it holds, for up to --drain-timeout=%v; signal again to stop at once", name, sig, drainTimeout)
	cancel()
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w unfinished: still running --drain-timeout=%v after %v", errStopped, drainTimeout, sig)
	case sig2 := <-sigs:
		return fmt.Errorf("%w unfinished at once: a second signal (%v after %v)", errStopped, sig2, sig)
	}
}

// flagError rewords the flag package's errors in the --name spelling the
// help uses, and suggests the flag of the command's (in sets) nearest an
// unknown one.
func flagError(err error, sets ...*flag.FlagSet) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + name
		best, dist := "", 3 // two edits at most
		for _, fs := range sets {
			fs.VisitAll(func(f *flag.Flag) {
				if d := editDistance(name, f.Name); d < dist {
					best, dist = f.Name, d
				}
			})
		}
		if best != "" {
			msg += "; did you mean --" + best + "?"
		}
		return msg
	}
	return strings.Replace(msg, " for flag -", " for flag --", 1)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// envPrefix starts the environment variables flags can be set with: every
// flag, Beam's too, as PINPIPE_<FLAG> (upper case, - and . as _); a flag
// given on the command line wins.
const envPrefix = "PINPIPE_"

// envHelp says so in every command's help.
const envHelp = "environment: every flag as " + envPrefix + "<FLAG>, upper case with - and . as _ (--kafka-brokers as " +
	envPrefix + "KAFKA_BROKERS); the command line wins"

var envReplacer = strings.NewReplacer("-", "_", ".", "_")

// envName is the environment variable that sets the flag name.
func envName(name string) string { return envPrefix + strings.ToUpper(envReplacer.Replace(name)) }

// flagsFromEnv sets every flag of fs not given on the command line from
// its PINPIPE_<FLAG> variable, when that is set and not empty. A value the
// flag refuses is a usage error naming the variable.
func flagsFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "help-all" {
			return
		}
		env := envName(f.Name)
		v, ok := lookup(env)
		if !ok || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usageErrorf("invalid value %q for $%s (--%s): %v", v, env, f.Name, e)
		}
	})
	return err
}

// checkRequired fails when a flag whose help says "(required)" was not
// given a value.
func checkRequired(fs *flag.FlagSet) error {
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Usage, "(required)") && f.Value.String() == "" {
			missing = append(missing, "--"+f.Name)
		}
	})
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usageErrorf("%s is required", missing[0])
	}
	return usageErrorf("%s are required", strings.Join(missing, " and "))
}

// printHelp prints a command's help: a few examples, its own flags in
// their groups, the common flags in a line and, for pipeline commands, the
// runner flags that matter most; --help-all lists the rest.
func printHelp(w io.Writer, name string, cmd command, own, common *flag.FlagSet) {
	fmt.Fprintf(w, "usage: pinpipe %s [flags]\n\n%s.\n", name, cmd.summary)
	if note := helpNotes[name]; note != "" {
		fmt.Fprintf(w, "%s\n", note)
	}
	if ex := helpExamples[name]; len(ex) > 0 {
		fmt.Fprintf(w, "\nexamples:\n")
		for _, e := range ex {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	shown := map[string]bool{}
	for _, g := range helpGroups[name] {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, n := range g.flags {
			if f := own.Lookup(n); f != nil && !shown[n] {
				printFlag(w, f)
				shown[n] = true
			}
		}
	}
	title := "\nflags:\n"
	if len(shown) > 0 {
		title = "\nother:\n"
	}
	own.VisitAll(func(f *flag.Flag) {
		if !shown[f.Name] {
			fmt.Fprint(w, title)
			title = ""
			printFlag(w, f)
		}
	})
	var names []string
	common.VisitAll(func(f *flag.Flag) {
		typ, _ := flag.UnquoteUsage(f)
		if v := f.DefValue; v != "" {
			typ = strings.ToLower(v)
		}
		names = append(names, "--"+f.Name+"="+typ)
	})
	fmt.Fprintf(w, "\ncommon flags: %s (pinpipe %s --help-all says what they do)\n", strings.Join(names, " "), name)
	fmt.Fprintf(w, "%s\n", envHelp)
	if pipelineCommands[name] {
		fmt.Fprintf(w, "\nrunner flags (Beam's; every one: pinpipe %s --help-all):\n", name)
		fmt.Fprintf(w, "  --runner=%s (default direct)\n", strings.Join(runners.Names, "|"))
		fmt.Fprintf(w, "  --endpoint=HOST:PORT --environment_type=LOOPBACK|DOCKER|PROCESS   a portable job server (flink, universal)\n")
		fmt.Fprintf(w, "  --temp_location=DIR|s3://...   --project --region --staging_location=gs://... --dry_run (dataflow)\n")
	} else {
		fmt.Fprintf(w, "\nevery flag, Beam's too: pinpipe %s --help-all\n", name)
	}
}

// helpWidth is where the help's lines are wrapped.
const helpWidth = 110

// printFlag prints a flag's entry: --name TYPE, then the usage and
// default, wrapped at helpWidth.
func printFlag(w io.Writer, f *flag.Flag) {
	{
		typ, use := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if typ != "" {
			head += " " + typ
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" {
			use += " (default " + def + ")"
		}
		line := fmt.Sprintf("%-26s ", head)
		for _, word := range strings.Fields(use) {
			if len(line)+1+len(word) > helpWidth && strings.TrimSpace(line) != "" {
				fmt.Fprintln(w, strings.TrimRight(line, " "))
				line = strings.Repeat(" ", 27)
			}
			if !strings.HasSuffix(line, " ") {
				line += " "
			}
			line += word
		}
		fmt.Fprintln(w, line)
	}
}
