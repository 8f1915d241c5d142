package report_test

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/pipelines/batch"
)

var reportPNG = flag.String("report-png", "", "also save a full-page screenshot of the sample's report to this file "+
	"(go test ./pipelines/batch/report -run Chromium -report-png=$PWD/docs/report.png)")

func TestMain(m *testing.M) { ptest.Main(m) }

const sampleDir = "../../../testdata/sample"

// chromium finds the browser: $PINPIPE_CHROMIUM, or Debian's chromium on
// the PATH. Without one the test is skipped, except under CI=true, where a
// missing browser must not pass as a green run.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PINPIPE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium not found: the report's browser test needs Debian's chromium package " +
		"(apt-get install -y chromium fonts-liberation), or PINPIPE_CHROMIUM=/path/to/chrome"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runChromium runs headless Chromium once on a page, offline: besides the
// flags that switch off its own traffic, every host name fails to resolve,
// so a page that needed the network would show it.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestReportInChromium runs the batch job over the sample on the direct
// runner, opens the report.html it wrote in headless Chromium and checks
// what the browser made of it: the DOM holds the eight insight charts, each
// one SVG with a bar per row, and the screenshot shows a painted page.
func TestReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the batch job and a browser")
	}
	bin := chromium(t)
	testenv.SetFlags(t, "runner", "direct")
	ctx := context.Background()
	out := t.TempDir()
	if _, err := batch.Run(ctx, batch.Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: batch.FormatJSONL}); err != nil {
		t.Fatalf("batch run: %v", err)
	}
	page := filepath.Join(out, batch.ReportFile)
	if _, err := os.Stat(page); err != nil {
		t.Fatalf("the batch run wrote no report: %v", err)
	}
	url := "file://" + page

	dom := string(runChromium(t, bin, "--dump-dom", url))
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium dumped no document: %q", tail(dom, 500))
	}
	in, err := batch.ReadInsights(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	cards, dup := charts(dom)
	if len(dup) > 0 {
		t.Errorf("charts in the DOM twice: %v", dup)
	}
	if len(cards["insight"]) != 8 {
		t.Errorf("the DOM holds %d insight charts, want 8", len(cards["insight"]))
	}
	for _, n := range in.Named() {
		c := cards["insight"][n.Name]
		rows := reflect.ValueOf(n.Rows).Len()
		if c.SVGs != 1 || c.Bars < 1 || c.Bars != rows {
			t.Errorf("%s: %d svg and %d bars in the DOM; want 1 svg and a bar per row (%d)", n.Name, c.SVGs, c.Bars, rows)
		}
	}
	for _, q := range []string{"records_by_outcome", "rejected_by_reason", "fields_nulled", "nulls_by_column"} {
		if c := cards["quality"][q]; c.SVGs != 1 {
			t.Errorf("data-quality chart %s not in the DOM", q)
		}
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the DOM holds a script")
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,4000", "--hide-scrollbars", url)
	img := readPNG(t, shot)
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 4000 {
		t.Errorf("screenshot is %v, want 1280x4000", b)
	}
	colors, barPixels, top := paint(img)
	t.Logf("screenshot: %d colours, %d bar-blue pixels, most common colour %.0f%%", colors, barPixels, top*100)
	// A blank or broken page has a handful of colours; the report has text
	// antialiasing, a palette and thousands of bar pixels.
	if colors < 200 || barPixels < 20000 || top > 0.9 {
		t.Errorf("screenshot looks empty: %d colours, %d bar-blue pixels, most common colour covers %.0f%%", colors, barPixels, top*100)
	}

	if *reportPNG != "" {
		saveFullPage(t, bin, url, *reportPNG)
	}
}

// barBlue is the bars' colour (--bar in the page's CSS).
var barBlue = color.RGBA{0x3c, 0x6f, 0xb4, 0xff}

// paint measures a screenshot: distinct colours, pixels of the bar colour
// and the share of the most common colour.
func paint(img image.Image) (colors, bar int, top float64) {
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			count[c]++
		}
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	return len(count), count[barBlue], float64(most) / float64(b.Dx()*b.Dy())
}

func readPNG(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	return img
}

// saveFullPage screenshots the whole page for the README: a window taller
// than the page, cut below the last painted row, compressed hard.
func saveFullPage(t *testing.T, bin, url, dst string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "full.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,6000", "--hide-scrollbars", url)
	img := readPNG(t, shot)
	b := img.Bounds()
	bg := img.At(0, b.Max.Y-1)
	last := b.Max.Y - 1
	for ; last > 0; last-- {
		painted := false
		for x := 0; x < b.Dx() && !painted; x++ {
			painted = img.At(x, last) != bg
		}
		if painted {
			break
		}
	}
	cut := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, b.Dx(), min(b.Max.Y, last+32)))
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, cut); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %v, %d KB", dst, cut.Bounds(), buf.Len()/1024)
}
