package kafkaio

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/positions"
)

// TestPositionStore: a partition resumes at the end of the first unbroken
// run of durable ranges, grown from the base where the job started; an
// explicit start forgets them.
func TestPositionStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	dsn := testenv.PostgresDB(t, false)
	st, err := openPositions(ctx, positionConfig{DSN: dsn, Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	at := func(topic string, part int32) (int64, bool) {
		t.Helper()
		n, ok, err := st.start(ctx, topic, part)
		if err != nil {
			t.Fatal(err)
		}
		return n, ok
	}
	span := func(topic string, part int32, from, to int64) positions.Span {
		return positions.Span{Stream: topic, Part: fmt.Sprint(part), From: fmt.Sprint(from), To: fmt.Sprint(to)}
	}
	record := func(spans ...positions.Span) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, st.conn, func(tx pgx.Tx) error { return RecordSpans(ctx, tx, "j", spans) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := at("t", 0); ok {
		t.Fatal("a position before any was recorded")
	}
	if err := st.base(ctx, "t", 0, 100, false); err != nil {
		t.Fatal(err)
	}
	if n, ok := at("t", 0); !ok || n != 100 {
		t.Fatalf("after the base: %d %v, want 100", n, ok)
	}
	// A later window's pane first: the records before it are not durable.
	record(span("t", 0, 150, 199))
	if n, _ := at("t", 0); n != 100 {
		t.Fatalf("with a gap: %d, want 100", n)
	}
	record(span("t", 0, 100, 120), span("t", 1, 0, 5))
	if n, _ := at("t", 0); n != 121 {
		t.Fatalf("%d, want 121", n)
	}
	record(span("t", 0, 121, 149), span("t", 0, 130, 140)) // overlaps are fine
	if n, _ := at("t", 0); n != 200 {
		t.Fatalf("gap closed: %d, want 200", n)
	}
	var rows int
	if err := st.conn.QueryRow(ctx, "SELECT count(*) FROM "+PositionTable+" WHERE topic = 't' AND partition = 0").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("%d rows for t/0 (%v), want one merged range", rows, err)
	}
	if n, ok := at("t", 1); !ok || n != 6 {
		t.Errorf("t/1: %d %v, want 6", n, ok)
	}
	// Another job's positions are its own.
	other := &positionStore{cfg: positionConfig{DSN: dsn, Job: "k"}, conn: st.conn}
	if _, ok, _ := other.start(ctx, "t", 0); ok {
		t.Error("job k sees job j's positions")
	}
	// An explicit start forgets what was recorded.
	if err := st.base(ctx, "t", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	if n, _ := at("t", 0); n != 10 {
		t.Errorf("after a reset: %d, want 10", n)
	}
}
