package transforms

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestMain(m *testing.M) { ptest.Main(m) }

func init() {
	register.Function1x1(batchLen)
	register.Function2x1(sumInts)
	register.Function1x1(topCategoryByCountry)
	register.Function1x1(topUserByCountry)
	register.Function1x1(medianByAgeGroup)
	register.Function1x1(dedupCounts)
	register.Function1x1(pinCounts)
}

func batchLen(b Batch) int                               { return b.Len() }
func sumInts(a, b int) int                               { return a + b }
func topCategoryByCountry(in Insights) []CountryCategory { return in.TopCategoryByCountry }
func topUserByCountry(in Insights) []CountryUser         { return in.TopUserByCountry }
func medianByAgeGroup(in Insights) []AgeGroupMedian      { return in.MedianFollowersByAgeGroup }
func dedupCounts(s Summary) string {
	return fmt.Sprintf("pin dups %d, geo dups %d, user rows %d", s[TablePin].Duplicates, s[TableGeo].Duplicates, s[TableUser].Rows)
}

func lines(ss ...string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestCleanPinComposite(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	raw := beam.Create(s, lines(
		`{"index": 1, "title": "No Title Data Available", "follower_count": "1.2k", "category": "art"}`,
		`{"index": "2", "follower_count": "huge"}`,
		`   `,
		`{"index": null}`,
		`[1]`,
		`{"index": 3`,
	)...)
	c := CleanPin(s, raw)
	passert.Equals(s, c.Rows, Pin{Ind: 1, FollowerCount: i64(1200), Category: str("art")}, Pin{Ind: 2})
	passert.Equals(s, c.DeadLetters,
		DeadLetter{Table: TablePin, Reason: ReasonNullKey, Payload: `{"index": null}`},
		DeadLetter{Table: TablePin, Reason: ReasonNotObject, Payload: `[1]`},
		DeadLetter{Table: TablePin, Reason: ReasonInvalidJSON, Payload: `{"index": 3`},
	)
	sum := Summarize(s, c.Stats)
	passert.Equals(s, sum, Summary{
		TablePin:  {Table: TablePin, Read: 5, Clean: 2, Rejected: 3, RejectedBy: map[string]int64{ReasonNullKey: 1, ReasonNotObject: 1, ReasonInvalidJSON: 1}, Unparsable: map[string]int64{"follower_count": 1}, Nulls: map[string]int64{}},
		TableGeo:  {Table: TableGeo, RejectedBy: map[string]int64{}, Unparsable: map[string]int64{}, Nulls: map[string]int64{}},
		TableUser: {Table: TableUser, RejectedBy: map[string]int64{}, Unparsable: map[string]int64{}, Nulls: map[string]int64{}},
	})
	ptest.RunAndValidate(t, p)
}

func TestCleanGeoAndUserComposites(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	geo := Clean(s, TableGeo, beam.Create(s, lines(
		`{"ind": 5, "timestamp": "2020-08-28 03:52:47", "latitude": "-5.34", "longitude": 7, "country": "Chad"}`,
		`{"index": 5}`,
	)...))
	passert.Equals(s, geo.Rows, Geo{Ind: 5, Country: str("Chad"), Coordinates: []float64{-5.34, 7}, Timestamp: ts("2020-08-28 03:52:47")})
	passert.Equals(s, geo.DeadLetters, DeadLetter{Table: TableGeo, Reason: ReasonMissingKey, Payload: `{"index": 5}`})

	user := Clean(s, TableUser, beam.Create(s, lines(
		`{"ind": 5, "first_name": "Ann", "last_name": "Lee", "age": "30", "date_joined": "2016-01-02 03:04:05"}`,
		"{\"ind\": \"x\", \"first_name\": \"\xff\"}",
	)...))
	passert.Equals(s, user.Rows, User{Ind: 5, UserName: str("Ann Lee"), Age: i64(30), DateJoined: ts("2016-01-02 03:04:05")})
	passert.Equals(s, user.DeadLetters, NewDeadLetter(TableUser, ReasonKeyNotInteger, []byte("{\"ind\": \"x\", \"first_name\": \"\xff\"}")))
	ptest.RunAndValidate(t, p)
}

func TestNewDeadLetterKeepsInvalidUTF8(t *testing.T) {
	d := NewDeadLetter(TablePin, ReasonInvalidJSON, []byte{'{', 0xff})
	if d.PayloadBase64 != "e/8=" {
		t.Errorf("PayloadBase64 = %q, want the original bytes in base64", d.PayloadBase64)
	}
	if d := NewDeadLetter(TablePin, ReasonInvalidJSON, []byte("{")); d.PayloadBase64 != "" {
		t.Errorf("valid UTF-8 payload got a base64 copy")
	}
}

// TestDedupJoinComposite runs the shuffle, dedup and insights end to end on
// a few posts, with duplicates that differ and posts missing a part.
func TestDedupJoinComposite(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	pins := beam.Create(s,
		Pin{Ind: 1, FollowerCount: i64(10), Category: str("art")},
		Pin{Ind: 1, FollowerCount: i64(10), Category: str("art")},
		Pin{Ind: 2, FollowerCount: i64(30), Category: str("art")},
		Pin{Ind: 3, FollowerCount: i64(20), Category: str("travel")},
	)
	geos := beam.Create(s,
		Geo{Ind: 1, Country: str("Chad"), Timestamp: ts("2019-01-01 00:00:00")},
		Geo{Ind: 2, Country: str("Chad"), Timestamp: ts("2019-06-01 00:00:00")},
		Geo{Ind: 2, Country: str("Peru"), Timestamp: ts("2019-06-01 00:00:00")},
		Geo{Ind: 3, Country: str("Peru"), Timestamp: ts("2023-01-01 00:00:00")},
	)
	users := beam.Create(s,
		User{Ind: 1, UserName: str("Ann"), Age: i64(20), DateJoined: ts("2015-01-01 00:00:00")},
		User{Ind: 2, UserName: str("Bob"), Age: i64(40), DateJoined: ts("2016-01-01 00:00:00")},
	)
	j := DedupJoin(s, 4, pins, geos, users)
	passert.Equals(s, beam.Combine(s, sumInts, beam.ParDo(s, batchLen, j.Tables)), 8)

	in := ComputeInsights(s, j.Partials)
	// ind 2's two geo rows differ; the smaller encoding ("Chad" < "Peru") wins.
	passert.Equals(s, beam.ParDo(s, topCategoryByCountry, in),
		[]CountryCategory{{"Chad", "art", 2}, {"Peru", "travel", 1}})
	passert.Equals(s, beam.ParDo(s, topUserByCountry, in),
		[]CountryUser{{"Chad", "Bob", 30}})
	passert.Equals(s, beam.ParDo(s, medianByAgeGroup, in),
		[]AgeGroupMedian{{"18-24", 10}, {"36-50", 30}})

	sum := Summarize(s, j.Stats)
	passert.Equals(s, beam.ParDo(s, dedupCounts, sum), "pin dups 1, geo dups 1, user rows 2")
	ptest.RunAndValidate(t, p)
}

// TestCleanFilesComposite cleans whole files, spread over several chunks
// and goroutines, and checks rows, rejects and stats through the join.
func TestCleanFilesComposite(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 3*chunkLines; i++ {
		lines = append(lines, fmt.Sprintf(`{"index": %d, "follower_count": "%dk", "category": "c%d"}`, i%2000, i%7, i%3))
	}
	lines = append(lines, `{"index": null}`, `oops`, ``)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(strings.Join(lines[:2000], "\n")), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(strings.Join(lines[2000:], "\n")+"\n"), 0o644)

	p, s := beam.NewPipelineWithRoot()
	c := CleanFiles(s, TablePin, 3, beam.Create(s, filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")))
	passert.Count(s, c.DeadLetters, "dead letters", 2)
	j := JoinBatches(s, c.Rows)
	passert.Equals(s, beam.Combine(s, sumInts, beam.ParDo(s, batchLen, j.Tables)), 2000)
	sum := Summarize(s, beam.Flatten(s, c.Stats, j.Stats))
	passert.Equals(s, beam.ParDo(s, pinCounts, sum), "read 3074 clean 3072 rejected 2 dups 1072 rows 2000")
	ptest.RunAndValidate(t, p)
}

func pinCounts(s Summary) string {
	st := s[TablePin]
	return fmt.Sprintf("read %d clean %d rejected %d dups %d rows %d", st.Read, st.Clean, st.Rejected, st.Duplicates, st.Rows)
}
