// Package icebird reads an Apache Iceberg table in a test with icebird, an
// Iceberg reader for JavaScript nobody here wrote (npm, pinned in
// scripts/icebird.sh), run with Node.js, so that a test of a table we write
// need not trust our own (iceberg-go based) reading. It reads any
// spec-conformant v1 or v2 table with Parquet data files, on local disk or on
// a path-style S3 server (gofakes3). Only tests import it.
package icebird

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// readScript is the Node.js program that reads a table (see its comment).
//
//go:embed read.mjs
var readScript string

// Options say where a table's files are served from.
type Options struct {
	// S3Endpoint is the URL (http://127.0.0.1:PORT) of the S3 server that
	// s3://bucket/key locations are read from, path style. Empty: reading an
	// s3:// location fails.
	S3Endpoint string
	// Timeout bounds one read; default one minute.
	Timeout time.Duration
}

// ReadTable reads the table at tableLocation with icebird and returns its
// rows, in the order icebird reads them (data file by data file: sort
// before comparing).
//
// tableLocation is either a metadata file (…/metadata/NAME.metadata.json:
// the table as of that metadata's current snapshot) or the table's folder,
// whose metadata/version-hint.text names the metadata file (Hadoop-style
// catalogs). It is an absolute path, a file:// URL or an s3://bucket/key
// URL.
//
// Each row has every column of the table's current schema. Values are
// converted by the column's Iceberg type, the same way each time:
//
//	boolean                          bool
//	int, long                        int64 (exact: icebird's 64-bit integers are passed as decimal strings)
//	float, double                    float64
//	decimal(P,S)                     float64 (icebird makes a JavaScript number)
//	date, timestamp, timestamptz     time.Time in UTC, millisecond precision (icebird makes JavaScript Dates)
//	time                             time.Duration since midnight
//	string                           string
//	uuid                             string, 8-4-4-4-12 lower-case hex
//	binary                           []byte (icebird decodes binary as UTF-8 text: other bytes are lost)
//	fixed[N]                         []byte
//	struct, list, map                as encoding/json decodes them (64-bit integers as strings)
//	null                             nil
//
// A table with no snapshot, or whose current snapshot has no data files,
// has no rows. When icebird or Node.js is missing the test is skipped,
// except under CI=true, where a missing icebird is installed with
// scripts/icebird.sh and any failure fails the test. The error is icebird's
// (a table it cannot read) or a conversion's.
func ReadTable(t testing.TB, tableLocation string, opts Options) ([]map[string]any, error) {
	t.Helper()
	dir := Reader(t)
	table, metadataFile, err := splitLocation(tableLocation)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--input-type=module", "-e", readScript, "--",
		filepath.Join(dir, "node_modules", "icebird"), table, metadataFile, opts.S3Endpoint)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("icebird: reading %s took longer than %v", tableLocation, opts.Timeout)
		}
		return nil, fmt.Errorf("icebird: reading %s: %v\n%s", tableLocation, err, strings.TrimSpace(stderr.String()))
	}
	return decode(&stdout)
}

// splitLocation turns a table folder or metadata file location into what
// icebird takes: the table's folder and the metadata file's name in its
// metadata/ folder ("" for the one version-hint.text names).
func splitLocation(loc string) (table, metadataFile string, err error) {
	loc = strings.TrimRight(loc, "/")
	switch {
	case strings.HasPrefix(loc, "file://"):
		u, err := url.Parse(loc)
		if err != nil {
			return "", "", fmt.Errorf("icebird: table location %q: %w", loc, err)
		}
		loc = u.Path
	case strings.HasPrefix(loc, "s3://"), strings.HasPrefix(loc, "s3a://"), strings.HasPrefix(loc, "/"):
	default:
		return "", "", fmt.Errorf("icebird: table location %q is neither an absolute path, a file:// URL nor an s3:// URL", loc)
	}
	if !strings.HasSuffix(loc, ".metadata.json") {
		return loc, "", nil
	}
	// Split by hand: path.Dir would clean s3:// into s3:/.
	metaDir, name := loc[:strings.LastIndex(loc, "/")], loc[strings.LastIndex(loc, "/")+1:]
	if !strings.HasSuffix(metaDir, "/metadata") {
		return "", "", fmt.Errorf("icebird: metadata file %q is not in its table's metadata/ folder, where icebird looks", loc)
	}
	return strings.TrimSuffix(metaDir, "/metadata"), name, nil
}

// field is a column of the schema the script prints first.
type field struct {
	Name string          `json:"name"`
	Type json.RawMessage `json:"type"`
}

// decode reads the script's output: the schema's line, then one per row.
func decode(out *bytes.Buffer) ([]map[string]any, error) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	if !sc.Scan() {
		return nil, errors.New("icebird: the reader printed nothing")
	}
	var head struct {
		Schema struct {
			Fields []field `json:"fields"`
		} `json:"schema"`
	}
	if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
		return nil, fmt.Errorf("icebird: the schema line: %w", err)
	}
	rows := []map[string]any{}
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("icebird: row %d: %w", len(rows), err)
		}
		row := make(map[string]any, len(head.Schema.Fields))
		for _, f := range head.Schema.Fields {
			v, err := convert(f.Type, raw[f.Name])
			if err != nil {
				return nil, fmt.Errorf("icebird: row %d, column %s: %w", len(rows), f.Name, err)
			}
			row[f.Name] = v
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// convert turns one printed value into the Go value for its Iceberg type
// (see ReadTable).
func convert(typ, v json.RawMessage) (any, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var name string
	if json.Unmarshal(typ, &name) != nil {
		// A struct, list or map: its type is an object.
		var out any
		err := json.Unmarshal(v, &out)
		return out, err
	}
	switch {
	case name == "boolean":
		var b bool
		err := json.Unmarshal(v, &b)
		return b, err
	case name == "int" || name == "long":
		return strconv.ParseInt(strings.Trim(string(v), `"`), 10, 64)
	case name == "float" || name == "double" || strings.HasPrefix(name, "decimal"):
		var f float64
		err := json.Unmarshal(v, &f)
		return f, err
	case name == "date" || name == "timestamp" || name == "timestamptz":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		return ts.UTC(), err
	case name == "time":
		micros, err := strconv.ParseInt(strings.Trim(string(v), `"`), 10, 64)
		return time.Duration(micros) * time.Microsecond, err
	case name == "string":
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case name == "uuid":
		b, err := decodeBytes(v)
		if err != nil {
			return nil, err
		}
		if len(b) != 16 {
			return nil, fmt.Errorf("a uuid of %d bytes", len(b))
		}
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:8], b[8:10], b[10:12], b[12:16]), nil
	case name == "binary":
		var s string
		err := json.Unmarshal(v, &s)
		return []byte(s), err
	case strings.HasPrefix(name, "fixed"):
		return decodeBytes(v)
	}
	return nil, fmt.Errorf("icebird: Iceberg type %q is not converted here", name)
}

// decodeBytes decodes a byte array the script printed in base64.
func decodeBytes(v json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

// reader is the test binary's icebird install, checked on first use.
var reader struct {
	once sync.Once
	dir  string
	skip string
	err  error
}

// Reader returns the folder icebird is installed in (its node_modules is
// there): $PINPIPE_ICEBIRD_DIR, else .cache/icebird under the repository,
// where scripts/icebird.sh installs it. It skips the test when icebird or
// Node.js is missing, except under CI=true (see ReadTable).
func Reader(t testing.TB) string {
	t.Helper()
	reader.once.Do(findReader)
	if reader.skip != "" {
		testenv.SkipUnlessCI(t, reader.skip)
	}
	if reader.err != nil {
		t.Fatal(reader.err)
	}
	return reader.dir
}

func findReader() {
	root := testenv.RepoRoot()
	reader.dir = os.Getenv("PINPIPE_ICEBIRD_DIR")
	if reader.dir == "" {
		reader.dir = filepath.Join(root, ".cache", "icebird")
	}
	if _, err := exec.LookPath("node"); err != nil {
		reader.skip = "icebird: Node.js is not on PATH (Debian: apt-get install nodejs); under CI=true this fails"
		return
	}
	if installed(reader.dir) {
		return
	}
	if os.Getenv("CI") != "true" {
		reader.skip = fmt.Sprintf("icebird is not installed in %s: run scripts/icebird.sh install (needs npm), "+
			"or set PINPIPE_ICEBIRD_DIR to where it is; under CI=true the tests install it and fail without it", reader.dir)
		return
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "icebird.sh"), "install")
	cmd.Env = append(os.Environ(), "PINPIPE_ICEBIRD_DIR="+reader.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		reader.err = fmt.Errorf("installing icebird: %v\n%s", err, out)
		return
	}
	if !installed(reader.dir) {
		reader.err = fmt.Errorf("scripts/icebird.sh install left no icebird in %s", reader.dir)
	}
}

func installed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "node_modules", "icebird", "package.json"))
	return err == nil
}
