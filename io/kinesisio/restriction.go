package kinesisio

import (
	"github.com/pinpipe/pinpipe/io/positions"

	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
)

func init() {
	// The restriction is the checkpoint: it gets its own compact, versioned
	// coder rather than the SDK's default JSON, so that a checkpoint written
	// by one version of the pipeline can be read by the next.
	beam.RegisterCoder(reflect.TypeOf((*restriction)(nil)).Elem(), encodeRestriction, decodeRestriction)
}

// startKind is where a shard is read from before anything has been emitted
// from it.
type startKind uint8

const (
	startTrimHorizon startKind = iota + 1
	// startLatest is the shard's tip when it is first opened; Millis is
	// that time once the reader has opened it ("pinned"), so that a
	// checkpoint taken before the first record resumes there and not at a
	// later tip, which would skip what arrived in between.
	startLatest
	// startAtTimestamp is the first record that arrived at or after Millis.
	startAtTimestamp
)

// startPos is a shard's start position.
type startPos struct {
	Kind   startKind
	Millis int64 // AT_TIMESTAMP's time, or LATEST's pinned time (0: not yet opened)
}

func (p startPos) String() string {
	switch p.Kind {
	case startTrimHorizon:
		return "TRIM_HORIZON"
	case startLatest:
		if p.Millis == 0 {
			return "LATEST"
		}
		return fmt.Sprintf("LATEST@%d", p.Millis)
	case startAtTimestamp:
		return fmt.Sprintf("AT_TIMESTAMP@%d", p.Millis)
	}
	return fmt.Sprintf("start(%d)", p.Kind)
}

// threshold is the arrival time, in Unix ms, before which records are not
// wanted while nothing has been emitted from the shard (0: none). The reader
// drops such records itself, which makes a TRIM_HORIZON iterator a correct
// fallback for AT_TIMESTAMP.
func (p startPos) threshold() int64 {
	if p.Kind == startAtTimestamp || p.Kind == startLatest {
		return p.Millis
	}
	return 0
}

// shardCheckpoint is where one shard is: enough to resume it exactly after
// the last record emitted from it.
type shardCheckpoint struct {
	ShardID string
	Start   startPos // used while LastSeq is empty
	LastSeq string   // sequence number of the last record emitted; resume AFTER it
	// Watermark is the shard's watermark in Unix ms (0: not known yet): the
	// arrival time of the last record emitted, or "now minus the max delay" (ReadMaxDelay)
	// once the shard was caught up.
	Watermark int64
}

// position is the shard's resume position as a string: the key of a cached
// shard iterator, which is valid only for exactly that position.
func (c shardCheckpoint) position() string {
	if c.LastSeq != "" {
		return "AFTER_SEQUENCE_NUMBER:" + c.LastSeq
	}
	return c.Start.String()
}

// restriction is the work of one Read element: the shards it owns that are
// not finished yet. A shard leaves it when it reaches SHARD_END (its children
// join it then) or when the read's end time is reached in it.
type restriction struct {
	Shards []shardCheckpoint
	// Finished are shards that left Shards (SHARD_END, or the end of the
	// read) whose final position is still to be recorded in the checkpoint
	// store: the next call records them, once the runner has made durable
	// the bundle that read their last records. Only a reader with a
	// checkpoint store keeps them.
	Finished []finishedShard
	// Done marks a restriction with nothing left to claim: the primary of a
	// checkpoint, or one whose shards have all finished.
	Done bool
}

// finishedShard is a shard that left a restriction.
type finishedShard struct {
	ShardID string
	LastSeq string
	Closed  bool // SHARD_END was reached: the shard is read whole
}

func (r restriction) clone() restriction {
	return restriction{Shards: slices.Clone(r.Shards), Finished: slices.Clone(r.Finished), Done: r.Done}
}

func (r restriction) isDone() bool { return r.Done || (len(r.Shards) == 0 && len(r.Finished) == 0) }

// watermark is the restriction's watermark in Unix ms: the oldest of its
// shards', or 0 while one of them is not known.
func (r restriction) watermark() int64 {
	if r.isDone() || len(r.Shards) == 0 {
		return 0
	}
	wm := int64(math.MaxInt64)
	for _, s := range r.Shards {
		if s.Watermark == 0 {
			return 0
		}
		wm = min(wm, s.Watermark)
	}
	return wm
}

func (r restriction) index(shard string) int {
	return slices.IndexFunc(r.Shards, func(c shardCheckpoint) bool { return c.ShardID == shard })
}

func (r restriction) String() string {
	var b strings.Builder
	b.WriteString("kinesisio.restriction{")
	for i, s := range r.Shards {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s@%s", s.ShardID, s.position())
	}
	for _, f := range r.Finished {
		fmt.Fprintf(&b, " finished:%s@%s", f.ShardID, f.LastSeq)
	}
	if r.Done {
		b.WriteString(" done")
	}
	b.WriteString("}")
	return b.String()
}

// The positions a reader claims. Every change of a restriction goes through
// TryClaim, so that a checkpoint taken at any moment captures it.
type (
	// claimRecord claims one record: it is emitted, and the shard resumes
	// after it.
	claimRecord struct {
		ShardID string
		Seq     string
		Arrival int64 // Unix ms
	}
	// claimPin fixes a LATEST start at the time the shard was first opened.
	claimPin struct {
		ShardID string
		Millis  int64
	}
	// claimCaughtUp records that the shard had nothing older than Watermark
	// left to give, which moves its watermark.
	claimCaughtUp struct {
		ShardID   string
		Watermark int64
	}
	// claimEnd records that the shard reached SHARD_END: it leaves the
	// restriction and Children (those whose ParentShardId it is) join it.
	claimEnd struct {
		ShardID  string
		Children []string
	}
	// claimStop records that the read's end time was reached in the shard.
	claimStop struct {
		ShardID string
	}
	// claimRecorded records that the Finished shards' final positions are
	// in the checkpoint store: they leave the restriction.
	claimRecorded struct{}
)

// tracker tracks a restriction. It is not safe for concurrent use: the
// reader wraps it in an sdf.LockRTracker, since the runner may split or
// checkpoint it while ProcessElement runs.
type tracker struct {
	rest    restriction
	err     error
	claimed int
	// keepFinished keeps the shards that leave the restriction in Finished
	// until they are recorded (with a checkpoint store).
	keepFinished bool
	// checkpointOnly declines splits other than the checkpoint that ends a
	// call (with a checkpoint store): prism reschedules a dynamic split's
	// residual at once, and its next call would record positions that the
	// bundle still running has not made durable.
	checkpointOnly bool
	processing     bool // inside ProcessElement (set by the reader)
}

var _ sdf.BoundableRTracker = (*tracker)(nil)

func newTracker(r restriction) *tracker { return &tracker{rest: r.clone()} }

// TryClaim applies a claim. It returns false, without an error, for a shard
// the restriction does not hold (a split gave it to another element, or it
// finished): the reader then leaves that shard alone. A record at or before
// the last one emitted is an error: emitting it would double it.
func (t *tracker) TryClaim(pos any) bool {
	if t.err != nil || t.rest.isDone() {
		return false
	}
	if _, ok := pos.(claimRecorded); ok {
		t.rest.Finished = nil
		if len(t.rest.Shards) == 0 {
			t.rest.Done = true
		}
		t.claimed++
		return true
	}
	var shard string
	switch c := pos.(type) {
	case claimRecord:
		shard = c.ShardID
	case claimPin:
		shard = c.ShardID
	case claimCaughtUp:
		shard = c.ShardID
	case claimEnd:
		shard = c.ShardID
	case claimStop:
		shard = c.ShardID
	default:
		t.err = fmt.Errorf("kinesisio: claim of unknown type %T", pos)
		return false
	}
	i := t.rest.index(shard)
	if i < 0 {
		return false
	}
	s := &t.rest.Shards[i]
	switch c := pos.(type) {
	case claimRecord:
		if c.Seq == "" || (s.LastSeq != "" && compareSeq(c.Seq, s.LastSeq) <= 0) {
			t.err = fmt.Errorf("kinesisio: shard %s: record %s claimed after %s: sequence numbers must grow", shard, c.Seq, s.LastSeq)
			return false
		}
		s.LastSeq = c.Seq
		s.Watermark = max(s.Watermark, c.Arrival)
	case claimPin:
		if s.Start.Kind != startLatest || s.Start.Millis != 0 || s.LastSeq != "" {
			t.err = fmt.Errorf("kinesisio: shard %s: pin of a %v start", shard, s.Start)
			return false
		}
		s.Start.Millis = c.Millis
	case claimCaughtUp:
		s.Watermark = max(s.Watermark, c.Watermark)
	case claimEnd:
		parent := *s
		t.rest.Shards = slices.Delete(t.rest.Shards, i, i+1)
		if t.keepFinished {
			t.rest.Finished = append(t.rest.Finished, finishedShard{ShardID: parent.ShardID, LastSeq: parent.LastSeq, Closed: true})
		}
		for _, id := range c.Children {
			if t.rest.index(id) >= 0 {
				continue
			}
			t.rest.Shards = append(t.rest.Shards, shardCheckpoint{
				ShardID:   id,
				Start:     childStart(parent),
				Watermark: parent.Watermark,
			})
		}
	case claimStop:
		if t.keepFinished {
			t.rest.Finished = append(t.rest.Finished, finishedShard{ShardID: s.ShardID, LastSeq: s.LastSeq})
		}
		t.rest.Shards = slices.Delete(t.rest.Shards, i, i+1)
	}
	if len(t.rest.Shards) == 0 && len(t.rest.Finished) == 0 {
		t.rest.Done = true
	}
	t.claimed++
	return true
}

// childStart is where a child shard starts: at its beginning when the parent
// was read from somewhere, since everything in the child came after the
// parent's end; otherwise at the parent's own start, since a child that
// existed before an AT_TIMESTAMP or LATEST start may hold older records.
func childStart(parent shardCheckpoint) startPos {
	if parent.LastSeq != "" || parent.Start.Kind == startTrimHorizon {
		return startPos{Kind: startTrimHorizon}
	}
	if parent.Start.Kind == startLatest {
		return startPos{Kind: startAtTimestamp, Millis: parent.Start.Millis}
	}
	return parent.Start
}

// GetError returns the error that stopped the tracker.
func (t *tracker) GetError() error { return t.err }

// TrySplit at fraction 0 is a checkpoint: the primary is marked done and
// the residual carries every unfinished shard from its current position.
// A fraction above 0 (a runner's dynamic split) gives away whole shards,
// when the restriction owns more than one; shards held together are
// independent (a child joins only after its parent left), so splitting them
// cannot break the parent-before-child order.
func (t *tracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.err != nil {
		return nil, nil, t.err
	}
	if t.rest.isDone() {
		return t.rest.clone(), nil, nil
	}
	if t.checkpointOnly && (fraction > 0 || t.processing) {
		return t.rest.clone(), nil, nil
	}
	if fraction <= 0 {
		res := restriction{Shards: slices.Clone(t.rest.Shards), Finished: slices.Clone(t.rest.Finished)}
		t.rest.Done = true
		return t.rest.clone(), res, nil
	}
	n := len(t.rest.Shards)
	if n < 2 || fraction >= 1 {
		return t.rest.clone(), nil, nil
	}
	keep := min(max(int(math.Ceil(fraction*float64(n))), 1), n-1)
	res := restriction{Shards: slices.Clone(t.rest.Shards[keep:])}
	t.rest.Shards = slices.Clone(t.rest.Shards[:keep])
	return t.rest.clone(), res, nil
}

// GetProgress counts claims done and shards left.
func (t *tracker) GetProgress() (done, remaining float64) {
	if t.rest.isDone() {
		return float64(t.claimed), 0
	}
	return float64(t.claimed), float64(len(t.rest.Shards))
}

// IsDone reports whether nothing is left to claim.
func (t *tracker) IsDone() bool { return t.rest.isDone() }

// GetRestriction returns a copy of the current restriction.
func (t *tracker) GetRestriction() any { return t.rest.clone() }

// IsBounded is false: a shard is read until it ends, which an open shard
// does not do by itself.
func (t *tracker) IsBounded() bool { return t.rest.isDone() }

// compareSeq compares two Kinesis sequence numbers: decimal strings of up to
// 128 digits, without leading zeros.
func compareSeq(a, b string) int { return positions.Compare(a, b) }

// The coder: a version byte, then the restriction with varints and
// length-prefixed strings.
const restrictionCoderVersion = 2 // 2 added Finished; 1 is still read

func encodeRestriction(r restriction) []byte {
	b := []byte{restrictionCoderVersion}
	flags := byte(0)
	if r.Done {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(r.Shards)))
	for _, s := range r.Shards {
		b = appendString(b, s.ShardID)
		b = append(b, byte(s.Start.Kind))
		b = binary.AppendVarint(b, s.Start.Millis)
		b = appendString(b, s.LastSeq)
		b = binary.AppendVarint(b, s.Watermark)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Finished)))
	for _, f := range r.Finished {
		b = appendString(b, f.ShardID)
		b = appendString(b, f.LastSeq)
		if f.Closed {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("kinesisio: corrupt restriction")

func decodeRestriction(b []byte) (restriction, error) {
	d := decoder{b: b}
	v := d.byte()
	if v != restrictionCoderVersion && v != 1 {
		if d.err != nil {
			return restriction{}, d.err
		}
		return restriction{}, fmt.Errorf("kinesisio: restriction coder version %d, want 1 to %d", v, restrictionCoderVersion)
	}
	var r restriction
	r.Done = d.byte()&1 != 0
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		return restriction{}, errCorrupt
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var s shardCheckpoint
		s.ShardID = d.string()
		s.Start.Kind = startKind(d.byte())
		s.Start.Millis = d.varint()
		s.LastSeq = d.string()
		s.Watermark = d.varint()
		r.Shards = append(r.Shards, s)
	}
	if v >= 2 {
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b)) {
			return restriction{}, errCorrupt
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			var f finishedShard
			f.ShardID = d.string()
			f.LastSeq = d.string()
			f.Closed = d.byte() == 1
			r.Finished = append(r.Finished, f)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return restriction{}, d.err
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
