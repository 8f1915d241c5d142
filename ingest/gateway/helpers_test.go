package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopKinesalite()
	os.Exit(code)
}

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
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s before the timeout", len(out), n, topic)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) > n {
		t.Fatalf("read %d records from %s, want %d", len(out), topic, n)
	}
	return out
}

// kinesalite is one emulator for the package's tests, started on first use.
var kl struct {
	once     sync.Once
	cmd      *exec.Cmd
	endpoint string
	err      error
	skip     string
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// kinesaliteEndpoint returns the URL of a kinesalite bound to loopback. It
// finds kinesalite in $PINPIPE_KINESALITE_DIR, else in .cache/kinesalite (where
// scripts/kinesalite.sh installs it). When it is missing the test is
// skipped, except under CI=true, where it is installed with that script
// and a failure fails the test.
func kinesaliteEndpoint(t testing.TB) string {
	t.Helper()
	kl.once.Do(startKinesalite)
	if kl.skip != "" {
		t.Skip(kl.skip)
	}
	if kl.err != nil {
		t.Fatal(kl.err)
	}
	return kl.endpoint
}

func startKinesalite() {
	ci := os.Getenv("CI") == "true"
	dir := os.Getenv("PINPIPE_KINESALITE_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), ".cache", "kinesalite")
	}
	mod := filepath.Join(dir, "node_modules", "kinesalite")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		if !ci {
			kl.skip = fmt.Sprintf("kinesalite is not installed in %s: run scripts/kinesalite.sh install (needs Node.js and npm) or set PINPIPE_KINESALITE_DIR; "+
				"under CI=true the tests install it and fail without it", dir)
			return
		}
		cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "kinesalite.sh"), "install")
		cmd.Env = append(os.Environ(), "PINPIPE_KINESALITE_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			kl.err = fmt.Errorf("installing kinesalite: %v\n%s", err, out)
			return
		}
	}
	script := `const s = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`
	cmd := exec.Command("node", "-e", script, mod)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		kl.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		kl.err = fmt.Errorf("starting kinesalite with node: %w", err)
		return
	}
	kl.cmd = cmd
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case port, ok := <-line:
		if !ok || port == "" {
			kl.err = fmt.Errorf("kinesalite exited before listening")
			return
		}
		kl.endpoint = "http://127.0.0.1:" + strings.TrimSpace(port)
	case <-time.After(20 * time.Second):
		kl.err = fmt.Errorf("kinesalite did not start within 20 s")
	}
}

func stopKinesalite() {
	if kl.cmd != nil && kl.cmd.Process != nil {
		_ = kl.cmd.Process.Kill()
		_ = kl.cmd.Wait()
	}
}

// kinesisClient talks to kinesalite with static credentials.
func kinesisClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "tests"}, nil
		}),
	})
}
