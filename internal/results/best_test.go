package results

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBestFilesOfFixtureGolden(t *testing.T) {
	rows, _, err := ReadAggregate(fixture(t, "benchmarks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	extra := []AggRow{
		{RunTS: "20250915_010000", Host: "box2", Stack: "vLLM", Model: "gemma3:4b-it-fp16", BaselineTPS: 90, OptimalTPS: 90, GPULabel: "nvidia-3090ti", CSVFile: "/l/vllm_bench_20250915_010000.csv"},
		{RunTS: "20250915_020000", Host: "box2", Stack: "llama.cpp", Model: "llama4:16x17b", BaselineTPS: 0, OptimalVariant: "llama4-16x17b-nvidia-5090-ngl40", OptimalTPS: 12.5, NumGPU: "40", GPULabel: "nvidia-5090", CSVFile: "/l/llamacpp_bench_20250915_020000.csv"},
	}
	dir := t.TempDir()
	agg := filepath.Join(dir, "benchmarks.csv")
	paths, err := WriteBests(agg, append(rows, extra...), Filters{})
	if err != nil {
		t.Fatal(err)
	}
	want := BestPaths{filepath.Join(dir, "benchmarks.best.csv"), filepath.Join(dir, "benchmarks.best.by_host_model.csv"), filepath.Join(dir, "benchmarks.best.by_model.csv")}
	if paths != want {
		t.Errorf("paths %+v", paths)
	}
	var all bytes.Buffer
	for _, p := range []string{paths.ByStackModel, paths.ByHostModel, paths.ByModel} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString("== " + filepath.Base(p) + "\n")
		all.Write(b)
	}
	goldenFile(t, "best.golden", all.Bytes())
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("%d files written, want 3 (no temporary files left)", len(ents))
	}
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		os.WriteFile(path+".got", got, 0o644)
		t.Errorf("%s differs; see %s.got (go test -update accepts it)\n%s", path, path, got)
	} else {
		os.Remove(path + ".got")
	}
}

func TestBestTiesAndOrder(t *testing.T) {
	rows := []AggRow{
		{RunTS: "20250914_010000", Host: "b", Stack: "ollama", Model: "m", OptimalTPS: 10, CSVFile: "/l/2.csv"},
		{RunTS: "20250914_020000", Host: "b", Stack: "ollama", Model: "m", OptimalTPS: 10, CSVFile: "/l/3.csv"}, // newest of the tie
		{RunTS: "20250914_020000", Host: "b", Stack: "ollama", Model: "m", OptimalTPS: 10, CSVFile: "/l/4.csv"},
		{RunTS: "20250914_030000", Host: "a", Stack: "vLLM", Model: "m", OptimalTPS: 9, CSVFile: "/l/5.csv"},
		{RunTS: "20250914_030000", Host: "a", Stack: "ollama", Model: "z", OptimalTPS: 0, CSVFile: "/l/6.csv"}, // failed: never best
		{RunTS: "20250914_030000", Host: "a", Stack: "Triton", Model: "a", OptimalTPS: 1, GPUName: "NVIDIA H100 80GB HBM3", CSVFile: "/l/7.csv"},
	}
	// Every permutation of the input gives the same files.
	var first [3][]byte
	perm := func(rs []AggRow) {
		for i, rows := range [][]AggRow{BestByStackModel(rs, Filters{}), BestByHostModel(rs, Filters{}), BestByModel(rs, Filters{})} {
			b, err := EncodeBest(BestByModelHeader, rows)
			if err != nil {
				t.Fatal(err)
			}
			if first[i] == nil {
				first[i] = b
			} else if !bytes.Equal(first[i], b) {
				t.Errorf("file %d depends on the input order:\n%s\n%s", i, first[i], b)
			}
		}
	}
	var rec func(k int)
	rec = func(k int) {
		if k == len(rows) {
			perm(append([]AggRow(nil), rows...))
			return
		}
		for i := k; i < len(rows); i++ {
			rows[k], rows[i] = rows[i], rows[k]
			rec(k + 1)
			rows[k], rows[i] = rows[i], rows[k]
		}
	}
	rec(0)

	sm := BestByStackModel(rows, Filters{})
	var keys []string
	for _, r := range sm {
		keys = append(keys, r.Stack+"/"+r.Model+"/"+r.CSVFile)
	}
	if got := strings.Join(keys, " "); got != "Triton/a//l/7.csv ollama/m//l/3.csv vLLM/m//l/5.csv" {
		t.Errorf("by stack, model: %s", got)
	}
	bm := BestByModel(rows, Filters{})
	if len(bm) != 2 || bm[0].Model != "a" || bm[1].CSVFile != "/l/3.csv" {
		t.Errorf("by model: %+v", bm)
	}
	hm := BestByHostModel(rows, Filters{})
	if len(hm) != 3 || hm[0].Host != "a" || hm[0].Model != "a" || hm[1].Model != "m" || hm[1].Stack != "vLLM" {
		t.Errorf("by host, model: %+v", hm)
	}

	// Filters; the by-model file ignores STACK_RE and HOST_RE.
	f := Filters{Stack: regexp.MustCompile(`^vLLM$`), Host: regexp.MustCompile(`^a$`)}
	if got := BestByStackModel(rows, f); len(got) != 1 || got[0].Stack != "vLLM" {
		t.Errorf("STACK_RE: %+v", got)
	}
	if got := BestByModel(rows, f); len(got) != 2 {
		t.Errorf("by model with STACK_RE: %+v", got)
	}
	g := Filters{GPU: regexp.MustCompile(`H100`), Model: regexp.MustCompile(`^a$`)}
	if got := BestByModel(rows, g); len(got) != 1 || got[0].Stack != "Triton" {
		t.Errorf("GPU_RE on gpu_name: %+v", got)
	}
	if got := BestByStackModel(rows, Filters{GPU: regexp.MustCompile(`5090`)}); len(got) != 0 {
		t.Errorf("GPU_RE: %+v", got)
	}
}

func TestBestFilePathsAndEncoding(t *testing.T) {
	p := BestFilePaths("/r/factory/LLM/refinery/benchmarks.csv")
	if p.ByStackModel != "/r/factory/LLM/refinery/benchmarks.best.csv" || p.ByHostModel != "/r/factory/LLM/refinery/benchmarks.best.by_host_model.csv" || p.ByModel != "/r/factory/LLM/refinery/benchmarks.best.by_model.csv" {
		t.Errorf("%+v", p)
	}
	r := AggRow{RunTS: "20250914_045417", Host: "h", Stack: "ollama", Model: "m", BaselineTPS: 1.005, OptimalVariant: "v", OptimalTPS: 2, GPULabel: "g", GPUName: "G, rev A", NumGPU: "3", CSVFile: "/l/x.csv"}
	b, err := EncodeBest(BestByStackModelHeader, []AggRow{r})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(BestByStackModelHeader, ",") + "\nollama,m,h,2.00,1.00,v,g,\"G, rev A\",3,20250914_045417,/l/x.csv\n"
	if string(b) != want {
		t.Errorf("got\n%swant\n%s", b, want)
	}
	// A best file that cannot be written is an error naming it.
	if _, err := WriteBests(filepath.Join(t.TempDir(), "missing", "benchmarks.csv"), []AggRow{r}, Filters{}); err == nil || !strings.Contains(err.Error(), "benchmarks.best.csv") {
		t.Errorf("err %v", err)
	}
}
