package kinesalite

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServesOnAfterAClientGoesAway: a client that sends half a request and
// closes its connection (a job killed mid-request) must not end the server
// that every other test of the package shares.
func TestServesOnAfterAClientGoesAway(t *testing.T) {
	if err := Installed(Dir()); err != nil {
		t.Skipf("kinesalite: %v (scripts/kinesalite.sh install)", err)
	}
	ctx := context.Background()
	k, err := Start(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	listStreams := func() (int, error) {
		req, _ := http.NewRequest("POST", k.URL, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
		req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	if code, err := listStreams(); err != nil || code != http.StatusOK {
		t.Fatalf("ListStreams before: %d, %v", code, err)
	}
	for range 3 {
		c, err := net.Dial("tcp", strings.TrimPrefix(k.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n{\"Stream")
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if code, err := listStreams(); err != nil || code != http.StatusOK {
		t.Fatalf("ListStreams after clients went away mid-request: %d, %v (kinesalite died?)", code, err)
	}
}
