package engine

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func runScripted(t *testing.T, d *scripted.Driver, repeat int) ([]Outcome, []results.Row, string) {
	t.Helper()
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var log bytes.Buffer
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}},
		Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: TextReporter(&log), Repeat: repeat}
	out, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, warns, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) > 0 {
		t.Fatal(err, warns)
	}
	return out, rows, log.String()
}

func TestRepeatsGiveTheMedianAndTheSpread(t *testing.T) {
	d := &scripted.Driver{Rates: map[string][]float64{
		"base": {10, 30, 20},
		"ng3":  {50, 0, 40}, // one failed repeat: still a measurement, noted
		"ng2":  {0, 0, 0},   // every repeat failed: a 0.00 row
	}}
	out, rows, log := runScripted(t, d, 3)
	if len(rows) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].TokensPerSec != 20 || rows[1].TokensPerSec != 40 || rows[2].TokensPerSec != 0 {
		t.Fatalf("rates %.2f %.2f %.2f, want medians 20 40 and a failure", rows[0].TokensPerSec, rows[1].TokensPerSec, rows[2].TokensPerSec)
	}
	if out[0].Best == nil || out[0].Best.ModelTag != "ng3" || out[0].BestRun == nil {
		t.Fatalf("best %+v", out[0].Best)
	}
	if lo, hi := out[0].BestRun.Spread(); lo != 40 || hi != 50 {
		t.Fatalf("spread %v–%v", lo, hi)
	}
	if !strings.Contains(log, "a repeat failed: http_status: HTTP 500: boom") || !strings.Contains(log, "median of 3: 10.00–30.00") {
		t.Fatalf("console:\n%s", log)
	}
	if rows[0].NumCtx != "512" || rows[0].NumPredict != "10" || rows[0].GPULabel != "cpu" {
		t.Fatalf("row settings %+v", rows[0])
	}
}

func TestPublishedRowFollowsTheBest(t *testing.T) {
	d := &scripted.Driver{Published: true, Rates: map[string][]float64{
		"base": {10}, "ng3": {12}, "ng2": {15}, "pub": {14},
	}}
	_, rows, _ := runScripted(t, d, 1)
	var labels []string
	for _, r := range rows {
		labels = append(labels, r.VariantLabel+":"+r.NumGPU)
	}
	if got := strings.Join(labels, " "); got != "base-as-is:default optimized:3 optimized:2 published:2" {
		t.Fatalf("rows %s", got)
	}
}

func TestRooflineShareAndMeasurementError(t *testing.T) {
	h100 := &gpu.GPU{Name: "NVIDIA H100 80GB HBM3", Label: "nvidia-h100-80gb"}
	ep := stack.Endpoint{GPU: h100}
	tg := stack.Target{WeightBytes: 16_060_000_000} // an 8B model in F16
	s := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 160, ServerDecodeDuration: time.Second}
	roofline(ep, tg, s)
	if s.RooflineTPS < 208 || s.RooflineTPS > 209 || s.RooflineShare < 0.76 || s.RooflineShare > 0.77 || len(s.Notes) != 0 {
		t.Fatalf("roofline %.2f share %.3f notes %v", s.RooflineTPS, s.RooflineShare, s.Notes)
	}
	fast := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 300, ServerDecodeDuration: time.Second}
	roofline(ep, tg, fast)
	if len(fast.Notes) != 1 || !strings.Contains(fast.Notes[0], "measurement error") {
		t.Fatalf("a rate above the bound must be flagged: %v", fast.Notes)
	}
	cpu := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 10, ServerDecodeDuration: time.Second}
	roofline(stack.Endpoint{}, tg, cpu)
	if cpu.RooflineTPS != 0 {
		t.Fatal("no roofline without a GPU")
	}
}

// The console and the run CSV are what the engine wrote before drivers were split into
// server and client sides and printing became events: testdata/*.golden were captured from
// that engine (commit 1a9bfd6) on the same scripted run.
func TestGoldenConsoleAndCSV(t *testing.T) {
	d := &scripted.Driver{Published: true, Rates: map[string][]float64{
		"base": {10, 30, 20}, "ng3": {50, 0, 40}, "ng2": {0, 0, 0}, "pub": {45, 44, 46},
	}, Models: []stack.Target{{Model: "m:1", Alias: "m-1", WeightBytes: 1_000_000_000}}}
	dir := t.TempDir()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := results.CreateRun(dir, "ollama", fixed)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h100 := &gpu.GPU{Name: "NVIDIA H100 80GB HBM3", Label: "nvidia-h100-80gb", UUID: "GPU-1", MemoryMiB: 81559}
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc", GPU: h100}},
		Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: TextReporter(&log), Repeat: 3,
		Now: func() time.Time { return fixed }}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, c := range []struct{ got, golden string }{
		{log.String(), "testdata/console.golden"},
		{readFile(t, w.CSVPath()), "testdata/run.csv.golden"},
	} {
		if want := readFile(t, c.golden); c.got != want {
			t.Errorf("%s differs:\n--- got\n%s--- want\n%s", c.golden, c.got, want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
