package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/ingest/emulator"
)

// TestEmulateSeed: each run picks a random seed, prints it, and --seed with
// it sends the same posts again.
func TestEmulateSeed(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost { // not the probe before the run
			mu.Lock()
			bodies = append(bodies, r.URL.Path+" "+string(b))
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/vnd.kafka.v2+json")
		io.WriteString(w, `{"offsets":[{"partition":0,"offset":1}]}`)
	}))
	defer gw.Close()
	seedLine := regexp.MustCompile(`pinpipe emulate: seed (\d+) \(--seed=(\d+) repeats`)
	run := func(args ...string) (seed string, sent []string) {
		t.Helper()
		mu.Lock()
		bodies = nil
		mu.Unlock()
		r := pinpipe(t, nil, append([]string{"emulate", "--gateway=" + gw.URL, "--count=5"}, args...)...)
		if r.code != 0 {
			t.Fatalf("emulate %v: exit %d: %s", args, r.code, r.stderr)
		}
		m := seedLine.FindStringSubmatch(r.stderr)
		if m == nil || m[1] != m[2] {
			t.Fatalf("emulate %v does not print its seed: %s", args, r.stderr)
		}
		mu.Lock()
		defer mu.Unlock()
		sent = slices.Clone(bodies)
		slices.Sort(sent)
		return m[1], sent
	}
	seed1, sent1 := run()
	seed2, sent2 := run()
	if seed1 == seed2 || slices.Equal(sent1, sent2) {
		t.Errorf("two runs used seed %s and %s and sent the same posts: %v", seed1, seed2, slices.Equal(sent1, sent2))
	}
	seed3, sent3 := run("--seed=" + seed1)
	if seed3 != seed1 || !slices.Equal(sent1, sent3) || len(sent3) != 15 {
		t.Errorf("--seed=%s printed seed %s and sent %d records, the same as the first run: %v", seed1, seed3, len(sent3), slices.Equal(sent1, sent3))
	}
}

// TestEmulateGatewayDown: with nothing at the gateway's address, emulate
// fails at once with exit 1 and a line naming the gateway.
func TestEmulateGatewayDown(t *testing.T) {
	addr := closedAddr(t)
	began := time.Now()
	r := pinpipe(t, nil, "emulate", "--gateway=http://"+addr, "--count=10")
	if r.code != 1 || time.Since(began) > 5*time.Second {
		t.Errorf("exit %d after %v, want 1 at once; stderr %s", r.code, time.Since(began), r.stderr)
	}
	last := strings.TrimSpace(r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
	if !strings.Contains(last, "the gateway http://"+addr+" is unreachable") || !strings.Contains(last, "connection refused") {
		t.Errorf("last line %q, want it to name the unreachable gateway", last)
	}
}

// TestEmulateGatewayHung: a gateway that accepts connections and never
// answers fails the run within the probe's timeout, exit 1 and a line
// saying so, not at --drain-timeout after every record's retries.
func TestEmulateGatewayHung(t *testing.T) {
	addr := silentAddr(t)
	began := time.Now()
	r := pinpipe(t, nil, "emulate", "--gateway=http://"+addr, "--count=10")
	took := time.Since(began)
	if r.code != 1 || took > emulator.DefaultProbeTimeout+5*time.Second {
		t.Errorf("exit %d after %v, want 1 within the probe's %v; stderr %s", r.code, took, emulator.DefaultProbeTimeout, r.stderr)
	}
	last := strings.TrimSpace(r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
	if !strings.Contains(last, "the gateway http://"+addr+" accepts connections but did not answer") {
		t.Errorf("last line %q, want it to name the gateway that does not answer", last)
	}
}

// silentAddr is a loopback address that accepts connections and never
// answers on them, as a hung server does.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
