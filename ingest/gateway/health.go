package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaHealth tells whether any Kafka broker answers, so that a produce
// request can be answered 503 within about a second when none does (the
// brokers stopped, the network cut), instead of after the whole backend
// timeout. It learns from the client's own traffic (kgo hooks): a failed
// connection, read or write starts a prober that pings the brokers every
// probeInterval; if no broker has answered for KafkaUnavailableAfter, the
// brokers count as unavailable until one answers again. Any successful read
// from any broker makes them available at once, so one dead broker among
// live ones does not count.
type kafkaHealth struct {
	after time.Duration
	// failingSince is when the first failure since the last successful
	// read happened (unix nanoseconds; 0: none).
	failingSince atomic.Int64
	probing      atomic.Bool
	// downCh is closed while the brokers are unavailable; a new, open one
	// replaces it when they come back.
	downCh atomic.Pointer[chan struct{}]

	mu     sync.Mutex // serialises the transitions
	client *kgo.Client
}

const probeInterval = 250 * time.Millisecond

func newKafkaHealth(after time.Duration) *kafkaHealth {
	h := &kafkaHealth{after: after}
	ch := make(chan struct{})
	h.downCh.Store(&ch)
	return h
}

// unavailable reports whether no broker answers, and otherwise gives the
// channel that is closed when that becomes so.
func (h *kafkaHealth) unavailable() (bool, <-chan struct{}) {
	ch := *h.downCh.Load()
	select {
	case <-ch:
		return true, nil
	default:
		return false, ch
	}
}

func (h *kafkaHealth) isDown() bool {
	down, _ := h.unavailable()
	return down
}

func (h *kafkaHealth) ok() {
	if h.failingSince.Load() != 0 {
		h.failingSince.Store(0)
	}
	if h.isDown() {
		h.mu.Lock()
		if h.isDown() {
			ch := make(chan struct{})
			h.downCh.Store(&ch)
		}
		h.mu.Unlock()
	}
}

func (h *kafkaHealth) failed() {
	h.failingSince.CompareAndSwap(0, time.Now().UnixNano())
	if h.probing.CompareAndSwap(false, true) {
		go h.probe()
	}
}

// probe pings the brokers until one answers, marking them unavailable once
// none has for h.after.
func (h *kafkaHealth) probe() {
	defer h.probing.Store(false)
	for {
		since := h.failingSince.Load()
		if since == 0 && !h.isDown() {
			return
		}
		if since != 0 && time.Since(time.Unix(0, since)) >= h.after {
			h.mu.Lock()
			if h.failingSince.Load() != 0 && !h.isDown() {
				close(*h.downCh.Load())
			}
			h.mu.Unlock()
		}
		h.mu.Lock()
		cl := h.client
		h.mu.Unlock()
		if cl == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(h.after, probeInterval))
		err := cl.Ping(ctx)
		cancel()
		if err == nil {
			h.ok()
			return
		}
		time.Sleep(probeInterval)
	}
}

// close stops the probing.
func (h *kafkaHealth) close() {
	h.mu.Lock()
	h.client = nil
	h.mu.Unlock()
}

// The kgo hooks.

func (h *kafkaHealth) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.failed()
	}
}

func (h *kafkaHealth) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.failed()
	}
}

func (h *kafkaHealth) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.failed()
		return
	}
	h.ok()
}

// errUnavailable stands for a record that was not acknowledged because no
// broker answered: like errNoAck, it may still be written.
type errUnavailable struct{ after time.Duration }

func (e errUnavailable) Error() string {
	return "no Kafka broker has answered for " + e.after.String() + ": the record was not acknowledged (it may still be written)"
}

func (errUnavailable) Timeout() bool   { return true }
func (errUnavailable) Temporary() bool { return true }

// kafkaCtx bounds a metadata call by the backend timeout and ends it when
// the brokers become unavailable.
func (s *Server) kafkaCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.BackendTimeout)
	_, downCh := s.health.unavailable()
	if downCh != nil {
		go func() {
			select {
			case <-downCh:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// watchKafka notices a broker that hangs instead of refusing: while records
// are waiting and none has had a result for KafkaUnavailableAfter, it has
// the brokers probed (kafkaHealth), which marks them unavailable if none
// answers a ping either, so that the waiting requests get their 503 in
// about twice KafkaUnavailableAfter instead of at the backend timeout. A
// broker that is slow to acknowledge but answers pings is left alone.
func (s *Server) watchKafka() {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopWatch:
			return
		case <-t.C:
		}
		if s.producing.Load() > 0 && time.Since(time.Unix(0, s.kafkaProgress.Load())) >= s.cfg.KafkaUnavailableAfter {
			s.health.failed()
		}
	}
}
