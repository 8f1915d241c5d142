package gateway

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestLoneRequestDoesNotLinger: with a long linger, a request alone in the
// gateway is sent at once, and requests keep being answered one after the
// other (the pooled per-request state is reused safely). The first request
// to a topic does linger: its records wait for the topic's metadata, and
// the linger starts after the gateway told the producer to send.
func TestLoneRequestDoesNotLinger(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), KafkaLinger: 3 * time.Second})
	for i := range 21 {
		start := time.Now()
		r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":{"i":1}},{"key":"k","value":2}]}`))
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if d := time.Since(start); i > 0 && d > 2*time.Second {
			t.Fatalf("request %d took %v: it waited for the 3 s linger", i, d)
		}
		a := parseProduceAnswer(t, r)
		if len(a.Offsets) != 2 || a.Offsets[0].Offset == nil || a.Offsets[1].Offset == nil {
			t.Fatalf("request %d: %s", i, r.body)
		}
	}
	if n := g.srv.producing.Load(); n != 0 {
		t.Fatalf("%d requests still counted as producing", n)
	}
	consume(t, c.ListenAddrs(), "t", 42)
}
