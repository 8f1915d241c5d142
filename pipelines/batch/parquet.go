package batch

import (
	"bytes"

	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/transforms"
)

// parquetRowsAsJSON reads a clean-table Parquet file back as the JSON lines
// the JSON-lines output would hold, through the table's schema.
func parquetRowsAsJSON(data []byte, table string) ([]string, error) {
	s := transforms.SchemaOf(table)
	r, err := parquetio.NewReader(bytes.NewReader(data), int64(len(data)), s)
	if err != nil {
		return nil, err
	}
	var out []string
	var line []byte
	for r.Next() {
		if line, err = s.AppendJSON(line[:0], r.Row()); err != nil {
			return nil, err
		}
		out = append(out, string(line))
	}
	return out, r.Err()
}
