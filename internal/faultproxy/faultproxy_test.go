package faultproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

func start(t *testing.T) (*Proxy, *int) {
	t.Helper()
	var hits int
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	t.Cleanup(target.Close)
	p, err := Start(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &hits
}

func get(t *testing.T, method, url, body string) (int, string, http.Header, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

func TestForwardFaultAndClear(t *testing.T) {
	p, hits := start(t)
	code, body, h, err := get(t, "PUT", p.URL+"/b/k", "v1")
	if err != nil || code != 200 || body != "PUT /b/k v1" || h.Get("X-Host") != strings.TrimPrefix(p.URL, "http://") {
		t.Fatalf("forwarded: %d %q host %q %v", code, body, h.Get("X-Host"), err)
	}
	p.Set(S3SlowDown(Methods("PUT")))
	code, body, _, err = get(t, "PUT", p.URL+"/b/k", "v2")
	if err != nil || code != 503 || !strings.Contains(body, "<Code>SlowDown</Code>") {
		t.Fatalf("faulted PUT: %d %q %v", code, body, err)
	}
	if code, body, _, err = get(t, "GET", p.URL+"/b/k", ""); err != nil || code != 200 || body != "GET /b/k " {
		t.Fatalf("a GET the fault does not match: %d %q %v", code, body, err)
	}
	p.Set(&Fault{Drop: true})
	if _, _, _, err = get(t, "GET", p.URL+"/x", ""); err == nil {
		t.Fatal("a dropped connection answered")
	}
	p.Set(nil)
	if code, _, _, err = get(t, "PUT", p.URL+"/b/k", "v3"); err != nil || code != 200 {
		t.Fatalf("after clearing: %d %v", code, err)
	}
	// net/http re-sends an idempotent request once when a reused
	// connection is dropped: the drop may count twice.
	if *hits != 3 || p.Forwarded() != 3 || p.Faulted() < 2 || p.Faulted() > 3 {
		t.Fatalf("target hits %d, forwarded %d, faulted %d; want 3, 3, 2 or 3", *hits, p.Forwarded(), p.Faulted())
	}
}

// The AWS SDK reads the faults as the services' own errors.
func TestSDKSeesServiceErrors(t *testing.T) {
	p, hits := start(t)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL), UsePathStyle: true, Credentials: creds}, noRetry)
	for _, f := range []*Fault{S3SlowDown(nil), S3InternalError(nil)} {
		p.Set(f)
		_, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || !strings.Contains(f.Body, "<Code>"+ae.ErrorCode()+"</Code>") {
			t.Errorf("PutObject: %v, want the fault's code", err)
		}
	}
	kc := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL), Credentials: creds, RetryMaxAttempts: 1})
	p.Set(KinesisThrottled(KinesisOps("GetRecords", "PutRecords")))
	_, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
	var thr *types.ProvisionedThroughputExceededException
	if !errors.As(err, &thr) {
		t.Errorf("PutRecords: %v, want ProvisionedThroughputExceededException", err)
	}
	// DescribeStream is not matched: it reaches the target.
	before := *hits
	kc.DescribeStream(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	if *hits != before+1 {
		t.Errorf("DescribeStream did not reach the target")
	}
}

func TestCount(t *testing.T) {
	distinct, lost, doubled := Count([]string{"a", "b", "c"}, map[string]int{"a": 1, "b": 2, "x": 1})
	if distinct != 3 || lost != 1 || doubled != 1 {
		t.Fatalf("Count: %d distinct, %d lost, %d doubled; want 3, 1, 1", distinct, lost, doubled)
	}
}
