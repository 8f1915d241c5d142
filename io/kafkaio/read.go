package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/io/drain"
	"github.com/pinpipe/pinpipe/io/positions"
)

func init() {
	register.DoFn5x2[
		context.Context, *discoveryWatermark, *sdf.LockRTracker, string,
		func(beam.EventTime, topicPartition), sdf.ProcessContinuation, error,
	](&discoverFn{})
	register.DoFn5x2[
		context.Context, *watermarkEstimator, *sdf.LockRTracker, topicPartition,
		func(beam.EventTime, Record), sdf.ProcessContinuation, error,
	](&readFn{})
	register.Emitter2[beam.EventTime, topicPartition]()
	register.Emitter2[beam.EventTime, Record]()
	beam.RegisterType(reflect.TypeOf((*topicPartition)(nil)).Elem())
}

const (
	// maxReadTime bounds one call on a partition with a backlog: the
	// records it emits only leave with its bundle, so a call that read a
	// backlog for minutes would hold them (and the runner's memory) that
	// long.
	maxReadTime = time.Second
	// requestTimeout bounds a call's requests to the cluster, so that a
	// broker that does not answer delays a partition, not the pipeline.
	requestTimeout = 30 * time.Second
)

// Read reads the records of topics from the Kafka cluster at brokers, as an
// unbounded PCollection<Record> stamped with the records' timestamps. See
// the package documentation for how it works and the ReadOptionFn
// functions for what can be set. It panics on invalid options, as other
// Beam IOs do at construction time.
func Read(s beam.Scope, brokers []string, topics []string, opts ...ReadOptionFn) beam.PCollection {
	s = s.Scope("kafkaio.Read")
	o, err := newReadOption(opts)
	if err != nil {
		panic(fmt.Sprintf("kafkaio.Read: %v", err))
	}
	if len(brokers) == 0 || len(topics) == 0 {
		panic("kafkaio.Read: needs brokers and topics")
	}
	ts := slices.Clone(topics)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	id := newReadID()
	parts := beam.ParDo(s, &discoverFn{
		ID:          id,
		Brokers:     brokers,
		Group:       o.Group,
		Start:       o.Start,
		UntilLatest: o.UntilLatest,
		Ends:        o.Ends,
		Interval:    o.DiscoveryInterval,
		Positions:   o.Positions,
		DrainMarker: o.DrainMarker,
	}, beam.CreateList(s, ts))
	return beam.ParDo(s, &readFn{
		ID:             id,
		Brokers:        brokers,
		Group:          o.Group,
		ProcessingTime: o.ProcessingTime,
		MaxDelay:       o.MaxDelay,
		PollInterval:   o.PollInterval,
		DrainMarker:    o.DrainMarker,
	}, parts)
}

// topicPartition is a partition to read and where its reading starts and
// ends (End exclusive; math.MaxInt64: never), fixed when it is listed. It is
// the read step's element (see readFn.CreateInitialRestriction).
type topicPartition struct {
	Topic     string
	Partition int32
	Start     int64
	End       int64
}

func (tp topicPartition) key() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// discoverFn lists a topic's partitions as an SDF over partition numbers.
type discoverFn struct {
	ID          string // the Read's (see holds)
	Brokers     []string
	Group       string
	Start       StartPosition
	UntilLatest bool
	Ends        []partitionOffset
	Interval    time.Duration // 0: list once
	Positions   positionConfig
	DrainMarker string // see ReadDrainMarker

	cl  *kgo.Client
	adm *kadm.Client
	pos *positionStore
}

func (fn *discoverFn) Setup(ctx context.Context) error {
	cl, err := newClient(fn.Brokers)
	if err != nil {
		return err
	}
	fn.cl, fn.adm = cl, kadm.NewClient(cl)
	if fn.Positions.enabled() {
		if fn.pos, err = openPositions(ctx, fn.Positions); err != nil {
			return err
		}
	}
	return nil
}

func (fn *discoverFn) Teardown() {
	if fn.cl != nil {
		fn.cl.Close()
	}
	fn.pos.close()
}

// CreateInitialRestriction is every partition number: [0, ∞).
func (fn *discoverFn) CreateInitialRestriction(string) offsetrange.Restriction {
	return offsetrange.Restriction{Start: 0, End: math.MaxInt64}
}

func (fn *discoverFn) SplitRestriction(_ string, r offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{r}
}

func (fn *discoverFn) RestrictionSize(string, offsetrange.Restriction) float64 { return 1 }

func (fn *discoverFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(newGrowableTracker(r))
}

// TruncateRestriction stops listing when the pipeline drains.
func (fn *discoverFn) TruncateRestriction(rt *sdf.LockRTracker, _ string) offsetrange.Restriction {
	start := rt.GetRestriction().(offsetrange.Restriction).Start
	return offsetrange.Restriction{Start: start, End: start}
}

func (fn *discoverFn) InitialWatermarkEstimatorState(beam.EventTime, offsetrange.Restriction, string) int64 {
	return unlisted
}

func (fn *discoverFn) CreateWatermarkEstimator(state int64) *discoveryWatermark {
	return &discoveryWatermark{state: state}
}

func (fn *discoverFn) WatermarkEstimatorState(we *discoveryWatermark) int64 { return we.state }

// ProcessElement lists topic and emits the partitions numbered from the
// restriction's start that exist now, each claimed by its number.
func (fn *discoverFn) ProcessElement(
	ctx context.Context,
	we *discoveryWatermark,
	rt *sdf.LockRTracker,
	topic string,
	emit func(beam.EventTime, topicPartition),
) (sdf.ProcessContinuation, error) {
	rest := rt.GetRestriction().(offsetrange.Restriction)
	if fn.Interval > 0 && drain.Requested(fn.DrainMarker) {
		// A drain request (see ReadDrainMarker) ends the re-listing, or
		// the pipeline would wait for it forever; also before a first
		// listing that has not succeeded (a cluster that is away): a
		// drain does not wait for it. Runners that drain call
		// TruncateRestriction instead.
		rt.TryClaim(int64(math.MaxInt64 - 1))
		return sdf.StopProcessing(), nil
	}
	if fn.Interval > 0 && !we.first() {
		// The watermark is the next listing's time. Until then, look for a
		// drain request every drainCheck, so that a drain does not wait
		// for the next listing.
		if wait := time.Until(time.UnixMilli(we.state)); wait > 0 {
			return sdf.ResumeProcessingIn(min(wait, drainCheck)), nil
		}
	}
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	parts, err := fn.list(lctx, topic, rest, we.first())
	cancel()
	if err != nil {
		if !isRetry(err) {
			return sdf.StopProcessing(), err
		}
		// A cluster that is briefly away (or not up yet) is waited for, as
		// a consumer would.
		retry := fn.Interval
		if retry <= 0 {
			retry = time.Second
		}
		log.Warnf(ctx, "kafkaio: listing %s, will retry in %v: %v", topic, retry, err)
		return sdf.ResumeProcessingIn(retry), nil
	}
	et := mtime.FromMilliseconds(we.state)
	now := time.Now()
	for _, p := range parts {
		if !rt.TryClaim(int64(p.Partition)) {
			return sdf.StopProcessing(), nil
		}
		// Hold the other partitions' watermarks until this one has reported
		// its own.
		holds.set(fn.ID, p.key(), we.state, now)
		emit(et, p)
	}
	if fn.Interval <= 0 {
		// Listed once. A range ending at MaxInt64 is done once MaxInt64-1
		// is claimed (and a shorter one once anything past it is).
		rt.TryClaim(int64(math.MaxInt64 - 1))
		return sdf.StopProcessing(), nil
	}
	we.set(time.Now().Add(fn.Interval))
	return sdf.ResumeProcessingIn(min(fn.Interval, drainCheck)), nil
}

// drainCheck is how often the re-listing looks for a drain request between
// listings.
const drainCheck = 500 * time.Millisecond

// list returns the partitions of topic in rest that exist now, with their
// start and end offsets. A topic that does not exist has none yet.
func (fn *discoverFn) list(ctx context.Context, topic string, rest offsetrange.Restriction, first bool) ([]topicPartition, error) {
	tm, err := describeTopic(ctx, fn.cl, topic)
	if err != nil {
		return nil, err
	}
	if len(tm.leaders) == 0 && first {
		log.Warnf(ctx, "kafkaio: topic %s does not exist (yet)", topic)
	}
	lo, hi := rest.Start, min(int64(len(tm.leaders)), rest.End)
	if lo >= hi {
		return nil, nil
	}

	// The first listing starts where asked; partitions added later are new
	// and read whole (or from what the group committed, after a restart).
	pos := fn.Start
	if !first {
		pos = StartEarliest
		if fn.Group != "" || fn.pos != nil {
			pos = StartCommitted
		}
	}
	starts, err := fn.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, retryError{err}
	}
	var ends kadm.ListedOffsets
	if pos == StartLatest || pos == StartCommitted || fn.UntilLatest {
		if ends, err = fn.adm.ListEndOffsets(ctx, topic); err != nil {
			return nil, retryError{err}
		}
	}
	var commits kadm.OffsetResponses
	if pos == StartCommitted && fn.Group != "" {
		// A group that never committed is unknown to some brokers.
		if commits, err = fn.adm.FetchOffsetsForTopics(ctx, fn.Group, topic); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, retryError{err}
		}
	}
	parts := make([]topicPartition, 0, hi-lo)
	for p := int32(lo); int64(p) < hi; p++ {
		s, ok := starts.Lookup(topic, p)
		if !ok || s.Err != nil {
			return nil, retryError{fmt.Errorf("kafkaio: start offset of %s/%d: %v", topic, p, s.Err)}
		}
		latest := int64(-1)
		if ends != nil {
			e, ok := ends.Lookup(topic, p)
			if !ok || e.Err != nil {
				return nil, retryError{fmt.Errorf("kafkaio: end offset of %s/%d: %v", topic, p, e.Err)}
			}
			latest = e.Offset
		}
		tp := topicPartition{Topic: topic, Partition: p, Start: s.Offset, End: math.MaxInt64}
		durable, hasDurable := int64(0), false
		if fn.pos != nil && pos == StartCommitted {
			if durable, hasDurable, err = fn.pos.start(ctx, topic, p); err != nil {
				return nil, retryError{err}
			}
		}
		switch {
		case pos == StartLatest:
			tp.Start = latest
		case hasDurable:
			switch {
			case durable < s.Offset:
				log.Warnf(ctx, "kafkaio: %s/%d: job %s is durable up to %d but the log starts at %d: records were deleted before their outputs were written",
					topic, p, fn.Positions.Job, durable, s.Offset)
			case durable > latest:
				log.Warnf(ctx, "kafkaio: %s/%d: job %s is durable up to %d but the log ends at %d: starting there",
					topic, p, fn.Positions.Job, durable, latest)
				tp.Start = latest
			default:
				tp.Start = durable
			}
		case pos == StartCommitted:
			if c, ok := commits.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				switch {
				case c.At < s.Offset:
					log.Warnf(ctx, "kafkaio: %s/%d: group %s committed %d but the log starts at %d: records were deleted before they were read",
						topic, p, fn.Group, c.At, s.Offset)
				case c.At > latest:
					// The topic was re-created, or its log truncated.
					log.Warnf(ctx, "kafkaio: %s/%d: group %s committed %d but the log ends at %d: starting there",
						topic, p, fn.Group, c.At, latest)
					tp.Start = latest
				default:
					tp.Start = c.At
				}
			}
		}
		if fn.UntilLatest {
			tp.End = latest
		}
		for _, e := range fn.Ends {
			if e.Topic == topic && e.Partition == p {
				tp.End = e.Offset
			}
		}
		tp.End = max(tp.End, tp.Start)
		if fn.pos != nil && (!hasDurable || tp.Start != durable) {
			// Where this job's reading starts: the base its durable
			// ranges grow from. An explicit start forgets the old ones.
			if err := fn.pos.base(ctx, topic, p, tp.Start, pos != StartCommitted || hasDurable); err != nil {
				return nil, retryError{err}
			}
		}
		parts = append(parts, tp)
	}
	return parts, nil
}

// readFn reads one partition per element, as an SDF over its offsets.
type readFn struct {
	ID             string // the Read's, shared with its discoverFn (see holds)
	Brokers        []string
	Group          string
	ProcessingTime bool
	MaxDelay       time.Duration
	PollInterval   time.Duration
	DrainMarker    string // see ReadDrainMarker

	cl     *kgo.Client
	f      *fetcher
	warned map[string]time.Time
}

func (fn *readFn) Setup() error {
	cl, err := newClient(fn.Brokers)
	if err != nil {
		return err
	}
	fn.cl, fn.f, fn.warned = cl, newFetcher(cl), map[string]time.Time{}
	return nil
}

func (fn *readFn) Teardown() {
	if fn.cl != nil {
		fn.cl.Close()
	}
}

// CreateInitialRestriction is [Start, ∞) for an unbounded partition. A
// bounded one gets one offset more than its records, [Start, End+1): the
// end marker, claimed by the call that commits End once the bundles that
// emitted the last records are durable (see ProcessElement).
func (fn *readFn) CreateInitialRestriction(tp topicPartition) offsetrange.Restriction {
	if tp.End == math.MaxInt64 {
		return offsetrange.Restriction{Start: tp.Start, End: math.MaxInt64}
	}
	return offsetrange.Restriction{Start: tp.Start, End: tp.End + 1}
}

// SplitRestriction keeps one restriction per partition: a partition is
// read in order by one reader, and runners split it further only at the
// reading position (checkpoints and dynamic splits).
func (fn *readFn) SplitRestriction(_ topicPartition, r offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{r}
}

// RestrictionSize is the number of offsets of a bounded restriction, and
// 1 for an unbounded one: sizing it would cost a broker round trip per
// element, and runners only compare sizes.
func (fn *readFn) RestrictionSize(_ topicPartition, r offsetrange.Restriction) float64 {
	if r.End == math.MaxInt64 {
		return 1
	}
	return float64(max(r.End-r.Start, 0))
}

func (fn *readFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	t := newGrowableTracker(r)
	t.checkpointOnly = true
	return sdf.NewLockRTracker(t)
}

// TruncateRestriction ends an unbounded partition when the pipeline
// drains, and lets a bounded one finish.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ topicPartition) offsetrange.Restriction {
	r := rt.GetRestriction().(offsetrange.Restriction)
	if r.End == math.MaxInt64 {
		r.End = r.Start
	}
	return r
}

// InitialWatermarkEstimatorState is the time the partition was discovered
// at: the beginning of time for the partitions listed at start.
func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, _ offsetrange.Restriction, _ topicPartition) int64 {
	return et.Milliseconds()
}

func (fn *readFn) CreateWatermarkEstimator(state int64) *watermarkEstimator {
	we := &watermarkEstimator{state: state, delay: fn.MaxDelay}
	if fn.ProcessingTime {
		we.delay = 0
	}
	return we
}

func (fn *readFn) WatermarkEstimatorState(we *watermarkEstimator) int64 { return we.state }

// ProcessElement reads the partition from the restriction's start until it
// is caught up (then it asks to be resumed after the poll interval), has
// read for maxReadTime, or reaches the restriction's end. Each record's own
// offset is claimed, so the checkpoint resumes right after the last record
// emitted.
//
// Offsets are committed at the start of a call: every offset before the
// restriction's start was emitted by bundles that the runner has durably
// committed, since this restriction is the residual it persisted with them
// (or where the partition was listed to start). That is the guarantee
// bundle finalization is meant to give, which Beam Go v2.77.0 cannot: after
// a plan's first finalization its DoFns register callbacks on a finalizer
// the plan no longer runs (exec.Plan.Finalize replaces p.bf, the ParDo
// keeps the old one), so they never run and pile up in memory.
//
// The watermark it reports when it pauses is its own, capped by the other
// partitions' of the Read in this process (see holds).
func (fn *readFn) ProcessElement(
	ctx context.Context,
	we *watermarkEstimator,
	rt *sdf.LockRTracker,
	tp topicPartition,
	emit func(beam.EventTime, Record),
) (sdf.ProcessContinuation, error) {
	pc, err := fn.read(ctx, we, rt, tp, emit)
	switch {
	case err != nil: // the hold stays until the retry, or goes stale
	case pc != nil && pc.ShouldResume():
		now := time.Now()
		holds.set(fn.ID, tp.key(), we.state, now)
		we.limit, we.limited = holds.min(fn.ID, now, max(staleHold, 10*fn.PollInterval))
	default:
		holds.drop(fn.ID, tp.key())
	}
	return pc, err
}

// read is ProcessElement's reading.
func (fn *readFn) read(
	ctx context.Context,
	we *watermarkEstimator,
	rt *sdf.LockRTracker,
	tp topicPartition,
	emit func(beam.EventTime, Record),
) (sdf.ProcessContinuation, error) {
	rest := rt.GetRestriction().(offsetrange.Restriction)
	fn.commit(ctx, tp, rest.Start, commitEvery)
	next, last := rest.Start, int64(-1)
	var emitted int64
	defer func() {
		if emitted > 0 {
			positions.ReadCounter("kafka", tp.Topic, strconv.Itoa(int(tp.Partition))).Inc(ctx, emitted)
		}
	}()
	from := rest.Start // the first offset the next record emitted accounts for
	deadline := time.Now().Add(maxReadTime)
	for {
		end := rt.GetRestriction().(offsetrange.Restriction).End
		if limit := min(end, tp.End); next >= limit {
			if limit == tp.End && tp.End < end { // all records read, the end marker is ours
				if last >= 0 {
					// Commit tp.End in a call on the marker alone, once this
					// bundle is durable.
					return sdf.ResumeProcessingIn(0), nil
				}
				fn.commit(ctx, tp, tp.End, 0)
			}
			// Claiming the end marks the restriction done.
			if limit >= rest.Start {
				rt.TryClaim(limit)
			}
			return sdf.StopProcessing(), nil
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		res, err := fn.f.fetch(rctx, tp.Topic, tp.Partition, next)
		cancel()
		switch {
		case errors.Is(err, kerr.OffsetOutOfRange):
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			start, end, err := fn.f.bounds(rctx, tp.Topic, tp.Partition)
			cancel()
			if err != nil {
				fn.warn(ctx, tp, "%v", err)
				return sdf.ResumeProcessingIn(fn.PollInterval), nil
			}
			if next < start {
				log.Warnf(ctx, "kafkaio: %s/%d: offsets %d to %d were deleted before they were read", tp.Topic, tp.Partition, next, start-1)
				next = start
				continue
			}
			fn.warn(ctx, tp, "kafkaio: %s/%d: reading at %d but the log ends at %d (truncated?); waiting", tp.Topic, tp.Partition, next, end)
			return sdf.ResumeProcessingIn(fn.PollInterval), nil
		case isRetry(err):
			fn.warn(ctx, tp, "%v", err)
			return sdf.ResumeProcessingIn(fn.PollInterval), nil
		case err != nil:
			return sdf.StopProcessing(), err
		}
		if pt, ok := rt.Rt.(*growableTracker); ok {
			pt.end.Store(res.hwm)
		}
		pastEnd := false
		for _, r := range res.records {
			if r.Offset >= tp.End { // written after the bounded read's end
				pastEnd = true
				break
			}
			if !rt.TryClaim(r.Offset) {
				return sdf.StopProcessing(), nil // split off: the rest belongs to another restriction
			}
			last = r.Offset
			emit(fn.eventTime(r), Record{
				Topic:     tp.Topic,
				Partition: tp.Partition,
				Offset:    r.Offset,
				Key:       r.Key,
				Value:     r.Value,
				Timestamp: r.Timestamp.UTC(),
				From:      from,
				Watermark: we.state,
			})
			emitted++
			from = r.Offset + 1
		}
		next = res.next
		if pastEnd {
			next = tp.End
		}
		if next >= min(rt.GetRestriction().(offsetrange.Restriction).End, tp.End) {
			continue
		}
		if next >= res.hwm {
			// A drain request (see ReadDrainMarker) ends an unbounded
			// partition once it has caught up, as kinesisio ends a shard;
			// runners that drain call TruncateRestriction instead.
			if drain.Requested(fn.DrainMarker) && rt.GetRestriction().(offsetrange.Restriction).End == math.MaxInt64 {
				if last >= 0 {
					// This bundle's records are not durable yet: the next
					// call commits up to them, then ends.
					return sdf.ResumeProcessingIn(0), nil
				}
				fn.commit(ctx, tp, rest.Start, 0)
				rt.TryClaim(int64(math.MaxInt64 - 1))
				return sdf.StopProcessing(), nil
			}
			we.idle(time.Now())
			return sdf.ResumeProcessingIn(fn.PollInterval), nil
		}
		if time.Now().After(deadline) {
			return sdf.ResumeProcessingIn(0), nil
		}
	}
}

// commit commits next to the group, if there is one, at most every so
// often. A failed commit only delays the group's offset: it is logged.
func (fn *readFn) commit(ctx context.Context, tp topicPartition, next int64, every time.Duration) {
	if fn.Group == "" {
		return
	}
	if err := commitOffset(fn.f.adm, fn.Brokers, fn.Group, tp.Topic, tp.Partition, next, every); err != nil {
		fn.warn(ctx, tp, "%v", err)
	}
}

func (fn *readFn) eventTime(r *kgo.Record) beam.EventTime {
	if fn.ProcessingTime {
		return mtime.Now()
	}
	return mtime.FromTime(r.Timestamp)
}

// warn logs a partition's recurring trouble at most every 30s.
func (fn *readFn) warn(ctx context.Context, tp topicPartition, format string, args ...any) {
	k := tp.key()
	if t, ok := fn.warned[k]; ok && time.Since(t) < 30*time.Second {
		return
	}
	fn.warned[k] = time.Now()
	log.Warnf(ctx, format, args...)
}

// growableTracker is offsetrange's growable tracker with an end estimate
// that the read keeps at the partition's high watermark, so that runners'
// progress reports see the backlog without a broker call.
//
// With checkpointOnly it only splits at fraction 0, the checkpoints that
// end a call: a partition is one ordered log, and the half of a dynamic
// split (which prism makes when a bundle looks slow) can start before the
// bundle that read up to it is durable, which would let the group's
// offset run ahead of what the runner committed. Runners then split
// between elements, that is between partitions, instead.
type growableTracker struct {
	*offsetrange.GrowableTracker
	end            *endEstimate
	checkpointOnly bool
}

// TrySplit declines splits at a fraction above 0 with checkpointOnly.
func (t *growableTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.checkpointOnly && fraction > 0 {
		return t.GetRestriction(), nil, nil
	}
	return t.GrowableTracker.TrySplit(fraction)
}

type endEstimate struct{ atomic.Int64 }

// Estimate is the exclusive end offset the partition has now, as last seen.
func (e *endEstimate) Estimate() int64 { return e.Load() }

func newGrowableTracker(r offsetrange.Restriction) *growableTracker {
	end := &endEstimate{}
	end.Store(r.Start)
	gt, err := offsetrange.NewGrowableTracker(r, end)
	if err != nil {
		panic(err) // only for a nil estimator
	}
	return &growableTracker{GrowableTracker: gt, end: end}
}
