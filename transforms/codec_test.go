package transforms

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBatchCodecRoundTrip(t *testing.T) {
	in := Batch{
		Shard: 7,
		Pins: []Pin{{Ind: 1}, {Ind: -2, UniqueID: str("u"), Title: str(""), Description: str("d"), FollowerCount: i64(1200),
			PosterName: str("p"), TagList: str("t"), IsImageOrVideo: str("image"), ImageSrc: str("x"), SaveLocation: str("/s"), Category: str("art")}},
		Geos:  []Geo{{Ind: 3}, {Ind: 4, Country: str("Chad"), Coordinates: []float64{-5.34, 7}, Timestamp: ts("2020-08-28T03:52:47.123Z")}},
		Users: []User{{Ind: 5}, {Ind: 6, UserName: str("A B"), Age: i64(20), DateJoined: ts("2015-10-24 11:23:51")}},
	}
	got, err := DecodeBatch(EncodeBatch(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	empty, err := DecodeBatch(EncodeBatch(Batch{}))
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty batch: %v %v", empty, err)
	}
	if _, err := DecodeBatch(EncodeBatch(in)[:10]); err == nil {
		t.Error("a truncated encoding decoded without error")
	}
}
