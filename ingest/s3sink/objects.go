package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pinpipe/pinpipe/internal/rawline"
)

// Metadata the sink stores on each object (x-amz-meta-*), so that a later
// run knows where an object ends without reading it.
const (
	metaFirstOffset = "pinpipe-first-offset"
	metaLastOffset  = "pinpipe-last-offset"
	metaRecords     = "pinpipe-records"
)

// NewS3Client returns an S3 client configured by the AWS SDK's default chain
// (credentials, AWS_REGION, AWS_ENDPOINT_URL_S3, ...). It uses path-style
// addressing when the endpoint's host is an IP address or localhost, as local
// S3 servers need, and retries harder than the SDK's default, because a
// write that still fails stops the sink.
func NewS3Client(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	pathStyle := false
	if u, err := url.Parse(endpoint); err == nil && endpoint != "" {
		host := u.Hostname()
		pathStyle = host == "localhost" || net.ParseIP(host) != nil
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 8
		})
	}), nil
}

// CheckBucket asks S3 whether bucket is there and reachable with the
// client's credentials (HeadBucket): the sink checks it before it reads
// anything, and `pinpipe s3sink`'s /readyz at each probe (with optFns
// making one attempt, so that the probe answers within its timeout).
func CheckBucket(ctx context.Context, client *s3.Client, bucket string, optFns ...func(*s3.Options)) error {
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}, optFns...); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return nil
}

// ParseS3URL splits s3://bucket/prefix into the bucket and the key prefix
// (empty, or ending in "/").
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", s)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// partitionDir is the key prefix of a partition's objects, the Confluent S3
// sink's layout: <prefix>topics/<topic>/partition=<p>/.
func partitionDir(prefix, topic string, partition int32) string {
	return fmt.Sprintf("%stopics/%s/partition=%d/", prefix, topic, partition)
}

// objectKey names the object whose first record has offset start:
// <topic>+<partition>+<start, 10 digits>.json[.gz] in its partition's dir.
func objectKey(prefix, topic string, partition int32, start int64, compress bool) string {
	ext := ".json"
	if compress {
		ext = ".json.gz"
	}
	return fmt.Sprintf("%s%s+%d+%010d%s", partitionDir(prefix, topic, partition), topic, partition, start, ext)
}

// parseObjectName returns the start offset in an object's base name, when
// it is one of this partition's .json or .json.gz objects.
func parseObjectName(name, topic string, partition int32) (int64, bool) {
	rest, ok := strings.CutPrefix(name, fmt.Sprintf("%s+%d+", topic, partition))
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".json.gz")
	if !ok {
		digits, ok = strings.CutSuffix(rest, ".json")
	}
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	start, err := strconv.ParseInt(digits, 10, 64)
	return start, err == nil
}

// lineKind says how a record value became a line.
type lineKind int

const (
	// lineAsIs: a line of UTF-8 text, written as it is.
	lineAsIs lineKind = iota
	// lineWrapped: any other value (line breaks, invalid UTF-8, control
	// characters, empty), written in rawline's wrapped form, which the
	// batch job unwraps to the value's bytes.
	lineWrapped
	// lineSkipped: a null value (a tombstone): no line.
	lineSkipped
)

// encodeValue returns a record value as one line (without the newline),
// in rawline's lossless form: the value itself when it is a line of UTF-8
// text, else {"__pinpipe_raw_base64":"..."}, so that no value splits into
// several lines or loses a byte, and the batch job (rawline.Decode) gets
// every value back as it was in Kafka. Only a null value gets no line.
func encodeValue(v []byte) ([]byte, lineKind) {
	if v == nil {
		return nil, lineSkipped
	}
	if rawline.Plain(v) {
		return v, lineAsIs
	}
	return rawline.AppendWrapped(nil, v), lineWrapped
}

// gzipBytes compresses b; the output depends only on b (no name or time in
// the header), so a rewrite of an object is byte for byte the same.
func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// existingObject is an object found in S3 for a partition, keyed by its
// start offset; keys has more than one entry when both a .json and a
// .json.gz object start there (runs with and without --compress).
type existingObject struct {
	start int64
	keys  []string
	// Where it ends, known only for the last object of the partition (the
	// others end where the next one starts): last is its last offset (-1
	// when unknown); records its record count (0 when unknown), from
	// counting the lines of an object without the sink's metadata.
	last    int64
	records int
}

// listExisting lists a partition's objects starting at from or later, by
// start offset, and finds where the last one ends.
func listExisting(ctx context.Context, client *s3.Client, bucket, prefix, topic string, partition int32, from int64) ([]existingObject, error) {
	dir := partitionDir(prefix, topic, partition)
	byStart := map[int64]*existingObject{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(dir)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s: %w", bucket, dir, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			start, ok := parseObjectName(strings.TrimPrefix(key, dir), topic, partition)
			if !ok || start < from {
				continue
			}
			e := byStart[start]
			if e == nil {
				e = &existingObject{start: start, last: -1}
				byStart[start] = e
			}
			e.keys = append(e.keys, key)
		}
	}
	objs := make([]existingObject, 0, len(byStart))
	for _, e := range byStart {
		sort.Strings(e.keys)
		objs = append(objs, *e)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].start < objs[j].start })
	if len(objs) > 0 {
		if err := findEnd(ctx, client, bucket, &objs[len(objs)-1]); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// findEnd reads where an object ends from the sink's metadata or, for an
// object written by something else, by counting its lines (one a record).
func findEnd(ctx context.Context, client *s3.Client, bucket string, e *existingObject) error {
	for _, key := range e.keys {
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
		}
		for k, v := range head.Metadata {
			if strings.EqualFold(k, metaLastOffset) {
				if last, err := strconv.ParseInt(v, 10, 64); err == nil && last >= e.start {
					e.last = last
					return nil
				}
			}
		}
	}
	key := e.keys[0]
	n, err := countLines(ctx, client, bucket, key)
	if err != nil {
		return fmt.Errorf("counting the records of s3://%s/%s: %w", bucket, key, err)
	}
	e.records = n // 0 for an empty object: nothing to reproduce
	return nil
}

// countLines counts the non-blank lines of an object (gunzipped when its
// name ends in .gz), the records of a line-per-record object.
func countLines(ctx context.Context, client *s3.Client, bucket, key string) (int, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	defer obj.Body.Close()
	var r io.Reader = obj.Body
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(obj.Body)
		if err != nil {
			return 0, err
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n, nil
}
