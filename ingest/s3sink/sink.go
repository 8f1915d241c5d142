// Package s3sink lands Kafka topics in S3 in the Confluent S3 sink's layout,
// exactly once:
//
//	<prefix>/topics/<topic>/partition=<p>/<topic>+<p>+<start offset, 10 digits>.json[.gz]
//
// one record value a line. Offsets are committed to the consumer group only
// after the objects holding them are written, so a crash replays from the
// last written object. The replay must then write the same keys with the
// same contents: size rotation is deterministic, but time-based and shutdown
// flushes are not, so when a partition is assigned the sink lists its
// objects at or after the first record it reads, and while it re-reads
// their records it ends each object exactly where the existing one ends (the
// next one's start, or the last one's end from the object's metadata). An
// object therefore never spans the start of another, and no two objects hold
// the same record. While it reproduces an object it writes nothing short of
// that object's end, neither by time nor at shutdown.
//
// A value that is not a line of UTF-8 text (a line break, invalid UTF-8, a
// control character, no bytes) is written in internal/rawline's lossless
// wrapped form, {"__pinpipe_raw_base64":"..."}, which the batch job
// unwraps, so every value reaches it byte for byte (see encodeValue). Null
// values (tombstones) get no line.
//
// What this cannot cover: records Kafka itself lost or rewrote after an
// earlier run wrote them (retention past the committed offset, an unclean
// leader election), and a sink that keeps writing after its group session
// expired for longer than one object upload takes.
package s3sink

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultGroup is the consumer group the sink commits to by default.
const DefaultGroup = "pinpipe-s3sink"

// Options configure a sink.
type Options struct {
	// Brokers are the Kafka bootstrap servers (host:port).
	Brokers []string
	// Topics is a regular expression that a topic's whole name must match
	// to be landed, as Kafka Connect's topics.regex.
	Topics string
	// Dest is s3://bucket/prefix.
	Dest string
	// Group is the consumer group offsets are committed to. Default
	// DefaultGroup.
	Group string
	// InstanceID, when set, makes the sink a static group member: restarted
	// with the same ID it gets its partitions back at once, instead of after
	// its old session times out.
	InstanceID string
	// FlushSize is the number of records per object. Default 1000.
	FlushSize int
	// RotateInterval is the longest a record waits in memory: a partition's
	// open object is written this long after its first record arrived,
	// however few records it holds, so a partition that goes quiet is
	// written too. 0 writes on size and at shutdown only.
	RotateInterval time.Duration
	// Compress writes gzip objects (.json.gz).
	Compress bool
	// S3 is the client objects are written with. Default NewS3Client.
	S3 *s3.Client
	// Logger gets the sink's logs. Default slog.Default().
	Logger *slog.Logger
	// OnStats, when set, is given the run's stats so far after each poll
	// and after each commit (for live metrics). It is called with the
	// sink's lock held: it must return quickly.
	OnStats func(Stats)
	// Started, when set, is called once the bucket and Kafka answered,
	// before the first record is read, with the topics matching Topics at
	// that moment (sorted; none is not an error: topics created later are
	// found within seconds).
	Started func(matching []string)
}

// Stats say what a run did.
type Stats struct {
	// Records read from Kafka, including those read again after a restart
	// or a rebalance.
	Records int64
	// Objects and Bytes written, and the records they hold.
	Objects, Bytes, ObjectRecords int64
	// Rewrites are objects written where an earlier run had written one,
	// with the same records.
	Rewrites int64
	// Wrapped values were not a line of UTF-8 text (line breaks, invalid
	// UTF-8, control characters, empty), written in rawline's wrapped
	// form; Tombstones were null values, given no line.
	Wrapped, Tombstones int64
	// Unwritten records were buffered, at shutdown or when their partition
	// was revoked, towards an object that must end where an earlier run's
	// did; they were left for the next run to read again.
	Unwritten int64
	// Commits of offsets and those that failed (their records are read
	// again by the next owner of the partition).
	Commits, CommitFailures int64
	// WriteRetries are the rounds of object writes that failed and were
	// tried again (see flush).
	WriteRetries int64
}

// maxWriteBackoff bounds the wait between rounds of failed object writes.
const maxWriteBackoff = 10 * time.Second

// writeBackoff is the wait after the attempt-th failed round of writes:
// 250 ms doubling to maxWriteBackoff.
func writeBackoff(attempt int) time.Duration {
	return min(maxWriteBackoff, 250*time.Millisecond<<min(attempt-1, 10))
}

// maxPollRecords bounds one iteration of the loop, during which rebalances
// wait.
const maxPollRecords = 10000

// uploads is how many objects are written at once.
const uploads = 8

type topicPartition struct {
	topic     string
	partition int32
}

// partition is the sink's state for one assigned partition.
type partition struct {
	topicPartition
	// existing are the partition's objects at or after the first record
	// read since the assignment (loaded with that record), by start; next
	// indexes the first one starting after the open object's start.
	existing []existingObject
	loaded   bool
	next     int

	// The open object: its lines, record count, offsets and when its first
	// record arrived.
	buf           bytes.Buffer
	records       int
	first, last   int64
	epoch         int32
	opened        time.Time
	supersede     []string // keys of an existing object with the same start
	replay        bool     // the open object must end where an existing one does
	replayLast    int64    // its last offset, when known (-1 otherwise)
	replayRecords int      // its record count, when known (0 otherwise)
}

// object is a sealed object waiting to be written.
type object struct {
	topicPartition
	key         string
	body        []byte
	first, last int64
	epoch       int32
	records     int
	supersedes  []string // other keys at the same start, deleted once written
	rewrite     bool
	reason      string
	size        int64
}

type sink struct {
	o              Options
	log            *slog.Logger
	s3             *s3.Client
	bucket, prefix string
	cl             *kgo.Client
	// ioCtx outlives the run's context, so that a shutdown lets writes and
	// commits in progress finish; runCtx is the run's, which ends the
	// retries of failed writes.
	ioCtx, runCtx context.Context

	mu     sync.Mutex
	parts  map[topicPartition]*partition
	sealed []*object
	stats  Stats
	// fatal is the first failure to read S3, or a write still failing when
	// the run was stopped (also one met in a rebalance callback, which
	// cannot return it): after it nothing more is written or committed, and
	// the loop stops.
	fatal error
}

// Run lands the topics until ctx is done, then writes what it holds (except
// an object still reproducing an earlier run's), commits and returns what
// it did.
func Run(ctx context.Context, o Options) (Stats, error) {
	s, err := newSink(ctx, o)
	if err != nil {
		return Stats{}, err
	}
	return s.run(ctx)
}

func newSink(ctx context.Context, o Options) (*sink, error) {
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.FlushSize == 0 {
		o.FlushSize = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case len(o.Brokers) == 0:
		return nil, errors.New("s3sink: no Kafka brokers given")
	case o.Topics == "":
		return nil, errors.New("s3sink: no topics regex given")
	case o.FlushSize < 1:
		return nil, fmt.Errorf("s3sink: flush size must be at least 1, got %d", o.FlushSize)
	case o.RotateInterval < 0:
		return nil, fmt.Errorf("s3sink: rotate interval must not be negative, got %s", o.RotateInterval)
	}
	topicsRe, err := topicsRegexp(o.Topics)
	if err != nil {
		return nil, fmt.Errorf("s3sink: topics regex: %w", err)
	}
	topics := topicsRe.String()
	s := &sink{o: o, log: o.Logger, s3: o.S3, ioCtx: context.WithoutCancel(ctx), runCtx: ctx, parts: map[topicPartition]*partition{}}
	if s.bucket, s.prefix, err = ParseS3URL(o.Dest); err != nil {
		return nil, fmt.Errorf("s3sink: %w", err)
	}
	if s.s3 == nil {
		if s.s3, err = NewS3Client(ctx); err != nil {
			return nil, fmt.Errorf("s3sink: %w", err)
		}
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := CheckBucket(checkCtx, s.s3, s.bucket); err != nil {
		return nil, fmt.Errorf("s3sink: %w", err)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID("pinpipe-s3sink"),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(topics),
		kgo.ConsumeRegex(),
		kgo.DisableAutoCommit(),
		// Rebalances wait while a polled batch is processed, so that no
		// record of a partition already handed over is written.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Topics created later that match are found within this long.
		kgo.MetadataMaxAge(10 * time.Second),
		kgo.WithLogger(kgoLogger{o.Logger}),
	}
	if o.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(o.InstanceID))
	}
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("s3sink: %w", err)
	}
	if err := s.cl.Ping(checkCtx); err != nil {
		s.cl.Close()
		return nil, fmt.Errorf("s3sink: cannot reach Kafka at %v: %w", o.Brokers, err)
	}
	if o.Started != nil {
		matching, err := matchingTopics(checkCtx, s.cl, topicsRe)
		if err != nil {
			s.cl.Close()
			return nil, fmt.Errorf("s3sink: listing Kafka's topics: %w", err)
		}
		o.Started(matching)
	}
	return s, nil
}

func (s *sink) run(ctx context.Context) (Stats, error) {
	start := time.Now()
	s.log.Info("s3sink started", "brokers", s.o.Brokers, "topics", s.o.Topics, "dest", s.o.Dest, "group", s.o.Group,
		"flush_size", s.o.FlushSize, "rotate_interval", s.o.RotateInterval, "compress", s.o.Compress)
	err := s.consume(ctx)
	if err == nil {
		s.mu.Lock()
		for _, p := range s.parts {
			s.closeObject(p, "shutdown")
		}
		err = s.flush()
		s.mu.Unlock()
	}
	s.cl.AllowRebalance()
	s.cl.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = s.fatal
	}
	st := s.stats
	s.report()
	s.log.Info("s3sink stopped", "took", time.Since(start).Round(time.Millisecond), "records", st.Records,
		"objects", st.Objects, "bytes", st.Bytes, "object_records", st.ObjectRecords, "rewrites", st.Rewrites,
		"unwritten", st.Unwritten, "commits", st.Commits, "commit_failures", st.CommitFailures, "err", err)
	return st, err
}

// consume polls and lands records until ctx is done or writing fails.
func (s *sink) consume(ctx context.Context) error {
	lastProgress := time.Now()
	for {
		s.mu.Lock()
		err := s.fatal
		deadline, timed := s.nextDeadline()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if timed {
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		fetches := s.cl.PollRecords(pollCtx, maxPollRecords)
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("s3sink: the Kafka client closed")
		}
		if ctx.Err() != nil {
			// Records polled now are not committed; the next run reads them.
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("s3sink: fetch failed", "topic", topic, "partition", partition, "err", err)
			}
		})
		s.mu.Lock()
		if err = s.process(fetches); err != nil && s.fatal == nil {
			s.fatal = err
		}
		s.report()
		if time.Since(lastProgress) >= 30*time.Second {
			lastProgress = time.Now()
			s.log.Info("s3sink progress", "records", s.stats.Records, "objects", s.stats.Objects, "bytes", s.stats.Bytes)
		}
		s.mu.Unlock()
		s.cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// nextDeadline is when the oldest open object is due by time.
func (s *sink) nextDeadline() (time.Time, bool) {
	var next time.Time
	if s.o.RotateInterval <= 0 {
		return next, false
	}
	for _, p := range s.parts {
		if p.records > 0 && !p.replay {
			if due := p.opened.Add(s.o.RotateInterval); next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return next, !next.IsZero()
}

func (s *sink) process(fetches kgo.Fetches) error {
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err == nil {
			err = s.add(r)
		}
	})
	if err != nil {
		return err
	}
	if s.o.RotateInterval > 0 {
		now := time.Now()
		for _, p := range s.parts {
			if p.records > 0 && !p.replay && !now.Before(p.opened.Add(s.o.RotateInterval)) {
				s.seal(p, "time")
			}
		}
	}
	return s.flush()
}

// add puts a record into its partition's open object, sealing objects at
// the boundaries the rules set.
func (s *sink) add(r *kgo.Record) error {
	tp := topicPartition{r.Topic, r.Partition}
	p := s.parts[tp]
	if p == nil {
		p = &partition{topicPartition: tp}
		s.parts[tp] = p
	}
	if !p.loaded {
		existing, err := listExisting(s.ioCtx, s.s3, s.bucket, s.prefix, tp.topic, tp.partition, r.Offset)
		if err != nil {
			return fmt.Errorf("s3sink: %w", err)
		}
		p.existing, p.loaded = existing, true
		if len(existing) > 0 {
			s.log.Info("s3sink: objects past the committed offset found; their boundaries will be kept",
				"topic", tp.topic, "partition", tp.partition, "from", r.Offset, "objects", len(existing))
		}
	}
	if p.records > 0 && p.mustEndBefore(r.Offset) {
		s.seal(p, "boundary")
	}
	if p.records == 0 {
		p.open(r.Offset)
	}
	s.stats.Records++
	line, kind := encodeValue(r.Value)
	switch kind {
	case lineWrapped:
		s.stats.Wrapped++
	case lineSkipped:
		s.stats.Tombstones++
	}
	if kind != lineSkipped {
		p.buf.Write(line)
		p.buf.WriteByte('\n')
	}
	p.records++
	p.last, p.epoch = r.Offset, r.LeaderEpoch
	switch {
	case p.replay:
		if p.replayLast >= 0 && r.Offset >= p.replayLast || p.replayRecords > 0 && p.records >= p.replayRecords {
			s.seal(p, "boundary")
		}
	case p.records >= s.o.FlushSize:
		s.seal(p, "size")
	}
	return nil
}

// mustEndBefore says whether the open object must be sealed before the
// record at off: it would otherwise reach into an existing object, or past
// the end of the one it reproduces.
func (p *partition) mustEndBefore(off int64) bool {
	if p.next < len(p.existing) && off >= p.existing[p.next].start {
		return true
	}
	return p.replay && p.replayLast >= 0 && off > p.replayLast
}

// open starts an object at off, reproducing an existing object that starts
// there.
func (p *partition) open(off int64) {
	p.first, p.opened = off, time.Now()
	p.supersede, p.replay, p.replayLast, p.replayRecords = nil, false, -1, 0
	for p.next < len(p.existing) && p.existing[p.next].start <= off {
		e := p.existing[p.next]
		p.next++
		if e.start != off {
			continue // its records are gone: nothing to reproduce
		}
		p.supersede = e.keys
		// The last object's end is known unless it is an empty object of
		// another writer, which constrains nothing.
		if p.next < len(p.existing) || e.last >= 0 || e.records > 0 {
			p.replay, p.replayLast, p.replayRecords = true, e.last, e.records
		}
	}
}

// reset empties the open object.
func (p *partition) reset() {
	p.buf = bytes.Buffer{}
	p.records = 0
	p.supersede, p.replay = nil, false
}

// seal turns the open object into one waiting to be written.
func (s *sink) seal(p *partition, reason string) {
	key := objectKey(s.prefix, p.topic, p.partition, p.first, s.o.Compress)
	o := &object{topicPartition: p.topicPartition, key: key, body: p.buf.Bytes(), first: p.first, last: p.last,
		epoch: p.epoch, records: p.records, rewrite: p.supersede != nil, reason: reason}
	for _, k := range p.supersede {
		if k != key {
			o.supersedes = append(o.supersedes, k)
		}
	}
	s.sealed = append(s.sealed, o)
	p.reset()
}

// closeObject seals a partition's open object at shutdown or revocation,
// unless it must end where an existing object does: written short, it would
// leave the existing objects after it overlapping the next one, so it is
// left for the next run to read again.
func (s *sink) closeObject(p *partition, reason string) {
	switch {
	case p.records == 0:
	case p.replay:
		s.stats.Unwritten += int64(p.records)
		s.log.Info("s3sink: leaving an object being reproduced to the next run", "topic", p.topic,
			"partition", p.partition, "start", p.first, "records", p.records)
		p.reset()
	default:
		s.seal(p, reason)
	}
}

// flush writes the sealed objects and then commits the offsets after them.
// A write that fails (S3 throttling, failing or unreachable beyond the
// client's own retries) is retried, with a backoff of up to
// maxWriteBackoff and one log line per retry, until it succeeds or the run
// is stopped; the loop waits meanwhile, and nothing is committed. Stopped
// before the objects are written, the run ends with an error and commits
// nothing more: the next run reads their records again and reproduces the
// objects that were written.
func (s *sink) flush() error {
	objs := s.sealed
	s.sealed = nil
	if s.fatal != nil {
		return s.fatal
	}
	if len(objs) == 0 {
		return nil
	}
	pending := objs
	for attempt := 1; ; attempt++ {
		errs := make([]error, len(pending))
		sem := make(chan struct{}, uploads)
		var wg sync.WaitGroup
		for i, o := range pending {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				errs[i] = s.write(o)
			})
		}
		wg.Wait()
		var failed []*object
		var first error
		for i, err := range errs {
			if err != nil {
				failed = append(failed, pending[i])
				first = cmp.Or(first, err)
			}
		}
		if first == nil {
			break
		}
		wait := writeBackoff(attempt)
		if s.runCtx.Err() != nil {
			s.fatal = fmt.Errorf("s3sink: stopped with %d objects not written: %w", len(failed), first)
			return s.fatal
		}
		s.stats.WriteRetries++
		s.log.Warn("s3sink: writing objects failed; retrying (nothing is committed until they are written)",
			"objects", len(failed), "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", first)
		s.report()
		select {
		case <-time.After(wait):
		case <-s.runCtx.Done():
		}
		pending = failed
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, o := range objs {
		s.stats.Objects++
		s.stats.Bytes += o.size
		s.stats.ObjectRecords += int64(o.records)
		if o.rewrite {
			s.stats.Rewrites++
		}
		if offsets[o.topic] == nil {
			offsets[o.topic] = map[int32]kgo.EpochOffset{}
		}
		// Objects of a partition are sealed in order: the last one wins.
		offsets[o.topic][o.partition] = kgo.EpochOffset{Epoch: o.epoch, Offset: o.last + 1}
	}
	s.commit(offsets)
	return nil
}

func (s *sink) write(o *object) error {
	body, contentType := o.body, "application/json"
	if s.o.Compress {
		body, contentType = gzipBytes(body), "application/gzip"
	}
	o.size = int64(len(body))
	_, err := s.s3.PutObject(s.ioCtx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(o.key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(o.size),
		ContentType:   aws.String(contentType),
		Metadata: map[string]string{
			metaFirstOffset: strconv.FormatInt(o.first, 10),
			metaLastOffset:  strconv.FormatInt(o.last, 10),
			metaRecords:     strconv.Itoa(o.records),
		},
	})
	if err != nil {
		return fmt.Errorf("writing s3://%s/%s: %w", s.bucket, o.key, err)
	}
	// The same records under the other extension (a run with the other
	// --compress setting) would be read twice.
	for _, k := range o.supersedes {
		if _, err := s.s3.DeleteObject(s.ioCtx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)}); err != nil {
			return fmt.Errorf("deleting s3://%s/%s, superseded by %s: %w", s.bucket, k, o.key, err)
		}
	}
	s.log.Debug("s3sink: object written", "key", o.key, "records", o.records, "bytes", o.size, "reason", o.reason, "rewrite", o.rewrite)
	return nil
}

// topicsRegexp is Options.Topics as the sink matches it: against a
// topic's whole name.
func topicsRegexp(expr string) (*regexp.Regexp, error) { return regexp.Compile("^(?:" + expr + ")$") }

// MatchingTopics are the topics of the cluster whose whole names the
// regular expression expr (Options.Topics) matches, sorted: those a sink
// reads now.
func MatchingTopics(ctx context.Context, cl *kgo.Client, expr string) ([]string, error) {
	re, err := topicsRegexp(expr)
	if err != nil {
		return nil, err
	}
	return matchingTopics(ctx, cl, re)
}

// matchingTopics are the topics of the cluster whose names re matches.
func matchingTopics(ctx context.Context, cl *kgo.Client, re *regexp.Regexp) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest() // no topics: all of them
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range resp.Topics {
		if t.Topic != nil && re.MatchString(*t.Topic) {
			names = append(names, *t.Topic)
		}
	}
	slices.Sort(names)
	return names, nil
}

// commit commits offsets; a failure is logged, not fatal: the next commit
// of the partition covers it, or its next owner reads the records again and
// rewrites the same objects.
func (s *sink) commit(offsets map[string]map[int32]kgo.EpochOffset) {
	ctx, cancel := context.WithTimeout(s.ioCtx, 30*time.Second)
	defer cancel()
	var failed error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && failed == nil {
					failed = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if failed != nil {
		s.stats.CommitFailures++
		s.log.Warn("s3sink: committing offsets failed; the records will be read again", "err", failed)
		s.report()
		return
	}
	s.stats.Commits++
	s.report()
}

// report gives the stats to Options.OnStats; s.mu is held.
func (s *sink) report() {
	if s.o.OnStats != nil {
		s.o.OnStats(s.stats)
	}
}

// onRevoked writes the open objects of the partitions taken away and
// commits them before the rebalance goes on.
func (s *sink) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, partitions := range revoked {
		for _, partition := range partitions {
			tp := topicPartition{topic, partition}
			if p := s.parts[tp]; p != nil {
				s.closeObject(p, "revoked")
				delete(s.parts, tp)
			}
		}
	}
	s.flush() // a failure is kept in s.fatal, which stops the loop
}

// onLost forgets the partitions lost with the group session: they cannot
// be committed any more, and their next owner reads them again.
func (s *sink) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, partitions := range lost {
		for _, partition := range partitions {
			tp := topicPartition{topic, partition}
			if p := s.parts[tp]; p != nil {
				s.stats.Unwritten += int64(p.records)
				delete(s.parts, tp)
			}
		}
	}
}

// kgoLogger sends the Kafka client's logs to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	}
	k.l.Log(context.Background(), l, msg, append(keyvals, "component", "kgo")...)
}
