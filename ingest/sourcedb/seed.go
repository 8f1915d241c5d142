package sourcedb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/io/postgres"
)

// Options says what to seed.
type Options struct {
	// Posts is the number of posts; each has a row in all three tables.
	Posts int
	// Seed makes the rows: the same seed and Posts give the same rows as
	// generate.New(Seed, Posts), post for post.
	Seed uint64
	// FirstInd is the key of the first post; the keys are FirstInd,
	// FirstInd+1, ...
	FirstInd int64
}

// DefaultOptions are the original's table size (about 11,000 posts) and
// the generator's default seed.
func DefaultOptions() Options { return Options{Posts: 11000, Seed: 1} }

// Stats says what Seed loaded.
type Stats struct {
	// Rows is the number of rows copied, by table name.
	Rows map[string]int64
	Took time.Duration
}

// seedLockKey serialises seeds of one database (pg_advisory_xact_lock), so
// that two at once queue rather than fail on each other's locks.
const seedLockKey int64 = 0x70696e7069706532 // "pinpipe2"

// Seed creates the three source tables in the database dsn points at
// (in its current schema) when they are missing and replaces their
// contents with o.Posts generated posts. It runs in one transaction, so a
// re-run replaces rather than adds to what an earlier one loaded, and a
// failed run leaves the old contents in place. An existing table whose
// columns differ from the source's is an error, never altered.
func Seed(ctx context.Context, dsn string, o Options) (Stats, error) {
	if o.Posts < 0 {
		return Stats{}, fmt.Errorf("sourcedb: posts must be >= 0, not %d", o.Posts)
	}
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return Stats{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("sourcedb: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", seedLockKey); err != nil {
		return Stats{}, fmt.Errorf("sourcedb: waiting for other seeds: %w", err)
	}
	if err := ensureTables(ctx, tx); err != nil {
		return Stats{}, err
	}
	idents := make([]string, len(Tables))
	for i, t := range Tables {
		idents[i] = pgx.Identifier{t.Name}.Sanitize()
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(idents, ", ")); err != nil {
		return Stats{}, fmt.Errorf("sourcedb: emptying the tables: %w", err)
	}
	g := generate.New(o.Seed, o.Posts)
	st := Stats{Rows: map[string]int64{}}
	for _, t := range Tables {
		// Each table regenerates the posts rather than holding them all:
		// generating is cheap, and memory stays flat for any size.
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == o.Posts {
				return nil, nil
			}
			if i%4096 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			row := t.Values(g.Post(o.FirstInd + int64(i)))
			i++
			return row, nil
		})
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.Name}, t.ColumnNames(), src)
		if err != nil {
			return Stats{}, fmt.Errorf("sourcedb: loading %s: %w", t.Name, err)
		}
		st.Rows[t.Name] = n
	}
	if err := tx.Commit(ctx); err != nil {
		return Stats{}, fmt.Errorf("sourcedb: committing the seed: %w", err)
	}
	st.Took = time.Since(start)
	slog.InfoContext(ctx, "sourcedb: seeded the source tables", "posts", o.Posts, "seed", o.Seed, "took", st.Took.Round(time.Millisecond))
	return st, nil
}

// ensureTables creates the missing tables and checks that existing ones
// have the source's columns.
func ensureTables(ctx context.Context, tx pgx.Tx) error {
	for _, t := range Tables {
		if _, err := tx.Exec(ctx, t.createSQL()); err != nil {
			return fmt.Errorf("sourcedb: creating %s: %w", t.Name, err)
		}
		got, err := postgres.TableColumns(ctx, tx, t.Name)
		if err != nil {
			return fmt.Errorf("sourcedb: reading the columns of %s: %w", t.Name, err)
		}
		if !slices.EqualFunc(got, t.Columns, func(g postgres.Column, w Column) bool { return g == postgres.Column(w) }) {
			return fmt.Errorf("sourcedb: table %s exists with columns %v, want %v: drop or rename it", t.Name, got, t.Columns)
		}
	}
	return nil
}
