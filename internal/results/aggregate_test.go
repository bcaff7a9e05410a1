package results

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSummarizeFixtureRun(t *testing.T) {
	p := fixture(t, "ollama_bench_20250913_160342.csv")
	rows, warns, err := SummarizeRun(p, "fuze-bakery")
	if err != nil || len(warns) != 0 {
		t.Fatalf("SummarizeRun: %v %q", err, warns)
	}
	abs, _ := filepath.Abs(p)
	want := []AggRow{{
		RunTS: "20250913_160342", Host: "fuze-bakery", Stack: "ollama", Model: "gemma3:4b-it-fp16",
		BaselineTPS: 48.68, OptimalVariant: "gemma3:4b-it-fp16", OptimalTPS: 49.52,
		BaselineEndpoint: "127.0.0.1:11435", OptimalEndpoint: "127.0.0.1:11435",
		GPULabel: "nvidia-5060ti", GPUName: "NVIDIA GeForce RTX 5060 Ti", NumGPU: "35", CSVFile: abs,
	}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got  %+v\nwant %+v", rows, want)
	}
	if got := strings.Join(rows[0].Fields(), ","); got != "20250913_160342,fuze-bakery,ollama,gemma3:4b-it-fp16,48.68,gemma3:4b-it-fp16,49.52,127.0.0.1:11435,127.0.0.1:11435,nvidia-5060ti,NVIDIA GeForce RTX 5060 Ti,35,"+abs {
		t.Errorf("fields %s", got)
	}
}

// synthRunCSV is a run in which each model exercises one rule of SummarizeRun.
func synthRunCSV(t *testing.T, dir, name string) string {
	t.Helper()
	a := "127.0.0.1:11435,ollama-test-a.service,A"
	b := "127.0.0.1:11436,ollama-test-b.service,B"
	gA := "nvidia-5090,NVIDIA GeForce RTX 5090,GPU-a,32607"
	gB := "nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,GPU-b,24564"
	ts := "2025-09-14T03:00:47+00:00"
	lines := []string{
		strings.Join(Header, ","),
		// m1: the best baseline is on A (100), the best optimum on B (120): the gain is B's
		// own, 120 over B's baseline 90 (the original divided by A's 100); published and
		// optimized tie on B and the first row seen stays.
		ts + "," + a + ",m1,base-as-is,m1,,,,,100.00," + gA,
		ts + "," + b + ",m1,base-as-is,m1,,,,,90.00," + gB,
		ts + "," + a + ",m1,optimized,m1,28,,,,105.00," + gA,
		ts + "," + b + ",m1,published,m1-nvidia-3090ti-ng30:latest,30,,,,120.00," + gB,
		ts + "," + b + ",m1,optimized,m1,30,,,,120.00," + gB, // tie: the first row seen stays
		// m2: everything failed.
		ts + "," + a + ",m2,base-as-is,m2,,,,,0.00," + gA,
		ts + "," + a + ",m2,optimized,m2,10,,,,0.00," + gA,
		// m3: baseline only.
		ts + "," + b + ",m3,base-as-is,m3,,,,,50.00," + gB,
		// m4: optimum only.
		ts + "," + a + ",m4,base-as-is,m4,,,,,0.00," + gA,
		ts + "," + b + ",m4,optimized,m4,5,,,,7.50," + gB,
		// a corrupt line: reported, skipped
		ts + "," + a + ",m5,base-as-is",
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSummarizeRules(t *testing.T) {
	dir := t.TempDir()
	p := synthRunCSV(t, dir, "vllm_bench_20250914_030047_2.csv")
	rows, warns, err := SummarizeRun(p, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], p+":12:") {
		t.Errorf("warnings %q, want one for line 12", warns)
	}
	want := []string{
		"20250914_030047,h,vLLM,m1,90.00,m1-nvidia-3090ti-ng30:latest,120.00,127.0.0.1:11436,127.0.0.1:11436,nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,30," + p,
		"20250914_030047,h,vLLM,m2,0.00,,0.00,,,,,," + p,
		"20250914_030047,h,vLLM,m3,50.00,,50.00,127.0.0.1:11436,127.0.0.1:11436,nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,," + p,
		"20250914_030047,h,vLLM,m4,0.00,m4,7.50,,127.0.0.1:11436,nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,5," + p,
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, r := range rows {
		if got := strings.Join(r.Fields(), ","); got != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, got, want[i])
		}
	}

	// A name without a run timestamp: run_ts from the rows, with a warning.
	q := filepath.Join(dir, "ollama_bench_manual.csv")
	if err := os.Rename(p, q); err != nil {
		t.Fatal(err)
	}
	rows, warns, err = SummarizeRun(q, "h")
	if err != nil || len(rows) != 4 || rows[0].RunTS == "" || len(warns) != 2 {
		t.Errorf("no TS in name: rows %+v warns %q err %v", rows, warns, err)
	}
	// A name that does not say the stack is an error.
	r := filepath.Join(dir, "results.csv")
	if err := os.Rename(q, r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SummarizeRun(r, "h"); err == nil || !strings.Contains(err.Error(), r) {
		t.Errorf("unknown stack: err %v", err)
	}
}

func TestReadAggregateFixture(t *testing.T) {
	p := fixture(t, "benchmarks.csv")
	rows, warns, err := ReadAggregate(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 18 {
		t.Errorf("%d rows, want 18 (19 lines, one duplicate)", len(rows))
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "lines 16 (= line 2)") {
		t.Errorf("warnings %q", warns)
	}
	first := AggRow{
		RunTS: "20250914_045417", Host: "fuze-bakery", Stack: "ollama", Model: "gemma3:4b-it-fp16",
		BaselineTPS: 136.37, OptimalVariant: "gemma3:4b-it-fp16", OptimalTPS: 148.70,
		BaselineEndpoint: "127.0.0.1:11435", OptimalEndpoint: "127.0.0.1:11435", GPULabel: "nvidia-5090",
		GPUName: "NVIDIA GeForce RTX 5090", NumGPU: "35", CSVFile: "/var/log/fuze-stack/ollama_bench_20250914_045417.csv",
	}
	if rows[0] != first {
		t.Errorf("row 0 %+v", rows[0])
	}
	last := rows[len(rows)-1]
	if last.Model != "gpt-oss:20b" || last.OptimalTPS != 0 || last.OptimalVariant != "" || last.GPULabel != "" {
		t.Errorf("all-failed row %+v", last)
	}
}

func TestReadAggregateTolerance(t *testing.T) {
	head := strings.Join(AggHeader, ",")
	good := "20250914_045417,h,ollama,m,1.00,m,2.00,e,e,g,G,3,/l/a.csv"
	content := "\ufeff" + head + "\r\n" + good + "\n" +
		"20250914_045417,h,ollama,m,1.00,m,2.00,e,e,g,G,3\n" + // 12 fields
		good + ",extra\n" + // 14 fields
		"20250914_045417,h,ollama,m2,fast,m,2.00,e,e,g,G,3,/l/a.csv\n" + // bad number
		"20250914_045417,h,ollama,m3,,,,,,,,,/l/a.csv\n" // empty numbers are 0
	p := writeFile(t, "benchmarks.csv", content)
	rows, warns, err := ReadAggregate(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Model != "m3" || rows[1].OptimalTPS != 0 {
		t.Errorf("rows %+v", rows)
	}
	for i, line := range []string{":3:", ":4:", ":5:"} {
		if i >= len(warns) || !strings.Contains(warns[i], p+line) {
			t.Errorf("warnings %q, want %s%s", warns, p, line)
		}
	}
	for name, content := range map[string]string{
		"run.csv":   strings.Join(Header, ",") + "\n",
		"other.csv": "a,b,c\n",
	} {
		if _, _, err := ReadAggregate(writeFile(t, name, content)); err == nil || !strings.Contains(err.Error(), "not an aggregate") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if rows, _, err := ReadAggregate(writeFile(t, "empty.csv", "")); err != nil || len(rows) != 0 {
		t.Errorf("empty file: %v %v", rows, err)
	}
}

func TestCollectIdempotentAndAtomic(t *testing.T) {
	logDir := t.TempDir()
	runA := synthRunCSV(t, logDir, "ollama_bench_20250914_030047.csv")
	runB := synthRunCSV(t, logDir, "llamacpp_bench_20250914_040000.csv")
	agg := filepath.Join(t.TempDir(), "refinery", "benchmarks.csv")

	res, _, err := Collect(agg, []string{runA}, "h")
	if err != nil || res.Added != 4 || res.Collected != 1 || len(res.Skipped) != 0 {
		t.Fatalf("first collect: %+v, err %v", res, err)
	}
	first, _ := os.ReadFile(agg)
	if !strings.HasPrefix(string(first), strings.Join(AggHeader, ",")+"\n") {
		t.Errorf("no header:\n%s", first)
	}
	// Again, and with the same file twice in one call: nothing changes.
	res, _, err = Collect(agg, []string{runA, runA}, "h")
	if err != nil || res.Added != 0 || res.Collected != 2 {
		t.Fatalf("second collect: %+v, err %v", res, err)
	}
	second, _ := os.ReadFile(agg)
	if !bytes.Equal(first, second) {
		t.Errorf("collecting twice changed the aggregate:\n%s\n---\n%s", first, second)
	}
	// A relative path to the same file is the same csv_file.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, runA)
	if err == nil {
		if res, _, err = Collect(agg, []string{rel}, "h"); err != nil || res.Added != 0 {
			t.Errorf("relative path: %+v, err %v", res, err)
		}
	}
	// New run: appended after the old lines, which stay byte for byte.
	res, _, err = Collect(agg, []string{runA, runB}, "h")
	if err != nil || res.Added != 4 {
		t.Fatalf("third collect: %+v, err %v", res, err)
	}
	third, _ := os.ReadFile(agg)
	if !bytes.HasPrefix(third, first) || bytes.Count(third, []byte("\n")) != 9 {
		t.Errorf("third collect:\n%s", third)
	}
	rows, warns, err := ReadAggregate(agg)
	if err != nil || len(warns) != 0 || len(rows) != 8 {
		t.Errorf("read back: %d rows %q %v", len(rows), warns, err)
	}
	// A run CSV that cannot be read: an error and nothing written.
	if _, _, err := Collect(agg, []string{runA, filepath.Join(logDir, "ollama_bench_20990101_000000.csv")}, "h"); err == nil {
		t.Error("missing run CSV: no error")
	}
	if now, _ := os.ReadFile(agg); !bytes.Equal(now, third) {
		t.Error("failed collect changed the aggregate")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(agg))
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files beside the aggregate: %v", names)
	}
}

func TestCollectIntoOriginalAggregate(t *testing.T) {
	orig, err := os.ReadFile(fixture(t, "benchmarks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// The original's file, with a corrupt line and no final newline.
	content := string(orig) + "20250914_050000,fuze-bakery,ollama,x,1.00\n" + "20250921_002530,fuze-bakery,ollama,y,0.00,,0.00,,,,,,/l/z.csv"
	dir := t.TempDir()
	agg := filepath.Join(dir, "benchmarks.csv")
	if err := os.WriteFile(agg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	run := synthRunCSV(t, dir, "ollama_bench_20250914_030047.csv")
	res, warns, err := Collect(agg, []string{run}, "h")
	if err != nil || res.Added != 4 {
		t.Fatalf("%+v err %v", res, err)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], agg+":21:") || !strings.Contains(warns[1], run+":12:") {
		t.Errorf("warnings %q", warns)
	}
	got, _ := os.ReadFile(agg)
	if !strings.HasPrefix(string(got), content+"\n20250914_030047,h,ollama,m1,") {
		t.Errorf("old content not kept as is:\n%s", got)
	}
	if st, _ := os.Stat(agg); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", st.Mode().Perm())
	}
	// Not an aggregate: refused, untouched.
	bad := writeFile(t, "benchmarks.csv", strings.Join(Header, ",")+"\n")
	if _, _, err := Collect(bad, []string{run}, "h"); err == nil {
		t.Error("appending to a run CSV: no error")
	}
	if b, _ := os.ReadFile(bad); string(b) != strings.Join(Header, ",")+"\n" {
		t.Error("non-aggregate changed")
	}
	// Nothing to collect into a missing aggregate: created with the header only.
	empty := filepath.Join(t.TempDir(), "benchmarks.csv")
	if res, _, err := Collect(empty, nil, "h"); err != nil || res.Added != 0 || res.Collected != 0 {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(empty); string(b) != strings.Join(AggHeader, ",")+"\n" {
		t.Errorf("new empty aggregate %q", b)
	}
}

func TestFindRunCSVs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{
		"ollama_bench_20250913_160342.csv", "ollama_bench_20250914_030047.csv",
		"ollama_bench_20250914_030047_2.csv", "ollama_bench_20250914_030047_10.csv",
		"vllm_bench_20250915_000000.csv", "ollama_bench_20250914_030047.jsonl",
		"ollama_export_20250916_000000.csv", "wrapper_20250917_000000.summary",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := func(ps []string) string {
		var out []string
		for _, p := range ps {
			out = append(out, filepath.Base(p))
		}
		return strings.Join(out, " ")
	}
	got, err := FindRunCSVs(dir, "Ollama")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ollama_bench_20250914_030047_10.csv ollama_bench_20250914_030047_2.csv ollama_bench_20250914_030047.csv ollama_bench_20250913_160342.csv"; base(got) != want {
		t.Errorf("ollama: %s", base(got))
	}
	got, _ = FindRunCSVs(dir, "")
	if !strings.HasPrefix(base(got), "vllm_bench_20250915_000000.csv ollama_bench_20250914_030047_10.csv") || len(got) != 5 {
		t.Errorf("all: %s", base(got))
	}
	if _, err := FindRunCSVs(dir, "sglang"); err == nil {
		t.Error("unknown stack: no error")
	}
	if _, err := FindRunCSVs(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("missing dir: no error")
	}
}

// When no tuned setting beats the server's defaults, the best configuration is the baseline.
func TestSummarizeRunBaselineBeatsEveryCandidate(t *testing.T) {
	w, err := CreateRun(t.TempDir(), "ollama", time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Row{
		{Endpoint: "127.0.0.1:11435", VariantLabel: "base-as-is", BaseModel: "m:1", ModelTag: "m:1", NumGPU: "default", TokensPerSec: 100, GPULabel: "nvidia-h100-80gb"},
		{Endpoint: "127.0.0.1:11435", VariantLabel: "optimized", BaseModel: "m:1", ModelTag: "m:1", NumGPU: "33", TokensPerSec: 99.5, GPULabel: "nvidia-h100-80gb"},
		{Endpoint: "127.0.0.1:11435", VariantLabel: "optimized", BaseModel: "m:1", ModelTag: "m:1", NumGPU: "17", TokensPerSec: 40, GPULabel: "nvidia-h100-80gb"},
	} {
		r.TS = time.Now()
		if err := w.Write(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	rows, _, err := SummarizeRun(w.CSVPath(), "h")
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	if r := rows[0]; r.OptimalTPS != 100 || r.NumGPU != "default" || r.OptimalVariant != "m:1" || r.BaselineTPS != 100 {
		t.Fatalf("want the baseline as the optimum, got %+v", r)
	}
}
