package transforms

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sliceRows is a SortedRows over rows held in memory, sorted by ind.
type sliceRows struct {
	rows [][]byte
	i    int
}

func newSliceRows(rows ...any) *sliceRows {
	s := &sliceRows{i: -1}
	for _, r := range rows {
		s.rows = append(s.rows, AppendRow(nil, r))
	}
	slices.SortStableFunc(s.rows, func(a, b []byte) int { return int(rowInd(a) - rowInd(b)) })
	return s
}

func rowInd(b []byte) int64 {
	d := decoder{b: b}
	return d.varint()
}

func (s *sliceRows) Next() bool  { s.i++; return s.i < len(s.rows) }
func (s *sliceRows) Key() int64  { return rowInd(s.rows[s.i]) }
func (s *sliceRows) Row() []byte { return s.rows[s.i] }
func (s *sliceRows) Err() error  { return nil }

// TestDedupJoinSorted deduplicates and joins sorted streams with
// duplicates that differ and posts missing a part, and checks the rows
// emitted, the stats and the insights from the counts plus the distinct
// facts.
func TestDedupJoinSorted(t *testing.T) {
	pins := newSliceRows(
		&Pin{Ind: 1, FollowerCount: i64(10), Category: str("art")},
		&Pin{Ind: 1, FollowerCount: i64(10), Category: str("art")},
		&Pin{Ind: 2, FollowerCount: i64(30), Category: str("art")},
		&Pin{Ind: 3, FollowerCount: i64(20), Category: str("travel")},
	)
	geos := newSliceRows(
		&Geo{Ind: 1, Country: str("Chad"), Timestamp: ts("2019-01-01 00:00:00")},
		&Geo{Ind: 2, Country: str("Peru"), Timestamp: ts("2019-06-01 00:00:00")},
		&Geo{Ind: 2, Country: str("Chad"), Timestamp: ts("2019-06-01 00:00:00")},
		&Geo{Ind: 3, Country: str("Peru"), Timestamp: ts("2023-01-01 00:00:00")},
	)
	users := newSliceRows(
		&User{Ind: 1, UserName: str("Ann"), Age: i64(20), DateJoined: ts("2015-01-01 00:00:00")},
		&User{Ind: 2, UserName: str("Bob"), Age: i64(40), DateJoined: ts("2016-01-01 00:00:00")},
	)
	var got []string
	facts := map[string]bool{}
	partials, stats, err := DedupJoinSorted(pins, geos, users, func(p Post, rows [3][]byte) error {
		got = append(got, fmt.Sprintf("%d pin=%v geo=%v user=%v", postInd(p), p.Pin != nil, p.Geo != nil, p.User != nil))
		if p.Geo != nil && p.Geo[0].Int == 2 && string(p.Geo[geoCountry].Bytes) != "Chad" {
			t.Errorf("ind 2 kept geo %s; the smaller encoding (Chad) must win", p.Geo[geoCountry].Bytes)
		}
		PostFacts(p, nil, func(f []byte) { facts[string(f)] = true })
		for i, fields := range [][]Field{p.Pin, p.Geo, p.User} {
			var want []byte
			if fields != nil {
				want = Schemas[i].AppendFields(nil, fields)
			}
			if !bytes.Equal(rows[i], want) {
				t.Errorf("ind %d table %d: encoded row %x, the post's fields encode as %x", postInd(p), i, rows[i], want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 pin=true geo=true user=true", "2 pin=true geo=true user=true", "3 pin=true geo=true user=false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("posts (-want +got):\n%s", diff)
	}
	if stats[0].Duplicates != 1 || stats[1].Duplicates != 1 || stats[2].Rows != 2 || stats[0].Rows != 3 {
		t.Errorf("stats %+v", stats)
	}
	for f := range facts {
		if err := partials.AddFact([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	in := partials.Finish()
	if diff := cmp.Diff([]CountryCategory{{"Chad", "art", 2}, {"Peru", "travel", 1}}, in.TopCategoryByCountry); diff != "" {
		t.Errorf("top category by country (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]AgeGroupMedian{{"18-24", 10}, {"36-50", 30}}, in.MedianFollowersByAgeGroup); diff != "" {
		t.Errorf("medians (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]YearUsers{{2015, 1}, {2016, 1}}, in.UsersJoinedByYear); diff != "" {
		t.Errorf("users joined (-want +got):\n%s", diff)
	}
}

// postInd is the ind of a post: its rows' first column.
func postInd(p Post) int64 {
	switch {
	case p.Pin != nil:
		return p.Pin[0].Int
	case p.Geo != nil:
		return p.Geo[0].Int
	}
	return p.User[0].Int
}

// TestFactsThroughDistinctEqualAdd: folding posts with Add (facts made
// distinct in memory) and folding their facts made distinct by hand give the
// same insights, on the edge-case posts.
func TestFactsThroughDistinctEqualAdd(t *testing.T) {
	viaAdd := NewPartials()
	viaFacts := NewPartials()
	distinct := map[string]bool{}
	for _, p := range insightPosts() {
		viaAdd.Add(p)
		viaFacts.AddCounts(p)
		PostFacts(p, nil, func(f []byte) {
			if FactKey(f) != FactKey(bytes.Clone(f)) {
				t.Fatal("FactKey is not a function of the bytes")
			}
			distinct[string(f)] = true
		})
	}
	for f := range distinct {
		if err := viaFacts.AddFact([]byte(f)); err != nil {
			t.Fatalf("AddFact(%q): %v", f, err)
		}
	}
	if diff := cmp.Diff(viaAdd.Finish(), viaFacts.Finish()); diff != "" {
		t.Errorf("(-Add +facts):\n%s", diff)
	}
	if err := NewPartials().AddFact([]byte{99, 1}); err == nil {
		t.Error("a corrupt fact was accepted")
	}
}

func TestHistogramMedian(t *testing.T) {
	for _, vals := range [][]int64{{5}, {1, 2}, {3, 1, 2}, {7, 7, 1, 9}, {1, 1, 1, 50, 50, 100}, {-4, 10, 10, 10}} {
		h := map[int64]int64{}
		for _, v := range vals {
			h[v]++
		}
		if got, want := HistogramMedian(h), Median(slices.Clone(vals)); got != want {
			t.Errorf("HistogramMedian(%v) = %v, Median = %v", vals, got, want)
		}
	}
}

// TestLineCleanerAndRowCodec cleans lines into encoded rows and decodes
// them back to what the record cleaners return, counting rejects.
func TestLineCleanerAndRowCodec(t *testing.T) {
	c := NewLineCleaner(TableGeo)
	line := []byte(`{"ind": 5, "timestamp": "2020-08-28 03:52:47", "latitude": "-5.34", "longitude": 7, "country": "Chad"}`)
	ind, row, dead := c.Clean(line)
	if dead != nil || ind != 5 {
		t.Fatalf("clean geo: ind %d, dead %v", ind, dead)
	}
	got, err := DecodeGeoRow(row)
	want, _, _ := CleanGeoRecord(line)
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("decoded %+v, %v; want %+v", got, err, want)
	}
	if _, err := DecodeGeoRow(append(bytes.Clone(row), 0)); err == nil {
		t.Error("a row with trailing bytes decoded")
	}
	if _, _, dead := c.Clean([]byte(`{"index": 5}`)); dead == nil || dead.Reason != ReasonMissingKey {
		t.Errorf("missing key: %+v", dead)
	}
	if _, row, dead := c.Clean([]byte("  ")); row != nil || dead != nil {
		t.Error("a blank line is a record")
	}
	st := c.Stats()
	if st.Read != 2 || st.Clean != 1 || st.Rejected != 1 || st.Table != TableGeo {
		t.Errorf("stats %+v", st)
	}

	pc := NewLineCleaner(TablePin)
	pline := []byte(`{"index": "7", "title": "No Title Data Available", "follower_count": "1.2k", "category": "art", "save_location": "Local save in /data"}`)
	_, prow, _ := pc.Clean(pline)
	p, err := DecodePinRow(prow)
	wp, _, _ := CleanPinRecord(pline)
	if err != nil || !cmp.Equal(p, wp) {
		t.Errorf("pin decoded %+v, %v; want %+v", p, err, wp)
	}
	if !bytes.Equal(AppendRow(nil, &wp), prow) {
		t.Error("AppendRow and the cleaner encode the same row differently")
	}
	uc := NewLineCleaner(TableUser)
	uline := []byte(`{"ind": 9, "first_name": "Ann", "last_name": "Lee", "age": "30", "date_joined": "2016-01-02 03:04:05"}`)
	_, urow, _ := uc.Clean(uline)
	u, err := DecodeUserRow(urow)
	wu, _, _ := CleanUserRecord(uline)
	if err != nil || !cmp.Equal(u, wu) {
		t.Errorf("user decoded %+v, %v; want %+v", u, err, wu)
	}
}

// TestLineCleanerBorrowsSafely cleans every record of the sample input
// with a LineCleaner (whose rows borrow the line's bytes while it cleans)
// and with the copying Clean*Record functions: the encoded rows are equal,
// and a row stays the same when the line's buffer is then overwritten, as
// a line reader reusing its buffer does.
func TestLineCleanerBorrowsSafely(t *testing.T) {
	tables := map[string]string{"pinpipe.pin": TablePin, "pinpipe.geo": TableGeo, "pinpipe.user": TableUser}
	files, err := filepath.Glob("../testdata/sample/topics/*/partition=*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample input: %v", err)
	}
	lines := 0
	for _, f := range files {
		table := tables[filepath.Base(filepath.Dir(filepath.Dir(f)))]
		if table == "" {
			t.Fatalf("%s: unknown topic", f)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := NewLineCleaner(table)
		for line := range bytes.Lines(data) {
			line = bytes.TrimRight(line, "\n")
			buf := bytes.Clone(line)
			_, row, dead := c.Clean(buf)
			if dead != nil || row == nil {
				continue
			}
			lines++
			var want []byte
			switch table {
			case TablePin:
				p, _, _ := CleanPinRecord(line)
				want = AppendRow(nil, &p)
			case TableGeo:
				g, _, _ := CleanGeoRecord(line)
				want = AppendRow(nil, &g)
			default:
				u, _, _ := CleanUserRecord(line)
				want = AppendRow(nil, &u)
			}
			for i := range buf {
				buf[i] = 'x'
			}
			if !bytes.Equal(row, want) {
				t.Fatalf("%s: %s: the cleaner's row differs from the copying clean's", f, line)
			}
		}
	}
	if lines < 100 {
		t.Errorf("only %d clean records in the sample input", lines)
	}
}

// BenchmarkLineCleaner cleans the sample input's pin records into encoded
// rows, as the batch job's clean stage does.
func BenchmarkLineCleaner(b *testing.B) {
	files, _ := filepath.Glob("../testdata/sample/topics/pinpipe.pin/partition=*/*.json")
	var lines [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			lines = append(lines, bytes.TrimRight(line, "\n"))
		}
	}
	if len(lines) == 0 {
		b.Fatal("no sample input")
	}
	c := NewLineCleaner(TablePin)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.Clean(lines[i%len(lines)])
	}
}
