package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeKafka reads n records from a topic from its start, or fails the
// test: when they do not come within timeout, or when, looking once more
// briefly, more than n+extra are there (extra: the duplicates a client's
// retries may add; 0 for none).
func ConsumeKafka(t testing.TB, brokers []string, topic string, n, extra int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s before the timeout", len(out), n, topic)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	// Anything more is a duplicate: look once more, briefly.
	pctx, pcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer pcancel()
	out = append(out, cl.PollFetches(pctx).Records()...)
	if len(out) > n+extra {
		t.Fatalf("read %d records from %s, want %d (up to %d with retries)", len(out), topic, n, n+extra)
	}
	return out
}
