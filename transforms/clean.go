package transforms

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/pinpipe/pinpipe/internal/jsonscan"
)

// RejectError says why a raw record cannot become a row. The record goes to
// the dead-letter output with Reason.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return "rejected: " + e.Reason }

// Unparsable is a bit set of the raw fields of one record that held a value
// the cleaning rules could not parse; each became null. Bit i is field i of
// the table's raw field list (PinFields, GeoFields, UserFields).
type Unparsable uint32

// Sentinels the source system writes instead of a value.
const (
	noTitle       = "No Title Data Available"
	noDescription = "No description available"
	userInfoError = "User Info Error"
	noTags        = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
	imageSrcError = "Image src error."
	savePrefix    = "Local save in "
)

// fieldReader decodes the raw values of one record and notes which fields
// could not be parsed.
type fieldReader struct {
	vals [][]byte
	bad  Unparsable
	// borrow makes the strings it returns point into the record's bytes
	// instead of copies: for a caller that encodes the row before the
	// bytes can change and keeps nothing of it (LineCleaner), it saves a
	// copy and an allocation per field.
	borrow bool
	// strs, when set (with borrow), holds the text fields that text points
	// to, one per field, so that they need no allocation either.
	strs []string
}

// str is b as a string: a copy, or with borrow a view of b.
func (r *fieldReader) str(b []byte) string {
	if r.borrow && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

// stringValue decodes a raw JSON string value (with its quotes).
func (r *fieldReader) stringValue(raw []byte) (string, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return r.str(inner), true
	}
	return stringValue(raw)
}

func (r *fieldReader) markBad(i int) { r.bad |= 1 << uint(i) }

// text returns field i as text: a string as is, a number as its literal.
// Null, absent and the empty string are nil. Other JSON types are unparsable.
func (r *fieldReader) text(i int) *string {
	v := r.vals[i]
	if v == nil {
		return nil
	}
	switch c := v[0]; {
	case c == '"':
		s, ok := r.stringValue(v)
		if !ok {
			r.markBad(i)
			return nil
		}
		if s == "" {
			return nil
		}
		return r.keep(i, s)
	case c == '-' || (c >= '0' && c <= '9'):
		return r.keep(i, r.str(v))
	case c == 'n':
		return nil
	}
	r.markBad(i)
	return nil
}

// keep returns a pointer to s, field i's text: into strs when there is one.
func (r *fieldReader) keep(i int, s string) *string {
	if r.strs != nil {
		r.strs[i] = s
		return &r.strs[i]
	}
	p := new(string) // allocated on this path only (&s would move s to the heap on both)
	*p = s
	return p
}

// number returns field i as the literal of a JSON number, from a JSON number
// or a string holding one (surrounding spaces allowed). ok is false for null,
// absent and empty values; bad is true for anything else that is not a
// number.
func (r *fieldReader) number(i int) (lit string, ok bool) {
	v := r.vals[i]
	if v == nil || v[0] == 'n' {
		return "", false
	}
	var s string
	if v[0] == '"' {
		t, valid := r.stringValue(v)
		if !valid {
			r.markBad(i)
			return "", false
		}
		s = strings.TrimSpace(t)
		if s == "" {
			return "", false
		}
		if jsonscan.Number([]byte(s)) != len(s) {
			r.markBad(i)
			return "", false
		}
	} else if v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
		s = r.str(v)
	} else {
		r.markBad(i)
		return "", false
	}
	return s, true
}

func (r *fieldReader) float(i int) *float64 {
	lit, ok := r.number(i)
	if !ok {
		return nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		r.markBad(i)
		return nil
	}
	return &f
}

func (r *fieldReader) int(i int) *int64 {
	lit, ok := r.number(i)
	if !ok {
		return nil
	}
	n, ok := integerLiteral(lit)
	if !ok {
		r.markBad(i)
		return nil
	}
	return &n
}

// integerLiteral converts a JSON number literal to an int64 when its value is
// a whole number in range ("7528", "7528.0", "7.528e3").
func integerLiteral(lit string) (int64, bool) {
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

func (r *fieldReader) timestamp(i int) *time.Time {
	v := r.vals[i]
	if v == nil || v[0] == 'n' {
		return nil
	}
	if v[0] != '"' {
		r.markBad(i)
		return nil
	}
	s, ok := r.stringValue(v)
	if !ok {
		r.markBad(i)
		return nil
	}
	if s == "" {
		return nil
	}
	t, ok := ParseTimestamp(s)
	if !ok {
		r.markBad(i)
		return nil
	}
	return &t
}

// ParseTimestamp reads the source's "YYYY-MM-DD HH:MM:SS" (UTC) or RFC 3339,
// and returns the instant in UTC.
func ParseTimestamp(s string) (time.Time, bool) {
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// key reads the record's key (field 0) or says why the record is rejected.
func (r *fieldReader) key() (int64, error) {
	v := r.vals[0]
	switch {
	case v == nil:
		return 0, &RejectError{ReasonMissingKey}
	case v[0] == 'n':
		return 0, &RejectError{ReasonNullKey}
	}
	lit, ok := r.number(0)
	if !ok {
		return 0, &RejectError{ReasonKeyNotInteger}
	}
	n, ok := integerLiteral(lit)
	if !ok {
		return 0, &RejectError{ReasonKeyNotInteger}
	}
	return n, nil
}

// parser finds a record's fields (objectFields; objectFieldsStd in tests)
// and says whether the clean row may borrow the record's bytes (see
// fieldReader.borrow).
type parser struct {
	fields func(data []byte, keys []string, vals [][]byte) string
	borrow bool
	strs   []string // see fieldReader.strs
}

// copying is how the exported Clean*Record functions read: their rows own
// their strings.
var copying = parser{fields: objectFields}

// read parses a record's fields into vals and reads its key (ind): the
// start every table's cleaning shares; a record without them is rejected.
func read(data []byte, fields []string, vals [][]byte, p parser) (fieldReader, int64, error) {
	if reason := p.fields(data, fields, vals); reason != "" {
		return fieldReader{}, 0, &RejectError{reason}
	}
	r := fieldReader{vals: vals, borrow: p.borrow, strs: p.strs}
	ind, err := r.key()
	return r, ind, err
}

// CleanPinRecord turns one raw pin record into a clean row, or rejects it.
func CleanPinRecord(data []byte) (Pin, Unparsable, error) {
	var vals [12][]byte
	return cleanPin(data, vals[:], copying)
}

func cleanPin(data []byte, vals [][]byte, ps parser) (Pin, Unparsable, error) {
	r, ind, err := read(data, PinFields, vals, ps)
	if err != nil {
		return Pin{}, 0, err
	}
	p := Pin{
		Ind:            ind,
		UniqueID:       r.text(1),
		Title:          nullIf(r.text(2), func(s string) bool { return s == noTitle }),
		Description:    nullIf(r.text(3), func(s string) bool { return strings.Contains(s, noDescription) }),
		PosterName:     nullIf(r.text(4), func(s string) bool { return s == userInfoError }),
		TagList:        nullIf(r.text(6), func(s string) bool { return s == noTags }),
		IsImageOrVideo: r.text(7),
		ImageSrc:       nullIf(r.text(8), func(s string) bool { return s == imageSrcError }),
		Category:       r.text(11),
	}
	if fc := r.text(5); fc != nil && *fc != userInfoError {
		if n, ok := ParseFollowerCount(*fc); ok {
			p.FollowerCount = &n
		} else {
			r.markBad(5)
		}
	}
	if loc := r.text(10); loc != nil {
		if s := strings.TrimPrefix(*loc, savePrefix); s != "" {
			p.SaveLocation = r.keep(10, s)
		}
	}
	return p, r.bad, nil
}

func nullIf(s *string, sentinel func(string) bool) *string {
	if s == nil || sentinel(*s) {
		return nil
	}
	return s
}

// ParseFollowerCount reads "124", "51k", "1.2k", "3M" or "2B" (surrounding
// spaces allowed) as a whole number of followers, rounding half up when a
// suffixed decimal has more digits than the suffix's power of ten.
func ParseFollowerCount(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	exp := 0
	switch s[len(s)-1] {
	case 'k':
		exp = 3
	case 'M':
		exp = 6
	case 'B':
		exp = 9
	}
	if exp == 0 {
		if !allDigits(s) {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	s = s[:len(s)-1]
	whole, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(whole) || (hasDot && !allDigits(frac)) {
		return 0, false
	}
	roundUp := false
	if len(frac) > exp {
		roundUp = frac[exp] >= '5'
		frac = frac[:exp]
	}
	digits := whole + frac + strings.Repeat("0", exp-len(frac))
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	if roundUp {
		if n == math.MaxInt64 {
			return 0, false
		}
		n++
	}
	return n, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CleanGeoRecord turns one raw geo record into a clean row, or rejects it.
func CleanGeoRecord(data []byte) (Geo, Unparsable, error) {
	var vals [5][]byte
	return cleanGeo(data, vals[:], copying)
}

func cleanGeo(data []byte, vals [][]byte, ps parser) (Geo, Unparsable, error) {
	r, ind, err := read(data, GeoFields, vals, ps)
	if err != nil {
		return Geo{}, 0, err
	}
	g := Geo{Ind: ind, Timestamp: r.timestamp(1), Country: r.text(4)}
	lat, lon := r.float(2), r.float(3)
	if lat != nil && lon != nil {
		g.Coordinates = []float64{*lat, *lon}
	}
	return g, r.bad, nil
}

// CleanUserRecord turns one raw user record into a clean row, or rejects it.
func CleanUserRecord(data []byte) (User, Unparsable, error) {
	var vals [5][]byte
	return cleanUser(data, vals[:], copying)
}

func cleanUser(data []byte, vals [][]byte, ps parser) (User, Unparsable, error) {
	r, ind, err := read(data, UserFields, vals, ps)
	if err != nil {
		return User{}, 0, err
	}
	u := User{Ind: ind, Age: r.int(3), DateJoined: r.timestamp(4)}
	var parts []string
	for _, i := range []int{1, 2} {
		if t := r.text(i); t != nil {
			if s := strings.TrimSpace(*t); s != "" {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) > 0 {
		name := strings.Join(parts, " ")
		u.UserName = &name
	}
	return u, r.bad, nil
}
