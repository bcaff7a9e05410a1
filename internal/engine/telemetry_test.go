package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// fakeSampler is a board drawing a constant power, on the driver's virtual clock: every
// window's energy is watts × its length. It records the windows' edges.
type fakeSampler struct {
	now   func() time.Time
	watts float64
	na    string // when set, windows have no energy and say this

	mu      sync.Mutex
	windows [][2]time.Time
	eps     []string
}

func (f *fakeSampler) Start(ep stack.Endpoint) func() *measure.Telemetry {
	t0 := f.now()
	return func() *measure.Telemetry {
		t1 := f.now()
		f.mu.Lock()
		f.windows = append(f.windows, [2]time.Time{t0, t1})
		f.eps = append(f.eps, ep.Addr)
		f.mu.Unlock()
		if f.na != "" {
			return &measure.Telemetry{Device: "cpu", NA: f.na}
		}
		w := t1.Sub(t0)
		return &measure.Telemetry{Source: measure.SourcePowerIntegral, Device: "GPU-fake", Window: w,
			EnergyJ: measure.F(f.watts * w.Seconds()), PowerMeanW: measure.F(f.watts), PowerPeakW: measure.F(f.watts + 20),
			IdlePowerW: measure.F(f.watts / 4), Throttle: []string{"sw_power_cap"}}
	}
}

// recordingDriver notes, on the virtual clock, when each request started and ended.
type recordingDriver struct {
	*scripted.Driver
	mu    sync.Mutex
	sends [][2]time.Time
}

func (d *recordingDriver) Send(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, req stack.Request, sink stack.Arrivals) (measure.ServerCounters, error) {
	start := d.Now()
	sc, err := d.Driver.Send(ctx, ep, t, c, req, sink)
	d.mu.Lock()
	d.sends = append(d.sends, [2]time.Time{start, d.Now()})
	d.mu.Unlock()
	return sc, err
}

// Every repeat is its own window, opened before the request's clock starts and closed after
// it stops; the sample carries its window, and J/token is the window's energy over its tokens.
func TestSamplerWindowsEveryRepeat(t *testing.T) {
	d := &recordingDriver{Driver: &scripted.Driver{Rates: map[string][]float64{
		"base": {10, 20, 30}, "ng3": {40, 50, 60}, "ng2": {20, 20, 20}}}}
	fs := &fakeSampler{now: d.Now, watts: 400}
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var log, js bytes.Buffer
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{epA}, Policy: sweep.Policy{Exhaustive: true}, Writer: w,
		Report: Reporters(TextReporter(&log), JSONReporter(&js)), Repeat: 3, Sampler: fs}
	out, err := e.Run(context.Background())
	w.Close()
	if err != nil || len(out) != 1 {
		t.Fatal(out, err)
	}
	if len(fs.windows) != 9 || len(d.sends) != 9 {
		t.Fatalf("%d windows for %d requests, want one per repeat (9)", len(fs.windows), len(d.sends))
	}
	for i, win := range fs.windows {
		if win[0].After(d.sends[i][0]) || win[1].Before(d.sends[i][1]) {
			t.Errorf("window %d %v–%v does not cover its request %v–%v", i, win[0], win[1], d.sends[i][0], d.sends[i][1])
		}
		if fs.eps[i] != epA.Addr {
			t.Errorf("window %d on %s", i, fs.eps[i])
		}
	}
	// The row's sample is the median repeat, with its own window: 10 tokens at 20 tok/s for
	// the baseline (a virtual 0.5 s, 400 W → 200 J, 20 J/token; idle 100 W → 15 J/token above).
	base := out[0].Baseline
	m := measure.Derive(base)
	if base.Telemetry == nil || m.JoulesPerToken == nil {
		t.Fatalf("baseline telemetry %+v metrics %+v", base.Telemetry, m)
	}
	wantJ := 400 * base.Telemetry.Window.Seconds() / 10
	if math.Abs(*m.JoulesPerToken-wantJ) > 1e-9 || math.Abs(*m.JoulesPerTokenAboveIdle-0.75*wantJ) > 1e-9 {
		t.Errorf("J/token %v (above idle %v), want %v (%v)", *m.JoulesPerToken, *m.JoulesPerTokenAboveIdle, wantJ, 0.75*wantJ)
	}
	if !strings.Contains(log.String(), "J/token (") || !strings.Contains(log.String(), "above idle 100 W), ") ||
		!strings.Contains(log.String(), " J power-integral, 400 W mean, 420 W peak") || !strings.Contains(log.String(), "throttle sw_power_cap") {
		t.Errorf("console:\n%s", log.String())
	}
	// The JSONL record and the JSON progress carry the same figures.
	recs, warns, err := results.ReadRunJSONL(w.JSONLPath())
	if err != nil || len(warns) > 0 || len(recs) != 3 {
		t.Fatal(recs, warns, err)
	}
	if r := recs[0]; r.JoulesPerToken == nil || *r.JoulesPerToken != *m.JoulesPerToken || r.Sample.Telemetry == nil || r.Sample.Telemetry.Source != measure.SourcePowerIntegral {
		t.Errorf("JSONL record %+v", r)
	}
	if !strings.Contains(js.String(), `"telemetry":{"source":"power-integral"`) || !strings.Contains(js.String(), `"joules_per_token":`) {
		t.Errorf("JSON progress:\n%s", js.String())
	}
}

// Without energy the console says n/a and why; the JSONL has no joules at all, never 0.
func TestSamplerWithoutEnergyIsNA(t *testing.T) {
	d := &scripted.Driver{Rates: map[string][]float64{"base": {10}, "ng3": {20}, "ng2": {15}}}
	fs := &fakeSampler{now: d.Now, na: "no NVIDIA GPU on this endpoint; RAPL counters not readable"}
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{epA}, Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: TextReporter(&log), Repeat: 1, Sampler: fs}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := strings.Count(log.String(), "; J/token n/a (no NVIDIA GPU on this endpoint; RAPL counters not readable)"); got != 3 {
		t.Errorf("%d n/a latency lines, want 3:\n%s", got, log.String())
	}
	recs, _, _ := results.ReadRunJSONL(w.JSONLPath())
	for _, r := range recs {
		line, _ := json.Marshal(r)
		if strings.Contains(string(line), "joules") || strings.Contains(string(line), "energy_j") {
			t.Errorf("record without energy carries %s", line)
		}
	}
}

// Without a sampler nothing changes: no telemetry, nothing about energy on the console.
func TestNoSampler(t *testing.T) {
	d := &scripted.Driver{Rates: map[string][]float64{"base": {10}, "ng3": {20}, "ng2": {15}}}
	out, _, log := runScripted(t, d, 1)
	if out[0].Baseline.Telemetry != nil || strings.Contains(log, "J/token") {
		t.Errorf("telemetry without a sampler: %+v\n%s", out[0].Baseline.Telemetry, log)
	}
}
