package runset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/results"
)

var gpuDir = filepath.Join("..", "..", "results", "gpu")

// TestLoadCommittedGPURuns reads the committed GPU folder: its runs (CSV with JSONL: four
// sweeps, the telemetry sweep, the llama.cpp and Ollama tuning searches), its serving CSVs,
// its machine.txt, and nothing else (console transcripts, env files, logs, the two-GPU and
// serving-vs-client folders are left alone).
func TestLoadCommittedGPURuns(t *testing.T) {
	set, warnings, err := Load([]string{gpuDir})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %q", warnings)
	}
	var files []string
	for _, f := range set.Files {
		files = append(files, filepath.Base(f))
	}
	if want := []string{"llamacpp_llama-1b.csv", "llamacpp_llama-8b.csv", "ollama_llama-1b.csv", "ollama_llama-8b.csv", "telemetry-sweep-ollama-llama8b.csv", "tune-llamacpp-llama8b.csv", "tune-ollama-llama8b.csv"}; !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	// Serving CSVs are known by their header, whatever their name: the energy runs, the
	// comparison runs and the level runs are serving CSVs as much as serving_*.csv is.
	var serving []string
	for _, f := range set.Serving {
		serving = append(serving, filepath.Base(f))
	}
	if want := []string{"energy-llamacpp-llama8b.csv", "energy-ollama-llama8b.csv", "serving-cmp_llamacpp_llama8b.csv", "serving-cmp_ollama_llama8b.csv",
		"serving-levels_llamacpp_p1.csv", "serving-levels_llamacpp_p8.csv", "serving-levels_ollama_p1.csv", "serving-levels_ollama_p8.csv",
		"serving_llamacpp_llama8b.csv", "serving_ollama_llama8b.csv"}; !slices.Equal(serving, want) {
		t.Errorf("serving CSVs %v, want %v", serving, want)
	}
	if len(set.Machine) != 1 || filepath.Base(set.Machine[0]) != "machine.txt" {
		t.Errorf("machine %v", set.Machine)
	}
	// One report per tuning run, in the order the runs were read (file names sort llamacpp
	// before ollama).
	var reports []string
	for _, r := range set.Tuning {
		reports = append(reports, filepath.Base(r.Source)+" "+r.Stack)
	}
	if want := []string{"tune-llamacpp-llama8b.tuning.json llama.cpp", "tune-ollama-llama8b.tuning.json ollama"}; !slices.Equal(reports, want) {
		t.Fatalf("tuning reports %q, want %q", reports, want)
	}
	var configs []Config
	tuned := map[string][]Config{}
	for _, c := range set.Configs {
		if strings.HasPrefix(c.Source, "tune-") {
			tuned[c.Source] = append(tuned[c.Source], c)
		} else {
			configs = append(configs, c)
		}
	}
	// A tuning run writes the default's row first, then one row per measurement of the search
	// (a configuration measured in two rounds has two rows): llama.cpp 1 + 23 (16 configurations
	// in round 1, 7 survivors again in round 2), Ollama 1 + 20 (16, then 4). The rows must
	// match the count the report gives, so a run and a report of different searches do not pass.
	// Neither search was cut short this time: no row is a failure (the earlier Ollama run ended
	// with one its deadline interrupted).
	for _, r := range set.Tuning {
		src := strings.TrimSuffix(filepath.Base(r.Source), ".tuning.json") + ".csv"
		rows := tuned[src]
		if len(rows) != 1+r.Measured || r.Measured < 16 {
			t.Errorf("%s: %d rows, the report %d measurements; want the default's row and one per measurement", src, len(rows), r.Measured)
			continue
		}
		if rows[0].Label != "base-as-is" || slices.ContainsFunc(rows[1:], func(c Config) bool { return c.Label == "base-as-is" }) {
			t.Errorf("%s: want the default's row first and only there", src)
		}
		for i, c := range rows {
			if c.Failed || c.Record == nil || len(c.Repeats) == 0 || c.Stack != r.Stack {
				t.Errorf("%s row %d: failed %v, record %v, %d repeats, stack %s", src, i, c.Failed, c.Record != nil, len(c.Repeats), c.Stack)
			}
		}
	}
	if len(tuned) != 2 {
		t.Errorf("tuning rows from %d files, want 2", len(tuned))
	}
	if len(configs) != 10 {
		t.Fatalf("%d configurations, want 10", len(configs))
	}
	byKey := map[string]Config{}
	for _, c := range configs {
		if !strings.HasPrefix(c.Source, "telemetry-sweep") { // the same configurations, measured again
			byKey[c.Stack+" "+c.Model+" "+c.NumGPU] = c
		}
		repeats := 5
		if strings.HasPrefix(c.Source, "telemetry-sweep") {
			repeats = 3 // the telemetry run measured each configuration 3 times
		}
		if c.Record == nil || len(c.Raw) == 0 || len(c.Repeats) != repeats || c.Failed {
			t.Errorf("%s %s %s: record %v raw %d repeats %v failed %v", c.Stack, c.Model, c.NumGPU, c.Record != nil, len(c.Raw), c.Repeats, c.Failed)
		}
	}
	for key, want := range map[string]struct {
		offload       string
		layers, total int
		tps           float64
	}{
		"llama.cpp llama-8b -1":               {"33", 33, 33, 153.80},
		"llama.cpp llama-8b default":          {"default", 0, 33, 6.15},
		"ollama fuze-llama-8b:latest 33":      {"33", 33, 0, 164.65},
		"ollama fuze-llama-8b:latest default": {"default", -1, 0, 166.22},
		"ollama fuze-llama-1b:latest 17":      {"17", 17, 0, 403.42},
		"llama.cpp llama-1b -1":               {"17", 17, 17, 404.28},
	} {
		c, ok := byKey[key]
		if !ok {
			t.Errorf("no configuration %q", key)
			continue
		}
		if c.Offload() != want.offload || c.Layers != want.layers || c.TotalLayers != want.total || c.TPS != want.tps {
			t.Errorf("%s: offload %q layers %d/%d tps %v, want %+v", key, c.Offload(), c.Layers, c.TotalLayers, c.TPS, want)
		}
	}
}

func TestLoadInputsAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := strings.Join(results.Header, ",") + "\n"
	run := write("vllm_bench_20260101_000000.csv", header+
		"2026-01-01T00:00:00+00:00,127.0.0.1:8000,proc,A,m,base-as-is,m,default,,,64,50.00,,,,\n"+
		"2026-01-01T00:00:05+00:00,127.0.0.1:8000,proc,A,m,optimized,m,12,,,64,0.00,,,,\n")
	other := write("notes.csv", "a,b\n1,2\n")
	write("transcript.txt", "hello\n")

	set, _, err := Load([]string{run})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Configs) != 2 {
		t.Fatalf("%d configurations", len(set.Configs))
	}
	base, opt := set.Configs[0], set.Configs[1]
	if base.Stack != "vLLM" || base.Record != nil || base.Repeats != nil || !slices.Equal(base.Values(), []float64{50}) {
		t.Errorf("a row without a sample: %+v", base)
	}
	if !opt.Failed || opt.Values() != nil || opt.Offload() != "12" {
		t.Errorf("a failed row: %+v", opt)
	}
	// A file named on the command line must be an input; in a folder, others are skipped.
	if _, _, err := Load([]string{other}); err == nil || !strings.Contains(err.Error(), "neither a run CSV nor an aggregate") {
		t.Errorf("notes.csv: %v", err)
	}
	if _, _, err := Load([]string{filepath.Join(dir, "transcript.txt")}); err == nil {
		t.Error("transcript.txt was accepted")
	}
	if set, _, err := Load([]string{dir}); err != nil || len(set.Configs) != 2 {
		t.Errorf("the folder: %v", err)
	}
	if _, _, err := Load([]string{filepath.Join(dir, "missing.csv")}); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, _, err := Load(nil); err == nil {
		t.Error("no inputs were accepted")
	}
}

// TestLoadAggregate: an aggregate's runs are read from their files while they exist; once
// they are gone, the aggregate's own rows (baseline and optimum, with the repeats kept beside
// it) stand in for them.
func TestLoadAggregate(t *testing.T) {
	dir := t.TempDir()
	var runs []string
	for _, name := range []string{"llamacpp_llama-8b", "ollama_llama-8b"} {
		for _, ext := range []string{".csv", ".jsonl"} {
			b, err := os.ReadFile(filepath.Join(gpuDir, name+ext))
			if err != nil {
				t.Fatal(err)
			}
			// Collect wants run file names: <prefix>_bench_<TS>.csv.
			stack, _, _ := strings.Cut(name, "_")
			if err := os.WriteFile(filepath.Join(dir, stack+"_bench_20261130_095000"+ext), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		stack, _, _ := strings.Cut(name, "_")
		runs = append(runs, filepath.Join(dir, stack+"_bench_20261130_095000.csv"))
	}
	agg := filepath.Join(dir, "benchmarks.csv")
	if _, _, err := results.Collect(agg, runs, "host"); err != nil {
		t.Fatal(err)
	}
	set, _, err := Load([]string{agg})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Configs) != 4 || set.Configs[0].Record == nil {
		t.Fatalf("with the runs at hand: %d configurations (want the runs' 4 rows)", len(set.Configs))
	}
	for _, r := range runs {
		os.Remove(r)
		os.Remove(strings.TrimSuffix(r, ".csv") + ".jsonl")
	}
	set, _, err = Load([]string{agg})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range set.Configs {
		got = append(got, c.Stack+" "+c.Label+" "+c.Offload()+" "+strings.Join(fmtFloats(c.Values()), " "))
	}
	// llama.cpp's optimum is -1 (it beats the CPU default); Ollama's is its default (num_gpu 33
	// does not significantly beat it), so Ollama's row gives only its baseline.
	want := []string{
		"llama.cpp base-as-is default 5.30 5.56 6.15 7.38 6.51",
		"llama.cpp optimized -1 154.02 154.81 153.80 153.17 145.10",
		"ollama base-as-is default 166.22 163.93 168.59 166.76 163.53",
	}
	if !slices.Equal(got, want) {
		t.Errorf("from the aggregate alone:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBestFollowsTheRule(t *testing.T) {
	five := func(v float64) []float64 { return []float64{v - 2, v - 1, v, v + 1, v + 2} }
	base := &Config{Label: "base-as-is", TPS: 100, Repeats: five(100)}
	slightly := &Config{Label: "optimized", TPS: 101, Repeats: five(101)} // overlaps: ~
	clearly := &Config{Label: "optimized", TPS: 120, Repeats: five(120)}
	failed := &Config{Label: "optimized", Failed: true}
	if b := Best([]*Config{base, slightly}); b != base {
		t.Errorf("a tuned configuration that is not significantly faster replaced the default")
	}
	if b := Best([]*Config{base, failed, slightly, clearly}); b != clearly {
		t.Errorf("best = %+v, want the clearly faster one", b)
	}
	if b := Best([]*Config{failed}); b != nil {
		t.Errorf("a failure was best")
	}
}

func fmtFloats(v []float64) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.2f", x))
	}
	return out
}

// TestLoadTuningReport: a folder with a run CSV and its <run>.tuning.json yields the report,
// read from beside the CSV; a report that does not decode is a warning and the rows stay.
func TestLoadTuningReport(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".csv", ".jsonl", ".tuning.json"} {
		b, err := os.ReadFile(filepath.Join(gpuDir, "tune-ollama-llama8b"+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tune-ollama-llama8b"+ext), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, warnings, err := Load([]string{dir})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("%v %q", err, warnings)
	}
	// The default's row and one per measurement of the search: 16 configurations in round 1,
	// the 4 with flash attention on and an f16 KV cache again in round 2.
	if len(set.Files) != 1 || len(set.Configs) != 21 {
		t.Errorf("files %v, %d configurations; want the run CSV alone and its 21 rows", set.Files, len(set.Configs))
	}
	if len(set.Tuning) != 1 {
		t.Fatalf("%d tuning reports, want 1", len(set.Tuning))
	}
	r := set.Tuning[0]
	if filepath.Base(r.Source) != "tune-ollama-llama8b.tuning.json" || r.Stack != "ollama" || r.Model != "fuze-llama-8b:latest" ||
		r.GPULabel != "nvidia-h200" || r.Measured != 20 || r.Starts != 5 || len(r.Best) != 3 || len(r.Effects) != 15 {
		t.Errorf("report %s: %s %s %s, %d measurements, %d starts, %d bests, %d effects",
			r.Source, r.Stack, r.Model, r.GPULabel, r.Measured, r.Starts, len(r.Best), len(r.Effects))
	}
	if e := r.Effects[0]; e.Objective != "decode_tps" || e.Knob != "OLLAMA_FLASH_ATTENTION" || !e.Significant {
		t.Errorf("first effect %+v", e)
	}

	// The run CSV named alone brings its report too; a broken one is a warning.
	csv := filepath.Join(dir, "tune-ollama-llama8b.csv")
	if set, _, err := Load([]string{csv}); err != nil || len(set.Tuning) != 1 {
		t.Errorf("the CSV alone: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tune-ollama-llama8b.tuning.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, warnings, err = Load([]string{csv})
	if err != nil || len(set.Tuning) != 0 || len(set.Configs) != 21 || len(warnings) != 1 || !strings.Contains(warnings[0], "without its tuning report") {
		t.Errorf("a broken report: %v, %d reports, %d rows, warnings %q", err, len(set.Tuning), len(set.Configs), warnings)
	}
}
