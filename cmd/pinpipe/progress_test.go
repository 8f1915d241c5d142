package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBatchProgress: batch says every --progress-interval how far it has
// read, and once more at the end: all the golden input's objects, and
// every record the summary counts as read; through the one slog set-up
// (--log-format=json: each line a JSON object).
func TestBatchProgress(t *testing.T) {
	input := filepath.Join("..", "..", "testdata", "sample")
	objects, err := filepath.Glob(filepath.Join(input, "topics", "pinpipe.*", "partition=*", "*"))
	if err != nil || len(objects) == 0 {
		t.Fatalf("the golden input's objects: %v, %v", objects, err)
	}
	abs, err := filepath.Abs(input)
	if err != nil {
		t.Fatal(err)
	}
	r := pinpipe(t, nil, "batch", "--input="+abs, "--output="+filepath.Join(t.TempDir(), "out"), "--table-format=jsonl",
		"--progress-interval=10ms", "--log-format=json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var progress []string
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a stderr line is not JSON: %q", line)
		}
		if strings.HasPrefix(rec.Msg, "pinpipe batch: read") {
			progress = append(progress, rec.Msg)
		}
	}
	if len(progress) < 2 {
		t.Errorf("%d progress lines at a 10ms interval, want several:\n%s", len(progress), r.stderr)
	}
	var read int
	for _, line := range strings.Split(r.stdout, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 {
			var n int
			if _, err := fmt.Sscan(f[1], &n); err == nil {
				read += n
			}
		}
	}
	last := progress[len(progress)-1]
	want := "pinpipe batch: read: " + strconv.Itoa(len(objects)) + " of " + strconv.Itoa(len(objects)) + " objects, "
	if !strings.HasPrefix(last, want) || !strings.Contains(last, " "+strconv.Itoa(read)+" records, ") {
		t.Errorf("last progress line %q, want it to start %q and count the %d records the summary read", last, want, read)
	}
}
