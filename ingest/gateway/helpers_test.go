package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// testLogger keeps the gateway's logs out of the test output unless -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newCluster starts an in-process Kafka cluster (franz-go's kfake) on
// loopback that creates topics on first use, with 3 partitions each.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// gw is a gateway serving on a loopback port, as the command runs it.
type gw struct {
	url    string
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

// startGateway serves a gateway built from cfg on 127.0.0.1:0 until the
// test ends.
func startGateway(t testing.TB, cfg Config) *gw {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gw{url: "http://" + ln.Addr().String(), srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		// A connection the client dialled but never used counts as busy
		// for 5 s in a shutdown (net/http's rule): drop those first.
		client.CloseIdleConnections()
		cancel()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	return g
}

// resp is an answer read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(t testing.TB, method, url, contentType string, body []byte, hdr ...string) resp {
	t.Helper()
	return doReader(t, method, url, contentType, bytes.NewReader(body), hdr...)
}

// doReader is do with a body from a reader: one that is not a
// *bytes.Reader, *bytes.Buffer or *strings.Reader goes without a
// Content-Length (chunked).
func doReader(t testing.TB, method, url, contentType string, body io.Reader, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// expectError checks a REST Proxy error envelope.
func expectError(t testing.TB, r resp, status, code int, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.json(t)
	if got, _ := m["error_code"].(float64); int(got) != code {
		t.Fatalf("error_code %v, want %d: %s", m["error_code"], code, r.body)
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, msgPart) {
		t.Fatalf("message %q does not say %q", msg, msgPart)
	}
}

// expectKinesisError checks a Kinesis-style error: {"__type","message"}.
func expectKinesisError(t testing.TB, r resp, status int, typ, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.json(t)
	if m["__type"] != typ {
		t.Fatalf("__type %v, want %s: %s", m["__type"], typ, r.body)
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, msgPart) {
		t.Fatalf("message %q does not say %q", msg, msgPart)
	}
}

// consume reads n records from a topic from the start, or fails the test.
func consume(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	return testenv.ConsumeKafka(t, brokers, topic, n, 0, 15*time.Second)
}
