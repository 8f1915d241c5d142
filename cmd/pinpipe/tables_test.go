package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTablesCommands: on a real warehouse (two batch runs with
// --table-format=iceberg, SQLite catalog), `tables list` shows every table at the
// second run, `tables history` both runs' snapshots, `expire-snapshots`
// removes the first run's snapshot and the files only it named, and
// `rewrite-files` finds nothing to merge in the batch tables (one file per
// bucket), `clean-orphans` removes an old file no snapshot names but keeps a young
// one (it may be a running job's), and lists without removing under
// --dry-run.
func TestTablesCommands(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if r := pinpipe(t, nil, "generate", "--posts=300", "--out="+in); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}
	runRe := regexp.MustCompile(`"run_id": "([^"]+)"`)
	var runs []string
	for range 2 {
		if r := pinpipe(t, nil, "batch", "--input="+in, "--output="+out, "--table-format=iceberg", "--shards=2", "--runner=direct"); r.code != 0 {
			t.Fatalf("batch: exit %d: %s", r.code, r.stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "_commit.json"))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, runRe.FindStringSubmatch(string(b))[1])
	}
	pinDir := filepath.Join(out, "iceberg", "pinpipe", "pin")
	firstFiles, _ := filepath.Glob(filepath.Join(pinDir, "part-*-"+runs[0]+".parquet"))
	if len(firstFiles) != 2 {
		t.Fatalf("the first run's pin files %v, want 2 kept for its snapshot", firstFiles)
	}

	r := pinpipe(t, nil, "tables", "list", "--output="+out)
	if r.code != 0 {
		t.Fatalf("tables list: exit %d: %s", r.code, r.stderr)
	}
	for _, name := range []string{"pin", "geo", "user", "deadletter", "top_category_by_country", "median_followers_by_join_year_and_age_group"} {
		if !regexp.MustCompile(`(?m)^pinpipe\.` + name + ` +2 +\d+ +` + runs[1]).MatchString(r.stdout) {
			t.Errorf("tables list: no line for %s with 2 snapshots at run %s:\n%s", name, runs[1], r.stdout)
		}
	}

	r = pinpipe(t, nil, "tables", "history", "--output="+out, "--table=pin")
	if r.code != 0 || strings.Count(r.stdout, runs[0]) != 1 || !regexp.MustCompile(runs[1]+`  \(current\)`).MatchString(r.stdout) {
		t.Fatalf("tables history: exit %d, want both runs, the second current:\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = pinpipe(t, nil, "tables", "expire-snapshots", "--output="+out, "--older-than=0s")
	if r.code != 0 || !strings.Contains(r.stdout, "pinpipe.pin") || !strings.Contains(r.stdout, " 1 snapshots expired") {
		t.Fatalf("tables expire-snapshots: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = pinpipe(t, nil, "tables", "history", "--output="+out, "--table=pin")
	if strings.Contains(r.stdout, runs[0]) || !strings.Contains(r.stdout, runs[1]) {
		t.Errorf("after expire-snapshots the history still has the first run, or lost the second:\n%s", r.stdout)
	}
	for _, f := range firstFiles {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s, named only by the expired snapshot, is still there (%v)", f, err)
		}
	}

	// The batch job's tables hold one file per bucket: nothing to merge.
	r = pinpipe(t, nil, "tables", "rewrite-files", "--output="+out)
	if r.code != 0 || !strings.Contains(r.stdout, "pinpipe.pin: left 2 files: not a stream span file") || strings.Contains(r.stdout, "merged") {
		t.Fatalf("tables rewrite-files on the batch tables: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	old, young := filepath.Join(pinDir, "part-00009-dead.parquet"), filepath.Join(pinDir, "part-00008-running.parquet")
	for _, f := range []string{old, young} {
		if err := os.WriteFile(f, []byte("left by a killed run"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	week := time.Now().Add(-7 * 24 * time.Hour)
	os.Chtimes(old, week, week)
	r = pinpipe(t, nil, "tables", "clean-orphans", "--output="+out, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, old) || strings.Contains(r.stdout, young) {
		t.Fatalf("clean-orphans --dry-run: exit %d, want %s listed and not %s:\n%s%s", r.code, old, young, r.stdout, r.stderr)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("--dry-run removed %s", old)
	}
	r = pinpipe(t, nil, "tables", "clean-orphans", "--output="+out)
	if r.code != 0 || !strings.Contains(r.stdout, "removed "+old) {
		t.Fatalf("clean-orphans: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("clean-orphans left %s (%v)", old, err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("clean-orphans removed the young %s", young)
	}
	for _, f := range []string{filepath.Join(pinDir, "part-00000-"+runs[1]+".parquet"), filepath.Join(pinDir, "part-00001-"+runs[1]+".parquet")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the current snapshot's %s is gone: %v", f, err)
		}
	}
	if r := pinpipe(t, nil, "tables", "list"); r.code != 2 || !strings.Contains(r.stderr, "--iceberg-warehouse or --output is required") {
		t.Errorf("tables list without a warehouse: exit %d, %s", r.code, r.stderr)
	}
}
