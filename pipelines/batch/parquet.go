package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"

	"github.com/parquet-go/parquet-go"

	"github.com/pinpipe/pinpipe/io/files"
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

// readTableFile reads one clean-table file (its table is the name of its
// directory) into a Batch.
func readTableFile(ctx context.Context, name, format string) (transforms.Batch, error) {
	data, err := files.ReadFile(ctx, name)
	if err != nil {
		return transforms.Batch{}, err
	}
	dir := path.Base(path.Dir(name))
	var b transforms.Batch
	switch dir {
	case transforms.TablePin:
		b.Pins, err = decodeRows[transforms.Pin](data, format)
	case transforms.TableGeo:
		b.Geos, err = decodeRows[transforms.Geo](data, format)
	case transforms.TableUser:
		b.Users, err = decodeRows[transforms.User](data, format)
	default:
		err = fmt.Errorf("%s is not in a table's directory", name)
	}
	return b, err
}

func decodeRows[R any](data []byte, format string) ([]R, error) {
	if format == FormatParquet {
		return parquet.Read[R](bytes.NewReader(data), int64(len(data)))
	}
	var rows []R
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var r R
		if err := dec.Decode(&r); err == io.EOF {
			return rows, nil
		} else if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
}
