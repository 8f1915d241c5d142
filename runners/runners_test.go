package runners

import (
	"flag"
	"strings"
	"testing"
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
