package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
)

func init() {
	register.DoFn1x0[string](&collectFn{})
	register.DoFn3x0[beam.Window, string, int](&collectCountFn{})
	register.Function1x1(allKey)
}

// collected is what the unbounded pipeline's sinks saw, by sink name: prism
// runs the pipeline's workers in this process.
var collected = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

func collect(name, v string) {
	collected.Lock()
	defer collected.Unlock()
	collected.m[name] = append(collected.m[name], v)
}

func seen(name string) []string {
	collected.Lock()
	defer collected.Unlock()
	return slices.Clone(collected.m[name])
}

type collectFn struct{ Name string }

func (fn *collectFn) ProcessElement(v string) { collect(fn.Name, v) }

type collectCountFn struct{ Name string }

// ProcessElement records the count with its window's end.
func (fn *collectCountFn) ProcessElement(w beam.Window, _ string, n int) {
	collect(fn.Name, fmt.Sprintf("%d@%d", n, w.MaxTimestamp().Milliseconds()+1))
}

func allKey(Record) string { return "all" }

// waitFor polls until ok or the timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An unbounded read on prism, stopped by cancelling it: it tails the
// partitions, finds a partition added while it runs, closes an event-time
// window once its partitions are idle, and commits its progress as it goes.
func TestReadUnbounded(t *testing.T) {
	collected.Lock()
	clear(collected.m) // from an earlier run of the test (-count)
	collected.Unlock()
	c := newCluster(t, 2, []string{"u"})
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	ts := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for p := range int32(2) {
		c.produce(t, "u", p, 0, 20, ts)
	}

	p, s := beam.NewPipelineWithRoot()
	recs := Read(s, c.brokers(), []string{"u"}, ReadGroup("gu"),
		ReadPollInterval(20*time.Millisecond), ReadDiscoveryInterval(200*time.Millisecond))
	beam.ParDo0(s, &collectFn{Name: "u-values"}, beam.ParDo(s, recordValue, recs))
	windowed := beam.WindowInto(s, window.NewFixedWindows(time.Minute), recs)
	beam.ParDo0(s, &collectCountFn{Name: "u-windows"}, stats.Count(s, beam.ParDo(s, allKey, windowed)))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := beam.Run(ctx, "prism", p)
		done <- err
	}()

	has := func(name string, want ...any) func() bool {
		return func() bool {
			got := seen(name)
			for _, w := range want {
				if !slices.Contains(got, w.(string)) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "the records written before the start", 20*time.Second, has("u-values", values("u", 2, 0, 20)...))

	// The watermark passes the records' minute once both partitions are
	// caught up (it moves to now minus the max delay): the window fires
	// while the pipeline runs.
	waitFor(t, "the window of the first records", 10*time.Second, has("u-windows", fmt.Sprintf("40@%d", t0.Add(time.Minute).UnixMilli())))

	// The group's offsets follow the read.
	waitFor(t, "the group's offsets", 10*time.Second, func() bool {
		got := c.groupOffsets(t, "gu")
		return got["u/0"] == 20 && got["u/1"] == 20
	})

	// A partition added while the pipeline runs is found and read whole.
	if _, err := c.adm.CreatePartitions(context.Background(), 1, "u"); err != nil {
		t.Fatal(err)
	}
	c.produce(t, "u", 2, 0, 10, nil)
	waitFor(t, "the records of the new partition", 10*time.Second, has("u-values", values("u", 3, 0, 10)[20:]...))

	// Tailing: a record written now arrives within a few poll intervals.
	start := time.Now()
	c.produce(t, "u", 0, 20, 21, nil)
	waitFor(t, "a record written while tailing", 5*time.Second, has("u-values", value("u", 0, 20)))
	t.Logf("a record written while tailing arrived after %v", time.Since(start))

	if got := seen("u-values"); len(got) != 51 {
		slices.Sort(got)
		t.Errorf("%d records, want 51 (no duplicates): %v", len(got), got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the pipeline did not stop after its context was cancelled")
	}
}
