package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/sweep"
	"github.com/fuze-ai/fuze/internal/tune"
)

// grid is fa (server level) × threads (request level), the planner's order interleaving the
// servers, each candidate its own model tag so the scripted driver can give it its rates.
func grid() []stack.Candidate {
	var out []stack.Candidate
	for _, th := range []string{"2", "1"} {
		for _, fa := range []string{"0", "1"} {
			out = append(out, stack.Candidate{Label: stack.LabelOptimized, ModelTag: "fa" + fa + "t" + th, NumGPU: "default", NumPredict: "10",
				Settings: []stack.Setting{{Name: "fa", Value: fa, Level: stack.ServerLevel}, {Name: "threads", Value: th, Level: stack.RequestLevel}}})
		}
	}
	return out
}

func rep(n int, xs ...float64) []float64 {
	var out []float64
	for range n {
		out = append(out, xs...)
	}
	return out
}

func TestTuneSearchPrunesGroupsAndReports(t *testing.T) {
	// Two threads decode twice as fast; flash attention changes nothing measurable. Five
	// repeats a round: one thread is pruned after round 1 (p = 0.008 for 5 vs 5 separated);
	// the two-thread pair stays inseparable through round 3.
	d := &scripted.Driver{Cands: grid(), Rates: map[string][]float64{
		"base":  {20, 20.2, 19.8, 20.1, 19.9},
		"fa0t2": rep(3, 20, 20.3, 19.7, 20.1, 19.9),
		"fa1t2": rep(3, 20.1, 19.8, 20.2, 20, 19.9),
		"fa0t1": {10, 10.2, 9.8, 10.1, 9.9},
		"fa1t1": {10.1, 9.8, 10.2, 10, 9.9},
	}}
	dir := t.TempDir()
	w, err := results.CreateRun(dir, "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var log bytes.Buffer
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}},
		Policy: sweep.Policy{TuneRounds: 3}, Writer: w, Report: TextReporter(&log), Repeat: 5}
	out, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Prepared: baseline, round 1 grouped by server, rounds 2 and 3 the survivors, the
	// groups walked back and forth so a round starts on the server the last one ended with.
	want := []string{"base", "fa0t2", "fa0t1", "fa1t2", "fa1t1", "fa1t2", "fa0t2", "fa0t2", "fa1t2"}
	if !slices.Equal(d.Prepared, want) {
		t.Errorf("prepared %v, want %v", d.Prepared, want)
	}
	// base (no server setting), fa=0, fa=1 | fa=0 | fa=1.
	if d.Starts != 5 {
		t.Errorf("server starts %d, want 5", d.Starts)
	}
	text := log.String()
	for _, s := range []string{
		"pruned after round 1: fa=0 threads=1", "pruned after round 1: fa=1 threads=1",
		"8 measurements (full grid: 12), 4 server starts (full grid in the planner's order: 12, grouped: 4)",
		"effect on decode_tps       threads 2→1: 0.50", "significant",
		"effect on decode_tps       fa 0→1: 1.00", "~ (interval covers 1",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("console lacks %q:\n%s", s, text)
		}
	}
	if len(out) != 1 || out[0].Best == nil || !out[0].DefaultIsBest {
		t.Errorf("outcome %+v: the default (20 tok/s) should stay best", out)
	}
	reps, err := tune.ReportsOf(w.CSVPath())
	if err != nil || len(reps) != 1 {
		t.Fatal(err, reps)
	}
	r := reps[0]
	if r.Starts != 4 || r.GridStart != 12 || r.Measured != 8 || len(r.Configs) != 4 || r.Configs[2].PrunedRound != 1 {
		b, _ := json.MarshalIndent(r, "", " ")
		t.Errorf("report %s", b)
	}
	md, err := os.ReadFile(tune.MarkdownPath(w.CSVPath()))
	if err != nil || !strings.Contains(string(md), "| decode_tps | threads | 2 → 1 | 0.500 |") || !strings.Contains(string(md), "pruned after round 1") {
		t.Errorf("markdown (%v):\n%s", err, md)
	}
	if len(r.Best) < 2 || r.Best[0].Objective != "decode_tps" || r.Best[0].Significant {
		t.Errorf("best %+v", r.Best)
	}
}

func TestTunedKnobsIgnoreTheOffloadSweep(t *testing.T) {
	ng := []stack.Candidate{
		{Settings: []stack.Setting{{Name: "num_gpu", Value: "9"}, {Name: "num_ctx", Value: "1"}}},
		{Settings: []stack.Setting{{Name: "num_gpu", Value: "5"}, {Name: "num_ctx", Value: "1"}}},
	}
	if k := TunedKnobs(ng); len(k) != 0 {
		t.Errorf("offload only: %v", k)
	}
	if k := TunedKnobs(grid()); !slices.Equal(k, []string{"fa", "threads"}) {
		t.Errorf("grid: %v", k)
	}
}
