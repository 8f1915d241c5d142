package kinesisio

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pinpipe/pinpipe/io/drain"
	"github.com/pinpipe/pinpipe/io/positions"
)

func init() {
	register.DoFn3x1[context.Context, []byte, func(rootShard), error](&listShardsFn{})
	register.Emitter1[rootShard]()
	register.DoFn5x2[context.Context, *watermarkEstimator, *sdf.LockRTracker, rootShard,
		func(beam.EventTime, Record), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter2[beam.EventTime, Record]()
	beam.RegisterType(reflect.TypeOf((*Record)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*rootShard)(nil)).Elem())
}

// rootShard is a Read element: a shard to start reading on, and the
// sequence number of the last record whose outputs a checkpoint store says
// are durable ("": none, start at the read's start position).
type rootShard struct {
	ShardID string
	LastSeq string
}

// Kinesis's per-shard read limits: 5 GetRecords calls a second and 2 MiB a
// second, shared by every consumer of the stream.
const (
	minCallInterval   = 200 * time.Millisecond
	shardBytesPerSec  = 2 << 20
	callTimeout       = 30 * time.Second
	maxProcessTime    = time.Second // one ProcessElement call, so that outputs flow while a backlog is read
	maxShardFailures  = 8           // consecutive non-throttling failures of a shard before the bundle fails
	iteratorValidity  = 4 * time.Minute
	childrenWait      = time.Second
	listShardsTimeout = 2 * time.Minute
)

// Variables for the tests.
var (
	// atTimestampWait bounds an AT_TIMESTAMP GetShardIterator call (see
	// openIterator).
	atTimestampWait = 3 * time.Second
	// cacheIterators keeps shard iterators between bundles (see
	// shardStates); the tests turn it off to resume from the restriction
	// alone.
	cacheIterators = true
)

// Record is one Kinesis record, emitted with its arrival time as event time.
type Record struct {
	Stream         string
	ShardID        string
	SequenceNumber string
	PartitionKey   string
	Data           []byte
	ArrivalTime    time.Time // ApproximateArrivalTimestamp

	// From is the first sequence number this record accounts for: one past
	// the previous record the read emitted from the shard, or "0" when it
	// emitted none before it (the shard's start, or the read's), so that
	// the records' [From, SequenceNumber] spans tile the shard without
	// gaps. See RecordSpans.
	From string
	// Watermark is the shard's own watermark (Unix ms, 0: not known yet)
	// when the read emitted the record.
	Watermark int64
}

// Read reads a Kinesis stream and returns an unbounded PCollection<Record>.
// Options: ReadTrimHorizon (default), ReadLatest, ReadAtTimestamp, ReadUntil,
// ReadPollInterval, ReadMaxDelay, ReadMaxRecordsPerCall, ReadEndpoint,
// ReadRegion. Each record is emitted once: a restriction resumes after the
// last record it emitted, and a runner that retries a failed bundle drops
// that bundle's output with it.
func Read(s beam.Scope, stream string, opts ...ReadOptionFn) beam.PCollection {
	s = s.Scope("kinesisio.Read")
	if stream == "" {
		panic("kinesisio.Read: the stream name is empty")
	}
	o := &readOption{
		start:        startPos{Kind: startTrimHorizon},
		pollInterval: DefaultPollInterval,
		maxDelay:     DefaultMaxDelay,
		limit:        maxGetRecordsLimit,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			panic(fmt.Sprintf("kinesisio.Read: invalid option: %v", err))
		}
	}
	if o.committed && !o.checkpoints.enabled() {
		panic("kinesisio.Read: ReadCommitted needs ReadCheckpoints")
	}
	if o.committed && o.start.Kind != startTrimHorizon {
		o.committed = false // a later ReadLatest or ReadAtTimestamp overrides it
	}
	imp := beam.Impulse(s)
	roots := beam.ParDo(s, &listShardsFn{clientConfig: o.client, Stream: stream, Start: o.start.Kind,
		Checkpoints: o.checkpoints, Committed: o.committed}, imp)
	// The roots are few; the reshuffle lets a runner spread them over
	// workers instead of fusing them all into the listing's bundle.
	roots = beam.Reshuffle(s, roots)
	fn := &readFn{
		clientConfig: o.client,
		Stream:       stream,
		Start:        o.start,
		PollInterval: o.pollInterval,
		MaxDelay:     o.maxDelay,
		Limit:        int32(o.limit),
		Checkpoints:  o.checkpoints,
		DrainMarker:  o.drainMarker,
	}
	if !o.until.IsZero() {
		fn.UntilMillis = o.until.UnixMilli()
	}
	return beam.ParDo(s, fn, roots)
}

// kinesisAPI is the part of the Kinesis client the reader uses; tests
// substitute it.
type kinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// listShardsFn emits the shards the read starts from (see rootShards and
// rootsFromCheckpoints).
type listShardsFn struct {
	clientConfig
	Stream      string
	Start       startKind
	Checkpoints checkpointConfig
	Committed   bool // start from the checkpoints

	client *client
	store  *checkpointStore
}

func (fn *listShardsFn) Setup(ctx context.Context) error {
	c, err := fn.open(ctx, false)
	fn.client = c
	if err != nil || !fn.Committed || !fn.Checkpoints.enabled() {
		return err
	}
	fn.store, err = openCheckpoints(ctx, fn.Checkpoints, "pinpipe kinesisio "+fn.Checkpoints.Job)
	return err
}

func (fn *listShardsFn) Teardown() {
	fn.client.close()
	fn.store.close()
}

func (fn *listShardsFn) ProcessElement(ctx context.Context, _ []byte, emit func(rootShard)) error {
	var pos map[string]shardPosition
	if fn.store != nil {
		var err error
		if pos, err = fn.store.load(ctx, fn.Stream); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(listShardsTimeout)
	for attempt := 1; ; attempt++ {
		shards, err := listShards(ctx, fn.client, fn.Stream, "")
		if err == nil {
			if fn.store == nil {
				for _, id := range rootShards(shards, fn.Start) {
					emit(rootShard{ShardID: id})
				}
				return nil
			}
			roots := rootsFromCheckpoints(shards, pos, fn.Checkpoints.Durable)
			resumed, closed := 0, 0
			for _, r := range roots {
				if r.LastSeq != "" {
					resumed++
				}
				emit(r)
			}
			for _, p := range pos {
				if p.Closed {
					closed++
				}
			}
			log.Infof(ctx, "kinesisio.Read: %s: starting from the checkpoints of job %q: %d shards to read, %d of them after their checkpoint, "+
				"the others at TRIM_HORIZON; %d shards recorded as read to their end", fn.Stream, fn.Checkpoints.Job, len(roots), resumed, closed)
			return nil
		}
		// A stream being created or resharded answers ResourceInUse for a
		// moment; throttling passes too.
		if c := errorCode(err); (c != "ResourceInUseException" && !isThrottle(err)) || time.Now().After(deadline) {
			return fmt.Errorf("kinesisio.Read: listing the shards of %s: %w", fn.Stream, err)
		}
		if err := sleep(ctx, backoff(attempt, 200*time.Millisecond, 5*time.Second)); err != nil {
			return err
		}
	}
}

// rootShards picks the shards to start one element on; every other shard
// is reached from them, as the child of a shard an element drained.
//
// From LATEST they are the open shards: closed ones get no new records.
// Otherwise they are the shards whose ParentShardId is not listed (expired
// or never there), so that a parent is always read before its children.
// A merged shard belongs to its ParentShardId's element; a shard whose only
// listed parent is its AdjacentParentShardId is a root itself.
func rootShards(shards []types.Shard, start startKind) []string {
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[aws.ToString(s.ShardId)] = true
	}
	var roots []string
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if start == startLatest {
			if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
				roots = append(roots, id)
			}
			continue
		}
		if p := aws.ToString(s.ParentShardId); p == "" || !listed[p] {
			roots = append(roots, id)
		}
	}
	return roots
}

// rootsFromCheckpoints picks the shards to start one element on from the
// positions a checkpoint store holds. Finished are the shards recorded
// closed (read to their end), and the ancestors of every shard with a
// recorded position (a job read past them, or started after them). The
// roots are the unfinished shards whose ParentShardId is finished, not
// listed or none, as in rootShards: a child is still read only after its
// parent ended. Each root resumes after its recorded sequence number, or
// at TRIM_HORIZON without one.
//
// With durable positions (recorded by the sinks, as outputs are written)
// a child's position says nothing of its parent's last records, which may
// still wait for a window: a shard the job has a row for is finished only
// when recorded closed; one it has none for (it never read it: expired, or
// before the job's start) is finished by its descendants' positions.
func rootsFromCheckpoints(shards []types.Shard, pos map[string]shardPosition, durable bool) []rootShard {
	byID := make(map[string]types.Shard, len(shards))
	for _, s := range shards {
		byID[aws.ToString(s.ShardId)] = s
	}
	finished := map[string]bool{}
	var markAncestors func(id string)
	markAncestors = func(id string) {
		s, ok := byID[id]
		if !ok {
			return
		}
		for _, p := range []string{aws.ToString(s.ParentShardId), aws.ToString(s.AdjacentParentShardId)} {
			if _, read := pos[p]; durable && read {
				continue
			}
			if p != "" && !finished[p] {
				finished[p] = true
				markAncestors(p)
			}
		}
	}
	for id, p := range pos {
		if p.Closed {
			finished[id] = true
		}
		if p.Closed || p.Seq != "" {
			markAncestors(id)
		}
	}
	var roots []rootShard
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if finished[id] {
			continue
		}
		if p := aws.ToString(s.ParentShardId); p == "" || byID[p].ShardId == nil || finished[p] {
			roots = append(roots, rootShard{ShardID: id, LastSeq: pos[id].Seq})
		}
	}
	return roots
}

// listShards lists a stream's shards, those after the shard `after` when it
// is set (shard IDs grow, so a shard's children come after it).
func listShards(ctx context.Context, api kinesisAPI, stream, after string) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	if after != "" {
		in.ExclusiveStartShardId = aws.String(after)
	}
	var all []types.Shard
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := api.ListShards(cctx, in)
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// readFn is the splittable DoFn that reads shards. Its element is the ID of
// the root shard it was started on; its restriction says which shards it
// owns now and where each one is.
type readFn struct {
	clientConfig
	Stream       string
	Start        startPos
	UntilMillis  int64 // 0: read forever
	PollInterval time.Duration
	MaxDelay     time.Duration
	Limit        int32
	Checkpoints  checkpointConfig
	DrainMarker  string // see ReadDrainMarker

	client *client
	api    kinesisAPI
	store  *checkpointStore
	saved  map[string]savedPosition // what this instance recorded, by shard
	warned time.Time
}

type savedPosition struct {
	seq string
	at  time.Time
}

func (fn *readFn) Setup(ctx context.Context) error {
	if fn.api != nil {
		return nil
	}
	c, err := fn.open(ctx, true)
	if err != nil {
		return err
	}
	fn.client, fn.api = c, c
	if fn.Checkpoints.enabled() {
		// Opened here so that a wrong DSN fails at once; a connection
		// lost later is opened again by record.
		return fn.openStore(ctx)
	}
	return nil
}

func (fn *readFn) Teardown() {
	fn.client.close()
	fn.store.close()
}

func (fn *readFn) CreateInitialRestriction(root rootShard) restriction {
	return restriction{Shards: []shardCheckpoint{{ShardID: root.ShardID, Start: fn.Start, LastSeq: root.LastSeq}}}
}

func (fn *readFn) SplitRestriction(_ rootShard, rest restriction) []restriction {
	return []restriction{rest}
}

func (fn *readFn) RestrictionSize(_ rootShard, rest restriction) float64 {
	if rest.isDone() {
		return 0
	}
	return float64(max(len(rest.Shards), 1))
}

func (fn *readFn) CreateTracker(rest restriction) *sdf.LockRTracker {
	t := newTracker(rest)
	if fn.Checkpoints.enabled() {
		t.keepFinished, t.checkpointOnly = true, true
	}
	return sdf.NewLockRTracker(t)
}

// TruncateRestriction ends the read when the pipeline is drained.
func (fn *readFn) TruncateRestriction(*sdf.LockRTracker, rootShard) restriction {
	return restriction{Done: true}
}

func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, rest restriction, _ rootShard) int64 {
	return max(et.Milliseconds(), rest.watermark())
}

func (fn *readFn) CreateWatermarkEstimator(ms int64) *watermarkEstimator {
	return newWatermarkEstimator(ms)
}

func (fn *readFn) WatermarkEstimatorState(we *watermarkEstimator) int64 {
	return we.state.Load()
}

// ProcessElement polls each shard of the restriction in turn, as often as
// Kinesis's limits allow, while some shard has a backlog and for at most
// maxProcessTime; then it checkpoints and asks to be resumed when the next
// shard may be polled.
//
// With a checkpoint store it first records the restriction's positions
// (see record): they are the residual the runner persisted with the
// previous bundle's outputs.
func (fn *readFn) ProcessElement(ctx context.Context, we *watermarkEstimator, rt *sdf.LockRTracker, _ rootShard,
	emit func(beam.EventTime, Record)) (sdf.ProcessContinuation, error) {
	began := time.Now()
	if fn.Checkpoints.enabled() {
		if t, ok := rt.Rt.(*tracker); ok {
			rt.Mu.Lock()
			t.processing = true
			rt.Mu.Unlock()
			defer func() {
				rt.Mu.Lock()
				t.processing = false
				rt.Mu.Unlock()
			}()
		}
		fn.record(ctx, rt)
	}
	for {
		rest := rt.GetRestriction().(restriction)
		if rest.isDone() {
			return sdf.StopProcessing(), nil
		}
		if len(rest.Shards) == 0 {
			// Only finished shards whose recording failed: try again.
			return sdf.ResumeProcessingIn(checkpointEvery), nil
		}
		more := false
		var wake time.Time
		for _, sc := range rest.Shards {
			st := fn.shard(sc.ShardID)
			if next := st.nextCall(); time.Now().Before(next) {
				wake = earliest(wake, next)
				continue
			}
			m, err := fn.poll(ctx, rt, sc, st, emit)
			if err == nil {
				err = rt.GetError()
			}
			if err != nil {
				return sdf.StopProcessing(), err
			}
			more = more || m
			wake = earliest(wake, st.nextCall())
		}
		we.advance(rt.GetRestriction().(restriction).watermark())
		if rt.IsDone() {
			return sdf.StopProcessing(), nil
		}
		delay := max(time.Until(wake), 0)
		if !more || time.Since(began)+delay >= maxProcessTime {
			return sdf.ResumeProcessingIn(delay), nil
		}
		if err := sleep(ctx, delay); err != nil {
			return sdf.StopProcessing(), err
		}
	}
}

// record writes the restriction's positions to the checkpoint store: a
// shard's sequence number when it moved (at most every checkpointEvery),
// and the final position of the shards that left the restriction, which
// then leave its Finished list. It is called at the start of a call, before
// anything is claimed: the restriction is then the residual of the previous
// call's checkpoint, which the runner persists only with that bundle's
// outputs, after every transform fused with the read finished the bundle.
// A failure is logged and retried on a later call: it delays the
// checkpoint, and a restart then re-reads a little more.
func (fn *readFn) record(ctx context.Context, rt *sdf.LockRTracker) {
	rest := rt.GetRestriction().(restriction)
	if rest.isDone() {
		return
	}
	now := time.Now()
	if fn.saved == nil {
		fn.saved = map[string]savedPosition{}
	}
	pos := map[string]shardPosition{}
	for _, sc := range rest.Shards {
		if fn.Checkpoints.Durable {
			if _, ok := fn.saved[sc.ShardID]; !ok {
				pos[sc.ShardID] = shardPosition{} // a shard this instance has not recorded as read yet
			}
			continue
		}
		if sc.LastSeq == "" {
			continue
		}
		if s, ok := fn.saved[sc.ShardID]; ok && (s.seq == sc.LastSeq || (len(rest.Finished) == 0 && now.Sub(s.at) < checkpointEvery)) {
			continue
		}
		pos[sc.ShardID] = shardPosition{Seq: sc.LastSeq}
	}
	for _, f := range rest.Finished {
		if f.Closed || f.LastSeq != "" {
			pos[f.ShardID] = shardPosition{Seq: f.LastSeq, Closed: f.Closed}
		}
	}
	if len(pos) == 0 && len(rest.Finished) == 0 {
		return
	}
	err := fn.openStore(ctx)
	if err == nil && fn.Checkpoints.Durable {
		err = fn.saveEnds(ctx, rest)
	} else if err == nil {
		err = fn.store.save(ctx, fn.Stream, pos)
	}
	if err != nil {
		fn.store.close() // reconnect on the next try
		fn.store = nil
		if time.Since(fn.warned) > 30*time.Second {
			fn.warned = time.Now()
			log.Warnf(ctx, "kinesisio.Read: %v (retrying)", err)
		}
		return
	}
	for id, p := range pos {
		fn.saved[id] = savedPosition{seq: p.Seq, at: now}
	}
	if fn.Checkpoints.Durable {
		for _, sc := range rest.Shards {
			fn.saved[sc.ShardID] = savedPosition{seq: "reading", at: now}
		}
	}
	if len(rest.Finished) > 0 {
		rt.TryClaim(claimRecorded{})
	}
}

// saveEnds is record's write with durable positions: the shards of the
// restriction are recorded as read by the job, the finished ones that
// reached their end with their last record; the sinks record the rest.
func (fn *readFn) saveEnds(ctx context.Context, rest restriction) error {
	var reading []string
	for _, sc := range rest.Shards {
		if _, ok := fn.saved[sc.ShardID]; !ok {
			reading = append(reading, sc.ShardID)
		}
	}
	ends := map[string]string{}
	for _, f := range rest.Finished {
		if f.Closed {
			ends[f.ShardID] = f.LastSeq
		}
	}
	return fn.store.saveEnds(ctx, fn.Stream, reading, ends)
}

func (fn *readFn) openStore(ctx context.Context) error {
	if fn.store != nil {
		return nil
	}
	s, err := openCheckpoints(ctx, fn.Checkpoints, "pinpipe kinesisio "+fn.Checkpoints.Job)
	fn.store = s
	return err
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// poll makes one GetRecords call on a shard and claims what it returned. It
// reports whether the shard can be polled again at once (a backlog, or
// children it just took on). An error means the bundle must fail.
func (fn *readFn) poll(ctx context.Context, rt *sdf.LockRTracker, sc shardCheckpoint, st *shardState,
	emit func(beam.EventTime, Record)) (bool, error) {
	iter := st.takeIterator(sc.position())
	if iter == "" {
		var ok bool
		var err error
		if iter, sc, ok, err = fn.openIterator(ctx, rt, sc, st); !ok || err != nil {
			return false, err
		}
	}

	callStart := time.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	out, err := fn.api.GetRecords(cctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(fn.Limit)})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errorCode(err) == "ExpiredIteratorException" {
			return true, nil // reopened at the same position on the next call
		}
		return false, fn.failed(ctx, st, sc.ShardID, "GetRecords", err)
	}
	st.succeeded()

	// Records that arrived before the start are dropped while nothing has
	// been emitted from the shard: this makes a TRIM_HORIZON iterator a
	// correct fallback for AT_TIMESTAMP.
	threshold := int64(0)
	if sc.LastSeq == "" {
		threshold = sc.Start.threshold()
	}
	var lastArrival int64
	bytes := 0
	pos := sc.position()
	var emitted int64
	defer func() {
		if emitted > 0 {
			positions.ReadCounter("kinesis", fn.Stream, sc.ShardID).Inc(ctx, emitted)
		}
	}()
	prev, wm := sc.LastSeq, sc.Watermark
	for _, r := range out.Records {
		bytes += len(r.Data) + len(aws.ToString(r.PartitionKey))
		arrival := callStart
		if r.ApproximateArrivalTimestamp != nil {
			arrival = *r.ApproximateArrivalTimestamp
		}
		ms := arrival.UnixMilli()
		if threshold > 0 && ms < threshold {
			continue
		}
		threshold = 0
		if fn.UntilMillis > 0 && ms >= fn.UntilMillis {
			rt.TryClaim(claimStop{ShardID: sc.ShardID})
			return false, nil
		}
		seq := aws.ToString(r.SequenceNumber)
		if !rt.TryClaim(claimRecord{ShardID: sc.ShardID, Seq: seq, Arrival: ms}) {
			return false, nil // the shard went to another element, or the claim failed (GetError says)
		}
		emit(mtime.FromTime(arrival), Record{
			Stream:         fn.Stream,
			ShardID:        sc.ShardID,
			SequenceNumber: seq,
			PartitionKey:   aws.ToString(r.PartitionKey),
			Data:           r.Data,
			ArrivalTime:    arrival,
			From:           spanFrom(prev),
			Watermark:      wm,
		})
		emitted++
		prev, wm = seq, max(wm, ms)
		lastArrival = max(lastArrival, ms)
		pos = "AFTER_SEQUENCE_NUMBER:" + seq
	}
	st.paced(callStart, bytes)

	if out.NextShardIterator == nil {
		// SHARD_END: the shard was split or merged. Its children join this
		// restriction now that it is drained.
		children, adjacent, err := fn.children(ctx, sc.ShardID)
		if err != nil {
			return false, fn.failed(ctx, st, sc.ShardID, "ListShards", err)
		}
		if len(children) == 0 && !adjacent {
			st.delay(childrenWait) // not listed yet
			return false, nil
		}
		rt.TryClaim(claimEnd{ShardID: sc.ShardID, Children: children})
		return true, nil
	}
	st.putIterator(pos, aws.ToString(out.NextShardIterator))

	behind := aws.ToInt64(out.MillisBehindLatest) > 0 || len(out.Records) >= int(fn.Limit)
	if behind {
		return true, nil
	}
	// Caught up: whatever arrives from now on arrived after callStart, less
	// the time Kinesis takes to make a record readable and the clocks' skew.
	horizon := callStart.Add(-fn.MaxDelay).UnixMilli()
	// A drain request (see ReadDrainMarker) ends a shard once it has
	// caught up, as reaching ReadUntil's time does.
	if (fn.UntilMillis > 0 && horizon >= fn.UntilMillis) || drain.Requested(fn.DrainMarker) {
		rt.TryClaim(claimStop{ShardID: sc.ShardID})
		return false, nil
	}
	rt.TryClaim(claimCaughtUp{ShardID: sc.ShardID, Watermark: max(lastArrival, horizon)})
	st.delay(fn.PollInterval - time.Since(callStart))
	return false, nil
}

// openIterator gets a shard iterator for the shard's position. It returns
// the checkpoint as it is after the call (a LATEST start is pinned by it),
// and ok=false when the shard is to be left for now.
func (fn *readFn) openIterator(ctx context.Context, rt *sdf.LockRTracker, sc shardCheckpoint, st *shardState) (string, shardCheckpoint, bool, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(fn.Stream), ShardId: aws.String(sc.ShardID)}
	timeout := callTimeout
	var pin int64
	switch {
	case sc.LastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(sc.LastSeq)
	case sc.Start.Kind == startTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case sc.Start.Kind == startLatest && sc.Start.Millis == 0:
		// Pinned a little before the call: resuming there (should the
		// iterator be lost before a record came) may re-read a moment
		// before the tip, but never skips, and nothing was emitted yet.
		in.ShardIteratorType = types.ShardIteratorTypeLatest
		pin = time.Now().Add(-fn.MaxDelay).UnixMilli()
	default:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(time.UnixMilli(min(sc.Start.Millis, time.Now().UnixMilli())))
		timeout = atTimestampWait
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	out, err := fn.api.GetShardIterator(cctx, in)
	cancel()
	if err != nil && in.ShardIteratorType == types.ShardIteratorTypeAtTimestamp && ctx.Err() == nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// kinesalite never answers AT_TIMESTAMP when no record is that
			// recent. The oldest record is a correct start too: poll drops
			// the records before the start time.
			in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeTrimHorizon, nil
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			out, err = fn.api.GetShardIterator(cctx, in)
			cancel()
		case errorCode(err) == "InvalidArgumentException" && sc.Start.Millis > time.Now().Add(-time.Minute).UnixMilli():
			// The start time is ahead of Kinesis's clock: nothing can be
			// there yet.
			st.delay(fn.PollInterval)
			return "", sc, false, nil
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", sc, false, ctx.Err()
		}
		return "", sc, false, fn.failed(ctx, st, sc.ShardID, "GetShardIterator", err)
	}
	if pin != 0 {
		if !rt.TryClaim(claimPin{ShardID: sc.ShardID, Millis: pin}) {
			return "", sc, false, nil
		}
		sc.Start.Millis = pin
	}
	return aws.ToString(out.ShardIterator), sc, true, nil
}

// children lists the shards whose ParentShardId is shard, and reports
// whether a shard names it as AdjacentParentShardId (a merge whose child
// belongs to the other parent's element).
func (fn *readFn) children(ctx context.Context, shard string) (children []string, adjacent bool, err error) {
	shards, err := listShards(ctx, fn.api, fn.Stream, shard)
	if err != nil {
		return nil, false, err
	}
	for _, s := range shards {
		if aws.ToString(s.ParentShardId) == shard {
			children = append(children, aws.ToString(s.ShardId))
		}
		if aws.ToString(s.AdjacentParentShardId) == shard {
			adjacent = true
		}
	}
	return children, adjacent, nil
}

// failed handles a failed call on a shard: throttling backs the shard off;
// other errors back it off too, and fail the bundle when they persist.
func (fn *readFn) failed(ctx context.Context, st *shardState, shard, op string, err error) error {
	n, throttled := st.failed(err)
	if throttled {
		return nil
	}
	if n >= maxShardFailures {
		return fmt.Errorf("kinesisio.Read: %s on shard %s of %s failed %d times in a row: %w", op, shard, fn.Stream, n, err)
	}
	log.Warnf(ctx, "kinesisio.Read: %s on shard %s of %s failed (%d in a row), backing off: %v", op, shard, fn.Stream, n, err)
	return nil
}

// shard returns the process-wide state of one of the stream's shards.
func (fn *readFn) shard(id string) *shardState {
	key := fn.Endpoint + "|" + fn.Region + "|" + fn.Stream + "|" + id
	shardStates.Lock()
	defer shardStates.Unlock()
	st := shardStates.m[key]
	if st == nil {
		st = &shardState{}
		shardStates.m[key] = st
	}
	return st
}

// shardStates outlives bundles and DoFn instances: a checkpointed
// restriction is usually resumed in the same process, where it finds its
// shard iterator (sparing a GetShardIterator call, also limited to 5 a second
// per shard) and the pacing of its earlier calls. Nothing in it is needed
// for correctness: an iterator is used only for exactly the position it
// continues from.
var shardStates = struct {
	sync.Mutex
	m map[string]*shardState
}{m: map[string]*shardState{}}

type shardState struct {
	mu        sync.Mutex
	next      time.Time // no call before
	throttled int       // consecutive throttled calls
	failures  int       // consecutive other failures
	iters     map[string]cachedIterator
}

type cachedIterator struct {
	iter string
	at   time.Time
}

func (s *shardState) nextCall() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// takeIterator returns (and forgets) a live iterator that continues from
// exactly pos, or "".
func (s *shardState) takeIterator(pos string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.iters[pos]
	delete(s.iters, pos)
	if !ok || time.Since(c.at) > iteratorValidity {
		return ""
	}
	return c.iter
}

func (s *shardState) putIterator(pos, iter string) {
	if !cacheIterators {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iters == nil {
		s.iters = map[string]cachedIterator{}
	}
	for k, c := range s.iters {
		if time.Since(c.at) > iteratorValidity {
			delete(s.iters, k)
		}
	}
	s.iters[pos] = cachedIterator{iter: iter, at: time.Now()}
}

// paced records a call made at t that returned n bytes: the next call waits
// for the 5-a-second and the 2 MiB-a-second limits.
func (s *shardState) paced(t time.Time, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := max(minCallInterval, time.Duration(n)*time.Second/shardBytesPerSec)
	if next := t.Add(wait); next.After(s.next) {
		s.next = next
	}
}

// delay holds the shard's next call back by at least d from now.
func (s *shardState) delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next := time.Now().Add(d); next.After(s.next) {
		s.next = next
	}
}

func (s *shardState) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttled, s.failures = 0, 0
}

// failed backs the shard off after a failed call and returns the count of
// consecutive failures, and whether this one was throttling (which never
// fails the bundle: it only says another consumer shares the shard).
func (s *shardState) failed(err error) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if isThrottle(err) {
		s.throttled++
		s.next = time.Now().Add(backoff(s.throttled, 250*time.Millisecond, 10*time.Second))
		return s.throttled, true
	}
	s.failures++
	s.next = time.Now().Add(backoff(s.failures, 500*time.Millisecond, 30*time.Second))
	return s.failures, false
}
