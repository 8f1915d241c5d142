package transforms

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func init() {
	register.Function2x0(stampMinuteAgo)
	register.Emitter2[beam.EventTime, []byte]()
}

// stampMinuteAgo timestamps a record as if it had arrived a minute ago.
func stampMinuteAgo(b []byte, emit func(beam.EventTime, []byte)) {
	emit(mtime.FromTime(time.Now().Add(-time.Minute)), b)
}

func TestCleanCompositesCountMetrics(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	CleanPin(s, beam.Create(s, lines(
		`{"index": 1, "category": "art"}`,
		`{"index": 2}`,
		`   `,
		`{"index": null}`,
		`[1]`,
		`{"index": 3`,
		`{"index": 4`,
	)...))
	// Geo records timestamped as a stream's: their lag is measured.
	CleanGeo(s, beam.ParDo(s, stampMinuteAgo, beam.Create(s, lines(
		`{"ind": 5, "country": "Chad"}`,
		`{"index": 5}`,
		`{"ind": 6}`,
	)...)))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == MetricsNamespace {
			got[c.Name()] += c.Result()
		}
	}
	want := map[string]int64{
		MetricRead(TablePin):                        6,
		MetricClean(TablePin):                       2,
		MetricRejected(TablePin, ReasonNullKey):     1,
		MetricRejected(TablePin, ReasonNotObject):   1,
		MetricRejected(TablePin, ReasonInvalidJSON): 2,
		MetricRead(TableGeo):                        3,
		MetricClean(TableGeo):                       2,
		MetricRejected(TableGeo, ReasonMissingKey):  1,
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("counter %s = %d, want %d", name, got[name], n)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected counter %s = %d", name, got[name])
		}
	}
	lags := map[string]metrics.DistributionValue{}
	for _, d := range pr.Metrics().AllMetrics().Distributions() {
		if d.Namespace() == MetricsNamespace {
			lags[d.Name()] = d.Result()
		}
	}
	if _, ok := lags[MetricLag(TablePin)]; ok {
		t.Errorf("%s measured records without a timestamp: %+v", MetricLag(TablePin), lags[MetricLag(TablePin)])
	}
	geo, ok := lags[MetricLag(TableGeo)]
	if !ok || geo.Count != 3 || geo.Min < 60_000 || geo.Max > 10*60_000 {
		t.Errorf("%s = %+v (present %v), want 3 lags of about a minute", MetricLag(TableGeo), geo, ok)
	}
}
