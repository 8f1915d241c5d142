// Package kafkaio reads and writes Apache Kafka topics from Beam pipelines
// natively, with franz-go, so that no Java expansion service is needed. It
// follows the shape of Beam's own native unbounded IO, io/natsio.
//
// # Reading
//
// Read is an unbounded splittable DoFn over topic partitions:
//
//	impulse ─► topics ─► discover (SDF, one element per topic) ─► read (SDF, one element per partition) ─► Record
//
// The discover step lists each topic's partitions and hands every partition,
// with the offsets it starts (and, for a bounded read, ends) at, to the read
// step. Its restriction is the range of partition numbers [0, ∞): partitions
// are numbered 0..n-1 and n only grows, so claiming partition p once and
// checkpointing at p+1 emits every partition exactly once, including those
// added while the pipeline runs (it re-lists every ReadDiscoveryInterval).
//
// The read step holds one offset restriction per partition, [start, ∞) (or
// bounded, see ReadUntilLatest), tracked by offsetrange's growable tracker. It claims exactly
// each record's offset, so the checkpoint taken when it pauses resumes at
// the last record + 1: nothing is read twice and nothing is skipped (gaps
// left by compaction or transaction markers are fine, claims only have to
// increase). When a partition is caught up it returns ResumeProcessingIn(poll)
// and the runner calls it again after the poll interval: records reach the
// next stage about poll/2 after they arrive on prism.
//
// Event times are the records' timestamps (CreateTime or LogAppendTime,
// whichever the topic keeps) or, with ReadProcessingTime, the time they are
// read. The watermark of a partition is the largest timestamp seen minus
// ReadMaxDelay, and when the partition is caught up it moves to now minus
// ReadMaxDelay, so an idle partition does not hold the pipeline back.
//
// With ReadGroup, progress is committed to the consumer group, and only
// progress the runner has made durable: each call on a partition first
// commits its restriction's start, since every record before it was
// emitted by bundles the runner has already committed (this restriction is
// the residual it persisted with them). A bounded partition's restriction
// carries one extra offset, an end marker, so that a last call commits its
// end once the bundles that read its last records are durable. Commits are
// made at most every second per partition and never move a group's offset
// backwards within one process; a restart from the group's offsets (the
// default start with a group) loses nothing and re-reads at most the last
// second or so before the stop. (Beam's bundle finalization is meant for
// this, but in Beam Go v2.77.0 a plan runs only its first bundle's
// callbacks: see readFn.ProcessElement.) The read declines runners'
// dynamic splits of a partition and only checkpoints: the second half of a
// split could commit its start before the first half is durable.
//
// Group offsets only cover what the read's own bundle writes (fused
// sinks). Outputs that wait in the runner's state, such as the window
// panes of a GroupByKey, are not durable when the next bundle starts: on a
// local runner a crash loses them, and a restart from the group's offsets
// never reads their records again. ReadDurablePositions is for those pipelines:
// each emitted Record carries the span of offsets it accounts for
// ([From, Offset], the spans tiling the partition), the pipeline's sinks
// record spans in PositionTable with RecordSpans once every output of
// their records is written (in the same transaction as the last of them),
// and the read resumes each partition at the end of the first unbroken run
// of recorded spans (DurableStart). The read itself records nothing there
// but where a partition's reading starts.
//
// # Writing
//
// Write produces []byte values or Records (key, value, timestamp) to one
// topic with acks=all and the idempotent producer, flushing at the end of
// each bundle so that a bundle succeeds only when Kafka has all its records.
//
// # Runners
//
// The legacy direct runner cannot run an unbounded SDF; use prism (in
// process, or as a job server), Flink or Dataflow. To end a pipeline that
// reads Kafka, make the read finite (ReadUntilLatest, ReadEndOffsets) or
// drain it (ReadDrainMarker, io/drain): cancelling the run's context is not
// a drain.
package kafkaio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Record)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Record)(nil)).Elem(), encodeRecord, decodeRecord)
}

// Record is one Kafka record, as Read emits it and as Write accepts it.
// Timestamp has millisecond precision, as in Kafka; a nil Key or Value is
// Kafka's null (a nil Value is a tombstone), distinct from an empty one.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time

	// From is, on a record Read emitted, the first offset this record
	// accounts for: the offset after the previous record the read emitted
	// from the partition (or where its reading started), so that the
	// records' [From, Offset] spans tile the partition without gaps, even
	// across offsets with no record (compaction, transaction markers,
	// retention). See Span and RecordSpans. Write ignores it.
	From int64
	// Watermark is the partition's watermark (its own, in milliseconds)
	// when Read emitted the record. Write ignores it.
	Watermark int64
}

// encodeRecord is Record's coder: a compact varint encoding, a few bytes
// more than the key and value, where the default schema coder would spend
// more on the time and the nulls.
func encodeRecord(r Record) ([]byte, error) {
	b := make([]byte, 0, len(r.Topic)+len(r.Key)+len(r.Value)+4*binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(r.Topic)))
	b = append(b, r.Topic...)
	b = binary.AppendVarint(b, int64(r.Partition))
	b = binary.AppendVarint(b, r.Offset)
	b = appendNullable(b, r.Key)
	b = appendNullable(b, r.Value)
	var ms int64
	if !r.Timestamp.IsZero() {
		ms = r.Timestamp.UnixMilli()
	}
	b = binary.AppendVarint(b, ms)
	if r.Timestamp.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	b = binary.AppendVarint(b, r.From)
	b = binary.AppendVarint(b, r.Watermark)
	return b, nil
}

// appendNullable writes length+1, or 0 for nil, then the bytes.
func appendNullable(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

var errShortRecord = errors.New("kafkaio: truncated record encoding")

func decodeRecord(b []byte) (Record, error) {
	var r Record
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return r, errShortRecord
	}
	r.Topic = string(b[k : k+int(n)])
	b = b[k+int(n):]
	p, k := binary.Varint(b)
	if k <= 0 {
		return r, errShortRecord
	}
	r.Partition = int32(p)
	b = b[k:]
	if r.Offset, k = binary.Varint(b); k <= 0 {
		return r, errShortRecord
	}
	b = b[k:]
	var err error
	if r.Key, b, err = readNullable(b); err != nil {
		return r, err
	}
	if r.Value, b, err = readNullable(b); err != nil {
		return r, err
	}
	ms, k := binary.Varint(b)
	if k <= 0 || len(b) < k+1 {
		return r, errShortRecord
	}
	if b[k] == 1 {
		r.Timestamp = time.UnixMilli(ms).UTC()
	}
	b = b[k+1:]
	if r.From, k = binary.Varint(b); k <= 0 {
		return r, errShortRecord
	}
	b = b[k:]
	if r.Watermark, k = binary.Varint(b); k <= 0 || len(b) != k {
		return r, errShortRecord
	}
	return r, nil
}

func readNullable(b []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errShortRecord
	}
	if n == 0 {
		return nil, b[k:], nil
	}
	n--
	if uint64(len(b)-k) < n {
		return nil, nil, errShortRecord
	}
	v = make([]byte, n)
	copy(v, b[k:])
	return v, b[k+int(n):], nil
}

// newClient opens a franz-go client on the seed brokers. It connects lazily,
// so Setup does not fail while a broker is briefly away.
func newClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafkaio: no brokers")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("pinpipe-kafkaio")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: client: %w", err)
	}
	return cl, nil
}
