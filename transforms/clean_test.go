package transforms

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func str(s string) *string { return &s }
func i64(n int64) *int64   { return &n }
func ts(s string) *time.Time {
	t, ok := ParseTimestamp(s)
	if !ok {
		panic(s)
	}
	return &t
}

func TestCleanPinRecord(t *testing.T) {
	full := Pin{
		Ind: 7528, UniqueID: str("fbe53c66"), Title: str("Cute shoes"), Description: str("Nice ones"),
		FollowerCount: i64(124), PosterName: str("Jane"), TagList: str("a,b"), IsImageOrVideo: str("image"),
		ImageSrc: str("https://i.pinimg.com/x.jpg"), SaveLocation: str("/data/mens-fashion"), Category: str("mens-fashion"),
	}
	tests := []struct {
		name    string
		in      string
		want    Pin
		bad     Unparsable
		wantErr string
	}{
		{"normal row", `{"index": 7528, "unique_id": "fbe53c66", "title": "Cute shoes", "description": "Nice ones", "poster_name": "Jane", "follower_count": "124", "tag_list": "a,b", "is_image_or_video": "image", "image_src": "https://i.pinimg.com/x.jpg", "downloaded": 1, "save_location": "Local save in /data/mens-fashion", "category": "mens-fashion"}`, full, 0, ""},
		{"the contract's dirty example", `{"index": 7528, "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "title": "No Title Data Available", "description": "No description available Story format", "poster_name": "User Info Error", "follower_count": "User Info Error", "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "is_image_or_video": "multi-video(story page format)", "image_src": "Image src error.", "downloaded": 0, "save_location": "Local save in /data/mens-fashion", "category": "mens-fashion"}`,
			Pin{Ind: 7528, UniqueID: str("fbe53c66-3442-4773-b19e-d3ec6f54dddf"), IsImageOrVideo: str("multi-video(story page format)"), SaveLocation: str("/data/mens-fashion"), Category: str("mens-fashion")}, 0, ""},
		{"index as numeric string", `{"index": "42"}`, Pin{Ind: 42}, 0, ""},
		{"index as whole float", `{"index": 42.0}`, Pin{Ind: 42}, 0, ""},
		{"index with exponent", `{"index": "4.2e1"}`, Pin{Ind: 42}, 0, ""},
		{"negative index", `{"index": -3}`, Pin{Ind: -3}, 0, ""},
		{"empty strings become null", `{"index": 1, "unique_id": "", "title": "", "description": "", "poster_name": "", "follower_count": "", "tag_list": "", "is_image_or_video": "", "image_src": "", "save_location": "", "category": ""}`, Pin{Ind: 1}, 0, ""},
		{"description containing the sentinel", `{"index": 1, "description": "x No description available y"}`, Pin{Ind: 1}, 0, ""},
		{"title only similar to the sentinel is kept", `{"index": 1, "title": "No Title Data Available!"}`, Pin{Ind: 1, Title: str("No Title Data Available!")}, 0, ""},
		{"follower count k", `{"index": 1, "follower_count": "51k"}`, Pin{Ind: 1, FollowerCount: i64(51000)}, 0, ""},
		{"follower count decimal k", `{"index": 1, "follower_count": "1.2k"}`, Pin{Ind: 1, FollowerCount: i64(1200)}, 0, ""},
		{"follower count M", `{"index": 1, "follower_count": "3M"}`, Pin{Ind: 1, FollowerCount: i64(3000000)}, 0, ""},
		{"follower count decimal B", `{"index": 1, "follower_count": "1.25B"}`, Pin{Ind: 1, FollowerCount: i64(1250000000)}, 0, ""},
		{"follower count as JSON number", `{"index": 1, "follower_count": 99}`, Pin{Ind: 1, FollowerCount: i64(99)}, 0, ""},
		{"follower count garbage", `{"index": 1, "follower_count": "lots"}`, Pin{Ind: 1}, 1 << 5, ""},
		{"follower count lower-case m is not a suffix", `{"index": 1, "follower_count": "3m"}`, Pin{Ind: 1}, 1 << 5, ""},
		{"follower count negative", `{"index": 1, "follower_count": "-5"}`, Pin{Ind: 1}, 1 << 5, ""},
		{"follower count object", `{"index": 1, "follower_count": {"a": 1}}`, Pin{Ind: 1}, 1 << 5, ""},
		{"save location without prefix kept", `{"index": 1, "save_location": "/data/x"}`, Pin{Ind: 1, SaveLocation: str("/data/x")}, 0, ""},
		{"save location of only the prefix", `{"index": 1, "save_location": "Local save in "}`, Pin{Ind: 1}, 0, ""},
		{"escaped text", `{"index": 1, "title": "caf\u00e9 \"x\""}`, Pin{Ind: 1, Title: str(`café "x"`)}, 0, ""},
		{"raw UTF-8 text", `{"index": 1, "title": "café ☕"}`, Pin{Ind: 1, Title: str("café ☕")}, 0, ""},
		{"numeric title kept as text", `{"index": 1, "title": 12}`, Pin{Ind: 1, Title: str("12")}, 0, ""},
		{"array title unparsable", `{"index": 1, "title": [1]}`, Pin{Ind: 1}, 1 << 2, ""},
		{"repeated key keeps the last", `{"index": 1, "index": 2}`, Pin{Ind: 2}, 0, ""},
		{"escaped key", `{"ind\u0065x": 5}`, Pin{Ind: 5}, 0, ""},
		{"key is case-sensitive", `{"INDEX": 5}`, Pin{}, 0, ReasonMissingKey},
		{"missing index", `{"title": "x"}`, Pin{}, 0, ReasonMissingKey},
		{"null index", `{"index": null}`, Pin{}, 0, ReasonNullKey},
		{"fractional index", `{"index": 1.5}`, Pin{}, 0, ReasonKeyNotInteger},
		{"text index", `{"index": "abc"}`, Pin{}, 0, ReasonKeyNotInteger},
		{"boolean index", `{"index": true}`, Pin{}, 0, ReasonKeyNotInteger},
		{"empty string index", `{"index": ""}`, Pin{}, 0, ReasonKeyNotInteger},
		{"index out of range", `{"index": 1e30}`, Pin{}, 0, ReasonKeyNotInteger},
		{"truncated JSON", `{"index": 1, "title": "x`, Pin{}, 0, ReasonInvalidJSON},
		{"trailing garbage", `{"index": 1} x`, Pin{}, 0, ReasonInvalidJSON},
		{"empty input", ``, Pin{}, 0, ReasonInvalidJSON},
		{"array", `[1, 2]`, Pin{}, 0, ReasonNotObject},
		{"string", `"index"`, Pin{}, 0, ReasonNotObject},
		{"null document", `null`, Pin{}, 0, ReasonNotObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad, err := CleanPinRecord([]byte(tc.in))
			checkReject(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("row mismatch (-want +got):\n%s", diff)
			}
			if bad != tc.bad {
				t.Errorf("unparsable = %b, want %b", bad, tc.bad)
			}
		})
	}
}

func checkReject(t *testing.T, err error, want string) {
	t.Helper()
	var re *RejectError
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected rejection: %v", err)
	case want != "" && !errors.As(err, &re):
		t.Fatalf("got %v, want rejection %q", err, want)
	case want != "" && re.Reason != want:
		t.Fatalf("reason = %q, want %q", re.Reason, want)
	}
}

func TestParseFollowerCount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"124", 124, true}, {"007", 7, true}, {" 12 ", 12, true},
		{"51k", 51000, true}, {"1.2k", 1200, true}, {"1.25k", 1250, true}, {"1.2345k", 1235, true}, {"1.2344k", 1234, true},
		{"3M", 3000000, true}, {"2.5M", 2500000, true}, {"1B", 1000000000, true}, {"0.5k", 500, true},
		{"k", 0, false}, {".5k", 0, false}, {"1.k", 0, false}, {"1.2", 0, false}, {"1,200", 0, false},
		{"1K", 0, false}, {"1kk", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"", 0, false},
		{"User Info Error", 0, false}, {"99999999999999999999", 0, false}, {"9999999999999B", 0, false},
	}
	for _, tc := range tests {
		got, ok := ParseFollowerCount(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseFollowerCount(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCleanGeoRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Geo
		bad     Unparsable
		wantErr string
	}{
		{"normal row", `{"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"}`,
			Geo{Ind: 7528, Country: str("Albania"), Coordinates: []float64{-89.9787, -173.293}, Timestamp: ts("2020-08-28 03:52:47")}, 0, ""},
		{"numeric strings", `{"ind": "3", "latitude": "-5.34", "longitude": " 7 "}`, Geo{Ind: 3, Coordinates: []float64{-5.34, 7}}, 0, ""},
		{"RFC 3339 with zone is converted to UTC", `{"ind": 3, "timestamp": "2020-08-28T05:52:47+02:00"}`, Geo{Ind: 3, Timestamp: ts("2020-08-28 03:52:47")}, 0, ""},
		{"bad timestamp", `{"ind": 3, "timestamp": "yesterday"}`, Geo{Ind: 3}, 1 << 1, ""},
		{"numeric timestamp", `{"ind": 3, "timestamp": 1598586767}`, Geo{Ind: 3}, 1 << 1, ""},
		{"one coordinate missing", `{"ind": 3, "latitude": 1.5}`, Geo{Ind: 3}, 0, ""},
		{"one coordinate bad", `{"ind": 3, "latitude": "north", "longitude": 2}`, Geo{Ind: 3}, 1 << 2, ""},
		{"NaN is not a number", `{"ind": 3, "latitude": "NaN", "longitude": "Inf"}`, Geo{Ind: 3}, 1<<2 | 1<<3, ""},
		{"hex is not a number", `{"ind": 3, "latitude": "0x10", "longitude": 1}`, Geo{Ind: 3}, 1 << 2, ""},
		{"overflowing latitude", `{"ind": 3, "latitude": 1e999, "longitude": 1}`, Geo{Ind: 3}, 1 << 2, ""},
		{"empty country", `{"ind": 3, "country": ""}`, Geo{Ind: 3}, 0, ""},
		{"missing ind", `{"index": 3}`, Geo{}, 0, ReasonMissingKey},
		{"null ind", `{"ind": null}`, Geo{}, 0, ReasonNullKey},
		{"bad ind", `{"ind": "x3"}`, Geo{}, 0, ReasonKeyNotInteger},
		{"not an object", `42`, Geo{}, 0, ReasonNotObject},
		{"not JSON", `{ind: 3}`, Geo{}, 0, ReasonInvalidJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad, err := CleanGeoRecord([]byte(tc.in))
			checkReject(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("row mismatch (-want +got):\n%s", diff)
			}
			if bad != tc.bad {
				t.Errorf("unparsable = %b, want %b", bad, tc.bad)
			}
		})
	}
}

func TestCleanUserRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    User
		bad     Unparsable
		wantErr string
	}{
		{"normal row", `{"ind": 7528, "first_name": "Abigail", "last_name": "Ali", "age": 20, "date_joined": "2015-10-24 11:23:51"}`,
			User{Ind: 7528, UserName: str("Abigail Ali"), Age: i64(20), DateJoined: ts("2015-10-24 11:23:51")}, 0, ""},
		{"age as string", `{"ind": 1, "age": "33"}`, User{Ind: 1, Age: i64(33)}, 0, ""},
		{"age fractional", `{"ind": 1, "age": 33.5}`, User{Ind: 1}, 1 << 3, ""},
		{"age text", `{"ind": 1, "age": "old"}`, User{Ind: 1}, 1 << 3, ""},
		{"first name only", `{"ind": 1, "first_name": "Abigail", "last_name": null}`, User{Ind: 1, UserName: str("Abigail")}, 0, ""},
		{"last name only", `{"ind": 1, "first_name": "", "last_name": "Ali"}`, User{Ind: 1, UserName: str("Ali")}, 0, ""},
		{"names trimmed", `{"ind": 1, "first_name": " Abigail ", "last_name": " Ali "}`, User{Ind: 1, UserName: str("Abigail Ali")}, 0, ""},
		{"no names", `{"ind": 1, "first_name": "  "}`, User{Ind: 1}, 0, ""},
		{"date joined RFC 3339", `{"ind": 1, "date_joined": "2016-02-29T10:00:00Z"}`, User{Ind: 1, DateJoined: ts("2016-02-29 10:00:00")}, 0, ""},
		{"impossible date", `{"ind": 1, "date_joined": "2016-02-30 10:00:00"}`, User{Ind: 1}, 1 << 4, ""},
		{"missing ind", `{}`, User{}, 0, ReasonMissingKey},
		{"null ind", `{"ind": null, "age": 3}`, User{}, 0, ReasonNullKey},
		{"array ind", `{"ind": [1]}`, User{}, 0, ReasonKeyNotInteger},
		{"not JSON", `not json`, User{}, 0, ReasonInvalidJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad, err := CleanUserRecord([]byte(tc.in))
			checkReject(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("row mismatch (-want +got):\n%s", diff)
			}
			if bad != tc.bad {
				t.Errorf("unparsable = %b, want %b", bad, tc.bad)
			}
		})
	}
}
