package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReplayDeadLetters: the golden input's real dead letters, replayed
// into input objects and run through batch again (with today's rules,
// which reject them all again), come back as the same dead letters: every
// one read again, from its original bytes, none lost or added.
func TestReplayDeadLetters(t *testing.T) {
	input, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sample"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, replayed, second := filepath.Join(dir, "first"), filepath.Join(dir, "replay"), filepath.Join(dir, "second")
	if r := pinpipe(t, nil, "batch", "--input="+input, "--output="+first, "--table-format=jsonl"); r.code != 0 {
		t.Fatalf("batch: exit %d: %s", r.code, r.stderr)
	}
	want := deadLetterLines(t, first)
	if len(want) < 10 {
		t.Fatalf("only %d dead letters in the golden input's run", len(want))
	}
	r := pinpipe(t, nil, "replay", "--deadletters="+first, "--out="+replayed)
	if r.code != 0 || !strings.Contains(r.stderr, "pinpipe replay: "+strconv.Itoa(len(want))+" dead letters from 1 files") {
		t.Fatalf("replay: exit %d: %s", r.code, r.stderr)
	}
	if r := pinpipe(t, nil, "batch", "--input="+replayed, "--output="+second, "--table-format=jsonl"); r.code != 0 {
		t.Fatalf("batch over the replay: exit %d: %s", r.code, r.stderr)
	}
	if got := deadLetterLines(t, second); !slices.Equal(got, want) {
		t.Errorf("the replay's dead letters differ from the originals:\ngot  %q\nwant %q", got, want)
	}

	// Replayed into the input itself, an incremental run merges them: it
	// reads exactly the replayed records, and they are rejected again.
	lake := filepath.Join(dir, "lake")
	if err := os.CopyFS(lake, os.DirFS(input)); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged")
	if r := pinpipe(t, nil, "batch", "--input="+lake, "--output="+merged, "--table-format=jsonl", "--incremental"); r.code != 0 {
		t.Fatalf("batch --incremental: exit %d: %s", r.code, r.stderr)
	}
	if r := pinpipe(t, nil, "replay", "--deadletters="+merged, "--out="+lake); r.code != 0 {
		t.Fatalf("replay into the input: exit %d: %s", r.code, r.stderr)
	}
	r = pinpipe(t, nil, "batch", "--input="+lake, "--output="+merged, "--table-format=jsonl", "--incremental", "--progress-interval=1h")
	if r.code != 0 || !strings.Contains(r.stderr, "pinpipe batch: read: 3 of 3 objects, ") || !strings.Contains(r.stderr, " "+strconv.Itoa(len(want))+" records, ") {
		t.Errorf("the incremental run after the replay: exit %d; want 3 objects and %d records read:\n%s", r.code, len(want), r.stderr)
	}
	if got := deadLetterLines(t, merged); len(got) != 2*len(want) {
		t.Errorf("%d dead letters after the merge, want the first run's %d and the replay's %d", len(got), len(want), len(want))
	}

	// One table only; a mistyped one is a usage error.
	r = pinpipe(t, nil, "replay", "--deadletters="+first, "--out="+filepath.Join(dir, "pins"), "--table=pin")
	if r.code != 0 {
		t.Fatalf("replay --table=pin: exit %d: %s", r.code, r.stderr)
	}
	if tables, _ := filepath.Glob(filepath.Join(dir, "pins", "topics", "*")); len(tables) != 1 || filepath.Base(tables[0]) != "pinpipe.pin" {
		t.Errorf("replay --table=pin wrote %v", tables)
	}
	if r := pinpipe(t, nil, "replay", "--deadletters="+first, "--out="+dir, "--table=pins"); r.code != 2 {
		t.Errorf("replay --table=pins: exit %d, want 2: %s", r.code, r.stderr)
	}
}

// deadLetterLines are the lines of a batch output's dead-letter files,
// sorted.
func deadLetterLines(t *testing.T, output string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(output, "deadletter", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	slices.Sort(lines)
	return lines
}
