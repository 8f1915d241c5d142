package batch

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/pinpipe/pinpipe/transforms"
)

// parquetRowsAsJSON reads a clean-table Parquet file back as JSON lines.
func parquetRowsAsJSON(data []byte, table string) ([]string, error) {
	switch table {
	case transforms.TablePin:
		return readParquet[transforms.Pin](data)
	case transforms.TableGeo:
		return readParquet[transforms.Geo](data)
	case transforms.TableUser:
		return readParquet[transforms.User](data)
	}
	return nil, fmt.Errorf("unknown table %q", table)
}

func readParquet[R any](data []byte) ([]string, error) {
	rows, err := parquet.Read[R](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i := range rows {
		b, err := json.Marshal(&rows[i])
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}
