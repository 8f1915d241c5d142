// Package sourcedb is the source database of the ingestion path: the three
// PostgreSQL tables the original system kept in RDS (pinterest_data,
// geolocation_data, user_data), with the original columns. Seed fills them
// with generated posts; Reader reads one post back by key, as the posting
// emulator does.
//
// The DSN is a PostgreSQL connection string (postgres://user@host:5432/db or
// "host=... dbname=..."). Keep passwords out of it: PGPASSWORD and
// ~/.pgpass are read as usual.
package sourcedb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/generate"
)

// Column is a source table column: its name and its SQL type, spelled as
// PostgreSQL's format_type spells it, so that an existing table can be
// compared with it (postgres.TableColumns).
type Column struct{ Name, Type string }

// Table is one source table.
type Table struct {
	// Name is the SQL table name.
	Name string
	// Topic is the record kind ("pin", "geo" or "user"): the suffix of its
	// Kafka topic (<prefix>.<topic>) and Kinesis stream (streaming-<prefix>-<topic>).
	Topic string
	// Key is the primary key column: index for pin, ind for geo and user.
	Key string
	// Columns are the contract's raw fields, in the source's order.
	Columns []Column
}

// The source tables, with the contract's raw fields in the source's column
// order. Text stays text even where it looks numeric (follower_count), as in
// the original: the dirty values are what the pipelines exist to clean.
var (
	PinTable = Table{"pinterest_data", "pin", "index", []Column{
		{"index", "bigint"}, {"unique_id", "text"}, {"title", "text"}, {"description", "text"},
		{"poster_name", "text"}, {"follower_count", "text"}, {"tag_list", "text"},
		{"is_image_or_video", "text"}, {"image_src", "text"}, {"downloaded", "integer"},
		{"save_location", "text"}, {"category", "text"},
	}}
	GeoTable = Table{"geolocation_data", "geo", "ind", []Column{
		{"ind", "bigint"}, {"timestamp", "timestamp without time zone"}, {"latitude", "double precision"},
		{"longitude", "double precision"}, {"country", "text"},
	}}
	UserTable = Table{"user_data", "user", "ind", []Column{
		{"ind", "bigint"}, {"first_name", "text"}, {"last_name", "text"}, {"age", "integer"},
		{"date_joined", "timestamp without time zone"},
	}}
	// Tables are the three, in the order a post's records are sent.
	Tables = []Table{PinTable, GeoTable, UserTable}
)

// ColumnNames returns the table's column names in order.
func (t Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// createSQL is the table's CREATE TABLE IF NOT EXISTS statement, with the
// key as primary key so that the emulator's reads by key are index lookups.
func (t Table) createSQL() string {
	defs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		defs[i] = pgx.Identifier{c.Name}.Sanitize() + " " + c.Type
		if c.Name == t.Key {
			defs[i] += " PRIMARY KEY"
		}
	}
	return "CREATE TABLE IF NOT EXISTS " + pgx.Identifier{t.Name}.Sanitize() + " (" + strings.Join(defs, ", ") + ")"
}

// Values returns the table's row of a generated post, in column order and
// with the Go types pgx reads the columns back as (int32 for integer), so
// that a row from the generator and the same row read from the database are
// equal.
func (t Table) Values(p generate.Post) []any {
	switch t.Topic {
	case PinTable.Topic:
		x := p.Pin
		return []any{x.Index, x.UniqueID, x.Title, x.Description, x.PosterName, x.FollowerCount, x.TagList,
			x.IsImageOrVideo, x.ImageSrc, int32(x.Downloaded), x.SaveLocation, x.Category}
	case GeoTable.Topic:
		x := p.Geo
		return []any{x.Ind, x.Timestamp.UTC(), x.Latitude, x.Longitude, x.Country}
	case UserTable.Topic:
		x := p.User
		return []any{x.Ind, x.FirstName, x.LastName, int32(x.Age), x.DateJoined.UTC()}
	}
	panic("sourcedb: unknown table " + t.Name)
}

// Row is one source row: column names and values as pgx decodes them
// (int64, int32, float64, string, time.Time, nil for NULL, ...).
type Row struct {
	Columns []string
	Values  []any
}

// GeneratedRow returns t's row of a generated post as a Row.
func (t Table) GeneratedRow(p generate.Post) *Row {
	return &Row{Columns: t.ColumnNames(), Values: t.Values(p)}
}

// DefaultConnectTimeout bounds connecting when the DSN sets no
// connect_timeout, so that an unreachable server fails fast with a clear
// message rather than hanging.
const DefaultConnectTimeout = 10 * time.Second

// Connect opens a connection to the source database, with
// DefaultConnectTimeout unless the DSN sets connect_timeout. Its errors name
// the server but never the password.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("sourcedb: no PostgreSQL DSN given")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("sourcedb: bad PostgreSQL DSN: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sourcedb: cannot reach PostgreSQL at %s:%d (database %q, connect timeout %s): %w",
			cfg.Host, cfg.Port, cfg.Database, cfg.ConnectTimeout, err)
	}
	return conn, nil
}
