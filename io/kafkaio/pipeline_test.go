package kafkaio

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests run whole pipelines on prism against kfake over TCP.

func init() {
	register.Function1x1(recordValue)
	register.Function2x1(valueAtEventTime)
}

func recordValue(r Record) string { return string(r.Value) }

// valueAtEventTime shows a record's value with its event time, and flags a
// record whose event time is not its Kafka timestamp.
func valueAtEventTime(et beam.EventTime, r Record) string {
	if et.Milliseconds() != r.Timestamp.UnixMilli() {
		return fmt.Sprintf("%s: event time %d, Kafka timestamp %d", r.Value, et.Milliseconds(), r.Timestamp.UnixMilli())
	}
	return fmt.Sprintf("%s@%d", r.Value, et.Milliseconds())
}

// Two topics of three partitions, half written before the pipeline starts
// and half while it runs: each record once, at its Kafka timestamp, and the
// group's offsets at the end of what was read.
func TestReadExactlyOnceWhileWritten(t *testing.T) {
	topics := []string{"a", "b"}
	c := newCluster(t, 3, topics)
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ts := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	ends := map[string]map[int32]int64{}
	for _, topic := range topics {
		ends[topic] = map[int32]int64{}
		for p := range int32(3) {
			c.produce(t, topic, p, 0, 50, ts)
			ends[topic][p] = 100
		}
	}
	go func() { // the other half, in small batches, while the pipeline reads
		time.Sleep(300 * time.Millisecond)
		for i := 50; i < 100; i += 10 {
			for _, topic := range topics {
				for p := range int32(3) {
					c.produce(t, topic, p, i, i+10, ts)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	p, s := beam.NewPipelineWithRoot()
	recs := Read(s, c.brokers(), topics, ReadGroup("g1"), ReadEndOffsets(ends), ReadPollInterval(20*time.Millisecond))
	var want []any
	for _, topic := range topics {
		for p := range int32(3) {
			for i := range 100 {
				want = append(want, fmt.Sprintf("%s@%d", value(topic, p, i), ts(i).UnixMilli()))
			}
		}
	}
	passert.Equals(s, beam.ParDo(s, valueAtEventTime, recs), want...)
	start := time.Now()
	ptest.RunAndValidate(t, p)
	t.Logf("read 600 records in %v", time.Since(start))

	wantOffsets := map[string]int64{}
	for _, topic := range topics {
		for p := range int32(3) {
			wantOffsets[fmt.Sprintf("%s/%d", topic, p)] = 100
		}
	}
	if diff := cmp.Diff(wantOffsets, c.groupOffsets(t, "g1")); diff != "" {
		t.Errorf("group offsets (-want +got):\n%s", diff)
	}
}

// A run from the group's committed offsets reads only what was written
// since the last run, and commits the new end.
func TestReadRestartsFromCommittedOffsets(t *testing.T) {
	c := newCluster(t, 3, []string{"r"})
	for p := range int32(3) {
		c.produce(t, "r", p, 0, 40, nil)
	}
	run := func(from, to int) {
		t.Helper()
		p, s := beam.NewPipelineWithRoot()
		recs := Read(s, c.brokers(), []string{"r"}, ReadGroup("g2"), ReadUntilLatest())
		passert.Equals(s, beam.ParDo(s, recordValue, recs), values("r", 3, from, to)...)
		ptest.RunAndValidate(t, p)
		if diff := cmp.Diff(c.endOffsets(t, "r"), c.groupOffsets(t, "g2")); diff != "" {
			t.Errorf("group offsets after reading %d..%d (-end offsets +committed):\n%s", from, to, diff)
		}
	}
	run(0, 40)
	for p := range int32(3) {
		c.produce(t, "r", p, 40, 55, nil)
	}
	run(40, 55)
	run(55, 55) // nothing new: nothing read
}

func TestReadStartPositions(t *testing.T) {
	c := newCluster(t, 2, []string{"s"})
	for p := range int32(2) {
		c.produce(t, "s", p, 0, 20, nil)
	}
	// A group that committed 5 on partition 0 only.
	if err := commitOffset(c.adm, c.brokers(), "g3", "s", 0, 5, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []ReadOptionFn
		want []any
	}{
		{"earliest", []ReadOptionFn{ReadStart(StartEarliest)}, values("s", 2, 0, 20)},
		{"latest", []ReadOptionFn{ReadStart(StartLatest)}, nil},
		{"committed", []ReadOptionFn{ReadGroup("g3")}, append(values("s", 1, 5, 20), values("s", 2, 0, 20)[20:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			recs := Read(s, c.brokers(), []string{"s"}, append(tc.opts, ReadUntilLatest())...)
			passert.Equals(s, beam.ParDo(s, recordValue, recs), tc.want...)
			ptest.RunAndValidate(t, p)
		})
	}
}

// Write produces []byte values and Records; a plain consumer reads them
// back, with the Records' keys and timestamps.
func TestWriteRoundTrip(t *testing.T) {
	c := newCluster(t, 2, []string{"wb", "wr"})
	var vals [][]byte
	var recs []Record
	t0 := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		vals = append(vals, []byte(fmt.Sprintf("v%02d", i)))
		recs = append(recs, Record{Topic: "ignored", Offset: 99, Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("r%02d", i)), Timestamp: t0.Add(time.Duration(i) * time.Minute)})
	}
	p, s := beam.NewPipelineWithRoot()
	Write(s, c.brokers(), "wb", beam.CreateList(s, vals))
	Write(s, c.brokers(), "wr", beam.CreateList(s, recs), WriteCompression("zstd"))
	ptest.RunAndValidate(t, p)

	got := consume(t, c, map[string]int{"wb": 50, "wr": 50})
	var gotVals []string
	for _, r := range got["wb"] {
		gotVals = append(gotVals, string(r.Value))
		if r.Key != nil {
			t.Errorf("value written with key %q", r.Key)
		}
	}
	slices.Sort(gotVals)
	for i, v := range gotVals {
		if v != string(vals[i]) {
			t.Fatalf("values: %v", gotVals)
		}
	}
	byValue := map[string]*kgo.Record{}
	for _, r := range got["wr"] {
		byValue[string(r.Value)] = r
	}
	for _, want := range recs {
		r := byValue[string(want.Value)]
		if r == nil || string(r.Key) != string(want.Key) || !r.Timestamp.Equal(want.Timestamp) {
			t.Errorf("record %s: got %+v", want.Value, r)
		}
	}
	// Records of one key go to one partition, in order.
	for _, r := range got["wr"] {
		if first := byValue[fmt.Sprintf("r%02d", mustAtoi(t, string(r.Key)))]; first.Partition != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, first.Partition, r.Partition)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	var i int
	if _, err := fmt.Sscan(s, &i); err != nil {
		t.Fatal(err)
	}
	return i
}

// consume reads want[topic] records of each topic with a plain franz-go
// consumer, and checks that there are no more.
func consume(t *testing.T, c *cluster, want map[string]int) map[string][]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics(slices.Collect(maps.Keys(want))...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]*kgo.Record{}
	n, total := 0, 0
	for _, w := range want {
		total += w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", n, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Topic] = append(got[r.Topic], r)
			n++
		})
	}
	if ends := c.endOffsets(t, slices.Collect(maps.Keys(want))...); sum(ends) != int64(total) {
		t.Errorf("topics hold %v records, want %d", ends, total)
	}
	return got
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
