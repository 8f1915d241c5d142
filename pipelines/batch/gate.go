package batch

import (
	"fmt"
	"strings"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

// RejectRateError is a run that rejected more of a table's records than
// Options.MaxRejectRate allows. The run is committed.
type RejectRateError struct {
	// Over are the tables over their limit, in transforms.Tables order.
	Over []RejectRate
	// DeadLetters is where the run's dead letters are.
	DeadLetters string
}

// RejectRate is one table's rejects against its limit.
type RejectRate struct {
	Table          string
	Rejected, Read int64
	Max            float64
}

// Rate is the fraction of the records read that were rejected.
func (r RejectRate) Rate() float64 {
	if r.Read == 0 {
		return 0
	}
	return float64(r.Rejected) / float64(r.Read)
}

func (e *RejectRateError) Error() string {
	var b strings.Builder
	b.WriteString("data-quality gate: ")
	for i, r := range e.Over {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "table %s rejected %.4g%% of its records (%d of %d), more than --max-reject-rate=%g",
			r.Table, 100*r.Rate(), r.Rejected, r.Read, r.Max)
	}
	fmt.Fprintf(&b, " (the run is committed; its dead letters are in %s)", e.DeadLetters)
	return b.String()
}

// checkRejectRates is the data-quality gate over a run's summary.
func checkRejectRates(sum transforms.Summary, limits map[string]float64, output string) error {
	var over []RejectRate
	for _, t := range transforms.Tables {
		limit, ok := limits[t]
		st, ran := sum[t]
		if !ok || !ran {
			continue
		}
		r := RejectRate{Table: t, Rejected: st.Rejected, Read: st.Read, Max: limit}
		if r.Rate() > limit {
			over = append(over, r)
		}
	}
	if len(over) == 0 {
		return nil
	}
	return &RejectRateError{Over: over, DeadLetters: files.Join(output, DeadLetterDir)}
}
