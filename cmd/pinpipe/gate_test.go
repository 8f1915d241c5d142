package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMaxRejectRate: the data-quality gate. Over data with a fifth of its
// lines malformed, a batch run whose --max-reject-rate a table exceeds
// commits, writes its dead letters, then fails with exit 1 and one line
// naming that table and its rate; under the limit it succeeds.
func TestMaxRejectRate(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in")
	if r := pinpipe(t, nil, "generate", "--posts=300", "--malformed-rate=0.2", "--out="+in); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}

	ok := filepath.Join(t.TempDir(), "ok")
	if r := pinpipe(t, nil, "batch", "--input="+in, "--output="+ok, "--max-reject-rate=0.5"); r.code != 0 {
		t.Fatalf("batch under the limit: exit %d, want 0: %s", r.code, r.stderr)
	}

	out := filepath.Join(t.TempDir(), "out")
	r := pinpipe(t, nil, "batch", "--input="+in, "--output="+out, "--max-reject-rate=pin=0.05,geo=1")
	if r.code != 1 {
		t.Fatalf("batch over the limit: exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	line := regexp.MustCompile(`^pinpipe batch: data-quality gate: table pin rejected (\d+(\.\d+)?)% of its records \((\d+) of (\d+)\), ` +
		`more than --max-reject-rate=0.05 \(the run is committed; its dead letters are in ` + regexp.QuoteMeta(filepath.Join(out, "deadletter")) + `\)\n$`)
	// The failure is one line; before it only batch's progress lines.
	stderr := regexp.MustCompile(`(?m)^pinpipe batch: read(ing)?: .*\n`).ReplaceAllString(r.stderr, "")
	m := line.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("stderr %q, want one line naming table pin and its reject rate", r.stderr)
	}
	if rate, _ := strconv.ParseFloat(m[1], 64); rate < 10 || rate > 30 {
		t.Errorf("rate %s%%, want about 20%%", m[1])
	}
	if strings.Contains(r.stderr, "table geo") || strings.Contains(r.stderr, "table user") {
		t.Errorf("names a table within its limit: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "rejected") {
		t.Errorf("no summary on stdout: %q", r.stdout)
	}
	// Committed, dead letters and all.
	if _, err := os.Stat(filepath.Join(out, "_commit.json")); err != nil {
		t.Errorf("no commit: %v", err)
	}
	dead, _ := filepath.Glob(filepath.Join(out, "deadletter", "*.jsonl"))
	if len(dead) == 0 {
		t.Errorf("no dead letters in %s", filepath.Join(out, "deadletter"))
	}
	for _, f := range dead {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("dead letters %s empty: %v", f, err)
		}
	}
}
