package generate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/transforms"
)

func TestPostIsDeterministic(t *testing.T) {
	a, b := New(7, 1000), New(7, 1000)
	for ind := int64(0); ind < 50; ind++ {
		if diff := cmp.Diff(a.Post(ind), b.Post(ind)); diff != "" {
			t.Fatalf("post %d differs between generators with one seed:\n%s", ind, diff)
		}
	}
	if cmp.Equal(New(7, 1000).Post(3), New(8, 1000).Post(3)) {
		t.Error("different seeds gave the same post")
	}
}

// TestRecordsAreRealistic checks that generated records clean as the
// contract expects, with the dirty values present at believable rates and
// users shared between posts.
func TestRecordsAreRealistic(t *testing.T) {
	const n = 4000
	g := New(1, n)
	var titles, followers, numericStrings, rfc3339 int
	users := map[string]int{}
	for ind := int64(0); ind < n; ind++ {
		recs := g.Records(g.Post(ind))
		pin, _, err := transforms.CleanPinRecord(recs["pin"])
		if err != nil || pin.Ind != ind {
			t.Fatalf("pin %d: %v %v", ind, pin.Ind, err)
		}
		if _, _, err := transforms.CleanGeoRecord(recs["geo"]); err != nil {
			t.Fatalf("geo %d: %v", ind, err)
		}
		user, bad, err := transforms.CleanUserRecord(recs["user"])
		if err != nil || bad != 0 {
			t.Fatalf("user %d: %v %b", ind, err, bad)
		}
		users[*user.UserName]++
		if pin.Title == nil {
			titles++
		}
		if pin.FollowerCount == nil {
			followers++
		}
		if bytes.Contains(recs["pin"], []byte(`"index":"`)) {
			numericStrings++
		}
		if regexp.MustCompile(`"\d{4}-\d\d-\d\dT`).Match(recs["geo"]) {
			rfc3339++
		}
	}
	within := func(name string, got int, lo, hi float64) {
		if r := float64(got) / n; r < lo || r > hi {
			t.Errorf("%s rate %.3f, want between %.3f and %.3f", name, r, lo, hi)
		}
	}
	within("null title", titles, 0.01, 0.04)
	within("null follower count", followers, 0.005, 0.05)
	within("numeric-string index", numericStrings, 0.02, 0.08)
	within("RFC 3339 timestamp", rfc3339, 0.01, 0.06)
	if len(users) > n/2 {
		t.Errorf("%d distinct user names for %d posts: posts should share users", len(users), n)
	}
}

func TestWriteS3SinkLayout(t *testing.T) {
	dir := t.TempDir()
	o := Defaults()
	o.Posts, o.Out, o.FlushSize, o.MalformedRate = 600, dir, 100, 0.05
	st, err := Write(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^topics/pinpipe\.(pin|geo|user)/partition=(\d)/pinpipe\.(pin|geo|user)\+(\d)\+(\d{10})\.json$`)
	lines := map[string]int{}
	files := 0
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m := name.FindStringSubmatch(filepath.ToSlash(rel))
		if m == nil || m[1] != m[3] || m[2] != m[4] {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		b, _ := os.ReadFile(p)
		lines[m[1]] += strings.Count(string(b), "\n")
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"pin", "geo", "user"} {
		if want := st.Records[table] + st.Malformed[table]; lines[table] != want {
			t.Errorf("%s: %d lines, stats say %d", table, lines[table], want)
		}
	}
	if files != st.Files || st.Duplicates == 0 || st.Malformed["pin"] == 0 {
		t.Errorf("stats %+v, files %d", st, files)
	}
}
