package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "nothing to serve") {
		t.Fatalf("New without backends: %v", err)
	}
	if _, err := New(Config{KafkaBrokers: []string{"127.0.0.1:1"}, TopicPrefix: "a b"}); err == nil {
		t.Fatal("New accepted an invalid topic prefix")
	}
	s, err := New(Config{KafkaBrokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.Listen != "127.0.0.1:8082" || s.cfg.MaxBodyBytes != 10<<20 || s.cfg.MaxKafkaRecordBytes != 1_000_000 ||
		s.cfg.BackendTimeout != 30*time.Second || s.cfg.WriteTimeout <= s.cfg.BackendTimeout || s.cfg.DefaultShardCount != 5 {
		t.Fatalf("defaults: %+v", s.cfg)
	}
}

func TestHealthzAPIKeyAndBackendsOff(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), APIKey: "s3cret-key"})
	body := []byte(`{"records":[{"value":1}]}`)

	r := do(t, "GET", g.url+"/healthz", "", nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Fatalf("healthz without a key: %d %s", r.status, r.body)
	}
	expectError(t, do(t, "POST", g.url+"/topics/t", ctJSON, body), 401, 401, "Unauthorized")
	for _, key := range []string{"wrong", "s3cret-ke", "s3cret-key2", "S3CRET-KEY"} {
		r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", key)
		expectError(t, r, 403, 403, "Forbidden")
	}
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "X-Api-Key", "s3cret-key"); r.status != 200 {
		t.Fatalf("right key: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url+"/metrics", "", nil); r.status != 200 {
		t.Fatalf("metrics without a key: %d", r.status)
	}
	if end := endOffset(t, g, "t", 0); end != 1 {
		t.Fatalf("%d records written, want only the authorized one", end)
	}

	// Kinesis not configured: the routes say so.
	r = do(t, "GET", g.url+"/streams", "", nil, "x-api-key", "s3cret-key")
	expectKinesisError(t, r, 404, "ResourceNotFoundException", "Kinesis is not configured")
	// Kafka not configured: likewise.
	gk := startGateway(t, Config{Kinesis: testenv.KinesisClient("http://127.0.0.1:1")})
	expectError(t, do(t, "GET", gk.url+"/topics", "", nil), 404, 404, "Kafka is not configured")
}

var metricLine = regexp.MustCompile(`^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$`)

// scrape reads /metrics, checks every line's syntax and returns the
// samples by name and labels.
func scrape(t testing.TB, g *gw) map[string]float64 {
	t.Helper()
	r := do(t, "GET", g.url+"/metrics", "", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a Prometheus sample line: %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("value in %q: %v", line, err)
		}
		out[m[1]+routeFirst(m[2])] = v
	}
	return out
}

// routeFirst writes a sample's labels with the route first, then the
// others as they came (client_golang writes them sorted by name), as the
// tests spell the samples.
func routeFirst(labels string) string {
	if labels == "" {
		return ""
	}
	var route string
	var rest []string
	for _, l := range labelPair.FindAllString(labels, -1) {
		if strings.HasPrefix(l, "route=") {
			route = l
		} else {
			rest = append(rest, l)
		}
	}
	if route != "" {
		rest = append([]string{route}, rest...)
	}
	return "{" + strings.Join(rest, ",") + "}"
}

var labelPair = regexp.MustCompile(`[a-z_]+="(?:[^"\\\n]|\\.)*"`)

func TestMetrics(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	reg := prometheus.NewRegistry()
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), Registry: reg})
	for range 3 {
		if r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1},{"value":2}]}`)); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":`))
	do(t, "GET", g.url+"/topics/absent", "", nil)
	do(t, "GET", g.url+"/nowhere", "", nil)

	m := scrape(t, g)
	const produce = `route="POST /topics/{topic}"`
	want := map[string]float64{
		`pinpipe_gateway_requests_total{` + produce + `,code="200"}`:                    3,
		`pinpipe_gateway_requests_total{` + produce + `,code="400"}`:                    1,
		`pinpipe_gateway_requests_total{route="GET /topics/{topic}",code="404"}`:        1,
		`pinpipe_gateway_requests_total{route="other",code="404"}`:                      1,
		`pinpipe_gateway_records_total{` + produce + `,result="ok"}`:                    6,
		`pinpipe_gateway_records_total{` + produce + `,result="failed"}`:                0,
		`pinpipe_gateway_errors_total{` + produce + `,kind="request"}`:                  1,
		`pinpipe_gateway_errors_total{route="GET /topics/{topic}",kind="not_found"}`:    1,
		`pinpipe_gateway_request_duration_seconds_count{` + produce + `}`:               4,
		`pinpipe_gateway_request_duration_seconds_bucket{` + produce + `,le="+Inf"}`:    4,
		`pinpipe_gateway_in_flight_requests`:                                            1, // the scrape itself
		`pinpipe_gateway_records_total{route="PUT /streams/{name}/record",result="ok"}`: 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// Buckets are cumulative.
	prev := -1.0
	for _, le := range latencyBuckets {
		v, ok := m[`pinpipe_gateway_request_duration_seconds_bucket{`+produce+`,le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"}`]
		if !ok || v < prev {
			t.Fatalf("bucket le=%v: %v after %v", le, v, prev)
		}
		prev = v
	}
	if m[`pinpipe_gateway_request_duration_seconds_sum{`+produce+`}`] <= 0 {
		t.Fatal("no latency sum")
	}
	for _, name := range []string{"pinpipe_gateway_start_time_seconds", "pinpipe_gateway_kafka_available", "pinpipe_gateway_admitted_requests",
		"pinpipe_gateway_body_bytes_in_flight", "pinpipe_gateway_connections_open", "pinpipe_gateway_connections_refused_total"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	// The metrics follow Prometheus's naming conventions, and are on the
	// registry the gateway was given.
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// (200, 400 and two 404s above, and the scrape's 200.)
	if n, err := testutil.GatherAndCount(reg, "pinpipe_gateway_requests_total"); err != nil || n != 5 {
		t.Errorf("requests_total series on the registry: %d, %v", n, err)
	}
	// A second gateway on the same registry is refused, not mixed in.
	if _, err := New(Config{KafkaBrokers: c.ListenAddrs(), Registry: reg}); err == nil {
		t.Error("two gateways registered on one registry")
	}
}

// doerFunc is an HTTP client for the Kinesis SDK.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestRecoverFromPanic(t *testing.T) {
	// A Kinesis client whose transport panics: a stand-in for any bug
	// below a handler.
	kc := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  doerFunc(func(*http.Request) (*http.Response, error) { panic("boom") }),
	})
	g := startGateway(t, Config{Kinesis: kc})
	r := do(t, "PUT", g.url+"/streams/s/record", "application/json", []byte(`{"Data":{},"PartitionKey":"k"}`))
	expectKinesisError(t, r, 500, "InternalFailure", "internal error")
	if r := do(t, "GET", g.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("the gateway stopped serving after a panic: %d", r.status)
	}
	if v := scrape(t, g)[`pinpipe_gateway_errors_total{route="PUT /streams/{name}/record",kind="panic"}`]; v != 1 {
		t.Fatalf("panics counted: %v", v)
	}
}

func TestGracefulShutdown(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})

	// A request in flight: its body arrives in two parts, around the
	// shutdown.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", g.url+"/topics/t", pr)
	req.Header.Set("Content-Type", ctJSON)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	if _, err := pw.Write([]byte(`{"records":[{"value":`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(g.srv.metrics.inFlight) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}

	g.cancel()
	// New connections are refused once the shutdown has begun.
	addr := strings.TrimPrefix(g.url, "http://")
	for deadline := time.Now().Add(5 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-g.done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}

	if _, err := pw.Write([]byte(`"in flight"}]}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.err != nil || res.status != 200 {
		t.Fatalf("in-flight request: %d %s %v", res.status, res.body, res.err)
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		g.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
	recs := consume(t, c.ListenAddrs(), "t", 1)
	if string(recs[0].Value) != `"in flight"` {
		t.Fatalf("record %q", recs[0].Value)
	}
}

func TestConnectionTimeouts(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond})
	addr := strings.TrimPrefix(g.url, "http://")

	// Headers that never end: the connection is dropped.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("POST /topics/t HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow headers held the connection for %v", d)
	}
	if len(b) > 0 && !strings.Contains(string(b), " 408 ") && !strings.Contains(string(b), " 400 ") {
		t.Fatalf("answer to slow headers: %q", b)
	}

	// A body that stops coming: a 4xx that says so, not a hang.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := conn2.Write([]byte("POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctJSON + "\r\nContent-Length: 100\r\n\r\n{\"records\":")); err != nil {
		t.Fatal(err)
	}
	_ = conn2.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	rb, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(rb), "reading the request body") {
		t.Fatalf("stalled body: %d %s", res.StatusCode, rb)
	}
}

func TestServeBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{KafkaBrokers: []string{"127.0.0.1:1"}, Listen: ln.Addr().String(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("ListenAndServe on a taken port: %v", err)
	}
}
