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
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/transforms"
)

// Formats of the clean table files (the batch job's --table-format).
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

// table is one warehouse table: the contract's output columns, in order.
type table struct {
	name    string // in the warehouse
	schema  transforms.Schema
	columns []Column
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
	t := table{name: name, schema: s}
	for _, c := range s.Columns {
		t.columns = append(t.columns, Column{c.Name, sqlTypes[c.Type]})
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
		names[i] = c.Name
	}
	return names
}

// createSQL is the table's CREATE TABLE IF NOT EXISTS statement; ind is the
// primary key, as the clean tables hold one row per ind.
func (t table) createSQL() string {
	defs := make([]string, len(t.columns))
	for i, c := range t.columns {
		defs[i] = pgx.Identifier{c.Name}.Sanitize() + " " + c.Type
		if c.Name == "ind" {
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
		if names[i], err = TableFiles(ctx, tablesDir, t.schema.Table, format); err != nil {
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
		src := &rowSource{ctx: ctx, table: t, names: names[i], format: format}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columnNames(), src)
		src.close()
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
		got, err := TableColumns(ctx, tx, t.name)
		if err != nil {
			return fmt.Errorf("warehouse: reading the columns of %s: %w", t.name, err)
		}
		if !slices.Equal(got, t.columns) {
			return fmt.Errorf("warehouse: table %s exists with columns %v, want %v: drop or migrate it", t.name, got, t.columns)
		}
	}
	return nil
}

// rowSource feeds COPY the rows of a table's files, streaming one file at
// a time: each row is read as an encoded row (io/parquetio or the JSON-lines
// reader, through the table's schema) and its values made from its decoded
// fields, with no row struct per table.
type rowSource struct {
	ctx    context.Context
	table  table
	names  []string
	format string

	file   string
	rows   transforms.SortedRows // the open file's rows; nil between files
	closer io.Closer
	fields []transforms.Field
	vals   []any
	err    error
}

func (s *rowSource) Next() bool {
	for s.err == nil {
		if s.rows == nil {
			if len(s.names) == 0 {
				return false
			}
			s.file, s.names = s.names[0], s.names[1:]
			s.rows, s.closer, s.err = openRows(s.ctx, s.file, s.format, &s.table.schema)
			continue
		}
		if !s.rows.Next() {
			if err := s.rows.Err(); err != nil {
				s.err = fmt.Errorf("reading %s: %w", s.file, err)
				return false
			}
			s.close()
			continue
		}
		var err error
		if s.fields, err = s.table.schema.DecodeFields(s.rows.Row(), s.fields); err != nil {
			s.err = fmt.Errorf("reading %s: %w", s.file, err)
			return false
		}
		s.vals = copyValues(s.vals[:0], s.table.schema.Columns, s.fields)
		if err := checkText(s.table, s.vals); err != nil {
			s.err = fmt.Errorf("%s: %w", s.file, err)
			return false
		}
		return true
	}
	return false
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }
func (s *rowSource) Err() error             { return s.err }

// close closes the open file, if any.
func (s *rowSource) close() {
	if s.closer != nil {
		s.closer.Close()
	}
	s.rows, s.closer = nil, nil
}

// copyValues appends a row's COPY values, one per column: SQL NULL for a
// null field, else the column type's Go value as pgx encodes it.
func copyValues(vals []any, cols []transforms.Column, fields []transforms.Field) []any {
	for i, c := range cols {
		f := &fields[i]
		if f.Null {
			vals = append(vals, nil)
			continue
		}
		switch c.Type {
		case transforms.Int64:
			vals = append(vals, f.Int)
		case transforms.Text:
			vals = append(vals, string(f.Bytes))
		case transforms.Float64List:
			fs := make([]float64, len(f.Bytes)/8)
			for j := range fs {
				fs[j] = math.Float64frombits(binary.LittleEndian.Uint64(f.Bytes[8*j:]))
			}
			vals = append(vals, fs)
		case transforms.Timestamp:
			vals = append(vals, time.Unix(f.Int, f.Nsec).UTC())
		}
	}
	return vals
}

// rowValues is the COPY values of a clean row struct of the table, made
// through its encoding and schema as the batch load's are.
func (t table) rowValues(row any) ([]any, error) {
	enc, err := transforms.EncodeRow(nil, row)
	if err != nil {
		return nil, err
	}
	fields, err := t.schema.DecodeFields(enc, nil)
	if err != nil {
		return nil, err
	}
	return copyValues(nil, t.schema.Columns, fields), nil
}

// checkText refuses text holding a NUL character, which PostgreSQL cannot
// store, with a message that says where it is.
func checkText(t table, vals []any) error {
	for i, v := range vals {
		if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%s row with ind %v: column %s holds a NUL character, which PostgreSQL text cannot store",
				t.schema.Table, vals[0], t.columns[i].Name)
		}
	}
	return nil
}

// openRows opens one part file as encoded rows of the table: Parquet by
// column chunks (a file of another schema is an error), JSON lines one line
// at a time (an unknown or mistyped field is an error naming the row).
func openRows(ctx context.Context, name, format string, s *transforms.Schema) (transforms.SortedRows, io.Closer, error) {
	if format == FormatJSONL {
		rc, err := files.OpenRead(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return transforms.NewJSONLinesReader(rc, s), rc, nil
	}
	f, err := files.OpenLocal(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", name, err)
	}
	st, err := f.Stat()
	var r *parquetio.Reader
	if err == nil {
		r, err = parquetio.NewReader(f, st.Size(), *s)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return r, f, nil
}
