package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The pipeline tests run on prism (ptest's default runner): the legacy
// direct runner cannot run an unbounded SDF.
func TestMain(m *testing.M) { ptest.Main(m) }

// cluster is an in-process Kafka (kfake) on a real TCP port.
type cluster struct {
	addr string
	cl   *kgo.Client // produces to explicit partitions
	adm  *kadm.Client
}

func newCluster(t *testing.T, partitions int32, topics []string, opts ...kfake.Opt) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{addr: addr, cl: cl, adm: kadm.NewClient(cl)}
}

func (c *cluster) brokers() []string { return []string{c.addr} }

// value is the value of the i-th test record of topic/partition: unique,
// so a duplicate or a gap shows in the output.
func value(topic string, partition int32, i int) string {
	return fmt.Sprintf("%s/%d/%05d", topic, partition, i)
}

// produce writes records from..to-1 (by value) to topic/partition, each
// timestamped ts(i) when ts is set.
func (c *cluster) produce(t *testing.T, topic string, partition int32, from, to int, ts func(i int) time.Time) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Key: []byte(fmt.Sprint(i)), Value: []byte(value(topic, partition, i))}
		if ts != nil {
			r.Timestamp = ts(i)
		}
		rs = append(rs, r)
	}
	for try := 0; ; try++ {
		err := c.cl.ProduceSync(context.Background(), rs...).FirstErr()
		if err == nil {
			return
		}
		if try == 20 {
			t.Fatalf("produce: %v", err)
		}
		// A partition just added: the client learns of it from new metadata.
		c.cl.ForceMetadataRefresh()
		time.Sleep(100 * time.Millisecond)
	}
}

// groupOffsets returns the committed offsets of group as topic/partition → offset.
func (c *cluster) groupOffsets(t *testing.T, group string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	os, err := c.adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) { // nothing committed yet
		return got
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Errorf("offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		got[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.At
	})
	return got
}

// endOffsets returns the high watermarks of topics as topic/partition → offset.
func (c *cluster) endOffsets(t *testing.T, topics ...string) map[string]int64 {
	t.Helper()
	ends, err := c.adm.ListEndOffsets(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) { got[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset })
	return got
}

// values lists the values of the records from..to-1 of each partition.
func values(topic string, partitions int32, from, to int) []any {
	var vs []any
	for p := range partitions {
		for i := from; i < to; i++ {
			vs = append(vs, value(topic, p, i))
		}
	}
	return vs
}

func offsets(topic string, partition int32, at int64) kadm.Offsets {
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: partition, At: at, LeaderEpoch: -1})
	return os
}
