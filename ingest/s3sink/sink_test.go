package s3sink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/internal/rawline"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

func TestEncodeValue(t *testing.T) {
	for _, c := range []struct {
		in, want string
		kind     lineKind
	}{
		{`{"a":1}`, `{"a":1}`, lineAsIs},
		{`{"s":"x\ny"}`, `{"s":"x\ny"}`, lineAsIs}, // an escaped newline is no line break
		{"not json", "not json", lineAsIs},
		{"{\n  \"a\": 2,\r\n  \"b\": [1, 2]\n}\n", `{"__pinpipe_raw_base64":"ewogICJhIjogMiwNCiAgImIiOiBbMSwgMl0KfQo="}`, lineWrapped},
		{"not json\nsecond <line>", `{"__pinpipe_raw_base64":"bm90IGpzb24Kc2Vjb25kIDxsaW5lPg=="}`, lineWrapped},
		{"bad \xff bytes", `{"__pinpipe_raw_base64":"YmFkIP8gYnl0ZXM="}`, lineWrapped},
		{`{"__pinpipe_raw_base64":"aGk="}`, `{"__pinpipe_raw_base64":"eyJfX3BpbnBpcGVfcmF3X2Jhc2U2NCI6ImFHaz0ifQ=="}`, lineWrapped},
		{"", `{"__pinpipe_raw_base64":""}`, lineWrapped}, // empty, not null: a record all the same
	} {
		in := []byte(c.in)
		got, kind := encodeValue(in)
		if string(got) != c.want || kind != c.kind {
			t.Errorf("encodeValue(%q) = %q, %d; want %q, %d", c.in, got, kind, c.want, c.kind)
		}
		if bytes.ContainsAny(got, "\r\n") {
			t.Errorf("encodeValue(%q) has a line break", c.in)
		}
		if back := rawline.Decode(got); !bytes.Equal(back, in) {
			t.Errorf("rawline.Decode(encodeValue(%q)) = %q", c.in, back)
		}
	}
	if got, kind := encodeValue(nil); got != nil || kind != lineSkipped {
		t.Errorf("encodeValue(nil) = %q, %d: a tombstone gets no line", got, kind)
	}
}

func TestNames(t *testing.T) {
	if got := objectKey("land/", "pinpipe.pin", 2, 1500, false); got != "land/topics/pinpipe.pin/partition=2/pinpipe.pin+2+0000001500.json" {
		t.Errorf("objectKey = %q", got)
	}
	if got := objectKey("", "t", 0, 12345678901, true); got != "topics/t/partition=0/t+0+12345678901.json.gz" {
		t.Errorf("objectKey = %q", got)
	}
	for name, want := range map[string]int64{"t+1+0000000042.json": 42, "t+1+0000000042.json.gz": 42, "t+1+12345678901.json": 12345678901} {
		if got, ok := parseObjectName(name, "t", 1); !ok || got != want {
			t.Errorf("parseObjectName(%q) = %d, %v", name, got, ok)
		}
	}
	for _, name := range []string{"t+2+0000000042.json", "u+1+0000000042.json", "t+1+.json", "t+1+-1.json", "t+1+42.txt", "t+1+0000000042.json.tmp"} {
		if _, ok := parseObjectName(name, "t", 1); ok {
			t.Errorf("parseObjectName(%q) accepted", name)
		}
	}
	for in, want := range map[string][2]string{"s3://b": {"b", ""}, "s3://b/": {"b", ""}, "s3://b/p/q/": {"b", "p/q/"}} {
		b, p, err := ParseS3URL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v", in, b, p, err)
		}
	}
	for _, in := range []string{"b/p", "s3:///p", "file:///x"} {
		if _, _, err := ParseS3URL(in); err == nil {
			t.Errorf("ParseS3URL(%q) accepted", in)
		}
	}
}

// TestLayoutSizeAndShutdown lands two partitions with size rotation, then
// writes the rest at shutdown, plain and gzipped.
func TestLayoutSizeAndShutdown(t *testing.T) {
	for _, compress := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "gzip"}[compress]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 2)
			const topic = "pinpipe.pin"
			p0, p1 := values(0, 250), values(1000, 120)
			e.produce(t, topic, 0, p0...)
			e.produce(t, topic, 1, p1...)
			e.produce(t, "other.pin", 0, values(0, 5)...) // not matched by the regex
			sink := e.startSink(t, Options{Topics: `pinpipe\.(pin|geo|user)`, Dest: "s3://lake/land/", FlushSize: 100, Compress: compress, Group: "g"})
			testenv.WaitFor(t, 15*time.Second, "size-rotated objects", func() bool { return len(e.objects(t, "land/")) == 3 })
			testenv.WaitFor(t, 5*time.Second, "commits", func() bool {
				return e.committed(t, "g", topic, 0) == 200 && e.committed(t, "g", topic, 1) == 100
			})
			st := sink.stop(t)

			ext := ".json"
			if compress {
				ext = ".json.gz"
			}
			dir := "land/topics/pinpipe.pin/partition="
			want := []string{
				dir + "0/pinpipe.pin+0+0000000000" + ext,
				dir + "0/pinpipe.pin+0+0000000100" + ext,
				dir + "0/pinpipe.pin+0+0000000200" + ext,
				dir + "1/pinpipe.pin+1+0000000000" + ext,
				dir + "1/pinpipe.pin+1+0000000100" + ext,
			}
			objs := e.objects(t, "")
			if diff := cmp.Diff(want, keys(objs)); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			wantLines := [][]string{lines(p0[:100]), lines(p0[100:200]), lines(p0[200:]), lines(p1[:100]), lines(p1[100:])}
			wantLast := []string{"99", "199", "249", "99", "119"}
			for i, o := range objs {
				if diff := cmp.Diff(wantLines[i], o.lines); diff != "" {
					t.Errorf("%s (-want +got):\n%s", o.key, diff)
				}
				if o.meta[metaLastOffset] != wantLast[i] {
					t.Errorf("%s: last offset %q, want %s", o.key, o.meta[metaLastOffset], wantLast[i])
				}
			}
			if c0, c1 := e.committed(t, "g", topic, 0), e.committed(t, "g", topic, 1); c0 != 250 || c1 != 120 {
				t.Errorf("committed %d and %d after shutdown, want 250 and 120", c0, c1)
			}
			if st.Records != 370 || st.Objects != 5 || st.ObjectRecords != 370 || st.Rewrites != 0 || st.CommitFailures != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestRotateInterval writes objects by time, also of a partition that
// received a few records and went quiet, while the sink runs.
func TestRotateInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	const topic = "pinpipe.geo"
	// A topic created after the sink started is found within the
	// metadata refresh (10 s), too slow here.
	if _, err := e.adm.CreateTopic(t.Context(), 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	sink := e.startSink(t, Options{Topics: `pinpipe\..*`, FlushSize: 1000, RotateInterval: 300 * time.Millisecond, Group: "g"})
	first := values(0, 7)
	e.produce(t, topic, 0, first...)
	sent := time.Now()
	testenv.WaitFor(t, 10*time.Second, "an object written by time", func() bool { return len(e.objects(t, "land/")) == 1 })
	if waited := time.Since(sent); waited < 250*time.Millisecond {
		t.Errorf("object written %s after its records, before the rotate interval", waited)
	}
	testenv.WaitFor(t, 5*time.Second, "its commit", func() bool { return e.committed(t, "g", topic, 0) == 7 })

	more, other := values(7, 3), values(100, 2)
	e.produce(t, topic, 0, more...)
	e.produce(t, topic, 1, other...)
	testenv.WaitFor(t, 10*time.Second, "two more objects", func() bool { return len(e.objects(t, "land/")) == 3 })
	st := sink.stop(t)

	objs := e.objects(t, "land/")
	want := map[string][]string{
		"land/topics/pinpipe.geo/partition=0/pinpipe.geo+0+0000000000.json": lines(first),
		"land/topics/pinpipe.geo/partition=0/pinpipe.geo+0+0000000007.json": lines(more),
		"land/topics/pinpipe.geo/partition=1/pinpipe.geo+1+0000000000.json": lines(other),
	}
	got := map[string][]string{}
	for _, o := range objs {
		got[o.key] = o.lines
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	if st.Objects != 3 {
		t.Errorf("stats %+v: a shutdown with nothing buffered wrote objects", st)
	}
}

// TestLineEncoding keeps one line per record whatever the values hold.
func TestLineEncoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.produce(t, "pinpipe.user", 0,
		[]byte(`{"ind":1}`),
		[]byte("{\n  \"ind\": 2\n}\n"),
		nil, // a tombstone
		[]byte("half a record\n{\"ind\": 3}"),
		[]byte(`{"ind":4,"bio":"two\nlines"}`),
		[]byte("{\"ind\":5,\"bio\":\"caf\xe9\"}"), // Latin-1, not UTF-8
		[]byte{}, // empty, not null
	)
	sink := e.startSink(t, Options{Topics: "pinpipe.user", FlushSize: 7})
	testenv.WaitFor(t, 10*time.Second, "the object", func() bool { return len(e.objects(t, "land/")) == 1 })
	st := sink.stop(t)
	o := e.objects(t, "land/")[0]
	// Every value but the tombstone, byte for byte through rawline.Decode.
	want := []string{`{"ind":1}`, "{\n  \"ind\": 2\n}\n", "half a record\n{\"ind\": 3}", `{"ind":4,"bio":"two\nlines"}`,
		"{\"ind\":5,\"bio\":\"caf\xe9\"}", ""}
	var got []string
	for _, l := range o.lines {
		got = append(got, string(rawline.Decode([]byte(l))))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded lines (-want +got):\n%s", diff)
	}
	if o.lines[0] != `{"ind":1}` || o.lines[3] != `{"ind":4,"bio":"two\nlines"}` || !strings.HasPrefix(o.lines[1], `{"__pinpipe_raw_base64":"`) {
		t.Errorf("lines %q: a line of UTF-8 text is written as it is, anything else wrapped", o.lines)
	}
	if o.meta[metaRecords] != "7" || o.meta[metaLastOffset] != "6" {
		t.Errorf("metadata %v, want 7 records ending at 6", o.meta)
	}
	if st.Wrapped != 4 || st.Tombstones != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestReplayKeepsBoundaries runs a second sink, in a new group, over
// objects a first one wrote with time and shutdown boundaries: it must
// rewrite them with the same keys and bytes whatever its own flush size,
// and a third one with --compress must replace them, not add to them.
func TestReplayKeepsBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	const topic = "pinpipe.pin"
	all := values(0, 280)
	e.produce(t, topic, 0, all[:250]...)
	a := e.startSink(t, Options{Topics: topic, FlushSize: 100, Group: "a"})
	testenv.WaitFor(t, 10*time.Second, "run a's size flushes", func() bool { return e.committed(t, "a", topic, 0) == 200 })
	a.stop(t) // writes 200..249 at shutdown
	first := e.objects(t, "land/")
	if len(first) != 3 {
		t.Fatalf("run a wrote %v", keys(first))
	}
	e.produce(t, topic, 0, all[250:]...)

	b := e.startSink(t, Options{Topics: topic, FlushSize: 40, Group: "b"})
	testenv.WaitFor(t, 10*time.Second, "run b's rewrites", func() bool { return e.committed(t, "b", topic, 0) == 250 })
	st := b.stop(t) // writes 250..279 at shutdown
	second := e.objects(t, "land/")
	if len(second) != 4 {
		t.Fatalf("run b left %v", keys(second))
	}
	for i, o := range first {
		if second[i].key != o.key || !bytes.Equal(second[i].raw, o.raw) {
			t.Errorf("run b changed %s into %s", o.key, second[i].key)
		}
	}
	if diff := cmp.Diff(lines(all[250:]), second[3].lines); diff != "" {
		t.Errorf("run b's new object (-want +got):\n%s", diff)
	}
	if st.Rewrites != 3 || st.Objects != 4 {
		t.Errorf("run b: stats %+v, want 3 rewrites of 4 objects", st)
	}

	c := e.startSink(t, Options{Topics: topic, FlushSize: 1000, Group: "c", Compress: true})
	testenv.WaitFor(t, 10*time.Second, "run c's rewrites", func() bool { return e.committed(t, "c", topic, 0) == 280 })
	st = c.stop(t)
	third := e.objects(t, "land/")
	if len(third) != 4 {
		t.Fatalf("run c left %v", keys(third))
	}
	for i, o := range second {
		if third[i].key != o.key+".gz" || !slices.Equal(third[i].lines, o.lines) {
			t.Errorf("run c turned %s (%d lines) into %s (%d lines)", o.key, len(o.lines), third[i].key, len(third[i].lines))
		}
	}
	if st.Rewrites != 4 {
		t.Errorf("run c: stats %+v, want 4 rewrites", st)
	}
}

// TestForeignObject keeps the boundary of an object without the sink's
// metadata (written by another tool) by counting its lines, and leaves an
// object it cannot finish reproducing at shutdown to the next run.
func TestForeignObject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	put := func(key string, body []byte, meta map[string]string) {
		t.Helper()
		_, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
	}
	vs := values(0, 100)
	e.produce(t, "pinpipe.pin", 0, vs...)
	foreign := []byte(strings.Join(lines(vs[:37]), "\n") + "\n")
	put("land/topics/pinpipe.pin/partition=0/pinpipe.pin+0+0000000000.json", foreign, nil)

	// An object claiming records up to offset 99 where Kafka has 60.
	e.produce(t, "pinpipe.geo", 0, values(0, 60)...)
	claim := []byte("claimed\n")
	const claimKey = "land/topics/pinpipe.geo/partition=0/pinpipe.geo+0+0000000000.json"
	put(claimKey, claim, map[string]string{metaLastOffset: "99"})

	sink := e.startSink(t, Options{Topics: `pinpipe\.(pin|geo)`, FlushSize: 50, Group: "g"})
	testenv.WaitFor(t, 10*time.Second, "the pin objects", func() bool { return e.committed(t, "g", "pinpipe.pin", 0) == 87 })
	st := sink.stop(t)

	objs := e.objects(t, "land/topics/pinpipe.pin/")
	wantKeys := []string{
		"land/topics/pinpipe.pin/partition=0/pinpipe.pin+0+0000000000.json",
		"land/topics/pinpipe.pin/partition=0/pinpipe.pin+0+0000000037.json",
		"land/topics/pinpipe.pin/partition=0/pinpipe.pin+0+0000000087.json",
	}
	if diff := cmp.Diff(wantKeys, keys(objs)); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	if !bytes.Equal(objs[0].raw, foreign) {
		t.Errorf("the foreign object was rewritten with other records")
	}
	if len(objs[1].lines) != 50 || len(objs[2].lines) != 13 {
		t.Errorf("then %d and %d records, want 50 and 13", len(objs[1].lines), len(objs[2].lines))
	}
	if got := e.object(t, claimKey); !bytes.Equal(got.raw, claim) {
		t.Errorf("the object being reproduced was overwritten at shutdown with %d lines", len(got.lines))
	}
	if c := e.committed(t, "g", "pinpipe.geo", 0); c != -1 {
		t.Errorf("committed %d for a partition whose object was not written", c)
	}
	if st.Unwritten != 60 {
		t.Errorf("stats %+v, want 60 unwritten", st)
	}
}

// TestBadOptions fails fast and clearly.
func TestBadOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Topics: "(", Dest: "s3://lake/x"}, "topics regex"},
		{Options{Topics: "t", Dest: "lake/x"}, "not an s3://"},
		{Options{Topics: "t", Dest: "s3://missing/x"}, "bucket missing"},
		{Options{Topics: "t", Dest: "s3://lake/x", FlushSize: -1}, "flush size"},
		{Options{Topics: "t", Dest: "s3://lake/x", Brokers: []string{"127.0.0.1:1"}}, "cannot reach Kafka"},
	} {
		o := c.o
		if o.Brokers == nil {
			o.Brokers = []string{e.brokers}
		}
		o.S3, o.Logger = e.s3, slog.New(slog.DiscardHandler)
		_, err := Run(ctx, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v) = %v, want an error with %q", c.o, err, c.want)
		}
	}
}

// TestRebalance runs two sinks in one group while records arrive: the
// second joins, then the first leaves, and every record lands once.
func TestRebalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	const topic = "pinpipe.pin"
	if _, err := e.adm.CreateTopic(t.Context(), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	want := map[int32][]string{}
	var wg sync.WaitGroup
	stopProducing := make(chan struct{})
	wg.Go(func() {
		for batch := 0; batch < 60; batch++ {
			for p := range int32(4) {
				vs := values(int(p)*100000+batch*20, 20)
				if err := e.send(topic, p, vs...); err != nil {
					t.Error(err)
					return
				}
				want[p] = append(want[p], lines(vs)...)
			}
			select {
			case <-stopProducing:
				return
			case <-time.After(60 * time.Millisecond):
			}
		}
	})
	defer wg.Wait()
	defer close(stopProducing)
	o := Options{Topics: topic, FlushSize: 30, RotateInterval: 100 * time.Millisecond, Group: "g"}
	a := e.startSink(t, o)
	time.Sleep(time.Second)
	b := e.startSink(t, o)
	time.Sleep(time.Second)
	stA := a.stop(t)
	wg.Wait()
	testenv.WaitFor(t, 30*time.Second, "every record committed", func() bool {
		for p := range int32(4) {
			if e.committed(t, "g", topic, p) != int64(len(want[p])) {
				return false
			}
		}
		return true
	})
	stB := b.stop(t)
	t.Logf("sink a: %+v\nsink b: %+v", stA, stB)
	if stA.Objects == 0 || stB.Objects == 0 {
		t.Errorf("one sink wrote nothing: a %d objects, b %d", stA.Objects, stB.Objects)
	}
	checkExactlyOnce(t, e.objects(t, "land/"), map[string]map[int32][]string{topic: want})
}

// checkExactlyOnce checks that the objects of each partition start at
// offset 0 and follow one another without gap or overlap, that each holds
// the records from its start on, and that together they hold all of them
// (the records' values are one line each, so offsets are line numbers).
func checkExactlyOnce(t *testing.T, objs []landed, want map[string]map[int32][]string) {
	t.Helper()
	got := map[string]map[int32][]landed{}
	for _, o := range objs {
		rest := o.key[strings.Index(o.key, "topics/")+len("topics/"):]
		topic := rest[:strings.Index(rest, "/")]
		var p int32
		if _, err := fmt.Sscanf(rest[len(topic)+1:], "partition=%d/", &p); err != nil {
			t.Fatalf("%s: %v", o.key, err)
		}
		if got[topic] == nil {
			got[topic] = map[int32][]landed{}
		}
		got[topic][p] = append(got[topic][p], o)
	}
	for topic, parts := range want {
		for p, recs := range parts {
			objs := got[topic][p]
			slices.SortFunc(objs, func(a, b landed) int { return int(a.start - b.start) })
			next := int64(0)
			for _, o := range objs {
				if o.start != next {
					t.Errorf("%s[%d]: object %s starts at %d, want %d (a gap or an overlap)", topic, p, o.key, o.start, next)
					return
				}
				end := o.start + int64(len(o.lines))
				if end > int64(len(recs)) || !slices.Equal(o.lines, recs[o.start:end]) {
					t.Errorf("%s[%d]: object %s does not hold the records %d..%d", topic, p, o.key, o.start, end-1)
					return
				}
				if o.meta[metaLastOffset] != fmt.Sprint(end-1) {
					t.Errorf("%s: last offset %s in its metadata, want %d", o.key, o.meta[metaLastOffset], end-1)
				}
				next = end
			}
			if next != int64(len(recs)) {
				t.Errorf("%s[%d]: objects hold %d of %d records", topic, p, next, len(recs))
			}
		}
	}
}
