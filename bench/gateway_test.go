package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestGWLoad runs both load shapes briefly against a local server: every
// request is the REST Proxy's shape, answered, over kept-alive connections,
// and an open loop keeps its schedule.
func TestGWLoad(t *testing.T) {
	var bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Records []struct{ Value json.RawMessage }
		}
		if r.Method != http.MethodPost || r.URL.Path != "/topics/"+gwTopic || r.Header.Get("Content-Type") != gwRESTContentType ||
			json.Unmarshal(b, &body) != nil || len(body.Records) != 1 || !bytes.HasPrefix(body.Records[0].Value, []byte("{")) {
			bad.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	l := &gwLoad{url: srv.URL + "/topics/" + gwTopic, bodies: gwBodies(10)}
	pid := os.Getpid()
	l.cpu = func() gwCPU { return gwCPU{Load: gwProcCPU(pid)} }

	st := l.closedLoop(context.Background(), 4, 100*time.Millisecond, 300*time.Millisecond)
	if st.OK < 50 || st.Errors != 0 || st.Dials != 0 || st.P50 <= 0 || st.P99 < st.P50 || st.Max < st.P99 {
		t.Errorf("closed loop: %+v", st)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests were not single-record REST Proxy POSTs", bad.Load())
	}

	st = l.openLoop(context.Background(), 1000, 8, 100*time.Millisecond, 500*time.Millisecond)
	if st.OK != 500 || st.Errors != 0 || st.RPS() < 900 || st.RPS() > 1100 {
		t.Errorf("open loop at 1000/s for 0.5 s: %+v (%.0f req/s)", st, st.RPS())
	}
	if st.CPU.Load <= 0 {
		t.Errorf("no CPU time read for this process: %+v", st.CPU)
	}

	// A failing server counts errors, not latencies.
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer fail.Close()
	l = &gwLoad{url: fail.URL, bodies: gwBodies(1)}
	if st := l.closedLoop(context.Background(), 2, 0, 100*time.Millisecond); st.OK != 0 || st.Errors == 0 || st.FirstError != "status 503" {
		t.Errorf("against a failing server: %+v", st)
	}
}

// TestGWLoadFraming: the hand-written client reads every way an HTTP/1.1
// answer can be framed, counts what is not a 200, and dials again when the
// server closes the connection.
func TestGWLoadFraming(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch n.Add(1) % 5 {
		case 0: // chunked
			w.Write(bytes.Repeat([]byte("x"), 100))
			w.(http.Flusher).Flush()
			w.Write(bytes.Repeat([]byte("y"), 5000))
		case 1: // Content-Length, larger than the reader's buffer
			w.Header().Set("Content-Length", "9000")
			w.Write(bytes.Repeat([]byte("z"), 9000))
		case 2: // closes the connection after answering
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"ok":true}`))
		case 3:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error_code":50002}`))
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	l := &gwLoad{url: srv.URL + "/topics/" + gwTopic, bodies: gwBodies(3)}
	st := l.closedLoop(context.Background(), 1, 0, 300*time.Millisecond)
	total := st.OK + st.Errors
	if total < 20 || st.Errors < total/5-1 || st.Errors > total/5+1 || st.FirstError != "status 500" {
		t.Errorf("%d answers, %d errors (%q): want one in five to be an error", total, st.Errors, st.FirstError)
	}
	if st.Dials < total/5-1 {
		t.Errorf("%d dials for %d answers: the closed connections were not replaced", st.Dials, total)
	}
	if n.Load() != total {
		t.Errorf("the server answered %d requests, the load generator counted %d", n.Load(), total)
	}
}

// TestGWOverloadLoop: the overload load counts 200s, 429s (and whether they
// said when to retry), other statuses and timeouts apart, keeps to its
// schedule, and the idle connections and RSS are read.
func TestGWOverloadLoop(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet { // the idle connections' GET /healthz
			w.WriteHeader(http.StatusOK)
			return
		}
		switch n.Add(1) % 4 {
		case 0:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error_code":429,"message":"slow down"}`))
		case 1:
			w.WriteHeader(http.StatusTooManyRequests) // without a Retry-After
		case 2:
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"offsets":[]}`))
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	l := &gwLoad{url: srv.URL + "/topics/" + gwTopic, bodies: gwBodies(3)}
	st := l.overloadLoop(context.Background(), 1000, 8, 400*time.Millisecond, 2*time.Second)
	if st.Sent != 400 || st.OK+st.Throttled+st.Errors+st.Timeouts != st.Sent || st.Throttled < 150 || st.ThrottledNoRetry < 75 ||
		st.OK < 150 || st.Errors != 0 || st.Timeouts != 0 || st.P99 <= 0 || st.ThrottledP99 <= 0 ||
		st.DueP99 < st.P99 || st.SendLagP99 < 0 || st.SentRate < 500 || st.SentRate > 2000 {
		t.Errorf("overload loop: %+v", st)
	}
	if st.gwOverloadOK() {
		t.Error("429s without Retry-After passed the targets")
	}

	addr := srv.Listener.Addr().String()
	idle, err := gwIdleConns(addr, 20)
	if err != nil {
		t.Fatal(err)
	}
	if got := gwStillOpen(idle); got != 20 {
		t.Errorf("%d of 20 idle connections open", got)
	}
	idle[0].Close()
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if got := gwStillOpen(idle[1:]); got != 0 {
		t.Errorf("%d idle connections open after the server closed them", got)
	}
	if rss := gwProcMem(os.Getpid(), "VmRSS"); rss < 1<<20 {
		t.Errorf("VmRSS %d", rss)
	}
}

// TestGWServe starts each server of the benchmark from the gwserve binary
// and has it answer.
func TestGWServe(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gwserve")
	if out, err := exec.Command("go", "build", "-mod=mod", "-o", bin, "./cmd/gwserve").CombinedOutput(); err != nil {
		t.Fatalf("building gwserve: %v\n%s", err, out)
	}
	old := gwServerBin
	gwServerBin = bin
	t.Cleanup(func() { gwServerBin = old })
	kafka, err := startGWChild("kafka", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.stop()
	for _, mode := range []string{"bare", "gateway"} {
		var extra []string
		if mode == "gateway" {
			extra = []string{"-brokers=" + kafka.addr, "-max-in-flight=4"}
		}
		srv, err := startGWChild(mode, "127.0.0.1:0", extra...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Get("http://" + srv.addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: GET /healthz: %s", mode, res.Status)
		}
		if err := srv.stop(); err != nil {
			t.Errorf("stopping %s: %v", mode, err)
		}
	}
	if _, err := startGWChild("nonsense", "127.0.0.1:0"); err == nil {
		t.Error("an unknown server started")
	}
}

// TestGWFiguresCompared checks that a report's figures survive the JSON
// file beside it and that the next report compares with them.
func TestGWFiguresCompared(t *testing.T) {
	out := filepath.Join(t.TempDir(), "GATEWAY.md")
	if got := figuresPath(out); got != strings.TrimSuffix(out, ".md")+".json" {
		t.Fatalf("figuresPath(%q) = %q", out, got)
	}
	if _, ok := readFigures(figuresPath(out)); ok {
		t.Fatal("readFigures found figures in an empty directory")
	}
	before := gwFigures{Date: "2026-12-07T21:24:09Z", Commit: "7bcacf7", BarePeak: 44255, GatewayPeak: 24234, RateP99MS: 14.38,
		OverloadSent: 25927, OverloadP99MS: 105.86}
	b, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(figuresPath(out), b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, ok := readFigures(figuresPath(out))
	if !ok || got != before {
		t.Fatalf("readFigures = %+v, %v; want %+v", got, ok, before)
	}
	var md strings.Builder
	changes(func(f string, a ...any) { fmt.Fprintf(&md, f, a...) }, got, gwFigures{BarePeak: 40000, GatewayPeak: 24000, RateP99MS: 9.5,
		OverloadSent: 48000, OverloadP99MS: 40.25})
	for _, want := range []string{"7bcacf7", "| gateway / bare, peak | 0.55× | 0.60× |", "| fixed rate: gateway p99 | 14.38 ms | 9.50 ms |",
		"| overload: accepted p99 | 105.86 ms | 40.25 ms |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the comparison lacks %q:\n%s", want, md.String())
		}
	}
}
