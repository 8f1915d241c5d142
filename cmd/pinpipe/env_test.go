package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagsFromEnv: every flag, the command's, the common ones and Beam's,
// can be set as PINPIPE_<FLAG>; the command line wins; a bad value is a
// usage error naming the variable.
func TestFlagsFromEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "gen")
	// --out is required: the environment gives it; - becomes _.
	r := pinpipe(t, []string{"PINPIPE_OUT=" + out, "PINPIPE_POSTS=7", "PINPIPE_TOPIC_PREFIX=envp"}, "generate")
	if r.code != 0 || !strings.Contains(r.stdout, "generated 7 posts into "+out) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 7 posts into %s", r.code, r.stdout, r.stderr, out)
	}
	if _, err := os.Stat(filepath.Join(out, "topics", "envp.pin")); err != nil {
		t.Errorf("PINPIPE_TOPIC_PREFIX not applied: %v", err)
	}

	r = pinpipe(t, []string{"PINPIPE_OUT=" + out, "PINPIPE_POSTS=7"}, "generate", "--posts=3")
	if r.code != 0 || !strings.Contains(r.stdout, "generated 3 posts") {
		t.Errorf("the command line does not win over the environment: exit %d, stdout %q", r.code, r.stdout)
	}

	r = pinpipe(t, []string{"PINPIPE_POSTS=many"}, "generate", "--out="+out)
	if r.code != 2 || r.stderr != "pinpipe generate: invalid value \"many\" for $PINPIPE_POSTS (--posts): parse error\n" {
		t.Errorf("exit %d, stderr %q; want 2 and one line naming $PINPIPE_POSTS", r.code, r.stderr)
	}

	// Beam's flags (an underscore in the name stays one).
	r = pinpipe(t, []string{"PINPIPE_RUNNER=sparkle"}, "batch", "--input=a", "--output=b")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown --runner="sparkle"`) {
		t.Errorf("PINPIPE_RUNNER: exit %d, stderr %q", r.code, r.stderr)
	}
	r = pinpipe(t, []string{"PINPIPE_RUNNER=sparkle"}, "batch", "--input="+t.TempDir(), "--output="+filepath.Join(t.TempDir(), "o"), "--runner=direct")
	if r.code != 1 || !strings.Contains(r.stderr, "no input objects") {
		t.Errorf("--runner does not win over PINPIPE_RUNNER: exit %d, stderr %q", r.code, r.stderr)
	}

	// The common flags.
	r = pinpipe(t, []string{"PINPIPE_LOG_FORMAT=json"}, "s3sink")
	var line map[string]any
	if r.code != 2 || json.Unmarshal([]byte(r.stderr), &line) != nil || !strings.Contains(fmtLog(line), "--s3 is required") {
		t.Errorf("PINPIPE_LOG_FORMAT=json: exit %d, stderr %q; want a JSON line", r.code, r.stderr)
	}

	// Every command's help says so.
	r = pinpipe(t, nil, "s3sink", "-h")
	if !strings.Contains(r.stdout, "PINPIPE_<FLAG>") {
		t.Errorf("help does not tell of PINPIPE_<FLAG>:\n%s", r.stdout)
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"kafka-brokers": "PINPIPE_KAFKA_BROKERS", "temp_location": "PINPIPE_TEMP_LOCATION",
		"log-level": "PINPIPE_LOG_LEVEL", "a.b-c": "PINPIPE_A_B_C"} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}
