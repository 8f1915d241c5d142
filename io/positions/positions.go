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
// written. Positions are decimal strings without leading zeros; a record's
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
