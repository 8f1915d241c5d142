package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadFileLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 3<<20) // longer than the reader's buffer
	content := "a\r\nb\n\n" + long + "\nlast without newline"
	want := []string{"a", "b", long, "last without newline"}

	plain := filepath.Join(dir, "f.json")
	os.WriteFile(plain, []byte(content), 0o644)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(content))
	w.Close()
	zipped := filepath.Join(dir, "f.json.gz")
	os.WriteFile(zipped, gz.Bytes(), 0o644)

	for _, name := range []string{plain, zipped} {
		var got []string
		if err := ReadFileLines(context.Background(), name, func(l []byte) { got = append(got, string(l)) }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: lines differ (-want +got):\n%.300s", name, diff)
		}
	}
	if err := ReadFileLines(context.Background(), filepath.Join(dir, "missing"), func([]byte) {}); err == nil {
		t.Error("reading a missing file succeeded")
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a/part-1", "a/part-2", "b/keep"} {
		WriteFile(context.Background(), Join(dir, n), []byte("x"))
	}
	if err := Remove(context.Background(), Join(dir, "a", "part-*"), Join(dir, "nothing*")); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if diff := cmp.Diff([]string{filepath.Join(dir, "b", "keep")}, left); diff != "" {
		t.Errorf("left after Remove (-want +got):\n%s", diff)
	}
}
