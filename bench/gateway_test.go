package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
