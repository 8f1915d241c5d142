package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

func TestAPIKeysRotationAndAnswers(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys")
	// Key material made up by the test: never keys of any real system.
	if err := os.WriteFile(keysFile, []byte("# rotated monthly\nfile-key-one\n\n  file-key-two  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), APIKey: "env-key", APIKeys: []string{"flag-key"},
		APIKeysFile: keysFile, Logger: logger})
	body := []byte(`{"records":[{"value":1}]}`)

	for _, key := range []string{"env-key", "flag-key", "file-key-one", "file-key-two"} {
		if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", key); r.status != 200 {
			t.Fatalf("key %s: %d %s", key, r.status, r.body)
		}
	}
	// The REST Proxy's routes: 401 without a key, 403 with a wrong one,
	// in its envelope.
	r := do(t, "POST", g.url+"/topics/t", ctJSON, body)
	expectError(t, r, 401, 401, "Unauthorized")
	expectEnvelope(t, r)
	for _, key := range []string{"wrong-key-1", "file-key-on", "file-key-tw", "# rotated monthly", "ENV-KEY"} {
		r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", key)
		expectError(t, r, 403, 403, "Forbidden")
	}
	// Two keys in two headers: refused, whatever they are.
	req, _ := http.NewRequest("POST", g.url+"/topics/t", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctJSON)
	req.Header.Add("x-api-key", "env-key")
	req.Header.Add("x-api-key", "wrong-key-2")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Fatalf("two keys: %d", res.StatusCode)
	}
	// API Gateway's routes: 403 {"message":"Forbidden"}, with or without a
	// key, as a usage plan answers.
	for _, hdr := range [][]string{nil, {"x-api-key", "wrong-key-3"}} {
		r := do(t, "PUT", g.url+"/streams/s/record", "application/json", []byte(`{"Data":1,"PartitionKey":"k"}`), hdr...)
		if r.status != 403 || strings.TrimSpace(string(r.body)) != `{"message":"Forbidden"}` {
			t.Fatalf("Kinesis route, key %v: %d %s", hdr, r.status, r.body)
		}
	}

	// Rotation through the file: the new key works after a reload, the
	// dropped one stops, the Config's stay.
	if err := os.WriteFile(keysFile, []byte("file-key-three\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "file-key-three"); r.status != 200 {
		t.Fatalf("new key: %d %s", r.status, r.body)
	}
	expectError(t, do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "file-key-one"), 403, 403, "Forbidden")
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "env-key"); r.status != 200 {
		t.Fatalf("the Config's key after a reload: %d %s", r.status, r.body)
	}
	// A file gone bad keeps the keys in force.
	if err := os.WriteFile(keysFile, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(); err == nil {
		t.Fatal("Reload accepted a file without keys")
	}
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "file-key-three"); r.status != 200 {
		t.Fatalf("keys after a failed reload: %d %s", r.status, r.body)
	}

	// No key, right or wrong, is ever logged.
	out := logs.String()
	if !strings.Contains(out, "gateway request") {
		t.Fatalf("no request logged: %s", out)
	}
	for _, key := range []string{"env-key", "flag-key", "file-key", "wrong-key", "ENV-KEY"} {
		if strings.Contains(out, key) {
			t.Fatalf("the log holds the key %q:\n%s", key, out)
		}
	}
}

func TestInFlightBound(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxInFlight: 2, Kinesis: testKinesisNowhere()})
	expectProduceOK(t, g, "t")

	// Slow clients still sending their bodies do not count: five of them
	// leave room for others.
	var pws []*io.PipeWriter
	slow := make(chan int, 5)
	for range 5 {
		pr, pw := io.Pipe()
		pws = append(pws, pw)
		req, _ := http.NewRequest("POST", g.url+"/topics/t", pr)
		req.Header.Set("Content-Type", ctJSON)
		go func() {
			res, err := client.Do(req)
			if err != nil {
				slow <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			slow <- res.StatusCode
		}()
		if _, err := pw.Write([]byte(`{"records":[{"value":`)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(g.srv.metrics.inFlight) < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the slow requests never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	expectProduceOK(t, g, "t")

	// Two requests in flight, waiting for a broker that holds their
	// records.
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		<-release
		return nil, nil, false
	})
	done := make(chan int, 2)
	for range 2 {
		go func() {
			res, err := client.Post(g.url+"/topics/t", ctJSON, strings.NewReader(`{"records":[{"value":"held"}]}`))
			if err != nil {
				done <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			done <- res.StatusCode
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); g.srv.serving.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the requests never reached Kafka")
		}
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`))
	expectError(t, r, 429, 429, "limit of 2 at once")
	expectEnvelope(t, r)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the 429 took %v", d)
	}
	expectError(t, do(t, "GET", g.url+"/topics", "", nil), 429, 429, "limit of 2 at once")
	r = do(t, "PUT", g.url+"/streams/s/record", "application/json", []byte(`{"Data":1,"PartitionKey":"k"}`))
	expectKinesisError(t, r, 429, "ThrottlingException", "limit of 2 at once")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Health and metrics stay reachable.
	if r := do(t, "GET", g.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz under overload: %d", r.status)
	}
	if v := scrape(t, g)[`pinpipe_gateway_errors_total{route="POST /topics/{topic}",kind="throttled"}`]; v != 1 {
		t.Fatalf("throttled requests counted: %v", v)
	}

	close(release)
	for range 2 {
		if st := <-done; st != 200 {
			t.Fatalf("a request in flight: %d", st)
		}
	}
	for _, pw := range pws { // one at a time: five at once would be over the bound
		pw.Write([]byte(`1}]}`))
		pw.Close()
		if st := <-slow; st != 200 {
			t.Fatalf("a slow request: %d", st)
		}
	}
	expectProduceOK(t, g, "t")
	if n := g.srv.serving.Load(); n != 0 {
		t.Fatalf("%d requests still counted in flight", n)
	}
}

func TestBodyBytesBound(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxBodyBytes: 1000, MaxBodyBytesInFlight: 1500})
	// A slow client announcing 1,000 bytes holds them.
	addr := strings.TrimPrefix(g.url, "http://")
	cn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	cn.Write([]byte("POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctJSON + "\r\nContent-Length: 1000\r\n\r\n{\"records\":"))
	for deadline := time.Now().Add(5 * time.Second); g.srv.bodyBytes.Load() < 1000; {
		if time.Now().After(deadline) {
			t.Fatal("the slow request never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	body := `{"records":[{"value":"` + strings.Repeat("x", 700) + `"}]}`
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(body))
	expectError(t, r, 429, 429, "its limit of 1500 bytes of request bodies")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Chunked, without a length: refused as it grows past the limit.
	r = doReader(t, "POST", g.url+"/topics/t", ctJSON, struct{ io.Reader }{strings.NewReader(body + strings.Repeat(" ", 5000))})
	if r.status != 429 && r.status != 413 {
		t.Fatalf("a chunked body past the limits: %d %s", r.status, r.body)
	}
	expectProduceOK(t, g, "t") // a small one fits
	cn.Close()
	for deadline := time.Now().Add(5 * time.Second); g.srv.bodyBytes.Load() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d body bytes still counted", g.srv.bodyBytes.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(body)); r.status != 200 {
		t.Fatalf("after the slow client left: %d %s", r.status, r.body)
	}
}

// testKinesisNowhere is a Kinesis client for a gateway whose test never
// reaches Kinesis.
func testKinesisNowhere() *kinesis.Client {
	return testenv.KinesisClient("http://127.0.0.1:1")
}

func TestRateLimitPerKey(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), APIKeys: []string{"key-a", "key-b"}, RateLimit: 0.5, RateBurst: 2,
		Kinesis: testKinesisNowhere()})
	body := []byte(`{"records":[{"value":1}]}`)
	for range 2 {
		if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-a"); r.status != 200 {
			t.Fatalf("within the burst: %d %s", r.status, r.body)
		}
	}
	r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-a")
	expectError(t, r, 429, 429, "Request rate limit exceeded")
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (one request every 2 s)", ra)
	}
	r = do(t, "PUT", g.url+"/streams/s/record", "application/json", []byte(`{"Data":1,"PartitionKey":"k"}`), "x-api-key", "key-a")
	expectKinesisError(t, r, 429, "ThrottlingException", "Request rate limit exceeded")
	// Another key has its own limit.
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-b"); r.status != 200 {
		t.Fatalf("another key: %d %s", r.status, r.body)
	}
	// Rotating keys keeps the limit of a key that stays.
	g.srv.SetAPIKeys([]string{"key-a", "key-c"})
	expectError(t, do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-a"), 429, 429, "Request rate limit exceeded")
	expectError(t, do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-b"), 403, 403, "Forbidden")
	if r := do(t, "POST", g.url+"/topics/t", ctJSON, body, "x-api-key", "key-c"); r.status != 200 {
		t.Fatalf("a new key: %d %s", r.status, r.body)
	}

	// Without keys, the limit is the gateway's.
	g2 := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), RateLimit: 1000, RateBurst: 1})
	if r := do(t, "POST", g2.url+"/topics/t", ctJSON, body); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns the certificate.
func writeCert(t testing.TB, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "pinpipe gateway test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestTLSAndReloadOnSIGHUP(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert1 := writeCert(t, certFile, keyFile, 1)
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), TLSCertFile: certFile, TLSKeyFile: keyFile, ReloadOnSIGHUP: true})
	url := strings.Replace(g.url, "http://", "https://", 1)

	// A fresh client for each connection, trusting both certificates, that
	// reports the one the gateway showed.
	pool := x509.NewCertPool()
	pool.AddCert(cert1)
	served := func() (int, *x509.Certificate) {
		t.Helper()
		tc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer tc.CloseIdleConnections()
		req, _ := http.NewRequest("POST", url+"/topics/t", strings.NewReader(`{"records":[{"value":"over TLS"}]}`))
		req.Header.Set("Content-Type", ctJSON)
		res, err := tc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		return res.StatusCode, res.TLS.PeerCertificates[0]
	}
	if st, got := served(); st != 200 || got.SerialNumber.Int64() != 1 {
		t.Fatalf("over TLS: %d, certificate %v", st, got.SerialNumber)
	}
	// Plain HTTP on the TLS port gets no produce through.
	if res, err := client.Post(g.url+"/topics/t", ctJSON, strings.NewReader(`{"records":[{"value":1}]}`)); err == nil {
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("plain HTTP to the TLS port: %d", res.StatusCode)
		}
	}

	// A renewed certificate, and SIGHUP: new connections get it.
	cert2 := writeCert(t, certFile, keyFile, 2)
	pool.AddCert(cert2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, got := served()
		if st != 200 {
			t.Fatalf("after the reload: %d", st)
		}
		if got.SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not load the renewed certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken file on reload: the gateway keeps the certificate it has.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(); err == nil {
		t.Fatal("Reload accepted a broken key")
	}
	if st, got := served(); st != 200 || got.SerialNumber.Int64() != 2 {
		t.Fatalf("after a failed reload: %d, certificate %v", st, got.SerialNumber)
	}
	if _, err := New(Config{KafkaBrokers: c.ListenAddrs(), TLSCertFile: certFile}); err == nil {
		t.Fatal("New accepted a certificate without a key")
	}
}
