package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestPersistence produces to a topic created on first use, commits a
// group offset, restarts the broker on the same data dir and finds both.
func TestPersistence(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := start(t, Options{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2})
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("addr %q, want 127.0.0.1 and a real port", srv.Addr())
	}
	cl := client(t, srv.Addr())
	for i := range 10 {
		r := &kgo.Record{Topic: "fresh", Value: fmt.Appendf(nil, `{"n":%d}`, i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["fresh"].Partitions); n != 2 {
		t.Fatalf("auto-created topic has %d partitions, want 2", n)
	}
	ends, err := adm.ListEndOffsets(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	commit := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		commit.AddOffset(o.Topic, o.Partition, o.Offset-1, -1) // all but the last of each partition
	})
	if err := adm.CommitAllOffsets(ctx, "g", commit); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	srv.Close()

	// A second broker on a locked data dir is refused.
	srv = start(t, Options{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 5})
	if _, err := Start(ctx, Options{Listen: "127.0.0.1:0", DataDir: dir}); err == nil {
		t.Fatal("a second broker on the same data dir started")
	}
	cl = client(t, srv.Addr())
	adm = kadm.NewClient(cl)
	fetched, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ends2, err := adm.ListEndOffsets(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	ends2.Each(func(o kadm.ListedOffset) {
		c, ok := fetched.Lookup(o.Topic, o.Partition)
		if o.Offset != ends[o.Topic][o.Partition].Offset {
			t.Errorf("partition %d ends at %d after the restart, %d before", o.Partition, o.Offset, ends[o.Topic][o.Partition].Offset)
		}
		if !ok || c.At != o.Offset-1 {
			t.Errorf("partition %d: committed offset %v after the restart, want %d", o.Partition, c.At, o.Offset-1)
		}
	})
	// And the records are there.
	cons := client(t, srv.Addr(), kgo.ConsumeTopics("fresh"))
	var got int
	for got < 10 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 10 records after the restart", got)
		}
		got += fs.NumRecords()
	}
}

// TestInMemory keeps nothing across a restart and binds the default
// loopback address.
func TestInMemory(t *testing.T) {
	srv := start(t, Options{Listen: "127.0.0.1:0"})
	cl := client(t, srv.Addr())
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "x", Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	topics, err := kadm.NewClient(cl).ListTopics(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["x"].Partitions); n != 3 {
		t.Fatalf("default partitions %d, want 3", n)
	}
	if _, err := Start(t.Context(), Options{Listen: srv.Addr()}); err == nil {
		t.Fatal("a second broker on a busy port started")
	}
	if _, err := Start(t.Context(), Options{Partitions: -1}); err == nil {
		t.Fatal("negative partitions accepted")
	}
}
