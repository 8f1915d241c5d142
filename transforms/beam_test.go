package transforms

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestMain(m *testing.M) { ptest.Main(m) }

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
