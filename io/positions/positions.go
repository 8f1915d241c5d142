// Package positions is the source-neutral form of a run of source
// positions that a sink made durable: Kafka offsets and Kinesis sequence
// numbers alike, as decimal strings (Kinesis's run to 128 digits, past
// int64). The streaming job's window panes carry spans in this form
// whatever the source, and each source's store (kafkaio.RecordSpans,
// kinesisio.RecordSpans) records them in its own table.
package positions

import (
	"math/big"
	"slices"
	"strings"
)

// Span is a run [From, To] of the positions of one partition (Kafka) or
// shard (Kinesis) of a stream: every record in it has all its outputs
// written. Positions are decimal integers without leading zeros (an empty
// run [s, s-1] marks where a read began, so -1 occurs); a record's
// span starts just after the previous record its read emitted from the
// same partition or shard (at "0" when there is none), so the spans of the
// records tile it without gaps.
type Span struct {
	Stream string // topic or stream
	Part   string // partition number or shard ID
	From   string
	To     string
}

// Compare compares two positions numerically.
func Compare(a, b string) int {
	an, bn := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	switch {
	case an && !bn:
		return -1
	case !an && bn:
		return 1
	case an && bn:
		return Compare(b[1:], a[1:])
	}
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// Next is the position after p.
func Next(p string) string {
	n, ok := new(big.Int).SetString(p, 10)
	if !ok {
		return p
	}
	return n.Add(n, big.NewInt(1)).String()
}

// Merge sorts spans and joins those that touch or overlap, in place.
func Merge(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int {
		if c := strings.Compare(a.Stream, b.Stream); c != 0 {
			return c
		}
		if c := strings.Compare(a.Part, b.Part); c != 0 {
			return c
		}
		return Compare(a.From, b.From)
	})
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].Stream == s.Stream && out[n-1].Part == s.Part &&
			Compare(s.From, Next(out[n-1].To)) <= 0 {
			if Compare(s.To, out[n-1].To) > 0 {
				out[n-1].To = s.To
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// ByPart merges spans (a copy) and splits them into those of each
// partition or shard, in order: what each store records in one go.
func ByPart(spans []Span) [][]Span {
	spans = Merge(slices.Clone(spans))
	var out [][]Span
	for i := 0; i < len(spans); {
		j := i
		for j < len(spans) && spans[j].Stream == spans[i].Stream && spans[j].Part == spans[i].Part {
			j++
		}
		out = append(out, spans[i:j:j])
		i = j
	}
	return out
}

// Settle merges the spans a partition had recorded with newly durable ones
// (all of that one partition), and says whether the added ones changed
// anything, so that a store need not rewrite what it has. The first span
// of all is the unbroken run the partition's positions begin with (see
// FirstRun); the others wait beyond gaps for the records before them.
func Settle(recorded, added []Span) (all []Span, changed bool) {
	old := Merge(slices.Clone(recorded))
	all = Merge(append(slices.Clone(old), added...))
	return all, !slices.Equal(all, old)
}

// FirstRun is the unbroken run that a partition's spans begin with: every
// position in it is durable, so a read resumes after its To. False when
// there are no spans.
func FirstRun(spans []Span) (Span, bool) {
	spans = Merge(slices.Clone(spans))
	if len(spans) == 0 {
		return Span{}, false
	}
	return spans[0], true
}
