package emulator_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// sentPosts runs the emulator against a fresh stub and returns the posts it
// sent, in the order their records arrived.
func sentPosts(t *testing.T, cfg emulator.Config) ([]int64, emulator.Summary) {
	t.Helper()
	s := newStub(t, nil)
	cfg.Gateway = s.URL
	sum, err := emulator.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, r := range s.requests() {
		recs = append(recs, parseKafka(t, r, cfg.TopicPrefix))
	}
	if cfg.Concurrency > 1 {
		// The records of concurrent posts interleave: group them by post,
		// pin, geo, user, in the order of the posts' first records.
		byPost := map[int64][]record{}
		var order []int64
		for _, r := range recs {
			if byPost[r.ind] == nil {
				order = append(order, r.ind)
			}
			byPost[r.ind] = append(byPost[r.ind], r)
		}
		recs = recs[:0]
		for _, ind := range order {
			recs = append(recs, byPost[ind]...)
		}
	}
	return checkPosts(t, recs), sum
}

func keyRange(from, to int64) []int64 {
	var out []int64
	for k := from; k < to; k++ {
		out = append(out, k)
	}
	return out
}

// TestAll: every post once, in a random order that the seed repeats.
func TestAll(t *testing.T) {
	const posts = 200
	cfg := emulator.Config{Target: "kafka", TopicPrefix: "all", Posts: posts, Seed: 5, All: true}
	order, sum := sentPosts(t, cfg)
	if sum.Posts != posts || sum.Sent != posts || sum.Records != 3*posts || sum.Failed != 0 {
		t.Errorf("summary %+v, want %d posts sent", sum, posts)
	}
	sorted := slices.Sorted(slices.Values(order))
	if !slices.Equal(sorted, keyRange(0, posts)) {
		t.Fatalf("sent posts %v, want each of 0-%d once", sorted, posts-1)
	}
	if slices.Equal(order, sorted) {
		t.Errorf("the posts were sent in key order, not a random one")
	}
	g := generate.New(5, posts)
	s := newStub(t, nil)
	one := cfg
	one.Gateway, one.Count = s.URL, 3
	if _, err := emulator.Run(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.requests() {
		checkRecord(t, g, parseKafka(t, r, "all"))
	}

	// The same seed, the same order; another seed, another.
	if again, _ := sentPosts(t, cfg); !slices.Equal(again, order) {
		t.Errorf("the same seed sent another order")
	}
	other := cfg
	other.Seed = 6
	if o, _ := sentPosts(t, other); slices.Equal(o, order) {
		t.Errorf("another seed sent the same order")
	}
	// Concurrent workers send the same posts, each once.
	conc := cfg
	conc.Concurrency = 4
	if c, _ := sentPosts(t, conc); !slices.Equal(slices.Sorted(slices.Values(c)), sorted) {
		t.Errorf("with 4 workers: sent %v", slices.Sorted(slices.Values(c)))
	}
	// Count takes the first posts of the order: distinct ones.
	first := cfg
	first.Count = 50
	if f, sum := sentPosts(t, first); !slices.Equal(f, order[:50]) || sum.Sent != 50 {
		t.Errorf("Count 50: sent %v (%d), want the order's first 50 %v", f, sum.Sent, order[:50])
	}
	// A Count past the posts sends them all, once.
	past := cfg
	past.Count = posts + 100
	if p, _ := sentPosts(t, past); len(p) != posts {
		t.Errorf("Count %d of %d posts: sent %d", past.Count, posts, len(p))
	}
}

// TestAllFromDatabase: All sends the keys the source has, gaps and all.
func TestAllFromDatabase(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 120, Seed: 4, FirstInd: 1}); err != nil {
		t.Fatal(err)
	}
	conn := testenv.PostgresConnect(t, dsn)
	if _, err := conn.Exec(ctx, `DELETE FROM pinterest_data WHERE index BETWEEN 10 AND 29 OR index = 100`); err != nil {
		t.Fatal(err)
	}
	sent, sum := sentPosts(t, emulator.Config{Source: dsn, Target: "kafka", TopicPrefix: "p", Seed: 4, All: true, Concurrency: 3})
	want := slices.Concat(keyRange(1, 10), keyRange(30, 100), keyRange(101, 121))
	if got := slices.Sorted(slices.Values(sent)); !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if sum.Sent != int64(len(want)) || sum.Failed != 0 {
		t.Errorf("summary %+v", sum)
	}

	// An empty source is an error, as without All.
	if _, err := conn.Exec(ctx, `TRUNCATE pinterest_data`); err != nil {
		t.Fatal(err)
	}
	s := newStub(t, nil)
	if _, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: s.URL, Target: "kafka", TopicPrefix: "p", All: true}); err == nil {
		t.Error("All over an empty source: no error")
	}
}
