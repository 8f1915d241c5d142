package s3sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKillAndRestart runs the pinpipe binary: the dev Kafka and S3 servers
// with data dirs, and the sink, which is killed with SIGKILL while records
// arrive. The servers are then restarted, the sink too, more records
// arrive, and at the end every record must be in exactly one object, the
// objects of a partition must follow one another without overlap, and the
// batch pipeline must read them all.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	t.Parallel()
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	bin := testenv.Pinpipe(t)
	step("built")
	dir := t.TempDir()
	kafkaArgs := func(listen string) []string {
		return []string{"dev", "kafka", "--listen=" + listen, "--data-dir=" + filepath.Join(dir, "kafka"), "--partitions=3"}
	}
	s3Args := func(listen string) []string {
		return []string{"dev", "s3", "--listen=" + listen, "--data-dir=" + filepath.Join(dir, "s3"), "--buckets=lake"}
	}
	kafka := testenv.Start(t, bin, nil, kafkaArgs("127.0.0.1:0")...)
	kafkaAddr := kafka.ListenAddr(t)
	s3srv := testenv.Start(t, bin, nil, s3Args("127.0.0.1:0")...)
	s3Addr := s3srv.ListenAddr(t)
	awsEnv := []string{"AWS_ACCESS_KEY_ID=dev", "AWS_SECRET_ACCESS_KEY=dev", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=http://" + s3Addr}

	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	e := &env{brokers: kafkaAddr, s3: s3Client("http://" + s3Addr), prod: prod, adm: kadm.NewClient(prod)}
	// Created before the sink starts, which would otherwise find them at
	// its next metadata refresh; -1 partitions takes the broker's default.
	topics := []string{"pinpipe.pin", "pinpipe.geo", "pinpipe.user"}
	created, err := e.adm.CreateTopics(t.Context(), -1, -1, nil, topics...)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	if details, err := e.adm.ListTopics(t.Context(), topics...); err != nil || len(details["pinpipe.pin"].Partitions) != 3 {
		t.Fatalf("pinpipe.pin has %d partitions (%v), want the 3 of --partitions", len(details["pinpipe.pin"].Partitions), err)
	}

	const posts = 3000
	gen := generate.New(7, posts)
	produce := func(from, to int, during func(batch int)) {
		t.Helper()
		for batch, ind := 0, from; ind < to; batch++ {
			var recs []*kgo.Record
			for end := min(ind+30, to); ind < end; ind++ {
				for table, v := range gen.Records(gen.Post(int64(ind))) {
					recs = append(recs, &kgo.Record{Topic: "pinpipe." + table, Key: []byte(strconv.Itoa(ind)), Value: v})
				}
			}
			if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if during != nil {
				during(batch)
			}
			time.Sleep(40 * time.Millisecond)
		}
	}

	sinkArgs := []string{"s3sink", "--kafka-brokers=" + kafkaAddr, `--topics=pinpipe\.(pin|geo|user)`, "--s3=s3://lake/raw",
		"--flush-size=50", "--rotate-interval=200ms", "--group=e2e", "--instance-id=sink-1", "--log-level=info"}
	sink := testenv.Start(t, bin, awsEnv, sinkArgs...)
	produce(0, 1800, func(batch int) {
		if batch == 30 {
			testenv.WaitFor(t, 20*time.Second, "the first objects", func() bool { return len(e.objects(t, "raw/")) >= 20 })
			sink.Kill()
		}
	})
	step("phase 1 produced")
	if err := kafka.Stop(); err != nil {
		t.Fatalf("dev kafka did not stop cleanly: %v", err)
	}
	if err := s3srv.Stop(); err != nil {
		t.Fatalf("dev s3 did not stop cleanly: %v", err)
	}
	testenv.Start(t, bin, nil, kafkaArgs(kafkaAddr)...).ListenAddr(t)
	testenv.Start(t, bin, nil, s3Args(s3Addr)...).ListenAddr(t)

	step("servers restarted")

	// A kill between writing objects and committing them leaves objects
	// past the committed offsets; the kill above rarely hits that window, so
	// make the state certain by rewinding the group to the middle of what
	// was written (objects with time-based boundaries among them). The next
	// run must write those objects again with the same keys and bytes.
	before := e.objects(t, "raw/")
	rewind := kadm.Offsets{}
	byPartition := map[string][]landed{}
	timed := 0
	for _, o := range before {
		dir := o.key[:strings.LastIndex(o.key, "/")]
		byPartition[dir] = append(byPartition[dir], o)
	}
	for dir, objs := range byPartition {
		var topic string
		var p int32
		if _, err := fmt.Sscanf(strings.ReplaceAll(strings.TrimPrefix(dir, "raw/topics/"), "/", " "), "%s partition=%d", &topic, &p); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		rewind.AddOffset(topic, p, objs[len(objs)/2].start, -1)
		for _, o := range objs[len(objs)/2 : len(objs)-1] {
			if len(o.lines) < 50 {
				timed++
			}
		}
	}
	// Size rotation alone would be reproduced by any run; the point is the
	// objects written by time.
	if timed == 0 {
		t.Error("no object written by time past the rewound offsets")
	}
	t.Logf("%d objects written by time past the rewound offsets", timed)
	// The killed sink is still a (static) member; offsets of a group with
	// members cannot be set from outside, so remove it as an operator would.
	left, err := e.adm.LeaveGroup(t.Context(), kadm.LeaveGroup("e2e").InstanceIDs("sink-1"))
	if err == nil {
		err = left.Error()
	}
	if err != nil {
		t.Fatalf("removing the killed sink from the group: %v", err)
	}
	if err := e.adm.CommitAllOffsets(t.Context(), "e2e", rewind); err != nil {
		t.Fatalf("rewinding the group: %v", err)
	}
	sink = testenv.Start(t, bin, awsEnv, sinkArgs...)
	produce(1800, posts, nil)
	step("phase 2 produced")
	ends, err := e.adm.ListEndOffsets(t.Context(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "every record committed", func() bool {
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if e.committed(t, "e2e", o.Topic, o.Partition) != o.Offset {
				done = false
			}
		})
		return done
	})
	step("all committed")
	if err := sink.Stop(); err != nil {
		t.Fatalf("the sink did not stop cleanly: %v", err)
	}
	if !strings.Contains(sink.Stdout(), "s3sink: read ") {
		t.Errorf("no summary from the sink; stdout:\n%s", sink.Stdout())
	}
	if !strings.Contains(sink.Stderr(), "their boundaries will be kept") {
		t.Error("the restarted sink found no objects past the committed offsets")
	}
	after := map[string][]byte{}
	for _, o := range e.objects(t, "raw/") {
		after[o.key] = o.raw
	}
	for _, o := range before {
		if !bytes.Equal(after[o.key], o.raw) {
			t.Errorf("%s changed after the restart", o.key)
		}
	}

	// What Kafka holds, partition by partition.
	want := map[string]map[int32][]string{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics(topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	total := 0
	for total < 3*posts {
		fs := cons.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want[r.Topic] == nil {
				want[r.Topic] = map[int32][]string{}
			}
			if int64(len(want[r.Topic][r.Partition])) != r.Offset {
				t.Fatalf("%s[%d]: offset %d out of sequence", r.Topic, r.Partition, r.Offset)
			}
			want[r.Topic][r.Partition] = append(want[r.Topic][r.Partition], string(r.Value))
			total++
		})
	}
	checkExactlyOnce(t, e.objects(t, "raw/"), want)
	step("checked")

	out := filepath.Join(dir, "clean")
	batch := exec.Command(bin, "batch", "--input=s3://lake/raw", "--topic-prefix=pinpipe", "--output="+out, "--table-format=jsonl", "--shards=2")
	batch.Env = append(os.Environ(), awsEnv...)
	if b, err := batch.CombinedOutput(); err != nil {
		t.Fatalf("pinpipe batch: %v\n%s", err, b)
	}
	step("batch ran")
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum transforms.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	for _, table := range transforms.Tables {
		if st := sum[table]; st.Read != posts || st.Rows != posts {
			t.Errorf("batch over the landed %s records: read %d, %d rows; want %d each", table, st.Read, st.Rows, posts)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}
