package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
)

const bucket = "lake"

// env is a Kafka broker and an S3 server, in process over real TCP, with
// clients for them.
type env struct {
	brokers string
	s3      *s3.Client
	prod    *kgo.Client
	adm     *kadm.Client
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	// Not t.Context(): it ends before the cleanups, and the sinks stop in
	// theirs, writing what they hold.
	k, err := devkafka.Start(context.Background(), devkafka.Options{Listen: "127.0.0.1:0", Partitions: partitions, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	srv, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{bucket}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{brokers: k.Addr(), s3: s3Client(srv.URL())}
	e.prod, err = kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prod.Close)
	e.adm = kadm.NewClient(e.prod)
	return e
}

func s3Client(url string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("dev", "dev", ""),
	})
}

// quietLogger shows only problems, on stderr (a test's own log must not be
// written to after the test ends, and the clients log from goroutines).
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// produce writes values to one partition, in order; a nil value is a
// tombstone.
func (e *env) produce(t *testing.T, topic string, partition int32, values ...[]byte) {
	t.Helper()
	if err := e.send(topic, partition, values...); err != nil {
		t.Fatal(err)
	}
}

// send is produce for other goroutines than the test's.
func (e *env) send(topic string, partition int32, values ...[]byte) error {
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: v}
	}
	return e.prod.ProduceSync(context.Background(), recs...).FirstErr()
}

// running is a sink running in process.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	stats  Stats
	err    error
}

func (e *env) startSink(t *testing.T, o Options) *running {
	t.Helper()
	o.Brokers = []string{e.brokers}
	o.S3 = e.s3
	o.Logger = quietLogger()
	if o.Dest == "" {
		o.Dest = "s3://" + bucket + "/land"
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.stats, r.err = Run(ctx, o)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the sink down as SIGTERM does and returns what it did.
func (r *running) stop(t *testing.T) Stats {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink did not stop within 30 s")
	}
	if r.err != nil {
		t.Fatalf("sink: %v", r.err)
	}
	return r.stats
}

// landed is an object read back.
type landed struct {
	key   string
	start int64
	lines []string
	meta  map[string]string
	raw   []byte
}

// objects reads every object under prefix, by key.
func (e *env) objects(t *testing.T, prefix string) []landed {
	t.Helper()
	var out []landed
	pages := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out = append(out, e.object(t, aws.ToString(o.Key)))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func (e *env) object(t *testing.T, key string) landed {
	t.Helper()
	obj, err := e.s3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	raw, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := raw
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	l := landed{key: key, raw: raw, meta: map[string]string{}}
	for k, v := range obj.Metadata {
		l.meta[strings.ToLower(k)] = v
	}
	base := key[strings.LastIndex(key, "/")+1:]
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".json"), "+")
	l.start, _ = strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if len(body) > 0 {
		if body[len(body)-1] != '\n' {
			t.Errorf("%s does not end in a newline", key)
		}
		l.lines = strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	}
	return l
}

func keys(objs []landed) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.key)
	}
	return ks
}

// committed is the group's committed offset of a partition (-1 if none).
func (e *env) committed(t *testing.T, group, topic string, partition int32) int64 {
	t.Helper()
	offs, err := e.adm.FetchOffsets(t.Context(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, partition); ok {
		return o.At
	}
	return -1
}

// values are n distinct JSON records, from index from.
func values(from, n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = []byte(`{"index":` + strconv.Itoa(from+i) + `,"title":"post ` + strconv.Itoa(from+i) + `"}`)
	}
	return vs
}

func lines(vs [][]byte) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
