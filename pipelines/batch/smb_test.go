package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestTableFileMustBeSorted reads committed table files back: a sorted one
// gives its rows, one whose rows are not sorted by ind (not a bucket file of
// this layout) is an error, in both formats, not a silently wrong merge.
func TestTableFileMustBeSorted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	users := func(inds ...int64) []transforms.User {
		var us []transforms.User
		for _, i := range inds {
			name := "u" + string(rune('a'+i))
			us = append(us, transforms.User{Ind: i, UserName: &name})
		}
		return us
	}
	write := func(name, format string, us []transforms.User) string {
		var buf bytes.Buffer
		if format == FormatParquet {
			w := parquetio.NewWriter(&buf, transforms.UserSchema)
			for i := range us {
				if err := w.Write(transforms.AppendRow(nil, &us[i])); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			enc := json.NewEncoder(&buf)
			for i := range us {
				enc.Encode(&us[i])
			}
		}
		path := filepath.Join(dir, name+"."+format)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, format := range []string{FormatParquet, FormatJSONL} {
		it, c, err := openTableFile(ctx, write("sorted", format, users(1, 2, 2, 5)), transforms.TableUser, format)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var keys []int64
		for it.Next() {
			u, err := transforms.DecodeUserRow(it.Row())
			if err != nil || u.Ind != it.Key() {
				t.Fatalf("%s: row %+v (%v) under key %d", format, u, err, it.Key())
			}
			keys = append(keys, it.Key())
		}
		if it.Err() != nil || len(keys) != 4 || keys[3] != 5 {
			t.Errorf("%s: keys %v, err %v", format, keys, it.Err())
		}
		it, c, err = openTableFile(ctx, write("unsorted", format, users(1, 5, 3)), transforms.TableUser, format)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for it.Next() {
		}
		if it.Err() == nil || !strings.Contains(it.Err().Error(), "not sorted") {
			t.Errorf("%s: an unsorted file read without error (%v)", format, it.Err())
		}
	}
	if _, _, err := openTableFile(ctx, write("users", FormatParquet, users(1)), transforms.TablePin, FormatParquet); err == nil {
		t.Error("a user file read as the pin table's")
	}
}
