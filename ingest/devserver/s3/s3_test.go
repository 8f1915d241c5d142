package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func client(srv *Server) *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("dev", "dev", ""),
	})
}

func put(t *testing.T, c *awss3.Client, bucket, key string, body []byte) {
	t.Helper()
	_, err := c.PutObject(t.Context(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		Metadata: map[string]string{"note": "kept"}})
	if err != nil {
		t.Fatal(err)
	}
}

func get(ctx context.Context, c *awss3.Client, bucket, key string) ([]byte, map[string]string, error) {
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out.Metadata, err
}

// TestPersistence writes objects (more than a listing page), restarts the
// server on the same data dir and reads them back.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, Options{Listen: "127.0.0.1:0", DataDir: dir, Buckets: []string{"lake"}})
	c := client(srv)
	const n = 1100
	for i := range n {
		put(t, c, "lake", fmt.Sprintf("raw/k%04d", i), fmt.Appendf(nil, "object %d", i))
	}
	if _, err := Start(t.Context(), Options{Listen: "127.0.0.1:0", DataDir: dir}); err == nil {
		t.Fatal("a second server on the same data dir started")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv = start(t, Options{Listen: "127.0.0.1:0", DataDir: dir, Buckets: []string{"lake", "other"}})
	c = client(srv)
	b, meta, err := get(t.Context(), c, "lake", "raw/k0042")
	if err != nil || string(b) != "object 42" || meta["note"] != "kept" {
		t.Fatalf("after the restart: %q %v %v", b, meta, err)
	}
	var keys int
	pages := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("raw/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		keys += len(page.Contents)
	}
	if keys != n {
		t.Fatalf("listed %d keys after the restart, want %d", keys, n)
	}
	if _, err := c.HeadBucket(t.Context(), &awss3.HeadBucketInput{Bucket: aws.String("other")}); err != nil {
		t.Fatalf("bucket created at the second start: %v", err)
	}
}

// TestInMemory keeps nothing across a restart and refuses bad bucket names.
func TestInMemory(t *testing.T) {
	srv := start(t, Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}})
	put(t, client(srv), "lake", "a", []byte("x"))
	srv.Close()
	srv = start(t, Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}})
	if _, _, err := get(t.Context(), client(srv), "lake", "a"); err == nil {
		t.Fatal("an in-memory object survived a restart")
	}
	if _, err := Start(t.Context(), Options{Listen: "127.0.0.1:0", Buckets: []string{"Bad_Name"}}); err == nil {
		t.Fatal("an invalid bucket name was accepted")
	}
}

// TestCloseOnContext stops the server when its context is done.
func TestCloseOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := Start(ctx, Options{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	noRetry := func(o *awss3.Options) { o.RetryMaxAttempts = 1 }
	if _, err := client(srv).ListBuckets(context.Background(), &awss3.ListBucketsInput{}, noRetry); err == nil {
		t.Fatal("the server still answers after its context was cancelled")
	}
}
