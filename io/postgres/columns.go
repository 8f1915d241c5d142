package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Column is a table column: its name and its SQL type, spelled as
// PostgreSQL's format_type spells it ("bigint", "timestamp with time
// zone"), so that an existing table can be compared with it.
type Column struct{ Name, Type string }

// TableColumns reads an existing table's columns, in their order: a CREATE
// TABLE IF NOT EXISTS that found the table there checks with them that it
// is the table it would have made.
func TableColumns(ctx context.Context, tx pgx.Tx, table string) ([]Column, error) {
	rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, pgx.Identifier{table}.Sanitize())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
		var c Column
		err := r.Scan(&c.Name, &c.Type)
		return c, err
	})
}
