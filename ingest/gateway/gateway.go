package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// DefaultListen is where the gateway listens unless told otherwise: loopback,
// so that nothing is exposed by accident.
const DefaultListen = "127.0.0.1:8082"

// DefaultKafkaLinger is the producer's default linger: see
// Config.KafkaLinger.
const DefaultKafkaLinger = 500 * time.Microsecond

// The defaults of Config's limits and timeouts, each the one home of its
// value: setDefaults and the pinpipe gateway command's flags use these.
// Config's fields say what each bounds.
const (
	DefaultMaxBodyBytes          = 10 << 20 // API Gateway's limit
	DefaultMaxKafkaRecordBytes   = 1_000_000
	DefaultMaxRecordsPerRequest  = 10_000
	DefaultMaxInFlight           = 512
	DefaultMaxBodyBytesInFlight  = 128 << 20
	DefaultMaxConns              = 10_000
	DefaultKafkaUnavailableAfter = time.Second
	DefaultStreamShardCount      = 5 // as in the AWS tutorial's mapping template
	DefaultBackendTimeout        = 30 * time.Second
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultReadTimeout           = 60 * time.Second
	DefaultIdleTimeout           = 120 * time.Second
	DefaultShutdownTimeout       = 30 * time.Second
)

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
	// MaxInFlight bounds the requests being served at once (default DefaultMaxInFlight;
	// /healthz and /metrics do not count). Past it a request gets a 429
	// with Retry-After at once, instead of queueing until its client times
	// out or the gateway's memory runs out. A request counts once its body
	// is read, so that slow clients still sending theirs (bounded by
	// ReadTimeout and MaxBodyBytesInFlight) cannot keep others out.
	MaxInFlight int
	// MaxBodyBytesInFlight bounds the bytes of the request bodies being
	// read and served at once (default DefaultMaxBodyBytesInFlight). Past it a request gets a
	// 429 with Retry-After.
	MaxBodyBytesInFlight int64
	// MaxConns bounds the open client connections (default DefaultMaxConns). Past
	// it a new connection gets a 503 and is closed; idle ones are closed
	// after IdleTimeout.
	MaxConns int
	// TLSCertFile and TLSKeyFile, when set, make the gateway serve HTTPS
	// with that certificate and key (PEM). Reload reads them again (the
	// command does on SIGHUP), so a renewed certificate needs no restart.
	TLSCertFile, TLSKeyFile string
	// ReloadOnSIGHUP makes Serve call Reload when the process gets SIGHUP.
	ReloadOnSIGHUP bool

	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxKafkaRecordBytes bounds one Kafka record's key plus value (default
	// DefaultMaxKafkaRecordBytes: with the batch's overhead, under the
	// brokers' default message.max.bytes of 1,048,588).
	MaxKafkaRecordBytes int
	// MaxRecordsPerRequest bounds the records of one produce request
	// (default DefaultMaxRecordsPerRequest; Kinesis's PutRecords has its
	// own 500).
	MaxRecordsPerRequest int
	// MaxJSONDepth bounds the nesting of a record's JSON (default
	// DefaultMaxJSONDepth) and MaxNumberChars the length of a number in it
	// (default DefaultMaxNumberChars).
	MaxJSONDepth, MaxNumberChars int
	// KafkaUnavailableAfter: once no broker has answered for this long
	// (default DefaultKafkaUnavailableAfter) while records wait, the gateway
	// stops waiting and answers 503, and until a broker answers again it
	// answers new produce requests 503 at once, instead of letting them wait
	// out BackendTimeout.
	KafkaUnavailableAfter time.Duration
	// DefaultShardCount is the shard count of a stream created without one
	// (default DefaultStreamShardCount).
	DefaultShardCount int32

	// BackendTimeout bounds how long a request waits for Kafka or Kinesis
	// (default DefaultBackendTimeout).
	BackendTimeout time.Duration
	// Connection timeouts (defaults DefaultReadHeaderTimeout,
	// DefaultReadTimeout, BackendTimeout+10 s, DefaultIdleTimeout).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds how long a shutdown waits for in-flight
	// requests (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration

	// Logger receives the request and error logs (default slog.Default()).
	Logger *slog.Logger
	// Registry is the Prometheus registry the gateway registers its
	// metrics on and serves at /metrics (default: one of its own), so that
	// a process serves one registry with all of its metrics.
	Registry *prometheus.Registry
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
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxKafkaRecordBytes <= 0 {
		c.MaxKafkaRecordBytes = DefaultMaxKafkaRecordBytes
	}
	if c.KafkaLinger == 0 {
		c.KafkaLinger = DefaultKafkaLinger
	}
	if c.MaxRecordsPerRequest <= 0 {
		c.MaxRecordsPerRequest = DefaultMaxRecordsPerRequest
	}
	if c.MaxJSONDepth <= 0 {
		c.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if c.MaxNumberChars <= 0 {
		c.MaxNumberChars = DefaultMaxNumberChars
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxBodyBytesInFlight <= 0 {
		c.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.RateLimit > 0 && c.RateBurst <= 0 {
		c.RateBurst = int(math.Ceil(c.RateLimit))
	}
	def(&c.KafkaUnavailableAfter, DefaultKafkaUnavailableAfter)
	if c.DefaultShardCount <= 0 {
		c.DefaultShardCount = DefaultStreamShardCount
	}
	def(&c.BackendTimeout, DefaultBackendTimeout)
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, c.BackendTimeout+10*time.Second)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
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
	mux     *http.ServeMux // routes to the endpoints
	// metricsHandler serves Config.Registry at /metrics.
	metricsHandler http.Handler
	health         *kafkaHealth
	keys           atomic.Pointer[keySet]
	certs          *certStore // nil: plain HTTP
	conns          atomic.Pointer[connLimitListener]
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
	s := &Server{cfg: cfg, log: cfg.Logger, kinesis: cfg.Kinesis, health: newKafkaHealth(cfg.KafkaUnavailableAfter),
		sampleLog: rate.Sometimes{First: 1, Interval: time.Second}}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, s)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	s.metrics = m
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)})
	s.deadlines.timeout = cfg.BackendTimeout
	s.mux = s.newMux()
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
