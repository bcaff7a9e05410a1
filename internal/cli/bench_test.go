package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/bench"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/results"
)

// benchRoot makes a FUZE_ROOT holding the shipped templates, and points fuze at srv.
func benchRoot(t *testing.T, srv *ollamatest.Server) (root, logDir string) {
	t.Helper()
	root = t.TempDir()
	tdir := filepath.Join(root, "factory", "LLM", "refinery", "stack", "env", "templates")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"explore", "preprod"} {
		name := "FuZeCORE-" + m + ".env.template"
		raw, err := os.ReadFile(filepath.Join("..", "..", "factory", "LLM", "refinery", "stack", "env", "templates", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tdir, name), raw, 0o644)
	}
	_, port, _ := net.SplitHostPort(srv.Addr)
	logDir = filepath.Join(root, "logs")
	t.Setenv("FUZE_ROOT", root)
	t.Setenv("PERSISTENT_PORT", port)
	t.Setenv("TEST_PORT_A", strconv.Itoa(ollamatest.FreePort(t)))
	t.Setenv("OLLAMA_MODELS_DIR", srv.Models)
	t.Setenv("OLLAMA_BIN", ollamatest.Binary(t))
	t.Setenv("LOG_DIR", logDir)
	t.Setenv("BENCH_REPEAT", "1")
	t.Setenv("CPU_TUNE", "0") // these tests are about the seed's offload sweep
	return root, logDir
}

func TestBenchExploreEndToEnd(t *testing.T) {
	srv := persistentWithTiny(t, "tiny:latest")
	srv.CreateModel(t, "other:1b", ollamatest.TinyGGUF(t))
	root, logDir := benchRoot(t, srv)

	code, stdout, stderr := runFuze(t, context.Background(), "bench", "--env", "explore", "--model", "^tiny", "ollama")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	refinery := filepath.Join(root, "factory", "LLM", "refinery")
	// Destinations first, as the original printed them.
	if i := strings.Index(stdout, "Best-per-(stack,model) CSV: "+filepath.Join(refinery, "benchmarks.best.csv")); i < 0 || i > strings.Index(stdout, "== ENV:") {
		t.Fatalf("best CSV destinations not printed first:\n%s", stdout)
	}
	// Only the model the --model filter keeps got an env file; it came from the template.
	envs, _ := filepath.Glob(filepath.Join(refinery, "stack", "env", "explore", "*.env"))
	if len(envs) != 1 || filepath.Base(envs[0]) != "LLM-FuZe-tiny-latest.env" {
		t.Fatalf("env files %v", envs)
	}
	csvs, _ := filepath.Glob(filepath.Join(logDir, "ollama_bench_*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("run CSVs %v", csvs)
	}
	rows, warns, err := results.ReadRunCSV(csvs[0])
	if err != nil || len(warns) > 0 {
		t.Fatal(err, warns)
	}
	// Explore profile: exhaustive sweep of 3 layers and PUBLISH_BEST=1. With BENCH_REPEAT=1
	// no candidate can significantly beat the server's default, which stays best: there is no
	// num_gpu to bake, so no published row.
	var labels []string
	for _, r := range rows {
		labels = append(labels, r.VariantLabel)
		if r.BaseModel != "tiny:latest" {
			t.Errorf("row for %s: the profile's INCLUDE_MODELS was not applied", r.BaseModel)
		}
	}
	if got := strings.Join(labels, " "); got != "base-as-is optimized optimized optimized" {
		t.Fatalf("labels %s\n%s", got, stderr)
	}
	if !strings.Contains(stdout+stderr, "no candidate beat it significantly") {
		t.Fatalf("the default is not reported best:\n%s\n%s", stdout, stderr)
	}
	for _, name := range []string{"benchmarks.csv", "benchmarks.best.csv", "benchmarks.best.by_host_model.csv", "benchmarks.best.by_model.csv"} {
		if st, err := os.Stat(filepath.Join(refinery, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	gb := strings.Index(stdout, "Global best per model")
	an := strings.Index(stdout, "Current run analysis")
	if gb < 0 || an < gb {
		t.Fatalf("want the global-best table then the analysis:\n%s", stdout)
	}
	summaries, _ := filepath.Glob(filepath.Join(logDir, "wrapper_*.summary"))
	transcripts, _ := filepath.Glob(filepath.Join(logDir, "wrapper_*.log"))
	if len(summaries) != 1 || len(transcripts) != 1 {
		t.Fatalf("step log %v transcript %v", summaries, transcripts)
	}
	steps, _ := os.ReadFile(summaries[0])
	if !strings.HasPrefix(string(steps), "ts,step,rc,seconds\n") || !strings.Contains(string(steps), ",ollama:LLM-FuZe-tiny-latest:benchmark,0,") {
		t.Fatalf("step log:\n%s", steps)
	}
	// Collecting the same run again changes nothing.
	agg := filepath.Join(refinery, "benchmarks.csv")
	before, _ := os.ReadFile(agg)
	if code, _, stderr := runFuze(t, context.Background(), "collect", csvs[0]); code != 0 {
		t.Fatalf("collect: %s", stderr)
	}
	after, _ := os.ReadFile(agg)
	if string(before) != string(after) {
		t.Fatalf("collect twice changed the aggregate:\n%s\n---\n%s", before, after)
	}
}

func TestBenchBadInput(t *testing.T) {
	t.Setenv("FUZE_ROOT", t.TempDir())
	t.Setenv("LOG_DIR", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--env", "staging"}, `--env "staging": want explore, preprod or prod`},
		{[]string{"bench", "--stack", "ollama,sglang"}, "unknown stack: sglang"},
		{[]string{"bench", "--model", "(["}, `--model "([": bad regular expression`},
		{[]string{"bench", "ollama"}, "No env files matched"},
	} {
		code, _, stderr := runFuze(t, context.Background(), tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d stderr %q, want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBenchLockFailsFast(t *testing.T) {
	root := t.TempDir()
	unlock, err := bench.Lock(root)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	t.Setenv("FUZE_ROOT", root)
	code, _, stderr := runFuze(t, context.Background(), "bench", "ollama")
	if code != 1 || !strings.Contains(stderr, "another fuze bench is running on "+root) || !strings.Contains(stderr, "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestParseStacks(t *testing.T) {
	got, err := parseStacks([]string{"ollama llama.cpp", "vLLM,Triton"}, []string{"vllm", "llamacpp"})
	if err != nil || strings.Join(got, " ") != "ollama llama.cpp vLLM Triton" {
		t.Fatalf("%v %v", got, err)
	}
	if got, _ := parseStacks(nil, nil); strings.Join(got, " ") != "ollama llama.cpp vLLM Triton" {
		t.Fatalf("default %v", got)
	}
}

// On a machine with only Ollama, the other stacks are reported unavailable with their reason
// and the Ollama part is measured, collected and analysed.
func TestBenchOtherStacksUnavailable(t *testing.T) {
	srv := persistentWithTiny(t, "tiny:latest")
	_, logDir := benchRoot(t, srv)
	t.Setenv("PATH", "/usr/bin:/bin") // no llama-server, no vllm
	t.Setenv("TRITON_HTTP_A", "127.0.0.1:"+strconv.Itoa(ollamatest.FreePort(t)))
	t.Setenv("TRITON_HTTP_B", "")
	code, stdout, stderr := runFuze(t, context.Background(), "bench", "--env", "preprod", "--stack", "ollama llama.cpp vLLM Triton")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, st := range []string{"llama.cpp", "vLLM", "Triton"} {
		if !regexp.MustCompile(`- \[` + regexp.QuoteMeta(st) + `:LLM-FuZe-tiny-latest:benchmark\] unavailable \(\d+s\): \S`).MatchString(stderr) {
			t.Errorf("%s not reported unavailable with a reason:\n%s", st, stderr)
		}
	}
	if !strings.Contains(stderr, "✔ [ollama:LLM-FuZe-tiny-latest:benchmark] done") || !strings.Contains(stdout, "3 step(s) skipped: stack unavailable") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	csvs, _ := filepath.Glob(filepath.Join(logDir, "*_bench_*.csv"))
	if len(csvs) != 1 || !strings.Contains(csvs[0], "ollama_bench_") {
		t.Fatalf("run CSVs %v", csvs)
	}
}
