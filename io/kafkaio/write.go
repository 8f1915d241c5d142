package kafkaio

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register.DoFn2x1[context.Context, []byte, error](&writeBytesFn{})
	register.DoFn2x1[context.Context, Record, error](&writeRecordFn{})
}

var (
	bytesType  = reflect.TypeOf([]byte(nil))
	recordType = reflect.TypeOf(Record{})
)

// Write produces col to topic on the Kafka cluster at brokers. col holds
// []byte values (produced without a key) or Records, of which the Key,
// Value and, when set, Timestamp are produced (Topic, Partition and Offset
// are ignored, so a read can be written elsewhere as it is). Records are
// produced with acks=all by the idempotent producer and flushed at the end
// of each bundle: a bundle succeeds only once Kafka has all its records, and
// one that fails is retried whole, so delivery is at least once. It panics
// on invalid input, as other Beam IOs do at construction time.
func Write(s beam.Scope, brokers []string, topic string, col beam.PCollection, opts ...WriteOptionFn) {
	s = s.Scope("kafkaio.Write")
	o := &writeOption{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			panic(fmt.Sprintf("kafkaio.Write: %v", err))
		}
	}
	if len(brokers) == 0 || topic == "" {
		panic("kafkaio.Write: needs brokers and a topic")
	}
	w := func() writeFn { return writeFn{Brokers: brokers, Topic: topic, Compression: o.Compression} }
	switch t := col.Type().Type(); t {
	case bytesType:
		beam.ParDo0(s, &writeBytesFn{w()}, col)
	case recordType:
		beam.ParDo0(s, &writeRecordFn{w()}, col)
	default:
		panic(fmt.Sprintf("kafkaio.Write: elements must be []byte or kafkaio.Record, not %v", t))
	}
}

// writeFn is the producer shared by both element types: one client per
// DoFn instance, records buffered through a bundle and flushed at its end.
type writeFn struct {
	Brokers     []string
	Topic       string
	Compression string

	cl  *kgo.Client
	mu  sync.Mutex
	err error // the first failed record of the bundle
}

func (fn *writeFn) Setup() error {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(fn.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	if fn.Compression != "" {
		c, err := compressionCodec(fn.Compression)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.ProducerBatchCompression(c))
	}
	cl, err := newClient(fn.Brokers, opts...)
	if err != nil {
		return err
	}
	fn.cl = cl
	return nil
}

func (fn *writeFn) StartBundle() {
	fn.mu.Lock()
	fn.err = nil
	fn.mu.Unlock()
}

// produce buffers r; its result arrives in done, on a client goroutine.
func (fn *writeFn) produce(ctx context.Context, r *kgo.Record) {
	fn.cl.Produce(ctx, r, fn.done)
}

func (fn *writeFn) done(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	fn.mu.Lock()
	if fn.err == nil {
		fn.err = fmt.Errorf("kafkaio: produce to %s: %w", r.Topic, err)
	}
	fn.mu.Unlock()
}

// FinishBundle waits until every record of the bundle is acknowledged or
// failed, and fails the bundle if any failed.
func (fn *writeFn) FinishBundle(ctx context.Context) error {
	if err := fn.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafkaio: flush: %w", err)
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.err
}

func (fn *writeFn) Teardown() {
	if fn.cl != nil {
		fn.cl.Close()
	}
}

type writeBytesFn struct{ writeFn }

func (fn *writeBytesFn) ProcessElement(ctx context.Context, v []byte) error {
	fn.produce(ctx, &kgo.Record{Value: v})
	return nil
}

type writeRecordFn struct{ writeFn }

func (fn *writeRecordFn) ProcessElement(ctx context.Context, r Record) error {
	fn.produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
	return nil
}
