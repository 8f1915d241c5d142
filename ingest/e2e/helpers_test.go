package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

func TestMain(m *testing.M) {
	// Beam sets up slog's default logger at its init (the direct runner
	// logs its whole plan at info): only problems, please.
	beamlog.LogLevel = "warn"
	ptest.Main(m)
}

// posts is how many posts each test seeds and sends, every one once.
const posts = 300

// quietLogger shows only problems, on stderr (not the test's log: the
// servers log from goroutines that may outlive a test).
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// seededSource creates a database of the test's own and seeds it, as
// `pinpipe seed --posts=posts --seed=seed` does.
func seededSource(t *testing.T, seed uint64) string {
	t.Helper()
	dsn := testenv.PostgresDB(t, false)
	st, err := sourcedb.Seed(context.Background(), dsn, sourcedb.Options{Posts: posts, Seed: seed, FirstInd: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range sourcedb.Tables {
		if st.Rows[tb.Name] != posts {
			t.Fatalf("seeded %d rows into %s, want %d", st.Rows[tb.Name], tb.Name, posts)
		}
	}
	return dsn
}

// sourceRecord is a source row as the original scripts sent it.
type sourceRecord struct {
	ind  int64
	json string
}

// sourceRecords reads every row of the source tables back from PostgreSQL
// and serialises each as the original posting scripts did: a JSON object of
// the row's columns in the table's order, datetimes as "YYYY-MM-DD
// HH:MM:SS", NULL as null. Keyed by topic (pin, geo, user), in key order.
func sourceRecords(t *testing.T, dsn string) map[string][]sourceRecord {
	t.Helper()
	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	out := map[string][]sourceRecord{}
	for _, tb := range sourcedb.Tables {
		rows, err := conn.Query(ctx, "SELECT * FROM "+pgx.Identifier{tb.Name}.Sanitize()+" ORDER BY "+pgx.Identifier{tb.Key}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sourceRecord, error) {
			vals, err := r.Values()
			if err != nil {
				return sourceRecord{}, err
			}
			var buf bytes.Buffer
			buf.WriteByte('{')
			for i, fd := range r.FieldDescriptions() {
				if i > 0 {
					buf.WriteByte(',')
				}
				writeJSON(t, &buf, fd.Name)
				buf.WriteByte(':')
				switch v := vals[i].(type) {
				case time.Time:
					writeJSON(t, &buf, v.UTC().Format("2006-01-02 15:04:05"))
				default:
					writeJSON(t, &buf, v)
				}
			}
			buf.WriteByte('}')
			return sourceRecord{ind: vals[0].(int64), json: buf.String()}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != posts {
			t.Fatalf("%s holds %d rows, want %d", tb.Name, len(recs), posts)
		}
		out[tb.Topic] = recs
	}
	return out
}

// writeJSON writes v as JSON, text as it is (no HTML escaping).
func writeJSON(t *testing.T, buf *bytes.Buffer, v any) {
	t.Helper()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// startGateway serves a gateway on a loopback port, as `pinpipe gateway`
// does, until the test ends, and returns its base URL.
func startGateway(t *testing.T, cfg gateway.Config) string {
	t.Helper()
	cfg.Logger = quietLogger()
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	t.Cleanup(func() {
		defer func(s time.Time) { t.Logf("gw close %s", time.Since(s)) }(time.Now())
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the gateway did not stop within 15 s")
		}
	})
	return "http://" + ln.Addr().String()
}

// runPrefix makes topic and stream names unique to a run, as kinesalite
// outlives a test (with -count=2, say).
func runPrefix(name string) string {
	return name + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}
