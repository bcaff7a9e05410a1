package ollama_test

// Checks of a fuze run on a GPU (Ollama or llama.cpp), by the measurement method: CSV column
// 12 is the median of the repeats' client-side rates, the sample's rate recomputed from its
// chunk arrival times (tokens after the first chunk ÷ first-to-last arrival) is one of those
// repeats, the server's timer and the server/client ratio beside it agree with the sample's
// counters, and every row sits under the memory-bandwidth roofline. They only read a run's
// files, so they need no GPU themselves: TestCommittedGPUResults (no build tag, runs
// everywhere) applies them to the runs committed in results/gpu; TestGPURun (build tag gpu,
// gpu_test.go) to a fresh run on a GPU.

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// committedRuns are the runs results/gpu holds (docs/gpu-results.md): Ollama and llama.cpp on
// the synthetic 8B and untied 1B models, on one H200.
var committedRuns = []string{"llamacpp_llama-1b.jsonl", "llamacpp_llama-8b.jsonl", "ollama_llama-1b.jsonl", "ollama_llama-8b.jsonl"}

// TestCommittedGPUResults checks every committed Ollama run in results/gpu (each with the CSV
// beside it), so the published GPU numbers stay consistent with the checks a GPU run must pass.
func TestCommittedGPUResults(t *testing.T) {
	dir := testfixture.Repo(t, "results", "gpu")
	runs, err := filepath.Glob(filepath.Join(dir, "*_llama-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, filepath.Base(r))
	}
	for _, want := range committedRuns {
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
		ChunkTimes           []int64   `json:"chunk_times_ns"`
	} `json:"sample"`
	ServerDecodeTPS   float64 `json:"server_decode_tps"`
	ServerClientRatio float64 `json:"server_client_ratio"`
	line              int     // 1-based line in the JSONL
	csvTPS            float64 // column 12 of the matching CSV row (the JSONL's copy when there is no CSV)
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
	for _, r := range recs {
		if !r.ok() {
			msg := "no sample"
			if r.Sample != nil {
				msg = r.Sample.Outcome + ": " + r.Sample.Error
			}
			t.Errorf("line %d (num_gpu=%s, %s): attempt failed (%s)", r.line, r.Row.NumGPU, r.Row.VariantLabel, msg)
			continue
		}
		s := r.Sample
		// Column 12 is the median of the repeats (the mean of the middle two for an even n).
		reps := slices.Clone(s.RepeatTPS)
		sort.Float64s(reps)
		if len(reps) == 0 {
			t.Errorf("line %d (num_gpu=%s): no repeats", r.line, r.Row.NumGPU)
			continue
		}
		median := reps[len(reps)/2]
		if len(reps)%2 == 0 {
			median = (reps[len(reps)/2-1] + reps[len(reps)/2]) / 2
		}
		if math.Abs(r.csvTPS-median) > 0.006 {
			t.Errorf("line %d (num_gpu=%s): CSV %.2f tok/s is not the median %.4f of the repeats %v", r.line, r.Row.NumGPU, r.csvTPS, median, s.RepeatTPS)
		}
		// The sample's rate, recomputed from its chunk arrival times, is one of the repeats.
		client := chunkRate(s.ChunkTimes)
		if !slices.ContainsFunc(s.RepeatTPS, func(x float64) bool { return math.Abs(x-client) < 1e-6*client }) {
			t.Errorf("line %d (num_gpu=%s): %.4f tok/s from the chunk times is none of the repeats %v", r.line, r.Row.NumGPU, client, s.RepeatTPS)
		}
		// The server's timer is beside it: its own counters, and the ratio to the client.
		if srv := r.evalRate(); srv <= 0 || math.Abs(r.ServerDecodeTPS-srv) > 1e-6*srv || math.Abs(r.ServerClientRatio-srv/client) > 1e-6 {
			t.Errorf("line %d (num_gpu=%s): server timer %.4f (counters say %.4f), ratio %.4f (want %.4f)", r.line, r.Row.NumGPU, r.ServerDecodeTPS, srv, r.ServerClientRatio, srv/client)
		}
		if r.Sample.RooflineTPS > 0 && r.Sample.RooflineShare > 1 {
			t.Errorf("line %d (num_gpu=%s): %.2f tok/s is %.0f%% of the %.2f tok/s roofline: a measurement error",
				r.line, r.Row.NumGPU, r.csvTPS, 100*r.Sample.RooflineShare, r.Sample.RooflineTPS)
		}
	}
	// All layers on the GPU (num_gpu the most layers, or llama.cpp's -1): a real share of the
	// memory-bandwidth bound.
	var full []gpuRecord
	for _, r := range recs {
		if _, err := strconv.Atoi(r.Row.NumGPU); err == nil && r.ok() {
			full = append(full, r)
		}
	}
	if len(full) == 0 {
		t.Fatalf("no row with a layer setting")
	}
	sort.SliceStable(full, func(i, j int) bool { return layers(full[i]) > layers(full[j]) })
	r := full[0]
	if r.Sample.RooflineTPS <= 0 {
		t.Errorf("line %d (num_gpu=%s, all layers): no roofline", r.line, r.Row.NumGPU)
	} else if share := r.Sample.RooflineShare; !(share > 0.1 && share <= 1.0) {
		t.Errorf("line %d (num_gpu=%s, all layers): roofline share %.3f is outside (0.1, 1.0]", r.line, r.Row.NumGPU, share)
	}
	t.Logf("%s on %s, all layers: %.2f tok/s (client), server timer %.2f (ratio %.3f), %.0f%% of the roofline",
		r.Row.BaseModel, r.Row.GPUName, r.csvTPS, r.ServerDecodeTPS, r.ServerClientRatio, 100*r.Sample.RooflineShare)
}

// chunkRate is the client's decode rate from chunk arrival times (one entry per token): the
// tokens after the first chunk over the first-to-last arrival.
func chunkRate(times []int64) float64 {
	if len(times) < 2 {
		return 0
	}
	first := 1
	for first < len(times) && times[first] == times[0] {
		first++
	}
	span := times[len(times)-1] - times[0]
	if span <= 0 {
		return 0
	}
	return float64(len(times)-first) / (float64(span) / 1e9)
}

// layers orders layer settings: llama.cpp's -1 is every layer.
func layers(r gpuRecord) int {
	if n := ng(r); n >= 0 {
		return n
	}
	return math.MaxInt
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
		if line == "" || results.IsRunSummary([]byte(line)) {
			continue // the run_summary line is the run's wall time, not a row
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
