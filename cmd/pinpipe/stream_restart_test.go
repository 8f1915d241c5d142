package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
)

func TestRestartPolicy(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	rp := &restartPolicy{Attempts: 2}
	for i, c := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {time.Minute, true}, {2 * time.Minute, false}, // two within the hour
		{59 * time.Minute, false},
		{time.Hour, true},                   // the first has left the hour
		{time.Hour + 30*time.Second, false}, // the second (1 min) and third (1 h) are within it
		{2*time.Hour + time.Minute, true},
	} {
		if got := rp.allow(t0.Add(c.at)); got != c.want {
			t.Errorf("%d: restart at +%v allowed %v, want %v", i, c.at, got, c.want)
		}
	}
	if (&restartPolicy{Attempts: 0}).allow(t0) {
		t.Error("--restart-attempts=0 allowed a restart")
	}
}

// TestStreamRestartsAFailedJob: a streaming job on prism whose writes fail
// for good (the job's role loses INSERT on pin_stream, an error no retry
// mends) fails; pinpipe stream restarts it in the same process from its
// durable positions, and once the grant is back every post is one row and
// counted once, the ones sent while it failed included.
func TestStreamRestartsAFailedJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stream command")
	}
	ctx := context.Background()
	dsn := testenv.PostgresDB(t, false)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := fmt.Sprintf("pinpipe_job_%d", time.Now().UnixNano()%1e9)
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE ROLE " + role + " LOGIN")
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP OWNED BY "+role)
		admin.Exec(ctx, "DROP ROLE "+role)
	})
	exec("GRANT CREATE, USAGE ON SCHEMA public TO " + role)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	jobDSN := u.String()

	k, prod := startKafka(t, 1)
	ind := 0
	send := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for range n {
			ind++
			recs = append(recs, &kgo.Record{Topic: "rs.pin", Timestamp: time.Now(),
				Value: fmt.Appendf(nil, `{"index": %d, "category": "art", "title": "t"}`, ind)})
		}
		if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(sql string) int {
		var n int
		if err := admin.QueryRow(ctx, sql).Scan(&n); err != nil {
			return -1 // not created yet
		}
		return n
	}
	pinRows := func() int { return count("SELECT count(*) FROM " + postgres.StreamPinTable) }

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	job := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1"}, "stream", "--source=kafka", "--kafka-brokers="+k.Addr(),
		"--topic-prefix=rs", "--group=rs", "--sink="+jobDSN, "--window=1s", "--allowed-lateness=1s", "--job-name=rs",
		"--restart-delay=2s", "--restart-attempts=20")
	defer job.Kill()
	send(5)
	testenv.WaitFor(t, 90*time.Second, "5 pin rows", func() bool { return pinRows() == 5 })

	exec("REVOKE INSERT ON " + postgres.StreamPinTable + " FROM " + role)
	send(5)
	testenv.WaitFor(t, 90*time.Second, "the job to fail and be restarted", func() bool {
		return strings.Contains(job.Stderr(), "restarting it from its durable positions")
	})
	if done, err := job.Exited(); done {
		t.Fatalf("pinpipe stream exited (%v) instead of restarting the job:\n%s", err, job.Stderr())
	}
	if !strings.Contains(job.Stderr(), "permission denied") {
		t.Errorf("the failure's cause is not logged:\n%s", job.Stderr())
	}
	if n := pinRows(); n != 5 {
		t.Errorf("%d pin rows while INSERT was revoked, want 5", n)
	}
	exec("GRANT INSERT ON " + postgres.StreamPinTable + " TO " + role)
	send(5)
	testenv.WaitFor(t, 120*time.Second, "15 pin rows", func() bool { return pinRows() == 15 })
	testenv.WaitFor(t, 30*time.Second, "15 posts counted", func() bool {
		return count("SELECT coalesce(sum(posts), 0)::int FROM "+postgres.CategoryCountsTable) == 15
	})
	if n := count("SELECT count(DISTINCT ind) FROM " + postgres.StreamPinTable + " WHERE ind BETWEEN 1 AND 15"); n != 15 {
		t.Errorf("%d distinct inds 1..15 in %s, want 15", n, postgres.StreamPinTable)
	}
	if err := job.Stop(); err != nil {
		t.Fatalf("stopping the job: %v\n%s", err, job.Stderr())
	}
}
