package kinesisio

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
)

func trim(id string) shardCheckpoint {
	return shardCheckpoint{ShardID: id, Start: startPos{Kind: startTrimHorizon}}
}

func TestTrackerClaimRecords(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{trim("s0"), trim("s1")}})
	if !tr.TryClaim(claimRecord{ShardID: "s0", Seq: "100", Arrival: 5000}) {
		t.Fatal("first claim failed")
	}
	if !tr.TryClaim(claimRecord{ShardID: "s0", Seq: "99999", Arrival: 4000}) {
		t.Fatal("claim of a longer (larger) sequence number failed")
	}
	r := tr.GetRestriction().(restriction)
	if got := r.Shards[0]; got.LastSeq != "99999" || got.Watermark != 5000 {
		t.Errorf("s0 = %+v, want LastSeq 99999 and the watermark kept at 5000", got)
	}
	if r.watermark() != 0 {
		t.Errorf("watermark with s1 unknown = %d, want 0 (held)", r.watermark())
	}
	if tr.TryClaim(claimRecord{ShardID: "s9", Seq: "1"}) || tr.GetError() != nil {
		t.Errorf("claim on a shard not held: want false without error, got error %v", tr.GetError())
	}
	// A record at or before the last one would be emitted twice.
	if tr.TryClaim(claimRecord{ShardID: "s0", Seq: "99999"}) {
		t.Fatal("claim of the same sequence number succeeded")
	}
	if tr.GetError() == nil {
		t.Fatal("claim of the same sequence number: no error")
	}
	if tr.TryClaim(claimRecord{ShardID: "s1", Seq: "5"}) {
		t.Error("claim after an error succeeded")
	}
}

func TestTrackerCheckpoint(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{trim("s0"), trim("s1")}})
	tr.TryClaim(claimRecord{ShardID: "s0", Seq: "7", Arrival: 1000})
	tr.TryClaim(claimCaughtUp{ShardID: "s1", Watermark: 900})
	p, r, err := tr.TrySplit(0)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.IsDone() || !p.(restriction).Done {
		t.Errorf("after a checkpoint the primary must be done: IsDone=%v primary=%v", tr.IsDone(), p)
	}
	if tr.TryClaim(claimRecord{ShardID: "s0", Seq: "8"}) {
		t.Error("claim after a checkpoint succeeded")
	}
	want := restriction{Shards: []shardCheckpoint{
		{ShardID: "s0", Start: startPos{Kind: startTrimHorizon}, LastSeq: "7", Watermark: 1000},
		{ShardID: "s1", Start: startPos{Kind: startTrimHorizon}, Watermark: 900},
	}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("residual (-want +got):\n%s", diff)
	}
	if got := want.watermark(); got != 900 {
		t.Errorf("residual watermark = %d, want 900 (the older shard)", got)
	}
	if got := want.Shards[0].position(); got != "AFTER_SEQUENCE_NUMBER:7" {
		t.Errorf("resume position = %q", got)
	}
	// A done tracker does not split.
	if _, r, _ := tr.TrySplit(0); r != nil {
		t.Errorf("done tracker split: residual %v", r)
	}
}

func TestTrackerDynamicSplit(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{trim("a"), trim("b"), trim("c")}})
	p, r, err := tr.TrySplit(0.5)
	if err != nil || r == nil {
		t.Fatalf("TrySplit(0.5) = %v, %v, %v", p, r, err)
	}
	if got := len(p.(restriction).Shards); got != 2 {
		t.Errorf("primary has %d shards, want 2", got)
	}
	if got := r.(restriction).Shards; len(got) != 1 || got[0].ShardID != "c" {
		t.Errorf("residual = %v, want shard c", got)
	}
	if tr.TryClaim(claimRecord{ShardID: "c", Seq: "1"}) || tr.GetError() != nil {
		t.Error("the primary still claims a shard it gave away")
	}
	if !tr.TryClaim(claimRecord{ShardID: "a", Seq: "1"}) {
		t.Error("the primary cannot claim its own shard")
	}
	one := newTracker(restriction{Shards: []shardCheckpoint{trim("a")}})
	if _, r, _ := one.TrySplit(0.5); r != nil {
		t.Errorf("a single shard split: residual %v", r)
	}
}

func TestTrackerEndAndStop(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{trim("p"), trim("q")}})
	tr.TryClaim(claimRecord{ShardID: "p", Seq: "3", Arrival: 2000})
	if !tr.TryClaim(claimEnd{ShardID: "p", Children: []string{"c1", "c2"}}) {
		t.Fatal("end claim failed")
	}
	r := tr.GetRestriction().(restriction)
	var ids []string
	for _, s := range r.Shards {
		ids = append(ids, s.ShardID)
		if s.ShardID != "q" && (s.Start.Kind != startTrimHorizon || s.Watermark != 2000 || s.LastSeq != "") {
			t.Errorf("child %+v: want TRIM_HORIZON with the parent's watermark", s)
		}
	}
	if diff := cmp.Diff([]string{"q", "c1", "c2"}, ids); diff != "" {
		t.Errorf("shards after SHARD_END (-want +got):\n%s", diff)
	}
	// Merged into a child that the other parent's element takes.
	tr.TryClaim(claimEnd{ShardID: "q"})
	tr.TryClaim(claimStop{ShardID: "c1"})
	if tr.IsDone() {
		t.Fatal("done with c2 left")
	}
	tr.TryClaim(claimStop{ShardID: "c2"})
	if !tr.IsDone() || tr.GetError() != nil {
		t.Errorf("after every shard ended: IsDone=%v err=%v", tr.IsDone(), tr.GetError())
	}
	if _, r, _ := tr.TrySplit(0); r != nil {
		t.Errorf("finished restriction checkpointed a residual %v", r)
	}
}

func TestChildStart(t *testing.T) {
	at := startPos{Kind: startAtTimestamp, Millis: 1234}
	for _, tc := range []struct {
		parent shardCheckpoint
		want   startPos
	}{
		{shardCheckpoint{Start: at, LastSeq: "5"}, startPos{Kind: startTrimHorizon}},
		{shardCheckpoint{Start: startPos{Kind: startTrimHorizon}}, startPos{Kind: startTrimHorizon}},
		{shardCheckpoint{Start: at}, at},
		{shardCheckpoint{Start: startPos{Kind: startLatest, Millis: 1234}}, at},
	} {
		if got := childStart(tc.parent); got != tc.want {
			t.Errorf("childStart(%+v) = %v, want %v", tc.parent, got, tc.want)
		}
	}
}

func TestTrackerPin(t *testing.T) {
	tr := newTracker(restriction{Shards: []shardCheckpoint{{ShardID: "s", Start: startPos{Kind: startLatest}}}})
	if !tr.TryClaim(claimPin{ShardID: "s", Millis: 42}) {
		t.Fatal(tr.GetError())
	}
	if got := tr.GetRestriction().(restriction).Shards[0].position(); got != "LATEST@42" {
		t.Errorf("pinned position = %q", got)
	}
	if tr.TryClaim(claimPin{ShardID: "s", Millis: 43}) || tr.GetError() == nil {
		t.Error("a second pin was accepted")
	}
}

func TestRestrictionCoder(t *testing.T) {
	long := strings.Repeat("9", 56)
	for _, r := range []restriction{
		{},
		{Done: true},
		{Shards: []shardCheckpoint{
			{ShardID: "shardId-000000000000", Start: startPos{Kind: startTrimHorizon}, LastSeq: long, Watermark: time.Now().UnixMilli()},
			{ShardID: "shardId-000000000007", Start: startPos{Kind: startAtTimestamp, Millis: 1700000000123}},
			{ShardID: "x", Start: startPos{Kind: startLatest, Millis: -5}, Watermark: -62135596800000},
		}},
	} {
		got, err := decodeRestriction(encodeRestriction(r))
		if err != nil {
			t.Fatalf("decode(%v): %v", r, err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		// The coder registered with Beam is this one.
		if diff := cmp.Diff(r, beamRoundTrip(t, r)); diff != "" {
			t.Errorf("Beam coder round trip (-want +got):\n%s", diff)
		}
	}
	// Every truncation and a wrong version fail rather than decode garbage.
	b := encodeRestriction(restriction{Shards: []shardCheckpoint{trim("shardId-1"), {ShardID: "s2", LastSeq: "12"}}})
	for i := range b {
		if _, err := decodeRestriction(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := decodeRestriction(append(b, 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	bad := append([]byte{9}, b[1:]...)
	if _, err := decodeRestriction(bad); err == nil {
		t.Error("unknown version: no error")
	}
}

func TestCompareSeq(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", -1}, {"5", "5", 0},
	} {
		if got := compareSeq(tc.a, tc.b); got != tc.want {
			t.Errorf("compareSeq(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRootShards(t *testing.T) {
	sh := func(id, parent, adjacent string, closed bool) types.Shard {
		s := types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if parent != "" {
			s.ParentShardId = aws.String(parent)
		}
		if adjacent != "" {
			s.AdjacentParentShardId = aws.String(adjacent)
		}
		if closed {
			s.SequenceNumberRange.EndingSequenceNumber = aws.String("2")
		}
		return s
	}
	shards := []types.Shard{
		sh("0", "", "", true),     // split into 2 and 3
		sh("1", "", "", true),     // merged with 3 into 4
		sh("2", "0", "", false),   // child of 0
		sh("3", "0", "", true),    // child of 0, merged
		sh("4", "3", "1", false),  // merge child: belongs to 3's element
		sh("5", "gone", "", true), // parent expired
		sh("6", "5", "", false),
	}
	if diff := cmp.Diff([]string{"0", "1", "5"}, rootShards(shards, startTrimHorizon)); diff != "" {
		t.Errorf("TRIM_HORIZON roots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"0", "1", "5"}, rootShards(shards, startAtTimestamp)); diff != "" {
		t.Errorf("AT_TIMESTAMP roots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2", "4", "6"}, rootShards(shards, startLatest)); diff != "" {
		t.Errorf("LATEST roots (-want +got):\n%s", diff)
	}
}

func TestWatermarkEstimator(t *testing.T) {
	we := newWatermarkEstimator(1000)
	we.advance(0) // unknown
	we.advance(500)
	if got := we.CurrentWatermark().UnixMilli(); got != 1000 {
		t.Errorf("watermark moved back or to unknown: %d", got)
	}
	we.advance(2500)
	if got := we.CurrentWatermark(); !got.Equal(time.UnixMilli(2500)) {
		t.Errorf("watermark = %v, want 2500 ms", got)
	}
	r := restriction{Shards: []shardCheckpoint{{ShardID: "a", Watermark: 30}, {ShardID: "b", Watermark: 20}}}
	if r.watermark() != 20 {
		t.Errorf("restriction watermark = %d, want the oldest shard's, 20", r.watermark())
	}
	if (restriction{Done: true}).watermark() != 0 {
		t.Error("a done restriction has a watermark")
	}
}
