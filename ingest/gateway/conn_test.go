package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
)

// dialIdle opens n keep-alive connections to addr, each after one served
// request (GET /healthz), and leaves them idle.
func dialIdle(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("connection %d: %d", len(conns), res.StatusCode)
		}
	}
	return conns
}

// closedByServer reports whether the server closed c (a read sees EOF or a
// reset) within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// memInUse is the heap and stacks the process uses, after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// TestIdleConnections: 2,000 idle keep-alive connections neither keep other
// clients out nor cost much memory, and the idle timeout closes them.
func TestIdleConnections(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), IdleTimeout: 3 * time.Second})
	addr := strings.TrimPrefix(g.url, "http://")
	expectProduceOK(t, g, "t")

	before := memInUse()
	conns := dialIdle(t, addr, 2000)
	grown := int64(memInUse()) - int64(before)
	t.Logf("2,000 idle connections: %d KiB more heap and stacks (both ends)", grown>>10)
	if grown > 64<<20 {
		t.Fatalf("2,000 idle connections cost %d MiB", grown>>20)
	}
	start := time.Now()
	expectProduceOK(t, g, "t")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a produce beside 2,000 idle connections took %v", d)
	}
	// The idle timeout closes them.
	time.Sleep(3 * time.Second)
	for i, cn := range []net.Conn{conns[0], conns[999], conns[1999]} {
		if !closedByServer(cn, 3*time.Second) {
			t.Fatalf("idle connection %d still open after the idle timeout", i)
		}
	}
}

// TestSlowloris: connections that send their headers a byte at a time are
// closed at the read-header timeout, and bodies that trickle at the read
// timeout, while other clients are served.
func TestSlowloris(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second})
	addr := strings.TrimPrefix(g.url, "http://")

	const n = 100
	type result struct {
		closedAfter time.Duration
		answer      string
	}
	results := make(chan result, 2*n)
	var wg sync.WaitGroup
	trickle := func(head, rest string) {
		defer wg.Done()
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			results <- result{answer: err.Error()}
			return
		}
		defer cn.Close()
		start := time.Now()
		if _, err := cn.Write([]byte(head)); err != nil {
			results <- result{answer: err.Error()}
			return
		}
		// One byte every 50 ms, for up to 10 s, while the gateway keeps
		// the connection open.
		for i := 0; time.Since(start) < 10*time.Second; i++ {
			if _, err := cn.Write([]byte{rest[i%len(rest)]}); err != nil {
				results <- result{closedAfter: time.Since(start)} // closed
				return
			}
			time.Sleep(50 * time.Millisecond)
			_ = cn.SetReadDeadline(time.Now().Add(time.Millisecond))
			b, err := io.ReadAll(cn)
			if len(b) > 0 || (err != nil && !isTimeout(err)) {
				results <- result{time.Since(start), string(b)}
				return
			}
		}
		results <- result{time.Since(start), "still open"}
	}
	for range n {
		wg.Add(2)
		go trickle("POST /topics/t HTTP/1.1\r\n", "X-Slow: aaaaaaaaaa\r\n")
		go trickle("POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: "+ctJSON+"\r\nContent-Length: 100000\r\n\r\n", `{"records":[`)
	}
	// Other clients are served meanwhile.
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	expectProduceOK(t, g, "t")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a produce beside %d slow clients took %v", 2*n, d)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.answer == "still open" || r.closedAfter > 4*time.Second {
			t.Fatalf("a slow client kept its connection for %v: %q", r.closedAfter, r.answer)
		}
		if r.answer != "" && !strings.Contains(r.answer, " 408 ") && !strings.Contains(r.answer, " 400 ") {
			t.Fatalf("answer to a slow client: %q", r.answer)
		}
	}
	expectProduceOK(t, g, "t")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnectionBound: at MaxConns, a new client takes an idle
// connection's place; with none idle, it gets a 503 at once.
func TestConnectionBound(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxConns: 20, ReadHeaderTimeout: 5 * time.Second})
	addr := strings.TrimPrefix(g.url, "http://")

	idle := dialIdle(t, addr, 20)
	// A new client: an idle connection is closed for it.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer fresh.CloseIdleConnections()
	res, err := fresh.Post(g.url+"/topics/t", ctJSON, strings.NewReader(`{"records":[{"value":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("a client at the connection bound, with idle connections: %d", res.StatusCode)
	}
	closed := 0
	for _, cn := range idle {
		if closedByServer(cn, 10*time.Millisecond) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d idle connections closed for one new client", closed)
	}
	for _, cn := range idle {
		cn.Close()
	}
	fresh.CloseIdleConnections()

	// 20 busy connections (headers begun, not finished): a new one gets a
	// 503.
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(g.srv.metrics.inFlight) > 0 || openConns(g) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", openConns(g))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var busy []net.Conn
	defer func() {
		for _, cn := range busy {
			cn.Close()
		}
	}()
	for range 20 {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		busy = append(busy, cn)
		cn.Write([]byte("POST /topics/t HTTP/1.1\r\n"))
	}
	for deadline := time.Now().Add(5 * time.Second); openConns(g) < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open", openConns(g))
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	_ = cn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(cn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503 ") || !strings.Contains(string(b), `{"message":"Too many connections`) {
		t.Fatalf("past the connection bound: %q", b)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the 503 took %v", d)
	}
	res2, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
	if err != nil || res2.StatusCode != 503 || res2.Header.Get("Retry-After") == "" {
		t.Fatalf("not a well-formed 503: %v %q", err, b)
	}
	// The busy ones gone, clients are served again.
	for _, cn := range busy {
		cn.Close()
	}
	busy = nil
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err := fresh.Post(g.url+"/topics/t", ctJSON, strings.NewReader(`{"records":[{"value":2}]}`))
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the busy connections closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := scrape(t, g); m["pinpipe_gateway_connections_refused_total"] < 1 { // (and the retries above, until the busy ones were gone)
		t.Errorf("connections refused: %v", m["pinpipe_gateway_connections_refused_total"])
	}
}

// openConns is the number of client connections the gateway has open.
func openConns(g *gw) int64 {
	return g.srv.conns.Load().open.Load()
}
