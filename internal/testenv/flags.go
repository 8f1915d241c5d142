package testenv

import (
	"flag"
	"testing"
)

// SetFlags sets global flags (Beam's runner flags among them), given as
// name, value pairs, for one test and restores them after it.
func SetFlags(t testing.TB, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		f := flag.Lookup(kv[i])
		if f == nil {
			t.Fatalf("no flag %q", kv[i])
		}
		old := f.Value.String()
		if err := flag.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { flag.Set(kv[i], old) })
	}
}
