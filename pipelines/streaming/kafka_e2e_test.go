package streaming

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKafkaEndToEnd: emulate → gateway → Kafka (kfake) → the streaming job
// on prism → PostgreSQL, whose rows must equal the source's rows cleaned by
// the shared cleaning functions, one row per post although every post is
// sent twice.
func TestKafkaEndToEnd(t *testing.T) {
	dsn := testDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker, err := kafka.Start(ctx, kafka.Options{Listen: "127.0.0.1:0", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	gw, err := gateway.New(gateway.Config{KafkaBrokers: []string{broker.Addr()}, TopicPrefix: "e2e", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()

	const posts = 150
	for round := 1; round <= 2; round++ { // the second round re-sends every post
		sum, err := emulator.Run(ctx, emulator.Config{Posts: posts, All: true, Seed: 1, Gateway: srv.URL,
			Target: "kafka", TopicPrefix: "e2e", Concurrency: 4})
		if err != nil || sum.Failed > 0 {
			t.Fatalf("emulate round %d: %+v %v", round, sum, err)
		}
	}

	testenv.SetFlags(t, "runner", "prism")
	p, s := beam.NewPipelineWithRoot()
	src := KafkaSource([]string{broker.Addr()}, "e2e", kafkaio.ReadStart(kafkaio.StartEarliest), kafkaio.ReadUntilLatest())
	if err := Build(s, Options{Source: src, Sink: dsn}); err != nil {
		t.Fatal(err)
	}
	ptest.RunAndValidate(t, p)

	// What the rows must be: the generator's posts, in the emulator's JSON
	// shape, cleaned by the shared functions.
	g := generate.New(1, posts)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	for _, table := range []string{"pin_stream", "geo_stream", "user_stream"} {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != posts {
			t.Errorf("%s: %d rows (%v), want one per post: %d", table, n, err, posts)
		}
	}
	checked := 0
	for ind := int64(0); ind < posts; ind += 7 {
		post := g.Post(ind)
		want, _, err := transforms.CleanPinRecord(mustJSON(t, post.Pin.Fields()))
		if err != nil {
			t.Fatal(err)
		}
		var got transforms.Pin
		err = conn.QueryRow(ctx, `SELECT ind, unique_id, title, description, follower_count, poster_name, tag_list,
			is_image_or_video, image_src, save_location, category FROM pin_stream WHERE ind = $1`, ind).Scan(
			&got.Ind, &got.UniqueID, &got.Title, &got.Description, &got.FollowerCount, &got.PosterName, &got.TagList,
			&got.IsImageOrVideo, &got.ImageSrc, &got.SaveLocation, &got.Category)
		if err != nil {
			t.Fatalf("pin %d: %v", ind, err)
		}
		if !pinEqual(want, got) {
			t.Errorf("pin %d:\n got %+v\nwant %+v", ind, got, want)
		}
		var userName *string
		if err := conn.QueryRow(ctx, "SELECT user_name FROM user_stream WHERE ind = $1", ind).Scan(&userName); err != nil {
			t.Fatal(err)
		}
		wantUser, _, _ := transforms.CleanUserRecord(mustJSON(t, post.User.Fields()))
		if userName == nil || wantUser.UserName == nil || *userName != *wantUser.UserName {
			t.Errorf("user %d: %v, want %v", ind, deref(userName), deref(wantUser.UserName))
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}
