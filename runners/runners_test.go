package runners

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestValidate(t *testing.T) {
	set := func(name, v string) {
		old := flag.Lookup(name).Value.String()
		flag.Set(name, v)
		t.Cleanup(func() { flag.Set(name, old) })
	}
	set("endpoint", "")
	for runner, wantErr := range map[string]string{
		"direct": "", "prism": "", "dataflow": "",
		"flink": "needs --endpoint", "universal": "needs --endpoint", "sparkle": "unknown --runner",
	} {
		set("runner", runner)
		err := Validate()
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("runner %s: got %v, want %q", runner, err, wantErr)
		}
	}
	set("runner", "flink")
	set("endpoint", "localhost:8099")
	if err := Validate(); err != nil {
		t.Errorf("flink with an endpoint: %v", err)
	}
}

// TestRunLeavesNoLoopbackPlaceholder: a prism run (loopback environment)
// must not leave Beam's empty placeholder worker file in the temp directory,
// one per run for ever.
func TestRunLeavesNoLoopbackPlaceholder(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p, s := beam.NewPipelineWithRoot()
	passert.Count(s, beam.Create(s, 1, 2, 3), "three", 3)
	if _, err := RunOn(context.Background(), "prism", p); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "beamloopbackworker-*"))
	if len(left) != 0 {
		t.Errorf("the run left %v", left)
	}
}

func TestMain(m *testing.M) { ptest.Main(m) }
