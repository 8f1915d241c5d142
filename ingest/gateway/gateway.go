package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// DefaultListen is where the gateway listens unless told otherwise: loopback,
// so that nothing is exposed by accident.
const DefaultListen = "127.0.0.1:8082"

// DefaultKafkaLinger is the producer's default linger: see
// Config.KafkaLinger.
const DefaultKafkaLinger = 500 * time.Microsecond

// Config configures a Server. The zero value of every limit and timeout
// means its default.
type Config struct {
	// Listen is the address ListenAndServe binds (default DefaultListen).
	Listen string
	// KafkaBrokers are the seed brokers; none turns the REST Proxy routes off.
	KafkaBrokers []string
	// KafkaOptions are extra franz-go options (TLS, SASL, ...), applied last.
	KafkaOptions []kgo.Opt
	// KafkaLinger is how long the producer lets a partition's batch wait for
	// more records before sending it (default DefaultKafkaLinger; negative:
	// no wait). A request's records wait that long at most (not at all when
	// no other request is producing), and under load the records of
	// concurrent requests share produce requests instead of each sending its
	// own: less CPU for the gateway and the brokers.
	KafkaLinger time.Duration
	// AutoCreateTopics lets the brokers create a topic on its first record
	// (when they allow it: auto.create.topics.enable), as the Java producer
	// behind a stock REST Proxy does. Off by default: a produce request to a
	// topic that does not exist is answered 404 with error_code 40401, so
	// that a mistyped topic is an error rather than a new topic.
	AutoCreateTopics bool
	// Kinesis serves the Kinesis routes; nil turns them off.
	Kinesis *kinesis.Client
	// NoStreamAdmin turns off POST and DELETE /streams/{name}, so that
	// clients of an exposed gateway can put records but not create or
	// delete streams (403 AccessDeniedException).
	NoStreamAdmin bool
	// TopicPrefix, when set, limits the gateway to the Kafka topics
	// "<prefix>.*" and the Kinesis streams "streaming-<prefix>-*", so that a
	// typo in a client cannot create stray topics or streams.
	TopicPrefix string
	// APIKey, when set, must come in the x-api-key header of every request
	// but /healthz and /metrics, as with an API Gateway usage plan. Read it
	// from the environment or a secret store, never from code.
	APIKey string
	// APIKeys are more keys accepted beside APIKey, so that keys can be
	// rotated: add the new one, move the clients, drop the old one. Keys are
	// compared in constant time and never logged. SetAPIKeys replaces them
	// while the gateway runs.
	APIKeys []string
	// APIKeysFile, when set, names a file of more keys, one a line (blank
	// lines and # comments left out), read at the start and by Reload.
	APIKeysFile string
	// RateLimit, when positive, bounds each API key's requests a second (the
	// whole gateway's, without keys), with bursts of RateBurst (default:
	// RateLimit rounded up), as an API Gateway usage plan's throttle does.
	// Past it a request gets a 429 with Retry-After.
	RateLimit float64
	RateBurst int
	// MaxInFlight bounds the requests being served at once (default 512;
	// /healthz and /metrics do not count). Past it a request gets a 429
	// with Retry-After at once, instead of queueing until its client times
	// out or the gateway's memory runs out. A request counts once its body
	// is read, so that slow clients still sending theirs (bounded by
	// ReadTimeout and MaxBodyBytesInFlight) cannot keep others out.
	MaxInFlight int
	// MaxBodyBytesInFlight bounds the bytes of the request bodies being
	// read and served at once (default 128 MiB). Past it a request gets a
	// 429 with Retry-After.
	MaxBodyBytesInFlight int64
	// MaxConns bounds the open client connections (default 10,000). Past
	// it a new connection gets a 503 and is closed; idle ones are closed
	// after IdleTimeout.
	MaxConns int
	// TLSCertFile and TLSKeyFile, when set, make the gateway serve HTTPS
	// with that certificate and key (PEM). Reload reads them again (the
	// command does on SIGHUP), so a renewed certificate needs no restart.
	TLSCertFile, TLSKeyFile string
	// ReloadOnSIGHUP makes Serve call Reload when the process gets SIGHUP.
	ReloadOnSIGHUP bool

	// MaxBodyBytes bounds a request body (default 10 MiB, API Gateway's limit).
	MaxBodyBytes int64
	// MaxKafkaRecordBytes bounds one Kafka record's key plus value (default
	// 1,000,000: with the batch's overhead, under the brokers' default
	// message.max.bytes of 1,048,588).
	MaxKafkaRecordBytes int
	// MaxRecordsPerRequest bounds the records of one produce request
	// (default 10,000; Kinesis's PutRecords has its own 500).
	MaxRecordsPerRequest int
	// MaxJSONDepth bounds the nesting of a record's JSON (default
	// DefaultMaxJSONDepth) and MaxNumberChars the length of a number in it
	// (default DefaultMaxNumberChars).
	MaxJSONDepth, MaxNumberChars int
	// KafkaUnavailableAfter: once no broker has answered for this long
	// (default 1 s) while records wait, the gateway stops waiting and
	// answers 503, and until a broker answers again it answers new produce
	// requests 503 at once, instead of letting them wait out
	// BackendTimeout.
	KafkaUnavailableAfter time.Duration
	// DefaultShardCount is the shard count of a stream created without one
	// (default 5, as in the AWS tutorial's mapping template).
	DefaultShardCount int32

	// BackendTimeout bounds how long a request waits for Kafka or Kinesis
	// (default 30 s).
	BackendTimeout time.Duration
	// Connection timeouts (defaults 10 s, 60 s, BackendTimeout+10 s, 120 s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds how long a shutdown waits for in-flight
	// requests (default 30 s).
	ShutdownTimeout time.Duration

	// Logger receives the request and error logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxKafkaRecordBytes <= 0 {
		c.MaxKafkaRecordBytes = 1_000_000
	}
	if c.KafkaLinger == 0 {
		c.KafkaLinger = DefaultKafkaLinger
	}
	if c.MaxRecordsPerRequest <= 0 {
		c.MaxRecordsPerRequest = 10_000
	}
	if c.MaxJSONDepth <= 0 {
		c.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if c.MaxNumberChars <= 0 {
		c.MaxNumberChars = DefaultMaxNumberChars
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 512
	}
	if c.MaxBodyBytesInFlight <= 0 {
		c.MaxBodyBytesInFlight = 128 << 20
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10_000
	}
	if c.RateLimit > 0 && c.RateBurst <= 0 {
		c.RateBurst = int(math.Ceil(c.RateLimit))
	}
	def(&c.KafkaUnavailableAfter, time.Second)
	if c.DefaultShardCount <= 0 {
		c.DefaultShardCount = 5
	}
	def(&c.BackendTimeout, 30*time.Second)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 60*time.Second)
	def(&c.WriteTimeout, c.BackendTimeout+10*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.ShutdownTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the gateway. It is an http.Handler, so that tests and an
// in-process demo can mount it on their own listener.
type Server struct {
	cfg     Config
	log     *slog.Logger
	kafka   *kgo.Client
	kinesis *kinesis.Client
	metrics *metrics
	health  *kafkaHealth
	keys    atomic.Pointer[keySet]
	certs   *certStore // nil: plain HTTP
	conns   atomic.Pointer[connLimitListener]
	// serving counts the requests being served (bodies read), but
	// /healthz and /metrics; bodyBytes the bytes of the bodies being read
	// or served.
	serving, bodyBytes atomic.Int64
	bufs               sync.Pool // request bodies' buffers (*[]byte)
	calls              sync.Pool // produce requests' state (*produceCall)
	// deadlines are the produce requests' deadline contexts.
	deadlines deadlines
	// producing counts the produce requests whose records are on their way.
	producing atomic.Int64
	// kafkaProgress is when a record last got its result, or when the
	// first of the requests producing now started (unix nanoseconds): see
	// watchKafka.
	kafkaProgress atomic.Int64
	stopWatch     chan struct{}
	// sampleLog and sampledLogs thin the logs of sampled answers.
	sampleLog   rate.Sometimes
	sampledLogs atomic.Int64
	closeOnce   sync.Once
}

// New builds a Server from cfg. It does not contact Kafka or Kinesis: the
// first request does, so that the gateway can start before its backends.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if len(cfg.KafkaBrokers) == 0 && cfg.Kinesis == nil {
		return nil, errors.New("gateway: neither Kafka brokers nor a Kinesis client configured: nothing to serve")
	}
	if cfg.TopicPrefix != "" && !validTopic(cfg.TopicPrefix) {
		return nil, fmt.Errorf("gateway: topic prefix %q is not a valid Kafka topic name", cfg.TopicPrefix)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, kinesis: cfg.Kinesis, metrics: newMetrics(), health: newKafkaHealth(cfg.KafkaUnavailableAfter),
		sampleLog: rate.Sometimes{First: 1, Interval: time.Second}}
	s.deadlines.timeout = cfg.BackendTimeout
	keys := s.staticKeys()
	if cfg.APIKeysFile != "" {
		fileKeys, err := ReadAPIKeysFile(cfg.APIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: API keys: %w", err)
		}
		keys = append(keys, fileKeys...)
	}
	s.SetAPIKeys(keys)
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("gateway: TLS needs both a certificate and a key file")
	}
	if cfg.TLSCertFile != "" {
		s.certs = &certStore{certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile}
		if err := s.certs.load(); err != nil {
			return nil, err
		}
	}
	if len(cfg.KafkaBrokers) > 0 {
		cl, err := newKafkaClient(cfg, s.health)
		if err != nil {
			return nil, fmt.Errorf("gateway: kafka client: %w", err)
		}
		s.kafka = cl
		s.health.client = cl
		s.stopWatch = make(chan struct{})
		go s.watchKafka()
	}
	return s, nil
}

// Close releases the Kafka client. Serve calls it on the way out.
func (s *Server) Close() {
	if s.kafka != nil {
		s.closeOnce.Do(func() { close(s.stopWatch) })
		s.health.close()
		s.kafka.Close()
	}
}

// ListenAndServe binds cfg.Listen and serves until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then stops accepting, lets the
// requests in flight finish (up to ShutdownTimeout) and closes the Kafka
// client. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.Close()
	ll := &connLimitListener{Listener: ln, max: int64(s.cfg.MaxConns), tls: s.certs != nil}
	s.conns.Store(ll)
	ln = ll
	srv := &http.Server{
		Handler:           s,
		ConnState:         ll.connState,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests outlive a cancelled ctx on purpose: shutdown drains them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.certs != nil {
		srv.TLSConfig = s.certs.tlsConfig()
	}
	if s.cfg.ReloadOnSIGHUP {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					_ = s.Reload()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	errc := make(chan error, 1)
	go func() {
		if s.certs != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("gateway shutting down, finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		srv.Close()
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// route identifies an endpoint: it labels the metrics and picks the
// handler.
type route int

const (
	routeOther route = iota
	routeListTopics
	routeGetTopic
	routeProduce
	routeListStreams
	routeCreateStream
	routeDescribeStream
	routeDeleteStream
	routePutRecord
	routePutRecords
	routeHealthz
	routeMetrics
	numRoutes
)

var routeNames = [numRoutes]string{
	routeOther:          "other",
	routeListTopics:     "GET /topics",
	routeGetTopic:       "GET /topics/{topic}",
	routeProduce:        "POST /topics/{topic}",
	routeListStreams:    "GET /streams",
	routeCreateStream:   "POST /streams/{name}",
	routeDescribeStream: "GET /streams/{name}",
	routeDeleteStream:   "DELETE /streams/{name}",
	routePutRecord:      "PUT /streams/{name}/record",
	routePutRecords:     "PUT /streams/{name}/records",
	routeHealthz:        "GET /healthz",
	routeMetrics:        "GET /metrics",
}

// api tells which error style a path answers in: the REST Proxy's envelope
// or API Gateway's / Kinesis's.
type api int

const (
	apiKafka api = iota
	apiKinesis
)

// match maps a method and path to a route and its path parameter. allowed
// is set when the path exists but the method does not (a 405).
func match(method, escapedPath string) (rt route, param string, a api, allowed string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	first, rest, _ := strings.Cut(strings.TrimPrefix(escapedPath, "/"), "/")
	seg, tail, more := strings.Cut(rest, "/")
	one := func(m string, r route, allow string) (route, string) {
		if method == m {
			return r, ""
		}
		return routeOther, allow
	}
	switch first {
	case "healthz", "metrics":
		if rest != "" || strings.HasSuffix(escapedPath, "/") {
			break
		}
		r := routeHealthz
		if first == "metrics" {
			r = routeMetrics
		}
		rt, allowed = one(http.MethodGet, r, "GET, HEAD")
		return rt, "", apiKafka, allowed
	case "topics":
		if escapedPath == "/topics" {
			rt, allowed = one(http.MethodGet, routeListTopics, "GET, HEAD")
			return rt, "", apiKafka, allowed
		}
		name, err := url.PathUnescape(seg)
		if more || err != nil || name == "" {
			break
		}
		switch method {
		case http.MethodGet:
			return routeGetTopic, name, apiKafka, ""
		case http.MethodPost:
			return routeProduce, name, apiKafka, ""
		}
		return routeOther, "", apiKafka, "GET, HEAD, POST"
	case "streams":
		if escapedPath == "/streams" {
			rt, allowed = one(http.MethodGet, routeListStreams, "GET, HEAD")
			return rt, "", apiKinesis, allowed
		}
		name, err := url.PathUnescape(seg)
		if err != nil || name == "" {
			return routeOther, "", apiKinesis, ""
		}
		switch {
		case !more:
			switch method {
			case http.MethodGet:
				return routeDescribeStream, name, apiKinesis, ""
			case http.MethodPost:
				return routeCreateStream, name, apiKinesis, ""
			case http.MethodDelete:
				return routeDeleteStream, name, apiKinesis, ""
			}
			return routeOther, "", apiKinesis, "DELETE, GET, HEAD, POST"
		case tail == "record":
			rt, allowed = one(http.MethodPut, routePutRecord, "PUT")
			return rt, name, apiKinesis, allowed
		case tail == "records":
			rt, allowed = one(http.MethodPut, routePutRecords, "PUT")
			return rt, name, apiKinesis, allowed
		}
		return routeOther, "", apiKinesis, ""
	}
	return routeOther, "", apiKafka, ""
}

// ServeHTTP routes a request, with the API key check, metrics, a log line
// and a last-resort recover around every handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, param, a, allowed := match(r.Method, r.URL.EscapedPath())
	rw := &respWriter{ResponseWriter: w, api: a}
	s.metrics.inFlight.Add(1)
	defer func() {
		if rw.admitted {
			s.serving.Add(-1)
		}
		if rw.bodyBytes > 0 {
			s.bodyBytes.Add(-rw.bodyBytes)
		}
		p := recover()
		abort := false
		if p != nil && p != http.ErrAbortHandler {
			s.log.Error("gateway: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			rw.errKind = errPanic
			if rw.wroteHeader {
				abort = true // a half-written answer must not pass for a whole one
			} else {
				rw.Header().Set("Connection", "close")
				s.fail(rw, http.StatusInternalServerError, 500, "internal error", "InternalFailure")
			}
		}
		s.metrics.inFlight.Add(-1)
		d := time.Since(start)
		s.metrics.observe(rt, rw.status(), rw.errKind, rw.recordsOK, rw.recordsFailed, d)
		s.logRequest(r, rt, rw, d)
		if abort || p == http.ErrAbortHandler {
			panic(http.ErrAbortHandler)
		}
	}()

	if rt != routeHealthz && rt != routeMetrics {
		idx, deny := s.authorize(r)
		if deny != 0 {
			s.denyAuth(rw, deny)
			return
		}
		if ok, wait := s.allowRate(idx); !ok {
			s.throttle(rw, wait, fmt.Sprintf("Request rate limit exceeded: %g requests a second (bursts of %d) for this API key", s.cfg.RateLimit, s.cfg.RateBurst))
			return
		}
	}
	if allowed != "" {
		rw.Header().Set("Allow", allowed)
		s.fail(rw, http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed", "MethodNotAllowed")
		return
	}
	switch rt {
	case routeListTopics, routeGetTopic, routeListStreams, routeDescribeStream, routeDeleteStream:
		// (The routes with a body are admitted once it is read.)
		if !s.admit(rw) {
			return
		}
	}
	switch rt {
	case routeHealthz:
		writeJSON(rw, http.StatusOK, map[string]string{"status": "ok"})
	case routeMetrics:
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		rw.WriteHeader(http.StatusOK)
		s.metrics.write(rw)
		s.writeGuardMetrics(rw)
	case routeListTopics, routeGetTopic, routeProduce:
		if s.kafka == nil {
			s.fail(rw, http.StatusNotFound, 404, "Kafka is not configured on this gateway (start it with --kafka-brokers)", "")
			return
		}
		switch rt {
		case routeListTopics:
			s.listTopics(rw, r)
		case routeGetTopic:
			s.getTopic(rw, r, param)
		default:
			s.produce(rw, r, param)
		}
	case routeListStreams, routeCreateStream, routeDescribeStream, routeDeleteStream, routePutRecord, routePutRecords:
		if s.kinesis == nil {
			s.fail(rw, http.StatusNotFound, 0, "Kinesis is not configured on this gateway (set AWS_REGION and start it with Kinesis on)", "ResourceNotFoundException")
			return
		}
		switch rt {
		case routeListStreams:
			s.listStreams(rw, r)
		case routeCreateStream, routeDeleteStream:
			if s.cfg.NoStreamAdmin {
				s.fail(rw, http.StatusForbidden, 0, "creating and deleting streams is turned off on this gateway", "AccessDeniedException")
				return
			}
			if rt == routeCreateStream {
				s.createStream(rw, r, param)
			} else {
				s.deleteStream(rw, r, param)
			}
		case routeDescribeStream:
			s.describeStream(rw, r, param)
		case routePutRecord:
			s.putRecord(rw, r, param)
		default:
			s.putRecords(rw, r, param)
		}
	default:
		s.fail(rw, http.StatusNotFound, 404, "HTTP 404 Not Found", "UnknownOperationException")
	}
}

func (s *Server) logRequest(r *http.Request, rt route, rw *respWriter, d time.Duration) {
	var similar int64
	if rw.sampled {
		// A flood of 429s or of 503s while Kafka is down says one thing:
		// one line a second, with how many were like it.
		n := s.sampledLogs.Add(1)
		logged := false
		s.sampleLog.Do(func() { logged = true })
		if !logged {
			return
		}
		similar = n - 1
		s.sampledLogs.Add(-n)
	}
	level := slog.LevelDebug
	switch st := rw.status(); {
	case st >= 500:
		level = slog.LevelError
	case st >= 400:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", routeNames[rt]),
		slog.Int("status", rw.status()),
		slog.Duration("duration", d),
		slog.Int64("bytes_out", rw.written),
		slog.String("remote", r.RemoteAddr),
	}
	if rw.recordsOK+rw.recordsFailed > 0 {
		attrs = append(attrs, slog.Int("records_ok", rw.recordsOK), slog.Int("records_failed", rw.recordsFailed))
	}
	if rw.errMsg != "" {
		attrs = append(attrs, slog.String("error", rw.errMsg))
	}
	if similar > 0 {
		attrs = append(attrs, slog.Int64("similar_not_logged", similar))
	}
	s.log.LogAttrs(r.Context(), level, "gateway request", attrs...)
}

// respWriter remembers what was answered, for the metrics and the log.
type respWriter struct {
	http.ResponseWriter
	api                      api
	admitted                 bool  // counted in Server.serving
	sampled                  bool  // logged one a second (429s, 503s while Kafka is down)
	bodyBytes                int64 // counted in Server.bodyBytes
	code                     int
	wroteHeader              bool
	written                  int64
	recordsOK, recordsFailed int
	errKind                  errKind
	errMsg                   string
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *respWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fail answers an error in the style of the path's API: the REST Proxy's
// {"error_code","message"} (code 0 means the HTTP status), or Kinesis's
// {"__type","message"} (no __type: API Gateway's {"message"}).
func (s *Server) fail(w *respWriter, status, code int, msg, kinesisType string) {
	if w.errKind == errNone {
		w.errKind = kindFor(status)
	}
	w.errMsg = msg
	if w.api == apiKinesis {
		body := map[string]string{"message": msg}
		if kinesisType != "" {
			body["__type"] = kinesisType
		}
		writeJSON(w, status, body)
		return
	}
	if code == 0 {
		code = status
	}
	w.Header().Set("Content-Type", kafkaV2JSON)
	writeJSONRaw(w, status, errorEnvelope{ErrorCode: code, Message: msg})
}

type errorEnvelope struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// readBody reads the request body up to MaxBodyBytes into a pooled buffer,
// which the caller gives back with releaseBody when done with the body. On
// failure it has answered already (413 or 400) and returns ok=false.
func (s *Server) readBody(w *respWriter, r *http.Request) (body []byte, buf *[]byte, ok bool) {
	buf, _ = s.bufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, 0, 4096)
		buf = &b
	}
	b := (*buf)[:0]
	var rd io.Reader = r.Body
	if n := r.ContentLength; n >= 0 && n <= s.cfg.MaxBodyBytes {
		// net/http reads no more than the announced length: no limit
		// reader needed.
		if !s.reserveBody(w, n) {
			s.releaseBody(buf)
			return nil, nil, false
		}
		if int64(cap(b)) <= n { // one more byte, to read the EOF into
			b = make([]byte, 0, n+1)
		}
	} else {
		rd = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
			if !s.reserveBody(w, int64(cap(b))-w.bodyBytes) {
				*buf = b
				s.releaseBody(buf)
				return nil, nil, false
			}
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			s.releaseBody(buf)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.fail(w, http.StatusRequestEntityTooLarge, 413,
					fmt.Sprintf("request body is larger than the gateway's limit of %d bytes", s.cfg.MaxBodyBytes), "ValidationException")
			} else {
				s.fail(w, http.StatusBadRequest, 400, "reading the request body: "+err.Error(), "SerializationException")
			}
			return nil, nil, false
		}
	}
	*buf = b
	if !s.admit(w) {
		s.releaseBody(buf)
		return nil, nil, false
	}
	return b, buf, true
}

// admit counts a request in flight, or answers 429 if the gateway serves
// MaxInFlight already.
func (s *Server) admit(w *respWriter) bool {
	if s.serving.Add(1) > int64(s.cfg.MaxInFlight) {
		s.serving.Add(-1)
		s.throttle(w, time.Second, fmt.Sprintf("Too many requests: the gateway is serving its limit of %d at once; retry later", s.cfg.MaxInFlight))
		return false
	}
	w.admitted = true
	return true
}

// reserveBody counts n more bytes of request bodies in flight, or answers
// 429 if that would pass MaxBodyBytesInFlight.
func (s *Server) reserveBody(w *respWriter, n int64) bool {
	if n <= 0 {
		return true
	}
	if s.bodyBytes.Add(n) > s.cfg.MaxBodyBytesInFlight {
		s.bodyBytes.Add(-n)
		s.throttle(w, time.Second, fmt.Sprintf("Too many requests: the gateway is reading its limit of %d bytes of request bodies at once; retry later",
			s.cfg.MaxBodyBytesInFlight))
		return false
	}
	w.bodyBytes += n
	return true
}

// releaseBody gives a body's buffer back to the pool, unless it grew large.
func (s *Server) releaseBody(buf *[]byte) {
	if cap(*buf) <= 1<<20 {
		*buf = (*buf)[:0]
		s.bufs.Put(buf)
	}
}
