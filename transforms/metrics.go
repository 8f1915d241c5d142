package transforms

import (
	"context"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

// MetricsNamespace is the namespace of the Beam metrics the cleaning
// composites record, so that a runner's UI (Flink's, Dataflow's) and the
// pipeline's results show them. Per table:
//
//   - records_read_<table>: records read (blank lines are no records),
//   - records_clean_<table>: records cleaned into rows,
//   - records_rejected_<table>_<reason>: records sent to the dead letters,
//     by reason (the Reason* constants),
//   - lag_ms_<table>: a distribution of each record's age, in
//     milliseconds, when it is cleaned: the processing time less its
//     element timestamp (a streaming source's arrival time). Records
//     without a timestamp (a batch read's) are not measured.
const MetricsNamespace = "pinpipe"

// MetricRead, MetricClean, MetricRejected and MetricLag name a table's
// Beam metrics in MetricsNamespace.
func MetricRead(table string) string  { return "records_read_" + table }
func MetricClean(table string) string { return "records_clean_" + table }
func MetricRejected(table, reason string) string {
	return "records_rejected_" + table + "_" + reason
}
func MetricLag(table string) string { return "lag_ms_" + table }

// cleanMetrics are one table's Beam metrics.
type cleanMetrics struct {
	read, clean beam.Counter
	lag         beam.Distribution
	table       string
	rejected    sync.Map // reason -> *beam.Counter
}

var tableMetrics = func() map[string]*cleanMetrics {
	m := map[string]*cleanMetrics{}
	for _, t := range Tables {
		m[t] = &cleanMetrics{
			read:  beam.NewCounter(MetricsNamespace, MetricRead(t)),
			clean: beam.NewCounter(MetricsNamespace, MetricClean(t)),
			lag:   beam.NewDistribution(MetricsNamespace, MetricLag(t)),
			table: t,
		}
	}
	return m
}()

func (m *cleanMetrics) rejectedBy(reason string) *beam.Counter {
	if c, ok := m.rejected.Load(reason); ok {
		return c.(*beam.Counter)
	}
	c := beam.NewCounter(MetricsNamespace, MetricRejected(m.table, reason))
	v, _ := m.rejected.LoadOrStore(reason, &c)
	return v.(*beam.Counter)
}

// record counts one record: read, then clean or rejected (reason not
// empty), and measures its lag when it has a timestamp.
func (m *cleanMetrics) record(ctx context.Context, et beam.EventTime, reason string) {
	m.read.Inc(ctx, 1)
	if reason == "" {
		m.clean.Inc(ctx, 1)
	} else {
		m.rejectedBy(reason).Inc(ctx, 1)
	}
	if et > mtime.MinTimestamp && et < mtime.MaxTimestamp {
		if lag := time.Since(et.ToTime()).Milliseconds(); lag >= 0 {
			m.lag.Update(ctx, lag)
		}
	}
}
