package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// What stands between the network and the handlers: the bound on requests
// in flight, the API keys, the per-key rate limits, the bound on
// connections and TLS.

// keySet is the accepted API keys (their SHA-256, never the keys) and
// their rate limiters.
type keySet struct {
	hashes   [][sha256.Size]byte
	limiters []*rate.Limiter // one a key; one for all without keys; nil without a rate limit
}

// ReadAPIKeysFile reads API keys from a file: one a line, blank lines and
// lines starting with # left out.
func ReadAPIKeysFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no API key", path)
	}
	return keys, nil
}

// SetAPIKeys replaces the accepted API keys (APIKey and APIKeys of the
// Config) while the gateway runs, keeping the rate limiter of every key
// that stays. No keys turns the check off.
func (s *Server) SetAPIKeys(keys []string) {
	old := s.keys.Load()
	byHash := map[[sha256.Size]byte]*rate.Limiter{}
	if old != nil {
		for i, h := range old.hashes {
			if old.limiters != nil {
				byHash[h] = old.limiters[i]
			}
		}
	}
	ks := &keySet{}
	seen := map[[sha256.Size]byte]bool{}
	for _, k := range keys {
		if k == "" {
			continue
		}
		h := sha256.Sum256([]byte(k))
		if seen[h] {
			continue
		}
		seen[h] = true
		ks.hashes = append(ks.hashes, h)
	}
	if s.cfg.RateLimit > 0 {
		n := max(len(ks.hashes), 1)
		ks.limiters = make([]*rate.Limiter, n)
		for i := range n {
			var lim *rate.Limiter
			if i < len(ks.hashes) {
				lim = byHash[ks.hashes[i]]
			} else if old != nil && len(old.hashes) == 0 && old.limiters != nil {
				lim = old.limiters[0]
			}
			if lim == nil {
				lim = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)
			}
			ks.limiters[i] = lim
		}
	}
	s.keys.Store(ks)
}

// authorize checks the x-api-key header against the keys in constant time
// (over their hashes, so neither the key nor its length leaks, and every
// key is compared). It returns the key's index (0 without keys) and the
// answer to give if the request may not pass: 0, 401 (no key sent) or 403.
func (s *Server) authorize(r *http.Request) (idx, status int) {
	ks := s.keys.Load()
	if len(ks.hashes) == 0 {
		return 0, 0
	}
	sent := r.Header.Values("x-api-key")
	if len(sent) == 0 || sent[0] == "" {
		return 0, http.StatusUnauthorized
	}
	got := sha256.Sum256([]byte(sent[0]))
	found, at := 0, 0
	for i := range ks.hashes {
		eq := subtle.ConstantTimeCompare(got[:], ks.hashes[i][:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found != 1 || len(sent) > 1 {
		return 0, http.StatusForbidden
	}
	return at, 0
}

// denyAuth answers a request without a valid key as its API does: API
// Gateway's 403 {"message":"Forbidden"} on the Kinesis routes (for a
// missing key too, as a usage plan answers), and on the REST Proxy's the
// envelope with 401 for a missing key and 403 for a wrong one.
func (s *Server) denyAuth(w *respWriter, status int) {
	w.errKind = errAuth
	if w.api == apiKinesis {
		w.errMsg = "Forbidden"
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Forbidden"})
		return
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `ApiKey header="x-api-key"`)
		s.fail(w, status, 401, "Unauthorized: send an API key in the x-api-key header", "")
		return
	}
	s.fail(w, status, 403, "Forbidden: the API key is not valid", "")
}

// allowRate takes one request from the key's rate limit; if there is none
// left it returns how long until there is.
func (s *Server) allowRate(idx int) (ok bool, wait time.Duration) {
	ks := s.keys.Load()
	if ks.limiters == nil {
		return true, 0
	}
	lim := ks.limiters[min(idx, len(ks.limiters)-1)]
	now := time.Now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	res := lim.ReserveN(now, 1)
	wait = res.DelayFrom(now)
	res.CancelAt(now)
	if !res.OK() {
		wait = time.Second
	}
	return false, wait
}

// throttle answers 429 with Retry-After, in the style of the path's API:
// the REST Proxy's rate limiter's {"error_code":429,..}, or Kinesis's
// ThrottlingException.
func (s *Server) throttle(w *respWriter, wait time.Duration, msg string) {
	w.errKind, w.sampled = errThrottled, true
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.fail(w, http.StatusTooManyRequests, 429, msg, "ThrottlingException")
}

// connLimitListener bounds the open connections. At the bound, a new
// connection takes the place of an idle keep-alive one (closed for it), so
// that idle connections never keep other clients out; if none is idle, the
// new one gets a 503 (plain HTTP) or is just closed (TLS), so that a flood
// of connections costs the gateway a file descriptor for a moment, not a
// goroutine and buffers for as long as the client likes.
type connLimitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	tls     bool
	refused atomic.Uint64

	mu   sync.Mutex
	idle map[net.Conn]struct{} // the connections net/http has idle
}

// connState is the http.Server's ConnState hook: it keeps the set of idle
// connections.
func (l *connLimitListener) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle {
		if l.idle == nil {
			l.idle = map[net.Conn]struct{}{}
		}
		l.idle[c] = struct{}{}
	} else {
		delete(l.idle, c)
	}
}

// closeIdle closes one idle connection, if there is one.
func (l *connLimitListener) closeIdle() bool {
	l.mu.Lock()
	var victim net.Conn
	for c := range l.idle {
		victim = c
		delete(l.idle, c)
		break
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	_ = victim.Close()
	return true
}

// take reserves a connection's place, closing an idle connection for it if
// need be.
func (l *connLimitListener) take() bool {
	for range 3 {
		if l.open.Add(1) <= l.max {
			return true
		}
		l.open.Add(-1)
		if !l.closeIdle() {
			return false
		}
	}
	return false
}

const connLimitAnswer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
	"Content-Length: 65\r\n\r\n{\"message\":\"Too many connections to the gateway: retry later\"}\n\n"

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.take() {
			l.refused.Add(1)
			go func() {
				if !l.tls {
					_ = c.SetDeadline(time.Now().Add(time.Second))
					_, _ = c.Write([]byte(connLimitAnswer))
				}
				_ = c.Close()
			}()
			continue
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

type limitedConn struct {
	net.Conn
	l    *connLimitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// certStore holds the TLS certificate, replaced by Reload.
type certStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func (c *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("gateway: TLS certificate: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

func (c *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
}

// Reload reads the TLS certificate and key again (and the API keys file,
// if the Config names one), so that renewed ones take effect without a
// restart; the connections open keep theirs. If a file cannot be read, the
// gateway keeps what it has and Reload says why. The command calls it on
// SIGHUP.
func (s *Server) Reload() error {
	var errs []error
	if s.certs != nil {
		if err := s.certs.load(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cfg.APIKeysFile != "" {
		keys, err := ReadAPIKeysFile(s.cfg.APIKeysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway: API keys: %w", err))
		} else {
			s.SetAPIKeys(append(keys, s.staticKeys()...))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		s.log.Error("gateway: reload failed, keeping the current certificate and keys", "error", err)
	} else {
		s.log.Info("gateway: reloaded", "tls", s.certs != nil, "api_keys_file", s.cfg.APIKeysFile != "")
	}
	return err
}

// staticKeys are the keys given in the Config itself.
func (s *Server) staticKeys() []string {
	return append([]string{s.cfg.APIKey}, s.cfg.APIKeys...)
}
