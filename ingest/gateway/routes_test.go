package gateway

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// TestRouting checks what the router answers for each path and method,
// over a real connection: 405 with an Allow header on an endpoint's path
// for another method, 404 off the endpoints, each in its API's envelope
// (the REST Proxy's error_code, Kinesis's __type), and both only after the
// API key check. Paths with "." or ".." segments are not redirected:
// "/topics/.." names a topic, "/topics/t/../t" no endpoint.
func TestRouting(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	const key = "routing-key"
	// Kinesis at an address where nothing listens: no Kinesis route below
	// reaches it.
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), Kinesis: testenv.KinesisClient("http://127.0.0.1:1"), APIKey: key})

	cases := []struct {
		method, path string
		status, code int    // code: the REST Proxy's error_code; 0 for a Kinesis answer
		kinesisType  string // __type of a Kinesis answer
		allow        string
	}{
		{"POST", "/topics", 405, 405, "", "GET, HEAD"},
		{"PUT", "/topics/t", 405, 405, "", "GET, HEAD, POST"},
		{"DELETE", "/topics/t", 405, 405, "", "GET, HEAD, POST"},
		{"PATCH", "/streams/s", 405, 0, "MethodNotAllowed", "DELETE, GET, HEAD, POST"},
		{"GET", "/streams/s/record", 405, 0, "MethodNotAllowed", "PUT"},
		{"POST", "/streams/s/records", 405, 0, "MethodNotAllowed", "PUT"},
		{"DELETE", "/streams", 405, 0, "MethodNotAllowed", "GET, HEAD"},
		{"POST", "/healthz", 405, 405, "", "GET, HEAD"},
		{"PUT", "/metrics", 405, 405, "", "GET, HEAD"},
		{"GET", "/nothing", 404, 404, "", ""},
		{"GET", "/topics/", 404, 404, "", ""},
		{"GET", "/topics/t/", 404, 404, "", ""},
		{"POST", "/topics/t/partitions", 404, 404, "", ""},
		{"POST", "/topics//t", 404, 404, "", ""},
		{"POST", "/topics/t/../t", 404, 404, "", ""},
		{"GET", "/topics/..", 404, codeTopicNotFound, "", ""},
		{"GET", "/topics/.", 404, codeTopicNotFound, "", ""},
		{"PUT", "/streams/s/record/x", 404, 0, "UnknownOperationException", ""},
		{"PUT", "/streams/s/../s/record", 404, 0, "UnknownOperationException", ""},
		{"GET", "/streamsx", 404, 404, "", ""},
		{"GET", "/healthz/", 404, 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			// Without a key: refused, whatever the path, in its API's
			// style (API Gateway's is a 403 {"message":"Forbidden"}).
			r := do(t, tc.method, g.url+tc.path, "", nil)
			if tc.code == 0 {
				if m := r.json(t); r.status != 403 || m["message"] != "Forbidden" {
					t.Fatalf("without a key: %d %s", r.status, r.body)
				}
			} else {
				expectError(t, r, 401, 401, "")
			}
			r = do(t, tc.method, g.url+tc.path, "", nil, "x-api-key", key)
			if tc.code == 0 {
				expectKinesisError(t, r, tc.status, tc.kinesisType, "")
			} else {
				expectError(t, r, tc.status, tc.code, "")
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	// HEAD is served by the GET routes.
	if r := do(t, "HEAD", g.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("HEAD /healthz: %d", r.status)
	}
	if r := do(t, "HEAD", g.url+"/topics/t", "", nil, "x-api-key", key); r.status != 200 {
		t.Fatalf("HEAD /topics/t: %d", r.status)
	}
}
