package transforms

import (
	"math"
	"strconv"
	"strings"
	"time"

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
		s, ok := stringValue(v)
		if !ok {
			r.markBad(i)
			return nil
		}
		if s == "" {
			return nil
		}
		return &s
	case c == '-' || (c >= '0' && c <= '9'):
		s := string(v)
		return &s
	case c == 'n':
		return nil
	}
	r.markBad(i)
	return nil
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
		t, valid := stringValue(v)
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
		s = string(v)
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
	s, ok := stringValue(v)
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

func read(data []byte, fields []string, vals [][]byte, parse func([]byte, []string, [][]byte) string) (fieldReader, error) {
	if reason := parse(data, fields, vals); reason != "" {
		return fieldReader{}, &RejectError{reason}
	}
	return fieldReader{vals: vals}, nil
}

// CleanPinRecord turns one raw pin record into a clean row, or rejects it.
func CleanPinRecord(data []byte) (Pin, Unparsable, error) {
	var vals [12][]byte
	return cleanPin(data, vals[:], objectFields)
}

func cleanPin(data []byte, vals [][]byte, parse func([]byte, []string, [][]byte) string) (Pin, Unparsable, error) {
	r, err := read(data, PinFields, vals, parse)
	if err != nil {
		return Pin{}, 0, err
	}
	ind, err := r.key()
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
			p.SaveLocation = &s
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
	return cleanGeo(data, vals[:], objectFields)
}

func cleanGeo(data []byte, vals [][]byte, parse func([]byte, []string, [][]byte) string) (Geo, Unparsable, error) {
	r, err := read(data, GeoFields, vals, parse)
	if err != nil {
		return Geo{}, 0, err
	}
	ind, err := r.key()
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
	return cleanUser(data, vals[:], objectFields)
}

func cleanUser(data []byte, vals [][]byte, parse func([]byte, []string, [][]byte) string) (User, Unparsable, error) {
	r, err := read(data, UserFields, vals, parse)
	if err != nil {
		return User{}, 0, err
	}
	ind, err := r.key()
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
