package htmlreport

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// # The report in a real browser
//
// TestReportInBrowser opens reports — one made from a fixture with every section, one with
// open-loop serving levels, and the committed results/gpu/report.html — in headless Chromium (Debian's chromium package), driven
// by chromedp over the DevTools protocol, as a new user would open the file: it waits for the
// page's script, then checks in the page that every chart of the embedded data drew a canvas
// with pixels in each of its series' colors, that uPlot and the legend have the expected
// series, that nothing was logged to the console as an error or thrown, and that the page
// requested nothing but itself (no CDN). It saves a screenshot of each page in the test's
// folder, and also in FUZE_REPORT_SCREENSHOTS when that names a folder.
//
// Without a browser the test skips, unless FUZE_REQUIRE_BROWSER is set (`make test` sets
// it): then a missing browser is a failure. FUZE_CHROMIUM names the browser binary.

// browserPath finds Chromium: FUZE_CHROMIUM, else chromium, chromium-browser or
// google-chrome on PATH.
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FUZE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FUZE_REQUIRE_BROWSER") != "" {
		t.Fatal("FUZE_REQUIRE_BROWSER is set and no chromium is on PATH (scripts/ensure-build-deps.sh installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH (set FUZE_REQUIRE_BROWSER=1 to make this a failure; scripts/ensure-build-deps.sh installs it)")
	return ""
}

// chartCheck is what the page reports about one chart.
type chartCheck struct {
	ID      string   `json:"id"`
	Canvas  bool     `json:"canvas"`
	Width   int      `json:"width"`
	Height  int      `json:"height"`
	Inked   int      `json:"inked"`  // pixels that are not the background
	Series  int      `json:"series"` // uPlot's series, without x
	Legend  int      `json:"legend"` // legend entries, without x
	Missing []string `json:"missing"`
}

// checkCharts runs in the page: per chart of the embedded data, its canvas and the pixels
// drawn on it; then, for each series on its own (the others hidden through uPlot), whether at
// least 8 pixels of the canvas have that series' color, so that a series hidden behind
// another still has to draw; then every series is shown again.
const checkCharts = `(async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const rgb = h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16));
  const count = (cv, color) => {
    const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
    const c = color ? rgb(color) : null;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) continue;
      if (c === null) {
        if (!(px[i] > 245 && px[i + 1] > 245 && px[i + 2] > 245)) n++;
      } else if (px[i + 3] > 200 && Math.abs(px[i] - c[0]) + Math.abs(px[i + 1] - c[1]) + Math.abs(px[i + 2] - c[2]) <= 24) {
        n++;
      }
    }
    return n;
  };
  const data = JSON.parse(document.getElementById("fuze-data").textContent);
  const out = [];
  for (const m of data.models) for (const c of m.charts) {
    const el = document.getElementById("chart-" + c.id);
    const cv = el && el.querySelector("canvas");
    const fc = window.fuzeCharts && window.fuzeCharts[c.id];
    const r = {id: c.id, canvas: !!cv, width: 0, height: 0, inked: 0, series: -1, legend: -1, missing: []};
    if (fc) r.series = fc.series;
    // The legend is static (not live): one entry per series, none for x.
    if (el) r.legend = el.querySelectorAll(".u-legend .u-series").length;
    if (cv && fc) {
      r.width = cv.width; r.height = cv.height;
      r.inked = count(cv, null);
      const u = fc.plot;
      for (let i = 1; i < u.series.length; i++) {
        for (let j = 1; j < u.series.length; j++) u.setSeries(j, {show: j === i});
        await frame();
        const n = count(cv, c.series[i - 1].color);
        if (n < 8) r.missing.push(c.series[i - 1].label + " " + c.series[i - 1].color + " (" + n + " px)");
      }
      for (let j = 1; j < u.series.length; j++) u.setSeries(j, {show: true});
      await frame();
    }
    out.push(r);
  }
  return out;
})()`

func TestReportInBrowser(t *testing.T) {
	bin := browserPath(t)

	// The fixture, with every section, and the committed report of the GPU runs as it is.
	fixture, _ := buildFixture(t)
	var fixturePage bytes.Buffer
	if err := Write(&fixturePage, fixture); err != nil {
		t.Fatal(err)
	}
	// Open-loop serving levels: their charts against the offered rate.
	openLoop := buildOpenLoop(t)
	var openLoopPage bytes.Buffer
	if err := Write(&openLoopPage, openLoop); err != nil {
		t.Fatal(err)
	}
	gpuPage, err := os.ReadFile(filepath.Join("..", "..", "results", "gpu", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	gpu, _, err := EmbeddedData(gpuPage)
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // root in a container has no user namespace for the sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()

	for _, tc := range []struct {
		name string
		page []byte
		data *Data
	}{{"fixture", fixturePage.Bytes(), fixture}, {"open-loop", openLoopPage.Bytes(), openLoop}, {"gpu-results", gpuPage, gpu}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.html")
			if err := os.WriteFile(path, tc.page, 0o644); err != nil {
				t.Fatal(err)
			}
			pageURL := (&url.URL{Scheme: "file", Path: path}).String()
			checkInBrowser(t, allocCtx, pageURL, tc.name, tc.data)
		})
	}
}

func checkInBrowser(t *testing.T, allocCtx context.Context, pageURL, name string, d *Data) {
	// A busy 2-core machine starts Chromium slowly.
	ctx, cancel := context.WithTimeout(allocCtx, 3*time.Minute)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()

	// Subscribe before navigating, so that nothing the page does is missed.
	listenCtx, stopListening := context.WithCancel(ctx)
	console := chromedp.Console(listenCtx)
	requests := chromedp.Events(listenCtx, network.RequestWillBeSent)
	var mu sync.Mutex
	var messages, fetched []string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m, err := range console {
			if err != nil {
				return
			}
			// Errors, exceptions and warnings, but the warning the test's own pixel readback
			// causes (getImageData on a canvas made without willReadFrequently).
			ownReadback := m.Type == chromedp.ConsoleWarning && strings.Contains(m.Text, "willReadFrequently")
			if (m.Type == chromedp.ConsoleError || m.IsException() || m.Type == chromedp.ConsoleWarning) && !ownReadback {
				mu.Lock()
				messages = append(messages, m.String())
				mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range requests {
			if err != nil {
				return
			}
			if ev.Request != nil {
				mu.Lock()
				fetched = append(fetched, ev.Request.URL)
				mu.Unlock()
			}
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.fuzeReady === true`, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("the page's script did not finish: %v", err)
	}
	checks, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartCheck](checkCharts, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	// Let the last events arrive, then stop listening.
	time.Sleep(200 * time.Millisecond)
	stopListening()
	wg.Wait()

	want := map[string]Chart{}
	total := 0
	for _, m := range d.Models {
		for _, c := range m.Charts {
			want[c.ID] = c
			total++
		}
	}
	if total == 0 || len(checks) != total {
		t.Fatalf("%d charts checked, the data has %d", len(checks), total)
	}
	for _, c := range checks {
		spec := want[c.ID]
		switch {
		case !c.Canvas || c.Width < 300 || c.Height < 150:
			t.Errorf("%s: no canvas drawn (%dx%d)", c.ID, c.Width, c.Height)
		case c.Inked < 2000:
			t.Errorf("%s: the canvas is nearly empty (%d pixels inked)", c.ID, c.Inked)
		}
		if c.Series != len(spec.Series) || c.Legend != len(spec.Series) {
			t.Errorf("%s: uPlot has %d series and the legend %d, want %d", c.ID, c.Series, c.Legend, len(spec.Series))
		}
		if len(c.Missing) > 0 {
			t.Errorf("%s: series drawn on their own left no pixels of their color: %v", c.ID, c.Missing)
		}
	}
	for _, m := range messages {
		t.Errorf("console: %s", m)
	}
	for _, u := range fetched {
		if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page fetched %s: it must work offline", u)
		}
	}

	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 800 || blank(img) {
		t.Errorf("screenshot %v is blank or too small", b)
	}
	out := filepath.Join(t.TempDir(), name+".png")
	if dir := os.Getenv("FUZE_REPORT_SCREENSHOTS"); dir != "" {
		out = filepath.Join(dir, name+".png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d charts drawn, %d requests, screenshot %s (%d bytes)", len(checks), len(fetched), out, len(shot))
}

// blank reports whether an image is one color.
func blank(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				return false
			}
		}
	}
	return true
}
