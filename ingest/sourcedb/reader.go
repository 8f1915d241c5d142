package sourcedb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrEmpty means pinterest_data has no rows: there is no post to read.
var ErrEmpty = errors.New("sourcedb: pinterest_data is empty (run pinpipe seed first)")

// Reader reads posts by key over one connection; it is not safe for
// concurrent use (give each goroutine its own).
type Reader struct {
	conn *pgx.Conn
}

// Open connects a Reader to the source database.
func Open(ctx context.Context, dsn string) (*Reader, error) {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Reader{conn: conn}, nil
}

// Close closes the connection.
func (r *Reader) Close(ctx context.Context) error { return r.conn.Close(ctx) }

// Broken says whether the connection is lost, so that its owner can open a
// new Reader.
func (r *Reader) Broken() bool { return r.conn.IsClosed() }

// The statements: parameterised, and answered from the primary key's index
// (min and max are its end points; no OFFSET scans).
var (
	keyRangeSQL = fmt.Sprintf("SELECT min(%[1]s), max(%[1]s) FROM %[2]s", pgx.Identifier{PinTable.Key}.Sanitize(), pgx.Identifier{PinTable.Name}.Sanitize())
	keysSQL     = fmt.Sprintf("SELECT %[1]s FROM %[2]s ORDER BY %[1]s", pgx.Identifier{PinTable.Key}.Sanitize(), pgx.Identifier{PinTable.Name}.Sanitize())
	rowSQL      = func() []string {
		out := make([]string, len(Tables))
		for i, t := range Tables {
			out[i] = fmt.Sprintf("SELECT * FROM %s WHERE %s = $1", pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{t.Key}.Sanitize())
		}
		return out
	}()
)

// KeyRange returns the smallest and largest key of pinterest_data, or
// ErrEmpty.
func (r *Reader) KeyRange(ctx context.Context) (lo, hi int64, err error) {
	var min, max *int64
	if err := r.conn.QueryRow(ctx, keyRangeSQL).Scan(&min, &max); err != nil {
		return 0, 0, fmt.Errorf("sourcedb: reading the key range of %s: %w", PinTable.Name, err)
	}
	if min == nil || max == nil {
		return 0, 0, ErrEmpty
	}
	return *min, *max, nil
}

// Keys returns every key of pinterest_data, in order: one index-only scan,
// for a caller that found the keys too sparse to hit by drawing from
// KeyRange.
func (r *Reader) Keys(ctx context.Context) ([]int64, error) {
	rows, err := r.conn.Query(ctx, keysSQL)
	if err != nil {
		return nil, fmt.Errorf("sourcedb: reading the keys of %s: %w", PinTable.Name, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("sourcedb: reading the keys of %s: %w", PinTable.Name, err)
	}
	return keys, nil
}

// ReadPost reads the rows of post key from the three tables, in the order
// of Tables, in one round trip. A row missing from a table is nil; found is
// false when the pin row is missing (the key is a gap), and then the other
// rows do not matter.
func (r *Reader) ReadPost(ctx context.Context, key int64) (rows [3]*Row, found bool, err error) {
	b := &pgx.Batch{}
	for _, q := range rowSQL {
		b.Queue(q, key)
	}
	res := r.conn.SendBatch(ctx, b)
	defer res.Close()
	for i, t := range Tables {
		rows[i], err = readRow(res)
		if err != nil {
			return rows, false, fmt.Errorf("sourcedb: reading %s %s=%d: %w", t.Name, t.Key, key, err)
		}
	}
	if err := res.Close(); err != nil {
		return rows, false, fmt.Errorf("sourcedb: reading post %d: %w", key, err)
	}
	return rows, rows[0] != nil, nil
}

// readRow reads the (at most one) row of a batched query, with whatever
// columns the table has: the emulator sends every column, as the original
// sent the whole row.
func readRow(res pgx.BatchResults) (*Row, error) {
	rs, err := res.Query()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	if !rs.Next() {
		return nil, rs.Err()
	}
	vals, err := rs.Values()
	if err != nil {
		return nil, err
	}
	fds := rs.FieldDescriptions()
	row := &Row{Columns: make([]string, len(fds)), Values: vals}
	for i, fd := range fds {
		row.Columns[i] = fd.Name
	}
	rs.Close()
	return row, rs.Err()
}
