package engine

import (
	"bytes"
	"context"
	"flag"
	"math"
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
		"base": {10, 30, 20, 25},
		"ng3":  {50, 40, 45, 60},
		"ng2":  {50, 0, 40, 45}, // one failed repeat: the configuration is a failure row
	}}
	out, rows, log := runScripted(t, d, 4)
	if len(rows) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	// Even counts: the median is the mean of the two middle repeats.
	if rows[0].TokensPerSec != 22.5 || rows[1].TokensPerSec != 47.5 || rows[2].TokensPerSec != 0 {
		t.Fatalf("rates %.2f %.2f %.2f, want medians 22.5 47.5 and a failure", rows[0].TokensPerSec, rows[1].TokensPerSec, rows[2].TokensPerSec)
	}
	if out[0].Best == nil || out[0].Best.ModelTag != "ng3" || out[0].BestRun == nil {
		t.Fatalf("best %+v", out[0].Best)
	}
	if lo, hi := out[0].BestRun.Spread(); math.Abs(lo-40) > 1e-3 || math.Abs(hi-60) > 1e-3 {
		t.Fatalf("spread %v–%v", lo, hi)
	}
	if !strings.Contains(log, "✖ [A] optimized ng2 num_gpu=2 -> 0.00 tok/s (http_status: 1 of 4 repeats failed: http_status: HTTP 500: boom)") || !strings.Contains(log, "median of 4: 10.00–30.00") {
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
	tg := stack.Target{BytesPerToken: 16_060_000_000} // an 8B model in F16
	s := &measure.Sample{Outcome: measure.OK, RepeatTPS: []float64{160}}
	roofline(ep, tg, s)
	if s.RooflineTPS < 208 || s.RooflineTPS > 209 || s.RooflineShare < 0.76 || s.RooflineShare > 0.77 || len(s.Notes) != 0 {
		t.Fatalf("roofline %.2f share %.3f notes %v", s.RooflineTPS, s.RooflineShare, s.Notes)
	}
	fast := &measure.Sample{Outcome: measure.OK, RepeatTPS: []float64{300}}
	roofline(ep, tg, fast)
	if len(fast.Notes) != 1 || !strings.Contains(fast.Notes[0], "measurement error") {
		t.Fatalf("a rate above the bound must be flagged: %v", fast.Notes)
	}
	cpu := &measure.Sample{Outcome: measure.OK, RepeatTPS: []float64{10}}
	roofline(stack.Endpoint{}, tg, cpu)
	if cpu.RooflineTPS != 0 {
		t.Fatal("no roofline without a GPU")
	}
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden from this run")

// The console and the run CSV of a scripted run, byte for byte. testdata/*.golden were first
// captured from the engine before drivers were split and printing became events (commit
// 1a9bfd6), and proved that change left both unchanged; they were rewritten (-update) when the
// measurement method changed (fuze's client clock as the figure, the latency line, a
// configuration with a failed repeat is a failure row).
func TestGoldenConsoleAndCSV(t *testing.T) {
	d := &scripted.Driver{Published: true, Rates: map[string][]float64{
		"base": {10, 30, 20}, "ng3": {50, 40, 45}, "ng2": {0, 30, 30}, "pub": {45, 44, 46},
	}, Models: []stack.Target{{Model: "m:1", Alias: "m-1", BytesPerToken: 1_000_000_000}}}
	dir := t.TempDir()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := results.CreateRun(dir, "ollama", fixed)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h100 := &gpu.GPU{Name: "NVIDIA H100 80GB HBM3", Label: "nvidia-h100-80gb", UUID: "GPU-1", MemoryMiB: 81559}
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc", GPU: h100}},
		Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: TextReporter(&log), Repeat: 3}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, c := range []struct{ got, golden string }{
		{log.String(), "testdata/console.golden"},
		{readFile(t, w.CSVPath()), "testdata/run.csv.golden"},
	} {
		if *update {
			os.WriteFile(c.golden, []byte(c.got), 0o644)
			continue
		}
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

// A server whose timer runs fast: the row carries the client's rate, the server's is beside it
// and flagged.
func TestLyingServerTimerIsACrossCheckOnly(t *testing.T) {
	d := &scripted.Driver{TimerFactor: 1.2, Rates: map[string][]float64{"base": {100}, "ng3": {100}, "ng2": {100}}}
	_, rows, log := runScripted(t, d, 1)
	if rows[0].TokensPerSec != 100 {
		t.Fatalf("column 12 %.2f, want the client's 100", rows[0].TokensPerSec)
	}
	if !strings.Contains(log, "server timer 120.00 tok/s (server/client 1.200: differs by more than 3%)") {
		t.Fatalf("console:\n%s", log)
	}
}

// An output shorter than the budget is not a measurement of the same work.
func TestShortOutputIsAFailure(t *testing.T) {
	d := &scripted.Driver{ShortBy: 3, Rates: map[string][]float64{"base": {100}, "ng3": {100}, "ng2": {100}}}
	_, rows, log := runScripted(t, d, 1)
	if rows[0].TokensPerSec != 0 || !strings.Contains(log, "(short: 7 of 10 tokens") {
		t.Fatalf("rows %+v\n%s", rows, log)
	}
}
