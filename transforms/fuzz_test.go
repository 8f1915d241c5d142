package transforms

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var fuzzSeeds = []string{
	`{"index": 7528, "unique_id": "fbe53c66", "title": "No Title Data Available", "follower_count": "1.2k", "save_location": "Local save in /data/x", "category": "art"}`,
	`{"ind": "12", "timestamp": "2020-08-28 03:52:47", "latitude": "-5.34", "longitude": 7, "country": "Chad"}`,
	`{"ind": 3, "first_name": "A\u00e9", "last_name": "B", "age": "20", "date_joined": "2015-10-24T11:23:51Z"}`,
	`{"index": 1, "index": null}`, `[{"index": 1}]`, `{"a": [1, {"b": "\ud800"}], "ind": 1e2}`, "{\"title\": \"\xff\"}", `{"ind": -0}`, ` { } `, `nul`,
}

// FuzzObjectFields keeps the fast object scanner in agreement with
// encoding/json: the same verdict, and the same value for every key.
func FuzzObjectFields(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	keys := []string{"index", "ind", "title", "a", "b"}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := make([][]byte, len(keys))
		std := make([][]byte, len(keys))
		rf := objectFields(data, keys, fast)
		rs := objectFieldsStd(data, keys, std)
		if rf != rs {
			t.Fatalf("verdict: fast %q, encoding/json %q for %q", rf, rs, data)
		}
		if rf != "" {
			return // the values of a rejected document are not used
		}
		for i := range keys {
			// encoding/json compacts nothing inside RawMessage, so the bytes agree exactly.
			if !bytes.Equal(fast[i], std[i]) {
				t.Fatalf("key %q: fast %q, encoding/json %q for %q", keys[i], fast[i], std[i], data)
			}
		}
	})
}

// FuzzCleanRecords checks that the three cleaning functions never panic and
// give the same rows on the fast path as on the encoding/json path.
func FuzzCleanRecords(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p1, b1, e1 := CleanPinRecord(data)
		p2, b2, e2 := cleanPin(data, make([][]byte, len(PinFields)), parser{fields: objectFieldsStd})
		if diff := cmp.Diff(p2, p1); diff != "" || b1 != b2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("pin differs for %q: %s %v %v %v %v", data, diff, b1, b2, e1, e2)
		}
		g1, b1, e1 := CleanGeoRecord(data)
		g2, b2, e2 := cleanGeo(data, make([][]byte, len(GeoFields)), parser{fields: objectFieldsStd})
		if diff := cmp.Diff(g2, g1); diff != "" || b1 != b2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("geo differs for %q: %s", data, diff)
		}
		u1, b1, e1 := CleanUserRecord(data)
		u2, b2, e2 := cleanUser(data, make([][]byte, len(UserFields)), parser{fields: objectFieldsStd})
		if diff := cmp.Diff(u2, u1); diff != "" || b1 != b2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("user differs for %q: %s", data, diff)
		}
	})
}
