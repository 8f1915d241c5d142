package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	register.DoFn2x1[context.Context, beam.X, error](&upsertRowsFn{})
	register.DoFn2x1[context.Context, transforms.DeadLetter, error](&insertDeadLettersFn{})
	register.DoFn2x1[context.Context, CategoryPosts, error](&insertCategoryPostsFn{})
	beam.RegisterCoder(reflect.TypeOf(CategoryPosts{}), encodeCategoryPosts, decodeCategoryPosts)
}

func encodeCategoryPosts(c CategoryPosts) ([]byte, error) { return json.Marshal(c) }

func decodeCategoryPosts(b []byte) (CategoryPosts, error) {
	var c CategoryPosts
	err := json.Unmarshal(b, &c)
	return c, err
}

// Tables the streaming pipeline writes. They are apart from the batch
// warehouse's tables, which a batch load replaces wholesale.
const (
	StreamPinTable        = "pin_stream"
	StreamGeoTable        = "geo_stream"
	StreamUserTable       = "user_stream"
	StreamDeadLetterTable = "deadletter_stream"
	// CategoryPostsTable holds the posts each window saw per category;
	// CategoryCountsTable is the view counting them.
	CategoryPostsTable  = "posts_per_category_stream_posts"
	CategoryCountsTable = "posts_per_category_stream"
)

// streamTable is the streaming table of a clean table.
func streamTable(source string) table {
	for _, t := range warehouseTables {
		if t.schema.Table == source {
			t.name = map[string]string{transforms.TablePin: StreamPinTable, transforms.TableGeo: StreamGeoTable, transforms.TableUser: StreamUserTable}[source]
			return t
		}
	}
	panic("postgres: unknown table " + source)
}

// maxBuffered bounds the rows one bundle buffers before it writes them.
const maxBuffered = 5000

// WriteRows upserts clean rows (transforms.Pin, Geo or User, as table
// says) into the table's streaming table, keyed by ind: rows are buffered
// per bundle and written in one transaction (COPY into a temporary table,
// then INSERT ... ON CONFLICT (ind) DO UPDATE), so a replayed bundle or a
// re-sent record never makes a second row. The table is created if missing.
func WriteRows(s beam.Scope, dsn, table string, rows beam.PCollection) {
	s = s.Scope("postgres.WriteRows")
	beam.ParDo0(s, &upsertRowsFn{DSN: dsn, Table: table}, rows)
}

type upsertRowsFn struct {
	DSN   string
	Table string

	db   *Retrying
	t    table
	rows map[int64][]any
}

func (f *upsertRowsFn) Setup(ctx context.Context) error {
	f.t = streamTable(f.Table)
	f.db = &Retrying{DSN: f.DSN, Init: func(ctx context.Context, conn *pgx.Conn) error {
		return createTable(ctx, conn, f.t.createSQL())
	}}
	return f.db.Do(ctx, "connecting for "+f.t.name, func(*pgx.Conn) error { return nil })
}

// createTable runs a CREATE TABLE IF NOT EXISTS under the load lock:
// concurrent workers creating one table at once otherwise collide in
// PostgreSQL's catalog (a unique violation on pg_type).
func createTable(ctx context.Context, conn *pgx.Conn, ddl string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", loadLockKey); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
}

func (f *upsertRowsFn) Teardown() {
	if f.db != nil {
		f.db.Close()
	}
}

func (f *upsertRowsFn) StartBundle(context.Context) { f.rows = map[int64][]any{} }

func (f *upsertRowsFn) ProcessElement(ctx context.Context, row beam.X) error {
	vals, err := f.t.rowValues(row)
	if err != nil {
		return fmt.Errorf("postgres.WriteRows: %w", err)
	}
	if err := checkText(f.t, vals); err != nil {
		return err
	}
	f.rows[vals[0].(int64)] = vals
	if len(f.rows) >= maxBuffered {
		return f.flush(ctx)
	}
	return nil
}

func (f *upsertRowsFn) FinishBundle(ctx context.Context) error { return f.flush(ctx) }

func (f *upsertRowsFn) flush(ctx context.Context) error {
	if len(f.rows) == 0 {
		return nil
	}
	vals := make([][]any, 0, len(f.rows))
	for _, v := range f.rows {
		vals = append(vals, v)
	}
	cols := f.t.columnNames()
	var set []string
	for _, c := range cols[1:] {
		id := pgx.Identifier{c}.Sanitize()
		set = append(set, id+" = EXCLUDED."+id)
	}
	target := pgx.Identifier{f.t.name}.Sanitize()
	err := f.db.Do(ctx, fmt.Sprintf("upserting %d rows into %s", len(vals), f.t.name), func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE upsert_rows (LIKE "+target+") ON COMMIT DROP"); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"upsert_rows"}, cols, pgx.CopyFromRows(vals)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+target+" SELECT * FROM upsert_rows ON CONFLICT (ind) DO UPDATE SET "+strings.Join(set, ", "))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: upserting %d rows into %s: %w", len(vals), f.t.name, err)
	}
	clear(f.rows)
	return nil
}

// WriteDeadLetters stores dead letters in the streaming dead-letter table,
// created if missing: each distinct bad record once per table (keyed by the
// SHA-256 of its original bytes), so that a replay after a restart, or the
// same bad record sent again, adds no second row. received_at is when it
// was first seen.
func WriteDeadLetters(s beam.Scope, dsn string, dead beam.PCollection) {
	s = s.Scope("postgres.WriteDeadLetters")
	beam.ParDo0(s, &insertDeadLettersFn{DSN: dsn}, dead)
}

type insertDeadLettersFn struct {
	DSN  string
	db   *Retrying
	rows [][]any
}

func (f *insertDeadLettersFn) Setup(ctx context.Context) error {
	f.db = &Retrying{DSN: f.DSN, Init: createDeadLetterTable}
	return f.db.Do(ctx, "connecting for "+StreamDeadLetterTable, func(*pgx.Conn) error { return nil })
}

func createDeadLetterTable(ctx context.Context, conn *pgx.Conn) error {
	return createTable(ctx, conn, deadLetterTableSQL)
}

// deadLetterTableSQL creates StreamDeadLetterTable if missing. The ALTER
// and the index bring a table made before payload_sha256 existed up to
// date (its old rows have none, and stay as they are).
const deadLetterTableSQL = `CREATE TABLE IF NOT EXISTS ` + StreamDeadLetterTable + ` (
		id bigserial PRIMARY KEY, received_at timestamptz NOT NULL, table_name text NOT NULL,
		reason text NOT NULL, payload text NOT NULL, payload_base64 text, payload_sha256 bytea);
		ALTER TABLE ` + StreamDeadLetterTable + ` ADD COLUMN IF NOT EXISTS payload_sha256 bytea;
		CREATE UNIQUE INDEX IF NOT EXISTS ` + StreamDeadLetterTable + `_payload ON ` + StreamDeadLetterTable + ` (table_name, payload_sha256)`

// CreateStreamTables creates every table the streaming sinks write (the
// clean tables' stream tables, StreamDeadLetterTable, the category posts
// and their view) if missing. A launcher calls it before the job runs:
// workers create a table only once an element reaches its writer, so
// deadletter_stream would not exist before the first dead letter.
func CreateStreamTables(ctx context.Context, dsn string) error {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, source := range transforms.Tables {
		if err := createTable(ctx, conn, streamTable(source).createSQL()); err != nil {
			return err
		}
	}
	if err := createTable(ctx, conn, deadLetterTableSQL); err != nil {
		return err
	}
	return CreateCategoryTables(ctx, conn)
}

func (f *insertDeadLettersFn) Teardown() {
	if f.db != nil {
		f.db.Close()
	}
}

func (f *insertDeadLettersFn) ProcessElement(ctx context.Context, d transforms.DeadLetter) error {
	var b64 any
	original := []byte(d.Payload)
	if d.PayloadBase64 != "" {
		b64 = d.PayloadBase64
		if b, err := base64.StdEncoding.DecodeString(d.PayloadBase64); err == nil {
			original = b
		}
	}
	sum := sha256.Sum256(original)
	// PostgreSQL text cannot hold NUL; the base64 copy keeps the bytes.
	payload := strings.ReplaceAll(d.Payload, "\x00", "\uFFFD")
	f.rows = append(f.rows, []any{time.Now().UTC(), d.Table, d.Reason, payload, b64, sum[:]})
	if len(f.rows) >= maxBuffered {
		return f.FinishBundle(ctx)
	}
	return nil
}

func (f *insertDeadLettersFn) FinishBundle(ctx context.Context) error {
	if len(f.rows) == 0 {
		return nil
	}
	err := f.db.Do(ctx, fmt.Sprintf("writing %d dead letters", len(f.rows)), func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE new_dead_letters (received_at timestamptz, table_name text,
			reason text, payload text, payload_base64 text, payload_sha256 bytea) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"new_dead_letters"},
				[]string{"received_at", "table_name", "reason", "payload", "payload_base64", "payload_sha256"}, pgx.CopyFromRows(f.rows)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+StreamDeadLetterTable+` (received_at, table_name, reason, payload, payload_base64, payload_sha256)
			SELECT DISTINCT ON (table_name, payload_sha256) * FROM new_dead_letters ORDER BY table_name, payload_sha256, received_at
			ON CONFLICT (table_name, payload_sha256) DO NOTHING`)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: writing %d dead letters: %w", len(f.rows), err)
	}
	f.rows = f.rows[:0]
	return nil
}

// CategoryPosts are posts of a category seen in one event-time window: the
// inds of one pane of the window.
type CategoryPosts struct {
	WindowStart time.Time
	WindowEnd   time.Time
	Category    string
	Inds        []int64
}

// WriteCategoryCounts records which posts of each category each window
// saw, one row per (window, category, post) in CategoryPostsTable, and
// counts them in the view CategoryCountsTable. Inserting is idempotent and
// panes only add posts, so the count is exact however the panes were split:
// early and late firings, a replay after a restart, or a window that a
// restarted job sees again only in part (its state died with the old job).
func WriteCategoryCounts(s beam.Scope, dsn string, posts beam.PCollection) {
	s = s.Scope("postgres.WriteCategoryCounts")
	beam.ParDo0(s, &insertCategoryPostsFn{DSN: dsn}, posts)
}

type insertCategoryPostsFn struct {
	DSN string
	db  *Retrying
}

func (f *insertCategoryPostsFn) Setup(ctx context.Context) error {
	f.db = &Retrying{DSN: f.DSN, Init: CreateCategoryTables}
	return f.db.Do(ctx, "connecting for "+CategoryPostsTable, func(*pgx.Conn) error { return nil })
}

// CreateCategoryTables creates CategoryPostsTable and the view
// CategoryCountsTable if they are missing.
func CreateCategoryTables(ctx context.Context, conn *pgx.Conn) error {
	return createTable(ctx, conn, `CREATE TABLE IF NOT EXISTS `+CategoryPostsTable+` (
		window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, category text NOT NULL,
		ind bigint NOT NULL, seen_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (window_start, window_end, category, ind));
		CREATE OR REPLACE VIEW `+CategoryCountsTable+` AS
		SELECT window_start, window_end, category, count(*) AS posts, max(seen_at) AS updated_at
		FROM `+CategoryPostsTable+` GROUP BY window_start, window_end, category`)
}

func (f *insertCategoryPostsFn) Teardown() {
	if f.db != nil {
		f.db.Close()
	}
}

func (f *insertCategoryPostsFn) ProcessElement(ctx context.Context, c CategoryPosts) error {
	return f.db.Do(ctx, fmt.Sprintf("writing %d posts of %s", len(c.Inds), c.Category), func(conn *pgx.Conn) error {
		return InsertCategoryPosts(ctx, conn, c)
	})
}

// Execer is a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// InsertCategoryPosts records the posts of c in CategoryPostsTable, on a
// connection or inside a transaction; posts already there stay as they
// are, so a pane written again (a replay, a re-read) changes nothing.
func InsertCategoryPosts(ctx context.Context, db Execer, c CategoryPosts) error {
	_, err := db.Exec(ctx, `INSERT INTO `+CategoryPostsTable+` (window_start, window_end, category, ind)
		SELECT $1, $2, $3, unnest($4::bigint[])
		ON CONFLICT DO NOTHING`,
		c.WindowStart, c.WindowEnd, c.Category, c.Inds)
	if err != nil {
		return fmt.Errorf("postgres: writing %d posts of %s at %s: %w", len(c.Inds), c.Category, c.WindowStart, err)
	}
	return nil
}
