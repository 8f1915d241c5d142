package transforms

import (
	"maps"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// TableStats counts what happened to one table's records. The clean
// composites emit one per bundle, DedupJoin adds the dedup figures, and
// MergeStats adds them up per table for the summary.
type TableStats struct {
	Table string `json:"table"`
	// Read is every non-blank input record; Read = Clean + Rejected.
	Read     int64 `json:"read"`
	Clean    int64 `json:"clean"`
	Rejected int64 `json:"rejected"`
	// Duplicates is how many clean rows dedup dropped; Rows is what is left,
	// one per ind.
	Duplicates int64 `json:"duplicates_dropped"`
	Rows       int64 `json:"rows"`
	// RejectedBy counts rejects by reason.
	RejectedBy map[string]int64 `json:"rejected_by_reason"`
	// Unparsable counts, by raw field, values that could not be parsed and
	// were nulled (the row was kept).
	Unparsable map[string]int64 `json:"fields_nulled"`
	// Nulls counts, by output column, the nulls in the final table.
	Nulls map[string]int64 `json:"nulls_by_column"`
}

// Add folds o into s.
func (s *TableStats) Add(o TableStats) {
	s.Read += o.Read
	s.Clean += o.Clean
	s.Rejected += o.Rejected
	s.Duplicates += o.Duplicates
	s.Rows += o.Rows
	s.RejectedBy = addMap(s.RejectedBy, o.RejectedBy)
	s.Unparsable = addMap(s.Unparsable, o.Unparsable)
	s.Nulls = addMap(s.Nulls, o.Nulls)
}

func addMap(dst, src map[string]int64) map[string]int64 {
	if dst == nil {
		dst = map[string]int64{}
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

func (s *TableStats) countUnparsable(fields []string, bad Unparsable) {
	if bad == 0 {
		return
	}
	if s.Unparsable == nil {
		s.Unparsable = map[string]int64{}
	}
	for i, f := range fields {
		if bad&(1<<uint(i)) != 0 {
			s.Unparsable[f]++
		}
	}
}

func (s *TableStats) countReject(reason string) {
	s.Read++
	s.Rejected++
	if s.RejectedBy == nil {
		s.RejectedBy = map[string]int64{}
	}
	s.RejectedBy[reason]++
}

// Summary is the per-table stats of a run, every table present.
type Summary map[string]TableStats

// NewSummary folds per-bundle stats into a summary.
func NewSummary(stats []TableStats) Summary {
	out := Summary{}
	for _, t := range Tables {
		out[t] = TableStats{Table: t, RejectedBy: map[string]int64{}, Unparsable: map[string]int64{}, Nulls: map[string]int64{}}
	}
	for _, s := range stats {
		cur := out[s.Table]
		cur.Add(s)
		out[s.Table] = cur
	}
	return out
}

// Tables returns the summary's table names in canonical order.
func (s Summary) TableNames() []string {
	names := slices.Collect(maps.Keys(s))
	slices.SortFunc(names, func(a, b string) int { return slices.Index(Tables, a) - slices.Index(Tables, b) })
	return names
}

// Summarize folds TableStats into one Summary element, also when there is
// no input at all.
func Summarize(s beam.Scope, stats beam.PCollection) beam.PCollection {
	s = s.Scope("transforms.Summarize")
	stats = beam.Flatten(s, stats, beam.Create(s, TableStats{Table: TablePin}))
	return beam.Combine(s, &summarizeFn{}, stats)
}

type summarizeFn struct{}

func (f *summarizeFn) CreateAccumulator() Summary { return NewSummary(nil) }

func (f *summarizeFn) AddInput(a Summary, st TableStats) Summary {
	cur := a[st.Table]
	cur.Add(st)
	a[st.Table] = cur
	return a
}

func (f *summarizeFn) MergeAccumulators(a, b Summary) Summary {
	for t, st := range b {
		cur := a[t]
		cur.Add(st)
		a[t] = cur
	}
	return a
}

func (f *summarizeFn) ExtractOutput(a Summary) Summary { return a }
