package gateway

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// benchPost sends single-record REST Proxy POSTs over keep-alive
// connections from parallel clients, the load the benchmark uses.
func benchPost(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	body := []byte(`{"records":[{"value":{"index":7528,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","title":"t","category":"mens-fashion"}}]}`)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", ctJSON)
			res, err := cl.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProduceOneRecord: the gateway over an in-process kfake.
func BenchmarkProduceOneRecord(b *testing.B) {
	c := newCluster(b, kfake.SeedTopics(3, "bench"))
	g := startGateway(b, Config{KafkaBrokers: c.ListenAddrs()})
	benchPost(b, g.url+"/topics/bench")
}

// BenchmarkBareHandler is the baseline: net/http answering 200 at once.
func BenchmarkBareHandler(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	benchPost(b, "http://"+ln.Addr().String()+"/topics/bench")
}
