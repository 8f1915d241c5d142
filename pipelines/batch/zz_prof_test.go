package batch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
)

func TestZZProfClean(t *testing.T) {
	dir := os.Getenv("PROF_DIR")
	if dir == "" {
		t.Skip()
	}
	ctx := context.Background()
	fs, _ := filesystem.New(ctx, "/tmp")
	runDir := t.TempDir()
	for _, tb := range []string{"pin", "geo", "user"} {
		names, _ := filepath.Glob(dir + "/topics/pinpipe." + tb + "/partition=*/*.json")
		if len(names) > 1000 {
			names = names[:1000]
		}
		c := NewRunCleaner(fs, tb, 16, runDir, 64<<20)
		for _, n := range names {
			if _, _, _, err := c.CleanFile(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		c.Flush(ctx)
	}
}
