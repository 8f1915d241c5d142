package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONLogs: with --log-format=json, everything every command writes to
// stderr, Beam's and the runners' logs, its notes and its failure, is a
// JSON object a line.
func TestJSONLogs(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closed := closedAddr(t)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.kafka.v2+json")
		w.Write([]byte(`{"offsets":[{"partition":0,"offset":1}]}`))
	}))
	defer gw.Close()
	kafka := kafkaWithRecords(t)
	down := "postgres://me@127.0.0.1:1/db?connect_timeout=5"
	cases := []struct {
		args []string
		code int
		msg  string // in the last line
	}{
		{[]string{"batch", "--input=" + t.TempDir(), "--output=" + filepath.Join(t.TempDir(), "o")}, 1, "no input objects"},
		{[]string{"stream", "--kafka-brokers=" + kafka, "--topic-prefix=ef", "--start=earliest", "--until-latest", "--sink=" + down, "--log-level=info"}, 1, "PostgreSQL at 127.0.0.1:1"},
		{[]string{"schedule", "--input=a", "--output=b", "--every=-1s"}, 2, "--every must be positive"},
		{[]string{"demo", "--posts=lots"}, 2, "invalid value"},
		{[]string{"emulate", "--gateway=" + gw.URL, "--count=3", "--log-level=info"}, 0, "seed"},
		{[]string{"emulate", "--gateway=http://" + closed, "--count=3"}, 1, "unreachable"},
		{[]string{"gateway", "--kinesis=maybe"}, 2, "--kinesis must be on, off or auto"},
		{[]string{"seed", "--dsn=" + down}, 1, "127.0.0.1:1"},
		{[]string{"up", "--postgres=" + down}, 1, "--postgres"},
		{[]string{"s3sink", "--kafka-brokers=" + kafka}, 2, "--s3 is required"},
		{[]string{"generate", "--out=" + t.TempDir(), "--posts=5"}, 0, ""},
		{[]string{"dev", "kafka", "--listen=" + busy.Addr().String()}, 1, "address already in use"},
		{[]string{"dev", "s3", "--listen=" + busy.Addr().String()}, 1, "address already in use"},
		{[]string{"replay", "--deadletters=" + t.TempDir()}, 2, "--out is required"},
		{[]string{"tables", "list"}, 2, "--iceberg-warehouse or --output is required"},
		{[]string{"tables", "history", "--output=" + t.TempDir()}, 2, "--table is required"},
		{[]string{"tables", "expire-snapshots", "--output=" + t.TempDir(), "--retain-last=0"}, 2, "--retain-last must be at least 1"},
		{[]string{"tables", "clean-orphans", "--output=" + t.TempDir(), "--older-than=-1h"}, 2, "--older-than must not be negative"},
		{[]string{"tables", "rewrite-files", "--output=" + t.TempDir(), "--stream"}, 2, "--checkpoint-dsn"},
	}
	// Every command is among them.
	tried := map[string]bool{}
	for _, c := range cases {
		name, _, _, _ := findCommand(c.args)
		tried[name] = true
	}
	for name := range commands {
		if !tried[name] {
			t.Errorf("pinpipe %s is not tried with --log-format=json", name)
		}
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:1], "_"), func(t *testing.T) {
			r := pinpipe(t, nil, append([]string{c.args[0]}, append([]string{"--log-format=json"}, c.args[1:]...)...)...)
			if c.args[0] == "dev" || c.args[0] == "tables" {
				r = pinpipe(t, nil, append(c.args[:2:2], append([]string{"--log-format=json"}, c.args[2:]...)...)...)
			}
			if r.code != c.code {
				t.Errorf("%v: exit %d, want %d; stderr:\n%s", c.args, r.code, c.code, r.stderr)
			}
			// The log that says msg (for a failed command, its failure at
			// ERROR); a runner may still log its shutdown after it, so it
			// need not be the last line.
			var said map[string]any
			for i, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				if line == "" && r.stderr == "" {
					continue
				}
				var log map[string]any
				if err := json.Unmarshal([]byte(line), &log); err != nil || log["level"] == nil || log["msg"] == nil {
					t.Errorf("%v: stderr line %d is not a JSON log: %q", c.args, i+1, line)
				}
				if c.msg != "" && strings.Contains(fmtLog(log), c.msg) && (c.code == 0 || log["level"] == "ERROR") {
					said = log
				}
			}
			if c.msg != "" && said == nil {
				t.Errorf("%v: no log says %q (at ERROR when it fails); stderr:\n%s", c.args, c.msg, r.stderr)
			}
		})
	}
}

func fmtLog(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
