package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// copyServing copies the committed H200 serving CSVs (52 columns: the schema before the
// open-loop columns) into dir.
func copyServing(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"serving_ollama_llama8b.csv", "serving_llamacpp_llama8b.csv"} {
		b, err := os.ReadFile(testfixture.Repo(t, "results", "gpu", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeOpenLoop writes a vLLM serving CSV of the current schema: an open loop at 2, 4 and 8
// requests/s capped at 16 whose 8/s level missed the SLO, and a configuration that met it
// nowhere.
func writeOpenLoop(t *testing.T, dir string) {
	t.Helper()
	w, err := serving.Create(dir, "vLLM", time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg := serving.Config{Stack: "vLLM", Endpoint: "127.0.0.1:8000", GPULabel: "nvidia-h200", Model: "llama-8b", ModelTag: "llama-8b",
		Label: "optimized", Parallel: "64", ServerSettings: "max-num-seqs=64"}
	slo := serving.SLO{TTFT: time.Second, ITL: 50 * time.Millisecond}
	for _, lv := range []struct {
		rate, tps float64
		met       bool
	}{{2, 250, true}, {4, 500, true}, {8, 900, false}} {
		j := 0.25
		l := serving.Level{Config: cfg, Concurrency: 16, SLO: slo, SLOMet: lv.met, OutputTPS: lv.tps, RequestRate: lv.rate,
			TTFT: serving.Dist{P99: 80}, ITL: serving.Dist{P99: 12}, JoulesPerToken: &j,
			Open: &serving.OpenLoop{Rate: serving.Rate(lv.rate), Burstiness: 1, MaxConcurrency: 16}}
		if err := w.WriteLevel(&l, nil, time.Date(2026, 11, 30, 12, 1, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	none := cfg
	none.Model, none.ModelTag, none.Parallel, none.ServerSettings = "qwen-1b", "qwen-1b", "8", "max-num-seqs=8"
	l := serving.Level{Config: none, Concurrency: 1, SLO: slo, OutputTPS: 90}
	if err := w.WriteLevel(&l, nil, time.Date(2026, 11, 30, 12, 2, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
}

// The serving view keeps, per model, GPU and stack, the configuration with the most output at
// its goodput: on the committed H200 runs eight slots (goodput at 8 streams) over one (goodput
// at 1); an open loop's goodput is its highest offered rate that met the SLO; a model whose
// configurations all missed it says so; a file that is not a serving CSV is a warning.
func TestServingViewPicksTheBestConfigurationUnderTheSLO(t *testing.T) {
	dir := t.TempDir()
	copyServing(t, dir)
	writeOpenLoop(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "serving_ollama_bad.csv"), []byte("not,a,serving,csv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	view, warnings, ok := ServingViewOfDir(dir, results.Filters{}, "", "")
	if !ok || len(warnings) != 1 || !strings.Contains(warnings[0], "serving_ollama_bad.csv") || len(view.Files) != 3 {
		t.Fatalf("ok %v, warnings %v, files %v", ok, warnings, view.Files)
	}
	if len(view.Rows) != 4 {
		t.Fatalf("rows %+v", view.Rows)
	}
	by := map[string]ServingRow{}
	for _, r := range view.Rows {
		by[r.Stack+" "+r.Model] = r
	}
	ol, lc, vl, none := by["ollama fuze-llama-8b:latest"], by["llama.cpp llama-8b"], by["vLLM llama-8b"], by["vLLM qwen-1b"]
	if ol.Parallel != "8" || ol.Concurrency != 8 || ol.OutputTPS != 310.97 || ol.TTFTP99ms != 278.276 || ol.ITLP99ms != 32.998 || ol.Configs != 2 || ol.JoulesPerTk != nil {
		t.Errorf("ollama: %+v", ol)
	}
	if lc.Parallel != "8" || lc.Goodput != "8" || lc.OutputTPS != 519.02 || lc.ITLP99ms != 17.594 || lc.SLO != "TTFT≤1000 ITL≤50 ms" {
		t.Errorf("llama.cpp: %+v", lc)
	}
	if vl.Goodput != "rate=4/s cap 16" || vl.OfferedRate != "4" || vl.OutputTPS != 500 || vl.JoulesPerTk == nil || *vl.JoulesPerTk != 0.25 || vl.Configs != 1 {
		t.Errorf("vLLM open loop: %+v", vl)
	}
	if none.Goodput != "" || none.Configs != 1 {
		t.Errorf("no SLO met: %+v", none)
	}
	var b bytes.Buffer
	if err := view.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{ServingTitle, "none met", "rate=4/s cap 16", "519.02", "n/a"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	t.Log("\n" + text)

	// Filters apply as to the summaries.
	view, _ = BuildServingView(view.Files, results.Filters{Stack: regexp.MustCompile("^vLLM$")}, "", "")
	if len(view.Rows) != 2 {
		t.Errorf("STACK_RE=^vLLM$: %+v", view.Rows)
	}
	if _, _, ok := ServingViewOfDir(t.TempDir(), results.Filters{}, "", ""); ok {
		t.Error("a directory without serving CSVs gave a view")
	}
}

// When serving crossed tuning sets, the best configuration is named by the settings its
// configurations differ in (not the concurrency setting, which has its column, nor what they
// share), below the table.
func TestServingViewNamesTheWinningTunedSettings(t *testing.T) {
	dir := t.TempDir()
	w, err := serving.Create(dir, "ollama", time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	slo := serving.SLO{TTFT: time.Second, ITL: 50 * time.Millisecond}
	for _, c := range []struct {
		fa, kv, par string
		tps         float64
	}{{"0", "f16", "8", 400}, {"1", "f16", "8", 440}, {"1", "q8_0", "8", 430}, {"1", "f16", "1", 160}} {
		cfg := serving.Config{Stack: "ollama", Endpoint: "127.0.0.1:11535", GPULabel: "nvidia-h200", Model: "m:latest", ModelTag: "m:latest",
			Label: "base-as-is", Parallel: c.par,
			ServerSettings: "OLLAMA_FLASH_ATTENTION=" + c.fa + " OLLAMA_KV_CACHE_TYPE=" + c.kv + " OLLAMA_NUM_PARALLEL=" + c.par + " parallel=" + c.par}
		l := serving.Level{Config: cfg, Concurrency: 8, SLO: slo, SLOMet: true, OutputTPS: c.tps, RequestRate: 3, TTFT: serving.Dist{P99: 200}, ITL: serving.Dist{P99: 20}}
		if err := w.WriteLevel(&l, nil, time.Date(2026, 11, 30, 12, 1, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	view, warnings, ok := ServingViewOfDir(dir, results.Filters{}, "", "")
	if !ok || len(warnings) != 0 || len(view.Rows) != 1 {
		t.Fatalf("ok %v warnings %v rows %+v", ok, warnings, view.Rows)
	}
	r := view.Rows[0]
	if r.Parallel != "8" || r.OutputTPS != 440 || r.Configs != 4 || r.Settings != "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=f16" {
		t.Errorf("row %+v", r)
	}
	var text bytes.Buffer
	if err := view.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "best of m-latest on nvidia-h200 (ollama, parallel 8): OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=f16\n") {
		t.Errorf("text:\n%s", text.String())
	}
}
