package ollama_test

// Checks of a `fuze stack ollama` run on a GPU: the num_gpu sweep really changes offload, the
// CSV's tokens/sec is Ollama's own eval_count/eval_duration, and the all-on-GPU rows sit under
// the memory-bandwidth roofline. They only read a run's files, so they need no GPU themselves:
// TestCommittedGPUResults (no build tag, runs everywhere) applies them to the Ollama runs
// committed in results/gpu; TestGPURun (build tag gpu, gpu_test.go) to a fresh run on a GPU.

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// committedOllamaRuns are the Ollama runs results/gpu holds (docs/gpu-results.md): the num_gpu
// sweeps of the synthetic 8B and 1B models, and the Ollama half of the cross-stack bench.
var committedOllamaRuns = []string{"crossstack_ollama.jsonl", "ollama_llama-1b.jsonl", "ollama_llama-8b.jsonl"}

// TestCommittedGPUResults checks every committed Ollama run in results/gpu (each with the CSV
// beside it), so the published GPU numbers stay consistent with the checks a GPU run must pass.
func TestCommittedGPUResults(t *testing.T) {
	dir := testfixture.Repo(t, "results", "gpu")
	runs, err := filepath.Glob(filepath.Join(dir, "*ollama*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, filepath.Base(r))
	}
	for _, want := range committedOllamaRuns {
		if !slices.Contains(names, want) {
			t.Errorf("results/gpu/%s is missing (found %q)", want, names)
		}
	}
	for _, path := range runs {
		csvPath := strings.TrimSuffix(path, ".jsonl") + ".csv"
		if _, err := os.Stat(csvPath); err != nil {
			t.Errorf("%s has no CSV beside it: %v", filepath.Base(path), err)
		}
		t.Run(filepath.Base(path), func(t *testing.T) { checkGPURun(t, path) })
	}
}

// gpuRecord is the part of a run JSONL line these checks read.
type gpuRecord struct {
	Row struct {
		Endpoint     string  `json:"endpoint"`
		BaseModel    string  `json:"base_model"`
		VariantLabel string  `json:"variant_label"`
		NumGPU       string  `json:"num_gpu"`
		TokensPerSec float64 `json:"tokens_per_sec"`
		GPUName      string  `json:"gpu_name"`
	} `json:"row"`
	Sample *struct {
		Outcome              string    `json:"outcome"`
		Error                string    `json:"error"`
		ServerOutputTokens   int       `json:"server_output_tokens"`
		ServerDecodeDuration int64     `json:"server_decode_duration_ns"`
		RepeatTPS            []float64 `json:"repeat_tps"`
		RooflineTPS          float64   `json:"roofline_tps"`
		RooflineShare        float64   `json:"roofline_share"`
	} `json:"sample"`
	line   int     // 1-based line in the JSONL
	csvTPS float64 // column 12 of the matching CSV row (the JSONL's copy when there is no CSV)
}

// evalRate is Ollama's own eval_count/eval_duration in tokens/sec.
func (r gpuRecord) evalRate() float64 {
	if r.Sample == nil || r.Sample.ServerDecodeDuration <= 0 {
		return 0
	}
	return float64(r.Sample.ServerOutputTokens) / (float64(r.Sample.ServerDecodeDuration) / 1e9)
}

func (r gpuRecord) ok() bool { return r.Sample != nil && r.Sample.Outcome == "ok" }

// resolveRunPath takes a relative path that does not exist from the package directory (where
// go test runs) as relative to the module root, so FUZE_GPU_RUN_JSONL=results/gpu/… works.
func resolveRunPath(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	dir, err := os.Getwd()
	if err != nil {
		return path
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, path)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return path
		}
		dir = parent
	}
}

func checkGPURun(t *testing.T, path string) {
	recs := readGPURun(t, path)
	if len(recs) == 0 {
		t.Fatalf("%s: no rows", path)
	}
	// One sweep per base model and endpoint.
	groups := map[string][]gpuRecord{}
	var keys []string
	for _, r := range recs {
		k := r.Row.BaseModel + " @ " + r.Row.Endpoint
		if _, seen := groups[k]; !seen {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range keys {
		t.Run(strings.NewReplacer("/", "_", " ", "_").Replace(k), func(t *testing.T) { checkGPUSweep(t, groups[k]) })
	}
}

func checkGPUSweep(t *testing.T, recs []gpuRecord) {
	// Every row: CSV column 12 is Ollama's eval_count/eval_duration (within 0.5%; the CSV keeps
	// two decimals), and no rate is above the roofline.
	for _, r := range recs {
		if !r.ok() {
			msg := "no sample"
			if r.Sample != nil {
				msg = r.Sample.Outcome + ": " + r.Sample.Error
			}
			t.Errorf("line %d (num_gpu=%s, %s): attempt failed (%s)", r.line, r.Row.NumGPU, r.Row.VariantLabel, msg)
			continue
		}
		want := r.evalRate()
		if want <= 0 {
			t.Errorf("line %d (num_gpu=%s): no server eval_count/eval_duration in the sample", r.line, r.Row.NumGPU)
			continue
		}
		if rel := math.Abs(r.csvTPS-want) / want; rel > 0.005 {
			t.Errorf("line %d (num_gpu=%s): CSV tokens/sec %.2f differs from eval_count/eval_duration %d/%dns = %.4f by %.3f%% (> 0.5%%)",
				r.line, r.Row.NumGPU, r.csvTPS, r.Sample.ServerOutputTokens, r.Sample.ServerDecodeDuration, want, 100*rel)
		}
		if r.Sample.RooflineTPS > 0 && r.Sample.RooflineShare > 1 {
			t.Errorf("line %d (num_gpu=%s): %.2f tok/s is %.0f%% of the %.2f tok/s roofline: a measurement error",
				r.line, r.Row.NumGPU, r.csvTPS, 100*r.Sample.RooflineShare, r.Sample.RooflineTPS)
		}
	}

	// The sweep: rows with a numeric num_gpu, from all layers on the GPU down.
	var sweep []gpuRecord
	for _, r := range recs {
		if _, err := strconv.Atoi(r.Row.NumGPU); err == nil && r.ok() && r.Row.VariantLabel != "published" {
			sweep = append(sweep, r)
		}
	}
	if len(sweep) < 2 {
		t.Fatalf("need at least two successful num_gpu rows to check a sweep, got %d", len(sweep))
	}
	sort.SliceStable(sweep, func(i, j int) bool { return ng(sweep[i]) > ng(sweep[j]) })
	full, least := sweep[0], sweep[len(sweep)-1]
	var table strings.Builder
	for _, r := range sweep {
		fmt.Fprintf(&table, "  num_gpu=%-3s %8.2f tok/s  eval %8.2f  roofline share %.3f\n", r.Row.NumGPU, r.csvTPS, r.evalRate(), r.Sample.RooflineShare)
	}
	t.Logf("%s on %s:\n%s", full.Row.BaseModel, full.Row.GPUName, table.String())

	// All layers on the GPU: a real share of the memory-bandwidth bound.
	for _, r := range sweep {
		if ng(r) != ng(full) {
			continue
		}
		if r.Sample.RooflineTPS <= 0 {
			t.Errorf("line %d (num_gpu=%s, all layers): no roofline (GPU %q not in the bandwidth table, or model size unknown)", r.line, r.Row.NumGPU, r.Row.GPUName)
			continue
		}
		if s := r.Sample.RooflineShare; !(s > 0.3 && s <= 1.0) {
			t.Errorf("line %d (num_gpu=%s, all layers): roofline share %.3f (%.2f of %.2f tok/s) is outside (0.3, 1.0]", r.line, r.Row.NumGPU, s, r.csvTPS, r.Sample.RooflineTPS)
		}
	}

	// Fewest layers on the GPU is slower than all of them.
	if !(least.csvTPS < full.csvTPS) {
		t.Errorf("num_gpu=%s gives %.2f tok/s, not below num_gpu=%s at %.2f: num_gpu does not change offload",
			least.Row.NumGPU, least.csvTPS, full.Row.NumGPU, full.csvTPS)
	}
	// Monotone-ish: one layer count less never gains more than 10%.
	for i := 1; i < len(sweep); i++ {
		prev, cur := sweep[i-1], sweep[i]
		if cur.csvTPS > 1.10*prev.csvTPS {
			t.Errorf("num_gpu=%s gives %.2f tok/s, more than 10%% above num_gpu=%s at %.2f", cur.Row.NumGPU, cur.csvTPS, prev.Row.NumGPU, prev.csvTPS)
		}
	}
}

func ng(r gpuRecord) int {
	n, _ := strconv.Atoi(r.Row.NumGPU)
	return n
}

// readGPURun reads a run JSONL and the CSV beside it (same name, .csv), pairing line i of the
// JSONL with data row i of the CSV, as the run writer writes them.
func readGPURun(t *testing.T, path string) []gpuRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("run JSONL: %v", err)
	}
	defer f.Close()
	var recs []gpuRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r gpuRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		r.line, r.csvTPS = n, r.Row.TokensPerSec
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}

	csvPath := strings.TrimSuffix(path, ".jsonl") + ".csv"
	cf, err := os.Open(csvPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("no %s: column 12 taken from the JSONL rows' tokens_per_sec", csvPath)
		return recs
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	rows, err := csv.NewReader(cf).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", csvPath, err)
	}
	if len(rows) > 0 && len(rows[0]) > 11 && rows[0][11] == "tokens_per_sec" {
		rows = rows[1:]
	}
	if len(rows) != len(recs) {
		t.Fatalf("%s has %d data rows, %s has %d lines", csvPath, len(rows), path, len(recs))
	}
	for i, row := range rows {
		if len(row) != 16 {
			t.Fatalf("%s row %d: %d columns, want 16", csvPath, i+2, len(row))
		}
		if row[7] != recs[i].Row.NumGPU {
			t.Fatalf("%s row %d: num_gpu %q, JSONL line %d has %q", csvPath, i+2, row[7], recs[i].line, recs[i].Row.NumGPU)
		}
		v, err := strconv.ParseFloat(row[11], 64)
		if err != nil {
			t.Fatalf("%s row %d column 12: %v", csvPath, i+2, err)
		}
		recs[i].csvTPS = v
	}
	return recs
}
