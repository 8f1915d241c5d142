package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests run the command as users do, as a process of its own: the test
// binary runs main's code when PINPIPE_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("PINPIPE_TEST_MAIN") == "1" {
		os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

// pinpipe runs `pinpipe args...` in dir (the test's temp dir when empty).
func pinpipe(t *testing.T, env []string, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "PINPIPE_TEST_MAIN=1", "PINPIPE_SOURCE_DSN="), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// commandFlags is a flag set with a command's own flags and the common
// ones, as runMain registers them, its errors not printed.
func commandFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	commands[name].flags(fs)
	var cpu string
	commonFlags(fs, &cpu)
	return fs
}

// ownFlags are the names of a command's own flags and the common ones.
func ownFlags(name string) []string {
	fs := commandFlags(name)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// TestHelp: every command's -h is under 60 lines, exits 0, shows each of
// its own flags and none of Beam's but the few runner flags that matter,
// and says how to list them all.
func TestHelp(t *testing.T) {
	for name := range commands {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			r := pinpipe(t, nil, append(strings.Fields(name), "-h")...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			lines := strings.Count(r.stdout, "\n")
			if lines >= 60 {
				t.Errorf("%d lines of help, want under 60:\n%s", lines, r.stdout)
			}
			for _, f := range ownFlags(name) {
				if !strings.Contains(r.stdout, "--"+f+" ") && !strings.Contains(r.stdout, "--"+f+"\n") && !strings.Contains(r.stdout, "--"+f+"=") {
					t.Errorf("help does not show --%s:\n%s", f, r.stdout)
				}
			}
			// Its own flags first, grouped, after two or three examples
			// that parse with the command's flags; the common ones after.
			_, flags, ok := strings.Cut(r.stdout, "\nexamples:\n")
			if !ok {
				t.Fatalf("help has no examples:\n%s", r.stdout)
			}
			var n int
			for _, line := range strings.Split(flags, "\n") {
				ex, isExample := strings.CutPrefix(line, "  pinpipe ")
				if !isExample {
					break
				}
				n++
				ex, _, _ = strings.Cut(ex, "#")
				if err := parseCommand(shellWords(ex)); err != nil {
					t.Errorf("example %q: %v", line, err)
				}
			}
			if n < 2 || n > 3 {
				t.Errorf("%d examples, want two or three:\n%s", n, r.stdout)
			}
			own, common, _ := strings.Cut(flags, "\ncommon flags: ")
			for _, f := range ownFlags(name) {
				if strings.Contains(common, "\n  --"+f+" ") {
					t.Errorf("--%s is shown after the common flags", f)
				}
			}
			if !strings.Contains(own, ":\n  --") {
				t.Errorf("no group of own flags before the common flags:\n%s", r.stdout)
			}
			for _, beamOnly := range []string{"--environment_config", "--worker_binary", "--job_name", "-sdk_harness"} {
				if strings.Contains(r.stdout, beamOnly) {
					t.Errorf("help shows Beam's %s", beamOnly)
				}
			}
			if !strings.Contains(r.stdout, "pinpipe "+name+" --help-all") {
				t.Errorf("help does not say how to list every flag (--help-all):\n%s", r.stdout)
			}
			if pipelineCommands[name] && !strings.Contains(r.stdout, "--runner=") {
				t.Errorf("a pipeline command's help does not show --runner:\n%s", r.stdout)
			}
		})
	}
}

func TestHelpAll(t *testing.T) {
	r := pinpipe(t, nil, "batch", "--help-all")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, f := range []string{"-input", "-runner", "-environment_config", "-temp_location"} {
		if !strings.Contains(r.stdout, "  "+f+" ") {
			t.Errorf("--help-all does not list %s", f)
		}
	}
}

// TestUsageErrors: mistakes in how a command is called exit 2 with one
// line naming the problem, never the flags' help.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"batch", "--inptu=/tmp/in"}, "pinpipe batch: unknown flag --inptu; did you mean --input? (run 'pinpipe batch -h' for its flags)"},
		{[]string{"batch", "--input=a", "--output=b", "--shards=many"}, `invalid value "many" for flag --shards`},
		{[]string{"batch"}, "pinpipe batch: --input and --output are required"},
		{[]string{"batch", "--input=a"}, "pinpipe batch: --output is required"},
		{[]string{"batch", "--input=a", "--output=b", "--table-format=csv"}, `--table-format must be one of parquet, jsonl, iceberg, not "csv"`},
		{[]string{"batch", "--input=a", "--output=b", "--runner=sparkle"}, `unknown --runner="sparkle"`},
		{[]string{"batch", "--input=a", "--output=b", "--max-reject-rate=5%"}, `invalid value "5%" for flag --max-reject-rate: "5%" is not a fraction between 0 and 1`},
		{[]string{"batch", "--input=a", "--output=b", "--max-reject-rate=pins=0.1"}, `unknown table "pins" (the tables are pin, geo, user)`},
		{[]string{"batch", "--input=a", "--output=b", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"schedule", "--input=a"}, "pinpipe schedule: --output is required"},
		{[]string{"schedule", "--input=a", "--output=b", "--every=0s"}, "--every must be positive"},
		{[]string{"stream", "--source=kafak"}, `--source must be kafka or kinesis, not "kafak"`},
		{[]string{"stream", "--start=beginning"}, `--start must be committed, earliest or latest, not "beginning"`},
		{[]string{"stream", "--window=1"}, `invalid value "1" for flag --window`},
		{[]string{"stream", "--table-format=parquet"}, `--table-format must be jsonl or iceberg, not "parquet"`},
		{[]string{"stream", "--table-format=iceberg"}, "--table-format=iceberg needs --iceberg-warehouse or --files"},
		{[]string{"stream", "--table-format=iceberg", "--files=out", "--kafka-brokers=127.0.0.1:1"}, "--table-format=iceberg commits exactly once by the durable positions: give --sink or --checkpoint-dsn"},
		{[]string{"gateway", "--kinesis=maybe"}, `--kinesis must be on, off or auto, not "maybe"`},
		{[]string{"gateway", "--auto-create-topic"}, "unknown flag --auto-create-topic"},
		{[]string{"emulate", "--target=kinesys"}, `the target must be kafka or kinesis, not "kinesys"`},
		{[]string{"emulate", "--rate=-1"}, "the rate must be >= 0"},
		{[]string{"s3sink"}, "pinpipe s3sink: --s3 is required"},
		{[]string{"generate"}, "pinpipe generate: --out is required"},
		{[]string{"seed"}, "--dsn (or $PINPIPE_SOURCE_DSN) is required"},
		{[]string{"dev", "kafka", "--partitions=three"}, `invalid value "three" for flag --partitions`},
		{[]string{"dev", "s3", "--bukets=lake"}, "unknown flag --bukets; did you mean --buckets?"},
		{[]string{"seed", "--frobnicate=1"}, "unknown flag --frobnicate (run"},
		{[]string{"demo", "--posts=lots"}, `invalid value "lots" for flag --posts`},
		{[]string{"up", "--flush-size=x"}, `invalid value "x" for flag --flush-size`},
		{[]string{"frobnicate"}, `pinpipe: unknown command "frobnicate"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			r := pinpipe(t, nil, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, c.want)
			}
			if n := strings.Count(r.stderr, "\n"); n != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", n, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

// TestExitCodes: done is 0, failed is 1, with one line naming the cause.
func TestExitCodes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "gen")
	if r := pinpipe(t, nil, "generate", "--posts=20", "--out="+out); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}
	empty := t.TempDir()
	r := pinpipe(t, nil, "batch", "--input="+empty, "--output="+filepath.Join(t.TempDir(), "out"))
	if r.code != 1 {
		t.Errorf("batch over an empty input: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.Contains(r.stderr, empty) {
		t.Errorf("batch over an empty input: stderr %q, want one line naming %s", r.stderr, empty)
	}
}

// TestIncrementalNothingNew: an --incremental run that finds no new input
// object is a quiet day, not a mistake: exit 0 and "nothing new", the
// output unchanged.
func TestIncrementalNothingNew(t *testing.T) {
	in, out := filepath.Join(t.TempDir(), "in"), filepath.Join(t.TempDir(), "out")
	if r := pinpipe(t, nil, "generate", "--posts=20", "--out="+in); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}
	args := []string{"batch", "--input=" + in, "--output=" + out, "--incremental", "--shards=2", "--runner=direct"}
	if r := pinpipe(t, nil, args...); r.code != 0 || strings.Contains(r.stdout, "nothing new") {
		t.Fatalf("the first incremental run: exit %d, stdout %q: %s", r.code, r.stdout, r.stderr)
	}
	summary := filepath.Join(out, "summary.json")
	before, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	r := pinpipe(t, nil, args...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "nothing new: no input objects in "+in) {
		t.Errorf("a run with nothing new: exit %d, stdout %q; want 0 and \"nothing new\"; stderr %s", r.code, r.stdout, r.stderr)
	}
	if after, err := os.ReadFile(summary); err != nil || !bytes.Equal(before, after) {
		t.Errorf("a run with nothing new changed %s (%v)", summary, err)
	}
}
