// Package emulator is the posting emulator of the ingestion path: it plays
// the users of the original system, picking random posts from the source
// database and sending each post's three records (pin, geo, user) through
// the gateway to Kafka (REST Proxy API) or Kinesis (API Gateway Kinesis
// proxy API), in exactly the payloads the original scripts sent, so that
// what arrives downstream looks the same.
//
// Unlike the original it reads posts by key rather than with OFFSET scans,
// paces itself by a rate or as the original did, sends from several workers
// at once, retries transient failures with backoff, and counts everything:
// a record that cannot be delivered is logged and counted, never dropped
// silently. Delivery is at least once (a retried request may have got
// through before): the pipelines deduplicate by key.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
)

// PaceSeed is the Pace of the original script: before each post it slept a
// random whole number of seconds, random.randrange(0, 2): 0 or 1 s.
const PaceSeed = "seed"

// Defaults of Config, each the one home of its value: Run and the command
// that offers them use these.
const (
	// DefaultMaxAttempts bounds the tries of one record
	// (Config.MaxAttempts).
	DefaultMaxAttempts = 8
	// DefaultRequestTimeout bounds one HTTP request (Config.RequestTimeout).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultGiveUpAfter is how long requests may fail with none
	// succeeding before the run gives up (Config.GiveUpAfter).
	DefaultGiveUpAfter = 30 * time.Second
)

// DefaultProbeTimeout is how long the gateway has to answer the request
// that checks it before a run (Config.ProbeTimeout): a live gateway answers
// in milliseconds, and a run against a hung one should fail in seconds.
const DefaultProbeTimeout = 3 * time.Second

// Config says what to emulate. Gateway, Target and TopicPrefix are
// required; the zero value of everything else means its default.
type Config struct {
	// Source is the source database's DSN. Empty means no database: posts
	// come from the generator (generate.New(Seed, Posts)), the same rows
	// that `pinpipe seed --posts=Posts --seed=Seed` loads.
	Source string
	// Posts is the number of generated posts to pick from without a
	// Source, keys 0 to Posts-1 (default 11000, as seed's default).
	Posts int

	// Gateway is the gateway's base URL (http://127.0.0.1:8082, or an API
	// Gateway stage URL).
	Gateway string
	// Target is TargetKafka or TargetKinesis.
	Target string
	// TopicPrefix names the topics (<prefix>.pin) or streams
	// (streaming-<prefix>-pin).
	TopicPrefix string
	// APIKey, when set, is sent as x-api-key.
	APIKey string

	// Rate limits the posts started per second over all workers (0: as
	// fast as they go). Pace = PaceSeed instead sleeps before each post as
	// the original did. They exclude each other.
	Rate float64
	Pace string
	// Count is the number of posts to send; 0 sends until ctx ends (with
	// All: until every post is sent).
	Count int64
	// All sends every post of the source exactly once, in a random order
	// drawn from Seed, instead of picking each post at random (with
	// replacement, as the original did); the run ends when all are sent,
	// or after the first Count of that order when Count is set. The keys
	// are read once at the start (one index-only scan).
	All bool
	// Seed picks the posts (and makes them, without a Source): a run is
	// repeatable, whatever the concurrency.
	Seed uint64
	// Concurrency is the number of posts in flight (default 1, as the
	// original); each worker has its own database connection.
	Concurrency int

	// MaxAttempts bounds the tries of one record (default
	// DefaultMaxAttempts).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the backoff between tries
	// (defaults 100 ms and 10 s).
	BaseBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds one HTTP request (default
	// DefaultRequestTimeout).
	RequestTimeout time.Duration
	// ProbeTimeout bounds the request that checks, before the run, that
	// the gateway answers at all (default DefaultProbeTimeout).
	ProbeTimeout time.Duration
	// StopGrace is how long posts in flight may take to finish once ctx
	// ends (default 5 s); then their outstanding records count as failed.
	StopGrace time.Duration
	// MaxConsecutiveFailures stops the run, with an error, after this many
	// failed posts in a row, as when the gateway is down (default 20;
	// negative: never).
	MaxConsecutiveFailures int
	// GiveUpAfter stops the run, with an error, once requests have failed
	// and none has succeeded for this long (default DefaultGiveUpAfter;
	// negative: never): a dead gateway ends a run within about that,
	// however many attempts each record has left. Posts in flight then
	// count as failed.
	GiveUpAfter time.Duration

	// HTTPClient sends the requests (default: a client with keep-alive
	// connections for every worker).
	HTTPClient *http.Client
	// Progress, when set, receives a progress line, rewritten in place
	// every ProgressInterval (default 1 s): give it a terminal only.
	Progress         io.Writer
	ProgressInterval time.Duration
	// ProgressLines writes a whole progress line every ProgressInterval
	// instead of rewriting one in place: for logs and pipes.
	ProgressLines bool
	// Logger receives failures (warn) and retries (debug); default
	// slog.Default().
	Logger *slog.Logger
	// OnStart, when set, is given a function that returns the run's
	// counts so far (without the latencies and the elapsed time), for
	// live metrics; it may be called from any goroutine.
	OnStart func(counts func() Summary)
}

func (c *Config) setDefaults() {
	if c.Posts == 0 {
		c.Posts = sourcedb.DefaultOptions().Posts
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.MaxConsecutiveFailures == 0 {
		c.MaxConsecutiveFailures = 20
	}
	if c.GiveUpAfter == 0 {
		c.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Check reports a configuration Run would refuse, without running
// anything: the error names the setting and its valid values.
func (c Config) Check() error {
	c.setDefaults()
	_, err := c.validate()
	return err
}

func (c *Config) validate() (*url.URL, error) {
	u, err := url.Parse(c.Gateway)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("emulator: the gateway must be an http:// or https:// URL, not %q", c.Gateway)
	}
	switch {
	case c.Target != TargetKafka && c.Target != TargetKinesis:
		return nil, fmt.Errorf("emulator: the target must be %s or %s, not %q", TargetKafka, TargetKinesis, c.Target)
	case c.TopicPrefix == "":
		return nil, errors.New("emulator: a topic prefix is required")
	case c.Rate < 0:
		return nil, fmt.Errorf("emulator: the rate must be >= 0, not %g", c.Rate)
	case c.Pace != "" && c.Pace != PaceSeed:
		return nil, fmt.Errorf("emulator: the pace must be %q or empty, not %q", PaceSeed, c.Pace)
	case c.Rate > 0 && c.Pace != "":
		return nil, errors.New("emulator: give a rate or a pace, not both")
	case c.Count < 0:
		return nil, fmt.Errorf("emulator: the count must be >= 0, not %d", c.Count)
	case c.Concurrency < 1:
		return nil, fmt.Errorf("emulator: the concurrency must be >= 1, not %d", c.Concurrency)
	case c.Source == "" && c.Posts < 1:
		return nil, fmt.Errorf("emulator: posts must be >= 1, not %d", c.Posts)
	case c.MaxAttempts < 1 || c.BaseBackoff < 0 || c.MaxBackoff < c.BaseBackoff || c.RequestTimeout < 0 || c.ProbeTimeout < 0 || c.StopGrace < 0:
		return nil, errors.New("emulator: attempts must be >= 1 and backoffs and timeouts >= 0, the maximum backoff at least the base")
	}
	return u, nil
}

// Summary says what a run did.
type Summary struct {
	// Posts is the number of posts picked and attempted.
	Posts int64
	// Sent is the posts whose records all got through; Failed the posts
	// with a record that did not (or whose source read failed).
	Sent, Failed int64
	// Incomplete is the posts missing their geo or user row in the source
	// database: their other records were sent (and they count as Sent).
	Incomplete int64
	// Records and RecordsFailed count records delivered and given up on.
	Records, RecordsFailed int64
	// Retried is the requests re-sent after a transient failure.
	Retried int64
	// LatencyP50 and LatencyP99 are per delivered record, from its first
	// try to the gateway's success, retries included.
	LatencyP50, LatencyP99 time.Duration
	Elapsed                time.Duration
}

func (s Summary) String() string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Sent) / s.Elapsed.Seconds()
	}
	out := fmt.Sprintf("sent %d posts (%d records) in %s (%.1f posts/s); retried %d requests; failed %d posts (%d records); latency p50 %s, p99 %s",
		s.Sent, s.Records, s.Elapsed.Round(time.Millisecond), rate, s.Retried, s.Failed, s.RecordsFailed,
		s.LatencyP50.Round(10*time.Microsecond), s.LatencyP99.Round(10*time.Microsecond))
	if s.Incomplete > 0 {
		out += fmt.Sprintf("; %d posts lacked a geo or user row", s.Incomplete)
	}
	return out
}

// counters are the run's live counts, read by the progress line.
type counters struct {
	posts, sent, failed, incomplete, records, recordsFailed, retried atomic.Int64
}

// summary is the counts so far.
func (c *counters) summary() Summary {
	return Summary{
		Posts: c.posts.Load(), Sent: c.sent.Load(), Failed: c.failed.Load(), Incomplete: c.incomplete.Load(),
		Records: c.records.Load(), RecordsFailed: c.recordsFailed.Load(), Retried: c.retried.Load(),
	}
}

// Run emulates until cfg.Count posts are done or ctx ends, and says what
// it did. It returns an error when it cannot start (bad config, source
// unreachable or empty, nothing listening at the gateway's address), when
// it gives up after MaxConsecutiveFailures failed posts in a row or after
// GiveUpAfter without a success, or ctx's error when ctx ended the run first. Posts
// that failed are in the Summary, not the error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.setDefaults()
	base, err := cfg.validate()
	if err != nil {
		return Summary{}, err
	}
	readers, lo, hi, err := openSource(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	client := cfg.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency + 2
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	if err := probeGateway(ctx, client, base, cfg.ProbeTimeout); err != nil {
		for _, r := range readers {
			r.close()
		}
		return Summary{}, err
	}
	var order []int64
	if cfg.All {
		if order, err = allPosts(ctx, readers[0], cfg.Seed); err != nil {
			for _, r := range readers {
				r.close()
			}
			return Summary{}, err
		}
		if cfg.Count == 0 || cfg.Count > int64(len(order)) {
			cfg.Count = int64(len(order))
		}
	}
	e := &run{
		cfg: cfg, base: base, lo: lo, hi: hi, order: order, log: cfg.Logger,
		sender: &sender{client: client, apiKey: cfg.APIKey, maxAttempts: cfg.MaxAttempts, baseBackoff: cfg.BaseBackoff,
			maxBackoff: cfg.MaxBackoff, requestTimeout: cfg.RequestTimeout, log: cfg.Logger},
	}
	if cfg.Rate > 0 {
		e.pacer = &pacer{interval: time.Duration(float64(time.Second) / cfg.Rate)}
	}

	// Two contexts: runCtx stops new posts (ctx ending, or giving up);
	// sendCtx lets the posts in flight finish, for StopGrace more.
	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	sendCtx, stopSends := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopSends(nil)
	var grace atomic.Pointer[time.Timer]
	unwatch := context.AfterFunc(runCtx, func() {
		grace.Store(time.AfterFunc(cfg.StopGrace, func() { stopSends(errors.New("the stop grace period is over")) }))
	})
	defer func() {
		unwatch()
		if t := grace.Load(); t != nil {
			t.Stop()
		}
	}()
	e.abort = abort

	start := time.Now()
	e.lastOK.Store(start.UnixNano())
	e.sender.attempted = e.attempted
	if cfg.GiveUpAfter > 0 {
		stopWatch := e.watchFailures(runCtx, func(err error) { abort(err); stopSends(err) })
		defer stopWatch()
	}
	if cfg.OnStart != nil {
		cfg.OnStart(e.c.summary)
	}
	stopProgress := e.progress(start)
	hists := make([]histogram, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() { e.worker(runCtx, sendCtx, readers[w], &hists[w]) })
	}
	wg.Wait()
	stopProgress()

	var h histogram
	for i := range hists {
		h.merge(&hists[i])
	}
	c := &e.c
	sum := Summary{
		Posts: c.posts.Load(), Sent: c.sent.Load(), Failed: c.failed.Load(), Incomplete: c.incomplete.Load(),
		Records: c.records.Load(), RecordsFailed: c.recordsFailed.Load(), Retried: c.retried.Load(),
		LatencyP50: h.quantile(0.50), LatencyP99: h.quantile(0.99), Elapsed: time.Since(start),
	}
	var gaveUp *giveUpError
	if cause := context.Cause(runCtx); errors.As(cause, &gaveUp) {
		return sum, cause
	}
	if err := ctx.Err(); err != nil && (cfg.Count == 0 || sum.Posts < cfg.Count) {
		return sum, err
	}
	return sum, nil
}

// giveUpError ends a run after too many failed posts in a row, or after
// failing requests and no success for a while.
type giveUpError struct {
	n     int64
	after time.Duration
	last  error
}

func (e *giveUpError) Error() string {
	if e.after > 0 {
		return fmt.Sprintf("emulator: giving up: requests have failed and none succeeded for %v; the last failed with: %v", e.after, e.last)
	}
	return fmt.Sprintf("emulator: giving up after %d failed posts in a row; the last failed with: %v", e.n, e.last)
}

// probeGateway fails when nothing accepts connections at the gateway's
// address, or when what does accept them does not answer a request within
// timeout, so that a run against a gateway that is down or hung fails at
// once rather than after every record's retries. Any HTTP answer will do:
// the probe asks for the gateway's base URL, which no API serves.
func probeGateway(ctx context.Context, client *http.Client, base *url.URL, timeout time.Duration) error {
	host := base.Host
	if base.Port() == "" {
		port := "80"
		if base.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(base.Hostname(), port)
	}
	// Through a proxy, the proxy answers: the request below still tells.
	if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: base}); err == nil && proxy == nil {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return fmt.Errorf("emulator: the gateway %s is unreachable: %w", base.Redacted(), err)
		}
		c.Close()
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("emulator: the gateway %s accepts connections but did not answer a request within %v", base.Redacted(), timeout)
		}
		return fmt.Errorf("emulator: the gateway %s does not answer: %w", base.Redacted(), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.Body.Close()
}

// attempted records a request's outcome, for watchFailures.
func (e *run) attempted(err error) {
	now := time.Now().UnixNano()
	if err == nil {
		e.lastOK.Store(now)
		return
	}
	e.lastFailMu.Lock()
	e.lastFail, e.lastFailAt = err, now
	e.lastFailMu.Unlock()
}

// watchFailures gives up, through stop, once requests have failed and none
// has succeeded for GiveUpAfter.
func (e *run) watchFailures(ctx context.Context, stop func(error)) (done func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(min(e.cfg.GiveUpAfter/4, 500*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ok := e.lastOK.Load()
			e.lastFailMu.Lock()
			last, at := e.lastFail, e.lastFailAt
			e.lastFailMu.Unlock()
			if at > ok && time.Since(time.Unix(0, ok)) >= e.cfg.GiveUpAfter {
				stop(&giveUpError{after: e.cfg.GiveUpAfter, last: last})
				return
			}
		}
	}()
	return cancel
}

func (e *giveUpError) Unwrap() error { return e.last }

// run is one Run's state.
type run struct {
	cfg         Config
	base        *url.URL
	lo, hi      int64
	order       []int64 // with All: the keys, in the order they are sent
	log         *slog.Logger
	sender      *sender
	pacer       *pacer
	abort       context.CancelCauseFunc
	claimed     atomic.Int64 // post numbers handed out
	consecutive atomic.Int64 // failed posts in a row
	lastOK      atomic.Int64 // when a request last succeeded (or the run started), in Unix ns
	lastFailMu  sync.Mutex
	lastFail    error // the last request's failure
	lastFailAt  int64 // and when, in Unix ns
	c           counters
	keysMu      sync.Mutex
	keys        []int64 // the source's keys, once found sparse
}

// postRNG is the randomness of post number k: a function of the seed and k
// alone, so that the posts picked do not depend on the concurrency or on
// the timing.
func (e *run) postRNG(k int64) *rand.Rand {
	return rand.New(rand.NewPCG(e.cfg.Seed^0x656d756c61746f72, uint64(k))) // "emulator"
}

func (e *run) worker(runCtx, sendCtx context.Context, rd postReader, hist *histogram) {
	defer func() { rd.close() }()
	for runCtx.Err() == nil {
		k := e.claimed.Add(1) - 1
		if e.cfg.Count > 0 && k >= e.cfg.Count {
			return
		}
		rng := e.postRNG(k)
		var wait time.Duration
		if e.cfg.Pace == PaceSeed {
			wait = seedPace(rng)
		}
		if e.pacer != nil {
			wait = e.pacer.reserve(time.Now())
		}
		if !sleep(runCtx, wait) {
			return
		}
		e.c.posts.Add(1)
		key, rows, err := e.pick(runCtx, rd, rng, k)
		if err != nil && rd.broken() && runCtx.Err() == nil {
			// The connection died (a server restart, a terminated
			// backend): reconnect and read the same post again.
			e.log.Warn("emulator: lost the source database connection; reconnecting", "err", err)
			if nrd, rerr := rd.reopen(runCtx); rerr == nil {
				rd = nrd
				rng = e.postRNG(k)
				if e.cfg.Pace == PaceSeed {
					seedPace(rng) // as drawn the first time
				}
				key, rows, err = e.pick(runCtx, rd, rng, k)
			} else {
				err = rerr
			}
		}
		if err != nil {
			if runCtx.Err() != nil {
				e.c.posts.Add(-1) // stopped before the post began
				return
			}
			e.c.failed.Add(1)
			e.log.Warn("emulator: cannot read a post from the source", "err", err)
			e.postDone(err)
			continue
		}
		e.postDone(e.sendPost(sendCtx, key, rows, hist))
	}
}

// postDone counts a post's outcome toward giving up.
func (e *run) postDone(err error) {
	if err == nil {
		e.consecutive.Store(0)
		return
	}
	n := e.consecutive.Add(1)
	if limit := e.cfg.MaxConsecutiveFailures; limit > 0 && n >= int64(limit) {
		e.abort(&giveUpError{n: n, last: err})
	}
}

// sendPost sends a post's records, pin, geo then user, as the original
// did. A record that fails does not stop the others; the post then counts
// as failed, and the error returned is the first failure.
func (e *run) sendPost(ctx context.Context, key int64, rows [3]*sourcedb.Row, hist *histogram) error {
	var first error
	incomplete := false
	for i, t := range sourcedb.Tables {
		row := rows[i]
		if row == nil {
			incomplete = true
			e.log.Warn("emulator: the post has no row in "+t.Name+"; sending its other records", "ind", key)
			continue
		}
		req, err := newRequest(e.base, e.cfg.Target, e.cfg.TopicPrefix, t.Topic, key, row)
		if err == nil {
			start := time.Now()
			var retries int
			retries, err = e.sender.send(ctx, req)
			e.c.retried.Add(int64(retries))
			if err == nil {
				hist.add(time.Since(start))
				e.c.records.Add(1)
				continue
			}
		}
		e.c.recordsFailed.Add(1)
		e.log.Warn("emulator: record not delivered", "ind", key, "table", t.Topic, "err", err)
		if first == nil {
			first = err
		}
	}
	if incomplete {
		e.c.incomplete.Add(1)
	}
	if first != nil {
		e.c.failed.Add(1)
	} else {
		e.c.sent.Add(1)
	}
	return first
}

// pick reads post number k of the run. With All it is the k-th key of the
// order; otherwise a random post: a random key in the source's key range, read
// by key. Keys may have gaps, and a key that is not there is drawn again
// (rejection sampling: every post stays equally likely). When a post takes
// many draws, the keys are too sparse for that: the key list is read once
// (one index-only scan) and the post drawn from it, equally likely too. A
// post's draws depend only on its randomness, never on what other workers
// did, so a run is repeatable.
func (e *run) pick(ctx context.Context, rd postReader, rng *rand.Rand, k int64) (int64, [3]*sourcedb.Row, error) {
	if e.order != nil {
		key := e.order[k]
		rows, found, err := rd.readPost(ctx, key)
		if err == nil && !found {
			err = fmt.Errorf("emulator: post %d is no longer in the source", key)
		}
		return key, rows, err
	}
	span := uint64(e.hi-e.lo) + 1 // 0 when the range is all of int64
	const draws = 16
	for range draws {
		key := int64(rng.Uint64())
		if span != 0 {
			key = e.lo + int64(rng.Uint64N(span))
		}
		rows, found, err := rd.readPost(ctx, key)
		if err != nil || found {
			return key, rows, err
		}
	}
	keys, err := e.sparseKeys(ctx, rd)
	if err != nil {
		return 0, [3]*sourcedb.Row{}, err
	}
	for range draws {
		key := keys[rng.IntN(len(keys))]
		rows, found, err := rd.readPost(ctx, key)
		if err != nil || found {
			return key, rows, err
		}
	}
	return 0, [3]*sourcedb.Row{}, errors.New("emulator: found no post (are the rows being deleted?)")
}

// allPosts returns every key of the source in a random order drawn from
// seed, for All.
func allPosts(ctx context.Context, rd postReader, seed uint64) ([]int64, error) {
	keys, err := rd.keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("emulator: %w", sourcedb.ErrEmpty)
	}
	rng := rand.New(rand.NewPCG(seed^0x616c6c706f737473, 0)) // "allposts"
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys, nil
}

// sparseKeys returns the source's keys, read on first use.
func (e *run) sparseKeys(ctx context.Context, rd postReader) ([]int64, error) {
	e.keysMu.Lock()
	defer e.keysMu.Unlock()
	if e.keys != nil {
		return e.keys, nil
	}
	keys, err := rd.keys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, sourcedb.ErrEmpty
	}
	e.log.Info("emulator: the source's keys are sparse; picking from its key list", "keys", len(keys), "from", e.lo, "to", e.hi)
	e.keys = keys
	return keys, nil
}

// progress writes a progress line every interval until the returned
// function is called, which clears it.
func (e *run) progress(began time.Time) (stop func()) {
	w := e.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(e.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				if !e.cfg.ProgressLines {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
				c := &e.c
				total := ""
				if e.cfg.Count > 0 {
					total = fmt.Sprintf("/%d", e.cfg.Count)
				}
				start, end := "\r\033[K", ""
				if e.cfg.ProgressLines {
					start, end = "", "\n"
				}
				fmt.Fprintf(w, "%semulate: %d%s posts sent, %d failed, %d retried, %.1f posts/s%s", start,
					c.sent.Load(), total, c.failed.Load(), c.retried.Load(), float64(c.sent.Load())/time.Since(began).Seconds(), end)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// pacer spaces the posts of all workers evenly: each reserves the next
// slot, one interval after the previous one, so that no more than
// 1 + rate·t posts start in any t.
type pacer struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
}

// reserve takes the next slot and returns how long after now it is.
func (p *pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = at.Add(p.interval)
	return at.Sub(now)
}

// seedPace is the original's wait before a post: sleep(random.randrange(0, 2)).
func seedPace(rng *rand.Rand) time.Duration { return time.Duration(rng.IntN(2)) * time.Second }

// sleep waits for d or ctx, and says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// postReader reads posts for one worker.
type postReader interface {
	readPost(ctx context.Context, key int64) (rows [3]*sourcedb.Row, found bool, err error)
	keys(ctx context.Context) ([]int64, error)
	broken() bool
	reopen(ctx context.Context) (postReader, error)
	close()
}

// openSource opens one reader a worker and finds the key range.
func openSource(ctx context.Context, cfg Config) (readers []postReader, lo, hi int64, err error) {
	if cfg.Source == "" {
		g := &genReader{g: generate.New(cfg.Seed, cfg.Posts), n: int64(cfg.Posts)}
		for range cfg.Concurrency {
			readers = append(readers, g)
		}
		return readers, 0, int64(cfg.Posts) - 1, nil
	}
	defer func() {
		if err != nil {
			for _, r := range readers {
				r.close()
			}
		}
	}()
	for range cfg.Concurrency {
		r, err := sourcedb.Open(ctx, cfg.Source)
		if err != nil {
			return readers, 0, 0, fmt.Errorf("emulator: %w", err)
		}
		readers = append(readers, &dbReader{r: r, dsn: cfg.Source})
	}
	lo, hi, err = readers[0].(*dbReader).r.KeyRange(ctx)
	if err != nil {
		return readers, 0, 0, fmt.Errorf("emulator: %w", err)
	}
	return readers, lo, hi, nil
}

// dbReader reads from the source database.
type dbReader struct {
	r   *sourcedb.Reader
	dsn string
}

func (d *dbReader) readPost(ctx context.Context, key int64) ([3]*sourcedb.Row, bool, error) {
	return d.r.ReadPost(ctx, key)
}
func (d *dbReader) keys(ctx context.Context) ([]int64, error) { return d.r.Keys(ctx) }
func (d *dbReader) broken() bool                              { return d.r.Broken() }
func (d *dbReader) reopen(ctx context.Context) (postReader, error) {
	r, err := sourcedb.Open(ctx, d.dsn)
	if err != nil {
		return nil, err
	}
	d.close()
	return &dbReader{r: r, dsn: d.dsn}, nil
}
func (d *dbReader) close() { d.r.Close(context.Background()) }

// genReader reads generated posts: keys 0 to n-1, no gaps. It is stateless,
// so the workers share one.
type genReader struct {
	g *generate.Generator
	n int64
}

func (g *genReader) readPost(_ context.Context, key int64) (rows [3]*sourcedb.Row, found bool, _ error) {
	if key < 0 || key >= g.n {
		return rows, false, nil
	}
	p := g.g.Post(key)
	for i, t := range sourcedb.Tables {
		rows[i] = t.GeneratedRow(p)
	}
	return rows, true, nil
}

func (g *genReader) keys(context.Context) ([]int64, error) {
	keys := make([]int64, g.n)
	for i := range keys {
		keys[i] = int64(i)
	}
	return keys, nil
}
func (g *genReader) broken() bool                               { return false }
func (g *genReader) reopen(context.Context) (postReader, error) { return g, nil }
func (g *genReader) close()                                     {}
