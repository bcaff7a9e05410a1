package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// reportFixture is a file of the original system in testdata/original (testdata/SOURCES.md);
// a missing one fails the test.
func reportFixture(t *testing.T, name string) string {
	t.Helper()
	return testfixture.Original(t, name)
}

// reportEnv isolates the report knobs from the caller's environment: a repository root and
// LOG_DIR in temporary directories, no filters, the default alias prefix.
func reportEnv(t *testing.T) (root, logDir string) {
	t.Helper()
	root, logDir = t.TempDir(), t.TempDir()
	t.Setenv("FUZE_ROOT", root)
	t.Setenv("LOG_DIR", logDir)
	for _, k := range []string{"STACK_RE", "MODEL_RE", "HOST_RE", "GPU_RE", "ALIAS_SUFFIX", "MD_OUT", "OUT_CSV", "CSV", "TOPN", "STACKS", "SUDO_USER"} {
		t.Setenv(k, "")
	}
	t.Setenv("ALIAS_PREFIX", "LLM-FuZe-")
	return root, logDir
}

func runReportCmd(t *testing.T, newCmd func(streams) *cobra.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newCmd(streams{out: &out, err: &errOut})
	cmd.SetArgs(args)
	cmd.SetOut(&errOut)
	cmd.SetErr(&errOut)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestCollectTwiceFromLogDir(t *testing.T) {
	root, logDir := reportEnv(t)
	run := copyFile(t, reportFixture(t, "ollama_bench_20250913_160342.csv"), filepath.Join(logDir, "ollama_bench_20250913_160342.csv"))
	// An older ollama run: not the newest, so not collected without --all.
	copyFile(t, run, filepath.Join(logDir, "ollama_bench_20250912_000000.csv"))
	agg := filepath.Join(root, "factory", "LLM", "refinery", "benchmarks.csv")

	out, errOut, err := runReportCmd(t, newCollectCommand)
	if err != nil {
		t.Fatalf("collect: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Appended 1 summaries to: "+agg+"\n") {
		t.Errorf("output:\n%s", out)
	}
	for _, name := range []string{"benchmarks.best.csv", "benchmarks.best.by_host_model.csv", "benchmarks.best.by_model.csv"} {
		p := filepath.Join(filepath.Dir(agg), name)
		if !strings.Contains(out, p) {
			t.Errorf("output does not name %s:\n%s", p, out)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	first, err := os.ReadFile(agg)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's legacy 15-field rows were read correctly.
	rows, _, err := results.ReadAggregate(agg)
	if err != nil || len(rows) != 1 {
		t.Fatalf("aggregate rows %+v, err %v", rows, err)
	}
	r := rows[0]
	if r.RunTS != "20250913_160342" || r.Stack != "ollama" || r.Model != "gemma3:4b-it-fp16" || r.BaselineTPS != 48.68 ||
		r.OptimalTPS != 49.52 || r.NumGPU != "35" || r.GPULabel != "nvidia-5060ti" || r.CSVFile != run || r.Host != shortHostname() {
		t.Errorf("aggregate row %+v", r)
	}

	out, errOut, err = runReportCmd(t, newCollectCommand)
	if err != nil {
		t.Fatalf("second collect: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Appended 0 summaries") {
		t.Errorf("second output:\n%s", out)
	}
	second, _ := os.ReadFile(agg)
	if !bytes.Equal(first, second) {
		t.Errorf("collecting twice changed the aggregate:\n%s\n---\n%s", first, second)
	}

	// --all adds the older run; explicit CSV arguments are collected as given.
	if out, _, err = runReportCmd(t, newCollectCommand, "--all", "--stacks", "ollama,vllm"); err != nil || !strings.Contains(out, "Appended 1 summaries") {
		t.Errorf("--all: %v\n%s", err, out)
	}
	other := filepath.Join(t.TempDir(), "benchmarks.csv")
	if out, _, err = runReportCmd(t, newCollectCommand, "--out", other, run, run); err != nil || !strings.Contains(out, "Appended 1 summaries to: "+other) {
		t.Errorf("explicit CSV: %v\n%s", err, out)
	}
}

func TestCollectErrors(t *testing.T) {
	_, logDir := reportEnv(t)
	if _, _, err := runReportCmd(t, newCollectCommand, "--stacks", "ollama sglang"); !isUsage(err) || !strings.Contains(err.Error(), "--stacks") {
		t.Errorf("unknown stack: %v", err)
	}
	if _, _, err := runReportCmd(t, newCollectCommand, "--all", "x.csv"); !isUsage(err) {
		t.Errorf("--all with CSV arguments: %v", err)
	}
	t.Setenv("MODEL_RE", "(")
	if _, _, err := runReportCmd(t, newCollectCommand); !isUsage(err) || !strings.Contains(err.Error(), "MODEL_RE") {
		t.Errorf("bad MODEL_RE: %v", err)
	}
	t.Setenv("MODEL_RE", "")
	if _, _, err := runReportCmd(t, newCollectCommand, filepath.Join(logDir, "ollama_bench_20250101_000000.csv")); err == nil || isUsage(err) {
		t.Errorf("missing CSV: %v", err)
	}
	// Nothing in LOG_DIR: nothing collected, a failure saying so, nothing written.
	empty := filepath.Join(t.TempDir(), "b.csv")
	out, errOut, err := runReportCmd(t, newCollectCommand, "--out", empty)
	if err == nil || isUsage(err) || !strings.Contains(err.Error(), "nothing collected: no run CSVs of ollama") || out != "" {
		t.Errorf("empty LOG_DIR: %v\n%s\n%s", err, out, errOut)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Error("empty LOG_DIR: an aggregate was written")
	}
	// A destination that cannot be written (its parent is a file) fails with a message naming it.
	copyFile(t, reportFixture(t, "ollama_bench_20250913_160342.csv"), filepath.Join(logDir, "ollama_bench_20250913_160342.csv"))
	blocker := filepath.Join(t.TempDir(), "refinery")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runReportCmd(t, newCollectCommand, "--out", filepath.Join(blocker, "benchmarks.csv")); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("unwritable destination: %v", err)
	}
}

// legacyAllHeader is the header of the original's 2025-09-12 llm_bench_*_ALL.csv files (the
// spec's list of legacy formats); the ones in old logs hold nothing else.
const legacyAllHeader = "host,timestamp,endpoint,gpu_name,gpu_uuid,label,model,num_gpu,endpoint_suffix,eval_count,eval_duration,tokens_per_sec\n"

// TestCollectOldLogDir collects a logs folder as the original left it: a real run CSV, the
// header-only llm_bench_*_ALL.csv and a CSV that is not a run CSV. The run is collected, each
// other file is skipped with one warning line naming it and saying why, and the exit status
// says whether anything was collected.
func TestCollectOldLogDir(t *testing.T) {
	root, logDir := reportEnv(t)
	run := copyFile(t, reportFixture(t, "ollama_bench_20250913_160342.csv"), filepath.Join(logDir, "ollama_bench_20250913_160342.csv"))
	legacy := filepath.Join(logDir, "llm_bench_20250912_101500_ALL.csv")
	notes := filepath.Join(logDir, "notes.csv")
	for p, content := range map[string]string{legacy: legacyAllHeader, notes: "model,comment\ngemma3,fast\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	agg := filepath.Join(root, "factory", "LLM", "refinery", "benchmarks.csv")
	skipLegacy := "! skipped " + legacy + ": not a run CSV: the original's legacy llm_bench_*_ALL.csv format (2025-09-12), whose columns fuze does not read (header only, no rows)\n"
	skipNotes := "! skipped " + notes + `: not a run CSV: header "model,comment"`

	// The files as arguments (what `fuze collect logs/*.csv` passes).
	out, errOut, err := runReportCmd(t, newCollectCommand, legacy, notes, run)
	if err != nil {
		t.Fatalf("collect FILES: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Appended 1 summaries to: "+agg+"\n") {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut, skipLegacy) || !strings.Contains(errOut, skipNotes) || strings.Count(errOut, "\n") != 2 {
		t.Errorf("stderr, want exactly the two skip lines:\n%s", errOut)
	}
	if rows, _, err := results.ReadAggregate(agg); err != nil || len(rows) != 1 || rows[0].CSVFile != run {
		t.Errorf("aggregate %+v, err %v", rows, err)
	}

	// The logs folder with --all: the legacy file is named and skipped (notes.csv is not
	// benchmark output and is not looked at); the run is already in the aggregate.
	out, errOut, err = runReportCmd(t, newCollectCommand, "--all")
	if err != nil || !strings.Contains(out, "Appended 0 summaries") || errOut != skipLegacy {
		t.Errorf("--all: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	// Nothing but files that are not run CSVs: exit status 1, a message saying nothing was
	// collected, the skip lines, and the aggregate and best files untouched.
	before, _ := os.ReadFile(agg)
	best := filepath.Join(filepath.Dir(agg), "benchmarks.best.csv")
	bestBefore, _ := os.ReadFile(best)
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"collect", legacy, notes}, strings.NewReader(""), &stdout, &stderr)
	if code != ExitFailure || stdout.Len() != 0 {
		t.Errorf("nothing collected: exit %d, stdout %q", code, stdout.String())
	}
	if want := skipLegacy + skipNotes; !strings.HasPrefix(stderr.String(), want) ||
		!strings.Contains(stderr.String(), "fuze: collect: nothing collected: none of the 2 CSV files is a run CSV with rows") {
		t.Errorf("nothing collected: stderr:\n%s", stderr.String())
	}
	after, _ := os.ReadFile(agg)
	bestAfter, _ := os.ReadFile(best)
	if !bytes.Equal(before, after) || !bytes.Equal(bestBefore, bestAfter) {
		t.Error("a collect that collected nothing changed the aggregate or the best file")
	}
}

func TestSummaryOfFixtureAggregate(t *testing.T) {
	reportEnv(t)
	agg := copyFile(t, reportFixture(t, "benchmarks.csv"), filepath.Join(t.TempDir(), "benchmarks.csv"))
	out, errOut, err := runReportCmd(t, newSummaryCommand, "--csv", agg, "--top", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{
		"Data: " + agg + "\n",
		"\nTop 3 overall:\n",
		"\nBest per (stack, model):\n",
		"\nBest per (stack, model, gpu):\n",
		"\nBest per (host, model) across stacks:\n",
		"\nGlobal best per model (across hosts & stacks, alias names):\n",
		// The original's aggregate has no repeats: the gain is shown, no difference claimed;
		// and no energy: n/a, never 0.
		"  2025-09-14 04:47:23  LLM-FuZe-gemma3-4b-i-f16  ollama  fuze-bakery  127.0.0.1:11435  nvidia-5090        6  151.41    135.05  1.12x (n=1)    n/a\n",
		"Best-per-(stack,model) CSV: " + filepath.Join(filepath.Dir(agg), "benchmarks.best.csv"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "duplicate rows") {
		t.Errorf("stderr does not report the duplicated row: %q", errOut)
	}
	if got := strings.Count(out, "\n  2025-"); got != 3+4 {
		t.Errorf("%d data rows, want 7:\n%s", got, out)
	}

	out, _, err = runReportCmd(t, newSummaryCommand, "--csv", agg, "--only-global", "--no-paths", "--quiet")
	if err != nil || strings.Contains(out, "Data:") || strings.Contains(out, "Top") || strings.Contains(out, "CSV:") || !strings.Contains(out, "Global best per model") {
		t.Errorf("--only-global --no-paths --quiet: %v\n%s", err, out)
	}

	out, _, err = runReportCmd(t, newSummaryCommand, "--csv", agg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Sections []struct {
			ID   string `json:"id"`
			Rows []struct {
				OptimalTPS float64  `json:"optimal_tokps"`
				Ratio      *float64 `json:"ratio"`
			} `json:"rows"`
		} `json:"sections"`
		BestFiles map[string]string `json:"best_files"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(js.Sections) != 5 || js.Sections[0].ID != "top" || len(js.Sections[0].Rows) != 10 ||
		js.Sections[0].Rows[0].OptimalTPS != 151.41 || *js.Sections[0].Rows[0].Ratio != 1.12 || js.BestFiles["by_model"] == "" {
		t.Errorf("JSON: %+v", js)
	}
}

func TestSummaryErrors(t *testing.T) {
	root, _ := reportEnv(t)
	_, _, err := runReportCmd(t, newSummaryCommand)
	want := "No data: " + filepath.Join(root, "factory", "LLM", "refinery", "benchmarks.csv") + " not found"
	if err == nil || err.Error() != want || isUsage(err) {
		t.Errorf("missing aggregate: %v, want %q (exit 1)", err, want)
	}
	if _, _, err := runReportCmd(t, newSummaryCommand, "--top", "-1"); !isUsage(err) || !strings.Contains(err.Error(), "--top") {
		t.Errorf("--top -1: %v", err)
	}
	t.Setenv("GPU_RE", "[")
	if _, _, err := runReportCmd(t, newSummaryCommand); !isUsage(err) || !strings.Contains(err.Error(), "GPU_RE") {
		t.Errorf("bad GPU_RE: %v", err)
	}
	t.Setenv("GPU_RE", "")
	notAgg := filepath.Join(t.TempDir(), "benchmarks.csv")
	os.WriteFile(notAgg, []byte(strings.Join(results.Header, ",")+"\n"), 0o644)
	if _, _, err := runReportCmd(t, newSummaryCommand, "--csv", notAgg); err == nil || !strings.Contains(err.Error(), "not an aggregate") {
		t.Errorf("run CSV as aggregate: %v", err)
	}
}

// writeAnalyzeRuns writes an ollama and a llama.cpp run CSV into dir.
func writeAnalyzeRuns(t *testing.T, dir string) (ollamaCSV, llamaCSV string) {
	t.Helper()
	head := strings.Join(results.Header, ",") + "\n"
	ollamaCSV = filepath.Join(dir, "ollama_bench_20250914_030000.csv")
	os.WriteFile(ollamaCSV, []byte(head+
		"2025-09-14T03:00:00+00:00,127.0.0.1:11435,ollama-test-a.service,A,gemma3:4b-it-fp16,base-as-is,gemma3:4b-it-fp16,,4096,,64,100.00,nvidia-5090,NVIDIA GeForce RTX 5090,GPU-a,32607\n"+
		"2025-09-14T03:00:01+00:00,127.0.0.1:11435,ollama-test-a.service,A,gemma3:4b-it-fp16,optimized,gemma3:4b-it-fp16,28,4096,,64,120.00,nvidia-5090,NVIDIA GeForce RTX 5090,GPU-a,32607\n"+
		"2025-09-14T03:00:02+00:00,127.0.0.1:11436,ollama-test-b.service,B,gemma3:4b-it-fp16,base-as-is,gemma3:4b-it-fp16,,4096,,64,0.00,nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,GPU-b,24564\n"), 0o644)
	llamaCSV = filepath.Join(dir, "llamacpp_bench_20250914_020000.csv")
	os.WriteFile(llamaCSV, []byte(head+
		"2025-09-14T02:00:00+00:00,127.0.0.1:11435,proc,A,gemma3:4b-it-fp16,base-as-is,gemma3-4b-it-fp16,default,4096,512,64,90.00,nvidia-5090,,,,\n"), 0o644)
	return ollamaCSV, llamaCSV
}

func TestAnalyzeCommand(t *testing.T) {
	_, logDir := reportEnv(t)
	ollamaCSV, llamaCSV := writeAnalyzeRuns(t, logDir)

	// No --csv: the newest run CSV of any stack, then of the given stack.
	out, errOut, err := runReportCmd(t, newAnalyzeCommand)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{
		"CSV     : " + ollamaCSV + "\n", "Rows    : 3\n", "Models  : 1\n",
		"\nBaseline vs optimized per (endpoint, model):\n",
		// Rows without a JSONL: no repeats, so the gain is shown with "n=1", never as significant.
		"  LLM-FuZe-gemma3-4b-i-f16  ollama  127.0.0.1:11435  nvidia-5090      100.00    120.00  optimized       28  1.20x (n=1)\n",
		"  LLM-FuZe-gemma3-4b-i-f16  ollama  127.0.0.1:11436  nvidia-3090ti    failed         -  -                -            -\n",
		"\nBest across endpoints (per model):\n", "\nAttempts by outcome:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("analysis lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runReportCmd(t, newAnalyzeCommand, "--stack", "llamacpp")
	if err != nil || !strings.Contains(out, "CSV     : "+llamaCSV) {
		t.Errorf("--stack llamacpp: %v\n%s", err, out)
	}

	// Several CSVs, a model filter, JSON.
	out, _, err = runReportCmd(t, newAnalyzeCommand, "--csv", ollamaCSV, "--csv", llamaCSV, "--model", "^gemma", "--top", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		CSVs        []string `json:"csvs"`
		Rows        int      `json:"rows"`
		Top         []any    `json:"top"`
		PerEndpoint []struct {
			Stack string   `json:"stack"`
			Ratio *float64 `json:"ratio"`
		} `json:"per_endpoint"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(js.CSVs) != 2 || js.Rows != 4 || len(js.Top) != 2 || len(js.PerEndpoint) != 3 {
		t.Errorf("JSON %+v", js)
	}
}

func TestAnalyzeErrors(t *testing.T) {
	_, logDir := reportEnv(t)
	if _, _, err := runReportCmd(t, newAnalyzeCommand, "--stack", "sglang"); !isUsage(err) || !strings.Contains(err.Error(), "--stack") {
		t.Errorf("unknown stack: %v", err)
	}
	if _, _, err := runReportCmd(t, newAnalyzeCommand, "--model", "(", "--csv", "x.csv"); !isUsage(err) || !strings.Contains(err.Error(), "--model") {
		t.Errorf("bad --model: %v", err)
	}
	_, _, err := runReportCmd(t, newAnalyzeCommand)
	if err == nil || isUsage(err) || !strings.Contains(err.Error(), "no run CSV in "+logDir) || !strings.Contains(err.Error(), "--csv") {
		t.Errorf("empty LOG_DIR: %v", err)
	}
	_, _, err = runReportCmd(t, newAnalyzeCommand, "--stack", "vllm")
	if err == nil || !strings.Contains(err.Error(), "no vLLM run CSV") {
		t.Errorf("no vLLM runs: %v", err)
	}
	if _, _, err := runReportCmd(t, newAnalyzeCommand, "--csv", filepath.Join(logDir, "missing.csv")); err == nil {
		t.Error("missing --csv: no error")
	}
}

func TestOrchestratorHelpers(t *testing.T) {
	root, logDir := reportEnv(t)
	ollamaCSV, llamaCSV := writeAnalyzeRuns(t, logDir)
	var out, errOut bytes.Buffer
	s := streams{out: &out, err: &errOut}
	agg, err := collectRuns(s, root, []string{ollamaCSV, llamaCSV})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if want := filepath.Join(root, "factory", "LLM", "refinery", "benchmarks.csv"); agg != want {
		t.Errorf("aggregate %s, want %s", agg, want)
	}
	if !strings.Contains(out.String(), "Appended 2 summaries to: "+agg) {
		t.Errorf("collect output:\n%s", out.String())
	}
	if _, err := collectRuns(s, root, []string{ollamaCSV, llamaCSV}); err != nil {
		t.Fatal(err)
	}
	if rows, _, _ := results.ReadAggregate(agg); len(rows) != 2 {
		t.Errorf("aggregate has %d rows after collecting twice, want 2", len(rows))
	}

	cfg := knobs.Resolve([]string{"ALIAS_PREFIX=X-", "ALIAS_SUFFIX=-explore"})
	out.Reset()
	if err := printGlobalBest(s, agg, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "\nGlobal best per model (across hosts & stacks, alias names):\n") ||
		!strings.Contains(out.String(), "X-gemma3-4b-i-f16-explore  ollama") || strings.Count(out.String(), "\n") != 4 {
		t.Errorf("global best:\n%s", out.String())
	}
	out.Reset()
	if err := printAnalysis(s, []string{ollamaCSV, llamaCSV}, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "CSV     : "+ollamaCSV+"\nCSV     : "+llamaCSV+"\n") ||
		!strings.Contains(out.String(), "X-gemma3-4b-i-f16-explore  llama.cpp  127.0.0.1:11435") {
		t.Errorf("analysis:\n%s", out.String())
	}
}
