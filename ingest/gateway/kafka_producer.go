package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file is the gateway's Kafka producer: the client, its partitioner,
// and how a request's records travel to the brokers and back with a
// deadline.

// newKafkaClient makes the producer: acks from all in-sync replicas
// (idempotent, so its own retries do not duplicate), a short linger
// (Config.KafkaLinger, 0.5 ms by default: without one, a busy gateway sends
// a produce request for nearly every record, which costs it and the
// brokers more CPU than the records do; a request alone in the gateway does
// not wait for it, see produceAll; the Java producer's default linger is
// 5 ms since Kafka 4.0), and, with Config.AutoCreateTopics only, topics
// created on first use if the brokers allow it, as the Java producer behind
// a stock REST Proxy does.
func newKafkaClient(cfg Config, health *kafkaHealth) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.WithHooks(health),
		kgo.SeedBrokers(cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(max(cfg.KafkaLinger, 0)),
		kgo.RecordPartitioner(restPartitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.RecordDeliveryTimeout(cfg.BackendTimeout),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxKafkaRecordBytes) + 4096),
		kgo.ClientID("pinpipe-gateway"),
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	return kgo.NewClient(append(opts, cfg.KafkaOptions...)...)
}

// manualPartition marks, in a record's context, a record whose partition the
// request chose.
type manualPartition struct{}

// restPartitioner sends a record to the partition its request named, and
// the others as the Java producer does (murmur2 of the key, sticky without
// one), so keyed records land where other Kafka clients put them.
type restPartitioner struct{ base kgo.Partitioner }

func (p restPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &restTopicPartitioner{base: p.base.ForTopic(t)}
}

type restTopicPartitioner struct{ base kgo.TopicPartitioner }

func isManual(r *kgo.Record) bool {
	return r.Context != nil && r.Context.Value(manualPartition{}) != nil
}

func (p *restTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isManual(r) || p.base.RequiresConsistency(r)
}

func (p *restTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if isManual(r) {
		return int(r.Partition) // out of range: kgo fails the record
	}
	return p.base.Partition(r, n)
}

func (p *restTopicPartitioner) OnNewBatch() {
	if o, ok := p.base.(kgo.TopicPartitionerOnNewBatch); ok {
		o.OnNewBatch()
	}
}

// errNoAck stands for a record Kafka had not acknowledged when the request's
// time was up. The producer keeps it, so it may still be written: the
// client's retry may then duplicate it, as at-least-once delivery allows.
type errNoAck struct{ after time.Duration }

func (e errNoAck) Error() string {
	return fmt.Sprintf("Kafka did not acknowledge the record within %v (it may still be written)", e.after)
}

func (errNoAck) Timeout() bool { return true }

func (errNoAck) Temporary() bool { return true }

// produceCall is one produce request's records on their way to Kafka: the
// results as their promises come. A call whose promises have all run goes
// back to Server.calls for another request.
type produceCall struct {
	mu     sync.Mutex
	errs   []error
	done   []bool
	left   int
	closed bool          // the request stopped waiting: late results are dropped
	fin    chan struct{} // gets a value when the last result is in
	out    []byte        // the answer
	// progress is the server's kafkaProgress, which every result moves.
	progress *atomic.Int64
}

// recordCtx is a record's context: the request's deadline, and what the
// promise and the partitioner need to know about the record.
type recordCtx struct {
	context.Context
	call   *produceCall
	i      int
	manual bool // the request chose the record's partition
}

func (c *recordCtx) Value(key any) any {
	if _, ok := key.(manualPartition); ok && c.manual {
		return true
	}
	return c.Context.Value(key)
}

// producePromise is every record's promise: it files the record's result
// with its call.
func producePromise(r *kgo.Record, err error) {
	rc := r.Context.(*recordCtx)
	c := rc.call
	c.progress.Store(time.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.done[rc.i] {
		return
	}
	c.errs[rc.i], c.done[rc.i] = err, true
	if c.left--; c.left == 0 {
		c.fin <- struct{}{}
	}
}

// produceAll produces recs and waits for each record's acknowledgement, or
// its failure, until ctx is done (the request's deadline) or reqCtx is (the
// client went away): the idempotent producer does not give up on a batch
// whose fate it does not know (a broker that died mid-request), and the
// request must not wait for it forever. all reports that every record's
// promise has run; if not, the call's records may still be written, and
// the call must not be reused.
func (s *Server) produceAll(ctx, reqCtx context.Context, downCh <-chan struct{}, topic string, recs []*kgo.Record, manual []bool) (c *produceCall, all bool) {
	n := len(recs)
	c, _ = s.calls.Get().(*produceCall)
	if c == nil {
		c = &produceCall{fin: make(chan struct{}, 1)}
	}
	c.errs, c.done = resize(c.errs, n), resize(c.done, n)
	c.left, c.closed, c.progress = n, false, &s.kafkaProgress
	// The records' contexts are the request's own, never reused: kgo may
	// look at a record's context after its promise ran (a goroutine waiting
	// for a new topic's metadata holds the first record's).
	ctxs := make([]recordCtx, n)
	for i, rec := range recs {
		ctxs[i] = recordCtx{Context: ctx, call: c, i: i, manual: manual != nil && manual[i]}
		rec.Topic, rec.Context = topic, &ctxs[i]
	}
	alone := s.producing.Add(1) == 1
	defer s.producing.Add(-1)
	if alone {
		// The watchdog measures from here while nothing else produces.
		s.kafkaProgress.Store(time.Now().UnixNano())
	}
	for _, rec := range recs {
		s.kafka.Produce(ctx, rec, producePromise)
	}
	if alone && s.cfg.KafkaLinger > 0 {
		// No other request is producing, so no other record is likely to
		// join this one's batch within the linger: send it now. (Flush
		// ends the partitions' lingers and starts sending before it waits,
		// and with a done context it does not wait.)
		_ = s.kafka.Flush(doneCtx)
	}
	var noAck error = errNoAck{s.cfg.BackendTimeout}
	select {
	case <-c.fin:
		return c, true
	case <-ctx.Done():
	case <-reqCtx.Done():
	case <-downCh:
		noAck = errUnavailable{s.cfg.KafkaUnavailableAfter}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 { // the last result came meanwhile
		<-c.fin
		return c, true
	}
	c.closed = true
	for i := range c.errs {
		if !c.done[i] {
			c.errs[i] = noAck
		}
	}
	return c, false
}

// doneCtx is a context that is already done.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// resize returns s with length n, zeroed, reusing its array when it can.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// deadlines hands out the requests' deadline contexts: each ends
// BackendTimeout after its request started, or up to deadlineSlack later,
// because the requests that start within deadlineSlack of each other share
// one, so that a request needs no timer of its own.
type deadlines struct {
	timeout time.Duration
	cur     atomic.Pointer[deadline]
	mu      sync.Mutex
}

// deadlineSlack is how much longer than BackendTimeout a request may wait.
const deadlineSlack = 10 * time.Millisecond

type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc // never needed: the deadline passes
	until  time.Time          // the last start time the context serves
}

func (d *deadlines) get() context.Context {
	now := time.Now()
	if dl := d.cur.Load(); dl != nil && now.Before(dl.until) {
		return dl.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl := d.cur.Load(); dl != nil && now.Before(dl.until) {
		return dl.ctx
	}
	until := now.Add(deadlineSlack)
	dl := &deadline{until: until}
	dl.ctx, dl.cancel = context.WithDeadline(context.Background(), until.Add(d.timeout))
	d.cur.Store(dl)
	return dl.ctx
}
