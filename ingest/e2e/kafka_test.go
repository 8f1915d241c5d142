package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

const (
	bucket    = "lake"
	sinkGroup = "e2e-sink"
)

// TestKafkaToTables: seed → emulate --target=kafka → gateway → Kafka →
// s3sink → S3 → batch → clean tables equal to the source rows cleaned
// directly, one row per post.
func TestKafkaToTables(t *testing.T) {
	began := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	ctx := context.Background()
	dsn := seededSource(t, 21)
	step("seeded")

	// The servers, in process on loopback. Not t.Context(): it ends before
	// the cleanups that stop the gateway and the sink, which still talk to
	// them.
	kafka, err := devkafka.Start(ctx, devkafka.Options{Listen: "127.0.0.1:0", Partitions: 3, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kafka.Close() })
	lake, err := devs3.Start(ctx, devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{bucket}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lake.Close(); err != nil {
			t.Errorf("dev s3: %v", err)
		}
	})
	// The sink and the batch job find S3 as the commands do: through the
	// AWS SDK's settings. An IP in the endpoint gets path-style addressing.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         lake.URL(),
		"AWS_ACCESS_KEY_ID":           "dev",
		"AWS_SECRET_ACCESS_KEY":       "dev",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
	s3c, err := s3sink.NewS3Client(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The topics exist before the gateway takes records: it creates none.
	const prefix = "e2e"
	topics := []string{prefix + ".pin", prefix + ".geo", prefix + ".user"}
	kc, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	adm := kadm.NewClient(kc)
	if created, err := adm.CreateTopics(ctx, 3, -1, nil, topics...); err != nil || created.Error() != nil {
		t.Fatalf("creating the topics: %v %v", err, created.Error())
	}

	// emulate --target=kafka --all: every post once, through the gateway.
	gw := startGateway(t, gateway.Config{KafkaBrokers: []string{kafka.Addr()}, TopicPrefix: prefix})
	sum, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: gw, Target: emulator.TargetKafka, TopicPrefix: prefix,
		All: true, Seed: 5, Concurrency: 8, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Posts != posts || sum.Sent != posts || sum.Records != 3*posts || sum.Failed != 0 || sum.Incomplete != 0 {
		t.Fatalf("emulator: %+v, want %d posts and %d records sent", sum, posts, 3*posts)
	}
	step("emulated: " + sum.String())

	// The sink lands the topics, until the group has committed every
	// record the gateway wrote.
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	var inKafka int64
	perTopic := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		inKafka += o.Offset
		perTopic[o.Topic] += o.Offset
	})
	if inKafka < 3*posts {
		t.Fatalf("Kafka holds %d records, want at least the %d sent", inKafka, 3*posts)
	}
	sinkCtx, stopSink := context.WithCancel(ctx)
	type result struct {
		st  s3sink.Stats
		err error
	}
	sunk := make(chan result, 1)
	go func() {
		st, err := s3sink.Run(sinkCtx, s3sink.Options{Brokers: []string{kafka.Addr()}, Topics: regexp.QuoteMeta(prefix) + `\.(pin|geo|user)`,
			Dest: "s3://" + bucket + "/raw", Group: sinkGroup, FlushSize: 100, RotateInterval: 200 * time.Millisecond, Logger: quietLogger()})
		sunk <- result{st, err}
	}()
	stopped := false
	stop := func() result {
		stopped = true
		stopSink()
		select {
		case r := <-sunk:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("the sink did not stop within 30 s")
			return result{}
		}
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !caughtUp(t, adm, ends) {
		select {
		case r := <-sunk:
			stopped = true
			t.Fatalf("the sink stopped early: %+v, %v", r.st, r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the sink did not commit every record within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := stop()
	if r.err != nil {
		t.Fatalf("sink: %v", r.err)
	}
	if r.st.ObjectRecords != inKafka || r.st.Unwritten != 0 {
		t.Errorf("sink stats %+v: want %d records in objects, none unwritten", r.st, inKafka)
	}
	step(fmt.Sprintf("landed: %d objects, %d records", r.st.Objects, r.st.ObjectRecords))

	// What landed: the Confluent layout, and exactly the source's records
	// as the original scripts sent them (more than once only where the
	// emulator retried a request that had got through).
	want := sourceRecords(t, dsn)
	for _, table := range transforms.Tables {
		topic := prefix + "." + table
		lines := landedLines(t, s3c, "raw/topics/"+topic+"/", regexp.MustCompile(`^raw/topics/`+regexp.QuoteMeta(topic)+
			`/partition=[0-2]/`+regexp.QuoteMeta(topic)+`\+[0-2]\+\d{10}\.json$`))
		var wantLines []string
		for _, rec := range want[table] {
			wantLines = append(wantLines, rec.json)
		}
		slices.Sort(wantLines)
		if sum.Retried > 0 {
			lines = slices.Compact(lines)
		}
		if diff := cmp.Diff(wantLines, lines); diff != "" {
			t.Errorf("%s: the landed records differ from the source rows (-want +got):\n%s", topic, diff)
		}
	}

	// pinpipe batch --runner=direct --input=s3://lake/raw --output=s3://lake/clean
	setFlag(t, "runner", "direct")
	out := "s3://" + bucket + "/clean"
	bsum, err := batch.Run(ctx, batch.Options{Input: "s3://" + bucket + "/raw", TopicPrefix: prefix, Output: out, Shards: 4})
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	step("batch done")
	for _, table := range transforms.Tables {
		st := bsum[table]
		if st.Read != perTopic[prefix+"."+table] || st.Rejected != 0 || st.Rows != posts {
			t.Errorf("batch summary of %s: %+v, want %d records read, none rejected, %d rows", table, st, perTopic[prefix+"."+table], posts)
		}
	}

	// The clean tables: the source rows cleaned directly, one per post.
	wantPins, wantGeos, wantUsers := cleanDirectly(t, want)
	checkTable(t, s3c, transforms.TablePin, wantPins, func(p transforms.Pin) int64 { return p.Ind })
	checkTable(t, s3c, transforms.TableGeo, wantGeos, func(g transforms.Geo) int64 { return g.Ind })
	checkTable(t, s3c, transforms.TableUser, wantUsers, func(u transforms.User) int64 { return u.Ind })
	step("checked")
}

// caughtUp says whether the sink's group has committed every partition up
// to its end offset.
func caughtUp(t *testing.T, adm *kadm.Client, ends kadm.ListedOffsets) bool {
	t.Helper()
	committed, err := adm.FetchOffsets(context.Background(), sinkGroup)
	if errors.Is(err, kerr.GroupIDNotFound) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.CoordinatorNotAvailable) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	done := true
	ends.Each(func(e kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil {
			at = c.At
		}
		if at < e.Offset {
			done = false
		}
	})
	return done
}

// landedLines reads every object under prefix (whose keys must match
// layout) and returns their lines, sorted.
func landedLines(t *testing.T, c *s3.Client, prefix string, layout *regexp.Regexp) []string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	objects := 0
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !layout.MatchString(key) {
				t.Errorf("object %s is not in the S3 sink's layout (%s)", key, layout)
			}
			body := getObject(t, c, key)
			if len(body) == 0 || body[len(body)-1] != '\n' {
				t.Errorf("object %s does not end in a newline", key)
			}
			lines = append(lines, strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")...)
			objects++
		}
	}
	if objects == 0 {
		t.Fatalf("no objects under s3://%s/%s", bucket, prefix)
	}
	slices.Sort(lines)
	return lines
}

func getObject(t *testing.T, c *s3.Client, key string) []byte {
	t.Helper()
	obj, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cleanDirectly cleans the source records with the cleaning functions
// alone, no pipeline: the rows the clean tables must hold.
func cleanDirectly(t *testing.T, src map[string][]sourceRecord) ([]transforms.Pin, []transforms.Geo, []transforms.User) {
	t.Helper()
	var pins []transforms.Pin
	var geos []transforms.Geo
	var users []transforms.User
	for _, r := range src[transforms.TablePin] {
		p, _, err := transforms.CleanPinRecord([]byte(r.json))
		if err != nil {
			t.Fatalf("cleaning pin %d: %v", r.ind, err)
		}
		pins = append(pins, p)
	}
	for _, r := range src[transforms.TableGeo] {
		g, _, err := transforms.CleanGeoRecord([]byte(r.json))
		if err != nil {
			t.Fatalf("cleaning geo %d: %v", r.ind, err)
		}
		geos = append(geos, g)
	}
	for _, r := range src[transforms.TableUser] {
		u, _, err := transforms.CleanUserRecord([]byte(r.json))
		if err != nil {
			t.Fatalf("cleaning user %d: %v", r.ind, err)
		}
		users = append(users, u)
	}
	return pins, geos, users
}

// checkTable reads a clean table (its Parquet files under clean/tables/)
// and compares its rows, by ind, with want (in ind order, one per post).
func checkTable[R any](t *testing.T, c *s3.Client, table string, want []R, ind func(R) int64) {
	t.Helper()
	var got []R
	files := 0
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("clean/tables/" + table + "/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".parquet") {
				t.Errorf("unexpected object %s in the %s table", key, table)
				continue
			}
			b := getObject(t, c, key)
			rows, err := parquet.Read[R](bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("reading %s: %v", key, err)
			}
			got = append(got, rows...)
			files++
		}
	}
	slices.SortStableFunc(got, func(a, b R) int { return cmpInt(ind(a), ind(b)) })
	if len(want) != posts {
		t.Fatalf("%d %s rows expected, want one per post (%d)", len(want), table, posts)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the %s table (%d rows in %d files) differs from the source rows cleaned directly (-want +got):\n%s", table, len(got), files, diff)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setFlag sets a global flag (Beam's --runner) for the test and restores it
// after.
func setFlag(t *testing.T, name, value string) {
	t.Helper()
	f := flag.Lookup(name)
	if f == nil {
		t.Fatalf("no flag %q", name)
	}
	old := f.Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set(name, old) })
}
