package kafkaio

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordCoderRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{},
		{Topic: "pin", Partition: 3, Offset: 1 << 40, Key: []byte("k"), Value: []byte(`{"a":1}`), Timestamp: time.UnixMilli(1_700_000_000_123).UTC(), From: 1<<40 - 7, Watermark: 1_700_000_000_000},
		{Topic: "t", Key: []byte{}, Value: nil, Timestamp: time.UnixMilli(-5).UTC()}, // empty key, tombstone
		{Topic: strings.Repeat("x", 300), Partition: -1, Offset: -1, Value: []byte{}},
	} {
		b, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", r, err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if (r.Key == nil) != (got.Key == nil) || (r.Value == nil) != (got.Value == nil) {
			t.Errorf("null and empty confused: %+v → %+v", r, got)
		}
		for i := range b {
			if _, err := decodeRecord(b[:i]); err == nil {
				t.Errorf("decoding %d of %d bytes succeeded", i, len(b))
			}
		}
	}
}
