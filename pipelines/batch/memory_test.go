package batch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// TestMemoryBoundedByTheCapNotTheInput runs the real pinpipe batch with a
// Go memory limit of 32 MiB over about 100 MB of input (three times the
// cap), and over the small sample, and compares their peak RSS (getrusage):
// the sort-merge buckets keep rows on disk, so the large input may cost
// little more than the process itself (the binary's mapped code is most of
// its RSS). The design before them held every row in memory: some 400 MB
// for this input.
func TestMemoryBoundedByTheCapNotTheInput(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 100 MB of input")
	}
	bin := testenv.Pinpipe(t)
	input := t.TempDir()
	o := generate.Defaults()
	o.Out, o.Posts, o.Seed, o.FlushSize = input, 150000, 5, 2000
	if _, err := generate.Write(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var size int64
	filepath.Walk(input, func(_ string, info os.FileInfo, _ error) error {
		if info != nil && !info.IsDir() {
			size += info.Size()
		}
		return nil
	})
	const limit = 32 << 20
	if size < 3*limit {
		t.Fatalf("input is %d bytes, want at least three times the cap", size)
	}
	peak := func(in string) int64 {
		cmd := exec.Command(bin, "batch", "--input="+in, "--output="+t.TempDir(), "--runner=direct")
		cmd.Env = append(os.Environ(), "GOMEMLIMIT=32MiB")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pinpipe batch over %s: %v\n%s", in, err, out)
		}
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
	}
	base, large := peak(sampleDir), peak(input)
	t.Logf("peak RSS: %d MiB over the sample, %d MiB over %d MiB of input (GOMEMLIMIT=32MiB)", base>>20, large>>20, size>>20)
	if large > base+96<<20 {
		t.Errorf("peak RSS over %d MiB of input is %d MiB, %d MiB more than over the sample: memory grows with the input",
			size>>20, large>>20, (large-base)>>20)
	}
}
