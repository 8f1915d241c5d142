// Package faultproxy is a small HTTP reverse proxy for outage tests: it
// forwards every request to a real server (gofakes3, kinesalite) and, while
// a fault is set, answers the requests the fault matches itself, the way
// the real service fails (S3's 503 SlowDown, Kinesis's
// ProvisionedThroughputExceededException) or by dropping the connection
// unanswered. The servers the tests run never fail like this by
// themselves; the clients in front of them must be seen to back off and
// lose nothing when they do. Only tests import it.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Fault says which requests fail and how.
type Fault struct {
	// Match picks the requests that fail; nil matches every request.
	Match func(*http.Request) bool
	// Drop closes the connection without an answer (a crashed or
	// unreachable server); otherwise the answer is Status, Header, Body.
	Drop   bool
	Status int
	Header http.Header
	Body   string
}

// Proxy forwards to its target unless a fault matches.
type Proxy struct {
	// URL is the proxy's address, http://127.0.0.1:PORT, to give clients
	// in place of the target's.
	URL string

	srv       *http.Server
	ln        net.Listener
	rp        *httputil.ReverseProxy
	mu        sync.Mutex
	fault     *Fault
	faulted   atomic.Int64
	forwarded atomic.Int64
}

// Start serves a proxy to target (http://host:port) on a loopback port.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, errors.New("faultproxy: the target must be an http://host:port URL, got " + target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// Signed requests (SigV4) sign the Host header: keep the
			// client's, which named the proxy.
			r.Out.Host = r.In.Host
		},
		// A target that fails is the test's finding, not the proxy's:
		// answer as a load balancer would, 502.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	return p, nil
}

// Set puts f in force (nil clears it); requests already forwarded finish.
func (p *Proxy) Set(f *Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Faulted is how many requests the faults answered or dropped.
func (p *Proxy) Faulted() int64 { return p.faulted.Load() }

// Forwarded is how many requests went to the target.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error { return p.srv.Close() }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.fault
	p.mu.Unlock()
	if f == nil || f.Match != nil && !f.Match(r) {
		p.forwarded.Add(1)
		p.rp.ServeHTTP(w, r)
		return
	}
	p.faulted.Add(1)
	// Read the body as the real server would before answering, so that
	// the client sees the answer, not a reset while still sending.
	io.Copy(io.Discard, r.Body)
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(f.Status)
	io.WriteString(w, f.Body)
}

// Methods matches requests with one of the methods.
func Methods(methods ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// KinesisOps matches Kinesis API calls by operation (GetRecords,
// PutRecord, PutRecords, ...), named by the X-Amz-Target header
// (Kinesis_20131202.<op>).
func KinesisOps(ops ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
		for _, o := range ops {
			if op == o {
				return true
			}
		}
		return false
	}
}

// S3SlowDown is S3's answer to a client it is throttling.
func S3SlowDown(match func(*http.Request) bool) *Fault {
	return s3Error(match, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
}

// S3InternalError is S3's answer when it fails internally.
func S3InternalError(match func(*http.Request) bool) *Fault {
	return s3Error(match, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
}

func s3Error(match func(*http.Request) bool, status int, code, msg string) *Fault {
	return &Fault{Match: match, Status: status, Header: http.Header{"Content-Type": {"application/xml"}},
		Body: `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + code + "</Code><Message>" + msg +
			"</Message><RequestId>faultproxy</RequestId></Error>"}
}

// KinesisThrottled is Kinesis's answer to a call past a shard's
// throughput (what kinesalite never answers).
func KinesisThrottled(match func(*http.Request) bool) *Fault {
	return &Fault{Match: match, Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard shardId-000000000000 in stream (faultproxy)."}`}
}
