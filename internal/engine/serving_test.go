package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"

	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
)

type servedRun struct {
	outcomes []ServingOutcome
	rows     []map[string]string
	records  []map[string]any // every JSONL line
	log      string
	err      error
}

// serveScripted runs a serving benchmark of d with opt and reads back its files.
func serveScripted(t *testing.T, ctx context.Context, d stack.Driver, opt Serving, sampler ...Sampler) servedRun {
	t.Helper()
	dir := t.TempDir()
	w, err := serving.Create(dir, "ollama", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	opt.Writer = w
	var log bytes.Buffer
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}},
		Report: ServingReporter(&log, false, TextReporter(&log))}
	if len(sampler) > 0 {
		e.Sampler = sampler[0]
	}
	var r servedRun
	r.outcomes, r.err = e.Serve(ctx, opt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r.log = log.String()
	if r.rows, err = serving.ReadCSV(w.CSVPath()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("JSONL line %q: %v", sc.Text(), err)
		}
		r.records = append(r.records, m)
	}
	return r
}

func (r servedRun) ofType(typ string) []map[string]any {
	var out []map[string]any
	for _, m := range r.records {
		if m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// On a declared schedule (TTFT 50 ms, a token every 10 ms, 10 tokens: 140 ms a request) every
// figure of a level is exact: a closed loop of C streams sends 8 requests in 8/C rounds.
func TestServingStatisticsAreExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{1, 4}, Requests: 8, WarmupPerStream: 1,
			SLO: serving.SLO{TTFT: time.Second, ITL: 50 * time.Millisecond}})
		if r.err != nil {
			t.Fatal(r.err, r.log)
		}
		if len(r.outcomes) != 1 || len(r.outcomes[0].Levels) != 2 || len(r.rows) != 2 {
			t.Fatalf("outcomes %+v rows %d\n%s", r.outcomes, len(r.rows), r.log)
		}
		for i, conc := range []int{1, 4} {
			l := r.outcomes[0].Levels[i]
			span := time.Duration(8/conc) * 140 * time.Millisecond
			if l.Concurrency != conc || l.Sent != 8 || l.Completed != 8 || l.Failed != 0 || l.Span != span {
				t.Fatalf("c=%d: %+v", conc, l)
			}
			want := map[string]float64{
				"request_rate": 8 / span.Seconds(), "output_tps": 80 / span.Seconds(), "stream_decode_tps_p50": 100,
				"ttft p50": 50, "ttft p99": 50, "itl p50": 10, "itl p99": 10, "tpot p90": 10, "e2e p99": 140,
				"physics_limit_tps": float64(conc) * 100 * 10 / 9, // 10 tokens: the aggregate counts the first too
			}
			got := map[string]float64{
				"request_rate": l.RequestRate, "output_tps": l.OutputTPS, "stream_decode_tps_p50": l.StreamDecodeTPS,
				"ttft p50": l.TTFT.P50, "ttft p99": l.TTFT.P99, "itl p50": l.ITL.P50, "itl p99": l.ITL.P99, "tpot p90": l.TPOT.P90,
				"e2e p99": l.E2E.P99, "physics_limit_tps": l.PhysicsLimitTPS,
			}
			for k, v := range want {
				if !near(got[k], v) {
					t.Errorf("c=%d %s = %v, want %v", conc, k, got[k], v)
				}
			}
			if l.TTFT.N != 8 || l.ITL.N != 72 || l.TPOT.N != 8 || l.E2E.N != 8 || !l.SLOMet || l.PhysicsFlag != "" {
				t.Errorf("c=%d: n %d/%d/%d/%d slo %v flag %q", conc, l.TTFT.N, l.ITL.N, l.TPOT.N, l.E2E.N, l.SLOMet, l.PhysicsFlag)
			}
			row := r.rows[i]
			if row["concurrency"] != strconv.Itoa(conc) || row["completed"] != "8" || row["itl_n"] != "72" || row["ttft_ms_p99"] != "50.000" ||
				row["quantile"] != "hf7" || row["slo_met"] != "1" || row["interrupted"] != "0" || row["parallel"] != "default" {
				t.Errorf("row %d: %v", i, row)
			}
		}
		// Every request is in the JSONL, warm-ups (1 per stream) marked; then the level and the
		// goodput records.
		if reqs := r.ofType("request"); len(reqs) != (1+8)+(4+8) {
			t.Errorf("%d request records, want 21", len(reqs))
		}
		if g := r.ofType("goodput"); len(g) != 1 || g[0]["goodput_concurrency"] != 4.0 {
			t.Errorf("goodput records %v", g)
		}
		if d.MaxSeen != 4 || d.IdleClose != 2 {
			t.Errorf("max in flight %d (want 4), idle closes %d (want one per level)", d.MaxSeen, d.IdleClose)
		}
		if !strings.Contains(r.log, "Goodput (base, parallel=default): concurrency 4") {
			t.Errorf("console:\n%s", r.log)
		}
	})
}

// Two slots for four streams: two requests wait a whole request for a slot, and the
// percentiles are type 7 over {50, 50, 190, 190} ms; the SLO on p99 TTFT then fails this
// level, and goodput is the highest level that met it.
func TestServingQueueingPercentilesAndGoodput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{1, 2, 4}, Requests: 4, Parallel: []int{2},
			SLO: serving.SLO{TTFT: 100 * time.Millisecond, ITL: 20 * time.Millisecond}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		levels := r.outcomes[0].Levels
		l := levels[2]
		if l.TTFT.P50 != 120 || l.TTFT.P90 != 190 || l.TTFT.P99 != 190 || l.E2E.P50 != 210 || l.Span != 280*time.Millisecond {
			t.Errorf("c=4 with 2 slots: ttft %+v e2e %+v span %s", l.TTFT, l.E2E, l.Span)
		}
		if !near(l.OutputTPS, 40/0.28) || l.ITL.P99 != 10 {
			t.Errorf("c=4: output %v itl %+v", l.OutputTPS, l.ITL)
		}
		if !levels[0].SLOMet || !levels[1].SLOMet || l.SLOMet {
			t.Errorf("SLO met: %v %v %v", levels[0].SLOMet, levels[1].SLOMet, l.SLOMet)
		}
		if g := r.outcomes[0].Goodput; g == nil || g.Concurrency != 2 {
			t.Errorf("goodput %+v, want concurrency 2", g)
		}
		if r.rows[2]["parallel"] != "2" || !strings.Contains(r.rows[2]["server_settings"], "slots=2") || d.Prepared[0] != "parallel=2 slots=2" {
			t.Errorf("row %v, prepared %q", r.rows[2], d.Prepared)
		}
	})
}

// Failures are counted per level by reason, and the level goes on to its count: 429s, a 503,
// a dropped connection, a stall cut by the request deadline, an early end.
func TestServingFailuresAreCountedByReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := map[int]scripted.Fault{1: scripted.HTTP429, 6: scripted.HTTP429, 16: scripted.HTTP429,
			3: scripted.HTTP503, 7: scripted.Drop, 9: scripted.Stall, 11: scripted.EarlyStop}
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond, Fault: func(n int) scripted.Fault { return faults[n] }}
		start := time.Now()
		r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{4}, Requests: 20, RequestTimeout: 2 * time.Second,
			SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("console:\n%s", r.log)
		l := r.outcomes[0].Levels[0]
		if l.Sent != 20 || l.Completed != 13 || l.Failed != 7 || l.Canceled != 0 {
			t.Fatalf("sent %d completed %d failed %d canceled %d", l.Sent, l.Completed, l.Failed, l.Canceled)
		}
		if got := l.FailureSummary(); got != "connect=1 http_429=3 http_503=1 short=1 timeout=1" {
			t.Errorf("failures %q", got)
		}
		if r.rows[0]["failure_reasons"] != "connect=1 http_429=3 http_503=1 short=1 timeout=1" || r.rows[0]["slo_met"] != "0" {
			t.Errorf("row %v", r.rows[0])
		}
		if !strings.Contains(l.FailureExamples["timeout"], "no complete answer within 2s") {
			t.Errorf("timeout example %q", l.FailureExamples["timeout"])
		}
		// The stall cost its stream the request deadline, no more.
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("the level took %s", el)
		}
		if r.outcomes[0].Goodput != nil {
			t.Errorf("a level with failures is no goodput")
		}
		var failedRecs int
		for _, rec := range r.ofType("request") {
			if rec["reason"] != nil {
				failedRecs++
			}
		}
		if failedRecs != 7 {
			t.Errorf("%d failed request records", failedRecs)
		}
	})
}

// Ctrl-C mid-level: the requests in flight end as canceled, the level is written with what
// completed and marked interrupted, no later level runs, Serve returns the interruption, and
// every goroutine has returned (synctest.Test fails on one left blocked).
func TestServingCancelMidLevelWritesWhatCompleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		r := serveScripted(t, ctx, d, Serving{Concurrency: []int{2, 4}, Requests: 100, SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Serve returned %v", r.err)
		}
		if len(r.rows) != 1 {
			t.Fatalf("%d rows, want the interrupted level's only", len(r.rows))
		}
		l := r.outcomes[0].Levels[0]
		if l.Sent != 4 || l.Completed != 2 || l.Canceled != 2 || l.Failed != 0 || !l.Interrupted || l.SLOMet {
			t.Errorf("level %+v", l)
		}
		if r.rows[0]["interrupted"] != "1" || r.rows[0]["completed"] != "2" || r.rows[0]["canceled"] != "2" {
			t.Errorf("row %v", r.rows[0])
		}
		if n := len(r.ofType("request")); n != 4 {
			t.Errorf("%d request records, want 4", n)
		}
		if d.IdleClose != 1 {
			t.Errorf("idle connections closed %d times", d.IdleClose)
		}
	})
}

// Prompts sized in tokens: the driver's tokenizer counts words, so the calibration finds the
// exact prompt length; every prompt is different from its first word.
func TestServingPromptsAreSizedAndUnique(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: time.Millisecond, ITL: time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{3}, Requests: 9, InputTokens: 40, OutputTokens: 5,
			SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		l := r.outcomes[0].Levels[0]
		if l.InputTokensMean != 40 || l.InputTokensMin != 40 || l.InputTokensMax != 40 || l.OutputTokensMean != 5 || d.Counted == 0 {
			t.Errorf("input tokens %v (%d–%d), output %v, counted %d", l.InputTokensMean, l.InputTokensMin, l.InputTokensMax, l.OutputTokensMean, d.Counted)
		}
		firstWords := map[string]bool{}
		var prev string
		for _, rec := range r.ofType("request") {
			s := rec["sample"].(map[string]any)
			if s["prompt_tokens_requested"] != 40.0 {
				t.Errorf("sample %v", s)
			}
		}
		p := newPrompter("20250101_000000")
		p.body = "x"
		for seq := 1; seq <= 300; seq++ {
			w := strings.Fields(p.prompt(seq))[0]
			if w == prev {
				t.Fatalf("consecutive prompts %d and %d start with the same word %q", seq-1, seq, w)
			}
			prev = w
			firstWords[w] = true
		}
		if len(firstWords) < 200 {
			t.Errorf("only %d different first words over 300 prompts", len(firstWords))
		}
	})
}

// On the real clock: no goroutine of a level outlives it.
func TestServingLeavesNoGoroutine(t *testing.T) {
	d := &scripted.ServingDriver{TTFT: time.Millisecond, ITL: 100 * time.Microsecond}
	before := runtime.NumGoroutine()
	r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{1, 8, 32}, Requests: 64, WarmupPerStream: 1,
		SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	if d.MaxSeen != 32 || d.IdleClose != 3 {
		t.Errorf("max in flight %d, idle closes %d", d.MaxSeen, d.IdleClose)
	}
	for _, l := range r.outcomes[0].Levels {
		if l.Completed != 64 {
			t.Errorf("c=%d completed %d", l.Concurrency, l.Completed)
		}
	}
}

// wattSampler is a device drawing a constant power: a window's energy is its length × W.
type wattSampler struct {
	W       float64
	windows int
}

func (w *wattSampler) Start(stack.Endpoint) func() *measure.Telemetry {
	w.windows++
	start := time.Now()
	return func() *measure.Telemetry {
		e := w.W * time.Since(start).Seconds()
		return &measure.Telemetry{Source: measure.SourcePowerIntegral, EnergyJ: &e, PowerMeanW: &w.W}
	}
}

// A serving level is one telemetry window around all its measured requests (they overlap):
// its energy over the completed requests' tokens is the J/token of the level, in the CSV too.
func TestServingLevelEnergyPerToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		s := &wattSampler{W: 400}
		r := serveScripted(t, context.Background(), d, Serving{Concurrency: []int{1, 4}, Requests: 8,
			SLO: serving.SLO{TTFT: time.Second, ITL: 50 * time.Millisecond}}, s)
		if r.err != nil {
			t.Fatal(r.err, r.log)
		}
		if s.windows != 2 {
			t.Fatalf("%d telemetry windows, want one per level", s.windows)
		}
		for i, conc := range []int{1, 4} {
			l := r.outcomes[0].Levels[i]
			span := time.Duration(8/conc) * 140 * time.Millisecond // the level's window, virtual time
			want := 400 * span.Seconds() / 80
			if l.JoulesPerToken == nil || !near(*l.JoulesPerToken, want) {
				t.Fatalf("c=%d: J/token %v, want %v", conc, l.JoulesPerToken, want)
			}
			if r.rows[i]["joules_per_token"] != strconv.FormatFloat(want, 'f', 4, 64) || r.rows[i]["energy_source"] != "power-integral" {
				t.Errorf("c=%d row %v", conc, r.rows[i])
			}
		}
	})
}

// A split endpoint shares A's and B's GPUs: serving releases what A and B keep loaded before
// A+B is prepared, and A+B's before A is served again for the next model.
func TestServingReleasesSharedGPUsBeforeASplitEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		w, err := serving.Create(t.TempDir(), "ollama", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		gpuA := &gpu.GPU{UUID: "GPU-aaaa", Label: "nvidia-h200", MemoryMiB: 143771}
		gpuB := &gpu.GPU{UUID: "GPU-bbbb", Label: "nvidia-h200", MemoryMiB: 143771}
		var log bytes.Buffer
		e := &Engine{Driver: d, Report: ServingReporter(&log, false, TextReporter(&log)), Endpoints: []stack.Endpoint{
			{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc", GPU: gpuA},
			{Suffix: "B", Addr: "127.0.0.1:2", Unit: "proc", GPU: gpuB},
			{Suffix: "A+B", Addr: "127.0.0.1:3", Unit: "proc", GPU: gpuA, Split: []*gpu.GPU{gpuA, gpuB}},
		}}
		if _, err := e.Serve(context.Background(), Serving{Concurrency: []int{1}, Requests: 2, Writer: w}); err != nil {
			t.Fatal(err, log.String())
		}
		want := "prepare A, prepare B, release A, release B, prepare A+B"
		if got := strings.Join(d.Events, ", "); got != want {
			t.Errorf("events %q, want %q", got, want)
		}
	})
}

// GOMAXPROCS during a level: Go's below 64 streams, eight a core (at most 64, never fewer than
// the process has) from 64 on, the setting's when given, Go's always with -1.
func TestLevelProcs(t *testing.T) {
	for _, tc := range []struct{ conc, cpus, cur, procs, want int }{
		{8, 2, 2, 0, 2},
		{63, 2, 2, 0, 2},
		{64, 2, 2, 0, 16},
		{512, 2, 2, 0, 16},
		{512, 16, 16, 0, 64},
		{512, 2, 100, 0, 100},
		{512, 2, 2, -1, 2},
		{8, 2, 2, 6, 6},
	} {
		if got := levelProcs(tc.conc, tc.cpus, tc.cur, tc.procs); got != tc.want {
			t.Errorf("levelProcs(conc %d, cpus %d, cur %d, setting %d) = %d, want %d", tc.conc, tc.cpus, tc.cur, tc.procs, got, tc.want)
		}
	}
}
