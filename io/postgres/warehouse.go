// Package postgres loads the clean tables the batch job wrote into a
// PostgreSQL warehouse, as the tables pin_clean, geo_clean and user_clean,
// so that the insights can also be asked in SQL (see sql/insights.sql).
//
// A load replaces the warehouse's contents in one transaction: the tables
// are created when missing, emptied and filled with COPY, so a re-run never
// doubles rows and a failed load leaves the previous contents in place.
// Concurrent loads into the same database wait for each other.
//
// The DSN is a PostgreSQL connection string (postgres://user@host:5432/db or
// "host=... dbname=..."). Keep passwords out of it: PGPASSWORD and
// ~/.pgpass are read as usual.
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

// Formats of the clean table files (the batch job's --format).
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
)

// Table names in the warehouse.
const (
	PinTable  = "pin_clean"
	GeoTable  = "geo_clean"
	UserTable = "user_clean"
)

// DefaultConnectTimeout bounds connecting when the DSN sets no
// connect_timeout, so that an unreachable server fails the load rather than
// hanging it.
const DefaultConnectTimeout = 15 * time.Second

type column struct{ name, typ string }

// table is one warehouse table: the contract's output columns, in order.
type table struct {
	name    string // in the warehouse
	source  string // transforms.Table*: the directory of its files
	columns []column
}

// sqlTypes maps the clean tables' column types to PostgreSQL's.
var sqlTypes = map[transforms.ColumnType]string{
	transforms.Int64:       "bigint",
	transforms.Text:        "text",
	transforms.Float64List: "double precision[]",
	transforms.Timestamp:   "timestamp with time zone",
}

// warehouseTable is the warehouse table of a clean table's schema.
func warehouseTable(name string, s transforms.Schema) table {
	t := table{name: name, source: s.Table}
	for _, c := range s.Columns {
		t.columns = append(t.columns, column{c.Name, sqlTypes[c.Type]})
	}
	return t
}

var (
	pinTable        = warehouseTable(PinTable, transforms.PinSchema)
	geoTable        = warehouseTable(GeoTable, transforms.GeoSchema)
	userTable       = warehouseTable(UserTable, transforms.UserSchema)
	warehouseTables = []table{pinTable, geoTable, userTable}
)

func (t table) columnNames() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return names
}

// createSQL is the table's CREATE TABLE IF NOT EXISTS statement; ind is the
// primary key, as the clean tables hold one row per ind.
func (t table) createSQL() string {
	defs := make([]string, len(t.columns))
	for i, c := range t.columns {
		defs[i] = pgx.Identifier{c.name}.Sanitize() + " " + c.typ
		if c.name == "ind" {
			defs[i] += " PRIMARY KEY"
		}
	}
	return "CREATE TABLE IF NOT EXISTS " + pgx.Identifier{t.name}.Sanitize() + " (" + strings.Join(defs, ", ") + ")"
}

// loadLockKey serialises loads into one database (pg_advisory_xact_lock).
const loadLockKey int64 = 0x70696e7069706531 // "pinpipe1"

// TableFiles lists the part files of one clean table under tablesDir
// (<tablesDir>/<table>/part-*.<format>), sorted. tablesDir may be a local
// directory or any Beam filesystem URL, such as s3://bucket/prefix/tables.
func TableFiles(ctx context.Context, tablesDir, table, format string) ([]string, error) {
	glob := files.Join(tablesDir, table, "part-*."+format)
	names, err := files.Expand(ctx, glob)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", glob, err)
	}
	slices.Sort(names)
	return names, nil
}

// LoadTables loads the clean tables the batch job wrote under tablesDir
// (<output>/tables) in the given format (parquet or jsonl) into the
// PostgreSQL database dsn points at, replacing what an earlier load put
// there. Tables are created in the DSN's current schema when missing; an
// existing table whose columns differ is an error, never altered.
func LoadTables(ctx context.Context, dsn, tablesDir, format string) error {
	if format != FormatParquet && format != FormatJSONL {
		return fmt.Errorf("warehouse: format must be %s or %s, not %q", FormatParquet, FormatJSONL, format)
	}
	names := make([][]string, len(warehouseTables))
	for i, t := range warehouseTables {
		var err error
		if names[i], err = TableFiles(ctx, tablesDir, t.source, format); err != nil {
			return fmt.Errorf("warehouse: %w", err)
		}
	}
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", loadLockKey); err != nil {
		return fmt.Errorf("warehouse: waiting for other loads: %w", err)
	}
	if err := ensureTables(ctx, tx); err != nil {
		return err
	}
	idents := make([]string, len(warehouseTables))
	for i, t := range warehouseTables {
		idents[i] = pgx.Identifier{t.name}.Sanitize()
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(idents, ", ")); err != nil {
		return fmt.Errorf("warehouse: emptying the tables: %w", err)
	}
	counts := make([]any, 0, 2*len(warehouseTables))
	for i, t := range warehouseTables {
		var src pgx.CopyFromSource
		switch t.source {
		case transforms.TablePin:
			src = newRowSource(ctx, t, names[i], format, pinValues)
		case transforms.TableGeo:
			src = newRowSource(ctx, t, names[i], format, geoValues)
		case transforms.TableUser:
			src = newRowSource(ctx, t, names[i], format, userValues)
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columnNames(), src)
		if err != nil {
			return fmt.Errorf("warehouse: loading %s: %w", t.name, err)
		}
		counts = append(counts, t.name, n)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("warehouse: committing the load: %w", err)
	}
	slog.InfoContext(ctx, "warehouse: loaded the clean tables", append(counts, "took", time.Since(start).Round(time.Millisecond))...)
	return nil
}

// Connect opens a connection to the warehouse, with DefaultConnectTimeout
// unless the DSN sets connect_timeout. Its errors name the server but never
// the password.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("warehouse: no PostgreSQL DSN given")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("warehouse: bad PostgreSQL DSN: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("warehouse: cannot reach PostgreSQL at %s:%d (database %q): %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return conn, nil
}

// Check connects to the warehouse and pings it, so that a run can fail
// before its pipeline rather than after it.
func Check(ctx context.Context, dsn string) error {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("warehouse: PostgreSQL does not answer: %w", err)
	}
	return nil
}

// ensureTables creates the missing tables and checks that existing ones
// have the expected columns.
func ensureTables(ctx context.Context, tx pgx.Tx) error {
	for _, t := range warehouseTables {
		if _, err := tx.Exec(ctx, t.createSQL()); err != nil {
			return fmt.Errorf("warehouse: creating %s: %w", t.name, err)
		}
		rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
			FROM pg_attribute a
			WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum`, pgx.Identifier{t.name}.Sanitize())
		if err != nil {
			return fmt.Errorf("warehouse: reading the columns of %s: %w", t.name, err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
			var c column
			err := r.Scan(&c.name, &c.typ)
			return c, err
		})
		if err != nil {
			return fmt.Errorf("warehouse: reading the columns of %s: %w", t.name, err)
		}
		if !slices.Equal(got, t.columns) {
			return fmt.Errorf("warehouse: table %s exists with columns %v, want %v: drop or migrate it", t.name, got, t.columns)
		}
	}
	return nil
}

// rowSource feeds COPY the rows of a table's files, one file in memory at a
// time.
type rowSource[R any] struct {
	ctx    context.Context
	table  table
	names  []string
	format string
	values func(*R) []any

	file string
	rows rowReader[R]
	vals []any
	err  error
}

// rowReader reads one file's rows; ok is false at its end.
type rowReader[R any] interface {
	next() (row R, ok bool, err error)
}

func newRowSource[R any](ctx context.Context, t table, names []string, format string, values func(*R) []any) *rowSource[R] {
	return &rowSource[R]{ctx: ctx, table: t, names: names, format: format, values: values}
}

func (s *rowSource[R]) Next() bool {
	for s.err == nil {
		if s.rows == nil {
			if len(s.names) == 0 {
				return false
			}
			s.file, s.names = s.names[0], s.names[1:]
			s.rows, s.err = openRows[R](s.ctx, s.file, s.format)
			continue
		}
		row, ok, err := s.rows.next()
		if err != nil {
			s.err = fmt.Errorf("reading %s: %w", s.file, err)
			return false
		}
		if !ok {
			s.rows = nil
			continue
		}
		s.vals = s.values(&row)
		if err := checkText(s.table, s.vals); err != nil {
			s.err = fmt.Errorf("%s: %w", s.file, err)
			return false
		}
		return true
	}
	return false
}

func (s *rowSource[R]) Values() ([]any, error) { return s.vals, nil }
func (s *rowSource[R]) Err() error             { return s.err }

// checkText refuses text holding a NUL character, which PostgreSQL cannot
// store, with a message that says where it is.
func checkText(t table, vals []any) error {
	for i, v := range vals {
		if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%s row with ind %v: column %s holds a NUL character, which PostgreSQL text cannot store",
				t.source, vals[0], t.columns[i].name)
		}
	}
	return nil
}

// openRows reads one part file.
func openRows[R any](ctx context.Context, name, format string) (rowReader[R], error) {
	b, err := files.ReadFile(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if format == FormatJSONL {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		return &jsonRows[R]{dec: dec}, nil
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	r, err := newParquetReader[R](f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return &parquetRows[R]{r: r, buf: make([]R, 256)}, nil
}

// newParquetReader reads a file written from R: its columns must be R's, as
// the reader would otherwise fill missing columns with nulls. It turns the
// reader's panic on a schema that does not fit into an error.
func newParquetReader[R any](f *parquet.File) (r *parquet.GenericReader[R], err error) {
	want, got := parquet.SchemaOf(*new(R)).Columns(), f.Schema().Columns()
	if !slices.EqualFunc(want, got, slices.Equal) {
		return nil, fmt.Errorf("the file's columns %v are not those of %T, %v", got, *new(R), want)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the file's schema does not fit %T: %v", *new(R), p)
		}
	}()
	return parquet.NewGenericReader[R](f), nil
}

type parquetRows[R any] struct {
	r      *parquet.GenericReader[R]
	buf    []R
	i, n   int
	closed bool
}

func (p *parquetRows[R]) next() (R, bool, error) {
	var zero R
	for p.i == p.n {
		if p.closed {
			return zero, false, nil
		}
		clear(p.buf)
		n, err := p.r.Read(p.buf)
		p.i, p.n = 0, n
		if err == io.EOF || (err == nil && n == 0) {
			p.closed = true
			err = p.r.Close()
		}
		if err != nil {
			return zero, false, err
		}
	}
	row := p.buf[p.i]
	p.i++
	return row, true, nil
}

type jsonRows[R any] struct {
	dec  *json.Decoder
	line int
}

func (j *jsonRows[R]) next() (R, bool, error) {
	var row R
	j.line++
	if err := j.dec.Decode(&row); err == io.EOF {
		return row, false, nil
	} else if err != nil {
		return row, false, fmt.Errorf("row %d: %w", j.line, err)
	}
	return row, true, nil
}

// opt turns a nil pointer into SQL NULL.
func opt[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func pinValues(p *transforms.Pin) []any {
	return []any{p.Ind, opt(p.UniqueID), opt(p.Title), opt(p.Description), opt(p.FollowerCount), opt(p.PosterName),
		opt(p.TagList), opt(p.IsImageOrVideo), opt(p.ImageSrc), opt(p.SaveLocation), opt(p.Category)}
}

func geoValues(g *transforms.Geo) []any {
	var coords any
	if g.Coordinates != nil {
		coords = g.Coordinates
	}
	return []any{g.Ind, opt(g.Country), coords, opt(g.Timestamp)}
}

func userValues(u *transforms.User) []any {
	return []any{u.Ind, opt(u.UserName), opt(u.Age), opt(u.DateJoined)}
}
