package knobs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// The documents and env files of the original system, in testdata/ (testdata/SOURCES.md): the
// seed README, an excerpt of the spec holding every line that quotes a knob, and the fixtures.
var (
	seedPath = []string{"seed", "FuZe-LLM-Stack-Benchmarks.md"}
	specPath = []string{"spec", "original-behaviour.excerpt.md"}
)

// singleWordKnobs are knob names without an underscore; any other single
// upper-case word in the documents (REGEX, PATH, HOST:PORT placeholders…) is
// not taken for a knob.
var singleWordKnobs = []string{"PROMPT", "BATCH", "CTX", "PRED", "DTYPE", "MODELS", "TEMPERATURE",
	"EXHAUSTIVE", "VERBOSE", "CONCURRENCY"}

// notKnobs are upper-case names the documents quote that are not knobs.
var notKnobs = map[string]string{
	"CUDA_VISIBLE_DEVICES": "set by fuze in each server's environment to pin it to a GPU",
	"OLLAMA_HOST":          "set by fuze in each Ollama daemon's / CLI call's environment",
	"OLLAMA_MODELS":        "set by fuze in each Ollama daemon's environment from OLLAMA_MODELS_DIR",
	"OLLAMA_SCHED_SPREAD":  "set by the later multi-GPU mode in the daemon's environment",
	"OLLAMA_UPGRADE":       "passed to Ollama's own installer script",
	"GPU_UUID":             "placeholder in CUDA_VISIBLE_DEVICES=<GPU_UUID>",
	"MODEL_TAG":            "placeholder __MODEL_TAG__ of the templates",
	"GGML_CUDA":            "a llama.cpp CMake option",
	"HTTP_PORT":            "argument of the triton-run helper",
	"REPO_DIR":             "argument of the triton-run helper",
	"ENV_ROOT":             "internal variable of the original orchestrator",
	"LLAMACPP_PATH_<key>":  "the spec's spelling of LLAMACPP_PATH_<alias>",
}

var (
	backtickSpan = regexp.MustCompile("`[^`\n]+`")
	upperToken   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(<[a-z]+>)?$`)
	tokenSep     = regexp.MustCompile(`[^A-Za-z0-9_<>]+`)
)

// backtickedKnobNames returns the knob-like names quoted in backticks in a
// Markdown document.
func backtickedKnobNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var names []string
	for _, span := range backtickSpan.FindAllString(string(data), -1) {
		for _, tok := range tokenSep.Split(strings.Trim(span, "`"), -1) {
			if !upperToken.MatchString(tok) {
				continue
			}
			if !strings.Contains(tok, "_") && !slices.Contains(singleWordKnobs, tok) {
				continue
			}
			if !seen[tok] {
				seen[tok] = true
				names = append(names, tok)
			}
		}
	}
	return names
}

func checkRegistered(t *testing.T, path string, names []string, min int) {
	t.Helper()
	if len(names) < min {
		t.Fatalf("found only %d knob names in %s; the extraction is broken", len(names), path)
	}
	for _, n := range names {
		if why, ok := notKnobs[n]; ok {
			t.Logf("%s: not a knob (%s)", n, why)
			continue
		}
		if _, ok := Matches(n); !ok {
			t.Errorf("%s names `%s`, which is not a registered knob", path, n)
		}
	}
}

func TestSeedKnobsRegistered(t *testing.T) {
	seed := testfixture.Path(t, seedPath...)
	names := backtickedKnobNames(t, seed)
	checkRegistered(t, seed, names, 30)
	// Spot-check the extraction itself.
	for _, want := range []string{"BENCH_NUM_CTX", "NG_PERCENT_SET", "VLLM_MODEL_<alias>", "LLAMACPP_PATH_<alias>", "DTYPE", "EXHAUSTIVE"} {
		if !slices.Contains(names, want) {
			t.Errorf("extraction from the seed missed %s (got %v)", want, names)
		}
	}
}

func TestSpecKnobsRegistered(t *testing.T) {
	spec := testfixture.Path(t, specPath...)
	checkRegistered(t, spec, backtickedKnobNames(t, spec), 80)
}

func TestFixtureKeysRegistered(t *testing.T) {
	fixturesPath := testfixture.OriginalDir(t)
	var files []string
	for _, pat := range []string{"*.env", "*.env.template"} {
		m, err := filepath.Glob(filepath.Join(fixturesPath, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no env files or templates in %s", fixturesPath)
	}
	assign := regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\+?=`)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		keys := 0
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			m := assign.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			keys++
			if _, ok := Matches(m[1]); !ok {
				t.Errorf("%s sets %s, which is not a registered knob", filepath.Base(f), m[1])
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if keys == 0 {
			t.Errorf("%s: no KEY=value lines found", f)
		}
	}
}

// TestDefaults pins the defaults the seed README and the spec give (the spec,
// i.e. the original code, wins where they disagree).
func TestDefaults(t *testing.T) {
	for name, want := range map[string]string{
		"BENCH_NUM_CTX":        "4096",
		"BENCH_NUM_PREDICT":    "64",
		"TEMPERATURE":          "0.0",
		"LOG_DIR":              "/var/log/fuze-stack",
		"FAST_MODE":            "1",
		"AUTO_NG":              "1",
		"NG_PERCENT_SET":       "100 90 75 60 50 40 30 20 10",
		"EXHAUSTIVE":           "0",
		"KEEP_FAILED_VARIANTS": "0",
		"INCLUDE_MODELS":       "",
		"EXCLUDE_MODELS":       "",
		"ALIAS_PREFIX":         "LLM-FuZe-", // README: FuZeCORE-; the code: LLM-FuZe-
		"ALIAS_SUFFIX":         "",
		"TEST_PORT_A":          "11435",
		"TEST_PORT_B":          "11436",
		"PERSISTENT_PORT":      "11434",
		"OLLAMA_MODELS_DIR":    "/FuZe/models/ollama",
		"OLLAMA_BIN":           "/usr/local/bin/ollama",
		"NUM_GPU_CANDIDATES":   "80 72 64 56 48 40 32 24 16",
		"PROMPT":               "Tell me a 1-sentence fun fact about GPUs.",
		"EARLY_STOP_DELTA":     "0.03",
		"ZERO_TOKPS_BREAK":     "3",
		"NO_IMPROVE_LIMIT":     "5",
		"VERBOSE":              "1",
		"WAIT_API_SECS":        "60",
		"TIMEOUT_GEN":          "90",
		"TIMEOUT_TAGS":         "10",
		"SERVICE_HOME":         "/root",
		"MATCH_GPU_A":          "5090",
		"MATCH_GPU_B":          "3090 Ti",
		"GC_AFTER_RUN":         "1",
		"PUBLISH_BEST":         "0",
		"WARMUP_PUBLISH":       "1",
		"WARMUP_NUM_PREDICT":   "64",
		"DEBUG_BENCH":          "0",
		"CLEAN_START_TESTS":    "1",
		"PORT_A":               "11435",
		"PORT_B":               "11436",
		"PYTHON_BIN":           "python3",
		"PRED":                 "256",
		"DTYPE":                "float16",
		"GPU_MEM_UTIL":         "0.90",
		"MODEL_DIR":            "/FuZe/models/gguf",
		"NGL_CANDIDATES":       "-1 64 48 32 24 16 0",
		"LLAMACPP_BIN":         "",
		"TRITON_HTTP_A":        "127.0.0.1:8000",
		"TRITON_HTTP_B":        "127.0.0.1:8001",
		"TRITON_MODELS":        "llama|llama4-16x17b deepseek|deepseek-r1-70b llama-128|llama4-128x17b",
		"CONCURRENCY":          "1",
		"REQUEST_COUNT":        "200",
		"TIMEOUT_SECS":         "60",
		"FORCE_OLLAMA_INSTALL": "0",
		"VARIANT_CLEANUP":      "0",
		"GGUF_CLEAN":           "0",
		"GGUF_DEST_DIR":        "/FuZe/models/gguf",
		"EXPORT_OVERWRITE":     "0",
		"SKIP_INLINE_ANALYZE":  "1",
		"HOST":                 "127.0.0.1:11434",
		"MODELDIR":             "/FuZe/models/ollama",
		"CANON":                "/FuZe/models/ollama",
		"SKIP_VARIANTS":        "1",
		"VALIDATE_EXISTING":    "1",
		"FORCE_REEXPORT":       "0",
		"AUTO_FILTER_NON_GGUF": "1",
		"TOPN":                 "10",
		"FUZE_ROOT":            "",
		"NO_COLOR":             "",
	} {
		k, ok := Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if k.Default != want {
			t.Errorf("%s default = %q, want %q", name, k.Default, want)
		}
	}
	for _, tc := range []struct{ name, stack, want string }{
		{"CTX", StackVLLM, "4096"},
		{"CTX", StackLlamaCpp, "1024"},
		{"BATCH", StackVLLM, "16"},
		{"BATCH", StackLlamaCpp, "32"},
		{"BATCH", StackTriton, "1"},
		{"DEST_DIR", StackOllama, "/FuZe/models/gguf"},
		{"DEST_DIR", StackEnv, ""},
		{"BENCH_NUM_CTX", StackLlamaCpp, "4096"},
	} {
		k, _ := Lookup(tc.name)
		if got := k.DefaultFor(tc.stack); got != tc.want {
			t.Errorf("%s default for %s = %q, want %q", tc.name, tc.stack, got, tc.want)
		}
	}
	if k, _ := Lookup("ALIAS_PREFIX"); !strings.Contains(k.Doc, "FuZeCORE-") {
		t.Errorf("ALIAS_PREFIX doc should say why it is not the README's FuZeCORE-: %q", k.Doc)
	}
	for _, unused := range []string{"EARLY_STOP_DELTA", "SERVICE_HOME", "SUMMARY_FILE"} {
		if k, _ := Lookup(unused); !strings.Contains(k.Doc, "never") {
			t.Errorf("%s doc should say it is never used: %q", unused, k.Doc)
		}
	}
}

func TestRegistryWellFormed(t *testing.T) {
	all := All()
	if len(all) != len(registry) {
		t.Fatalf("All() has %d knobs, registry %d", len(all), len(registry))
	}
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]*(<[a-z]+>|[a-z0-9_]*)$`)
	for i, k := range all {
		if i > 0 && all[i-1].Name >= k.Name {
			t.Errorf("All() not sorted at %s", k.Name)
		}
		if !name.MatchString(k.Name) {
			t.Errorf("bad knob name %q", k.Name)
		}
		if k.Doc == "" || strings.ContainsAny(k.Doc, "\t\n\r") {
			t.Errorf("%s: doc must be one non-empty line without tabs: %q", k.Name, k.Doc)
		}
		if !slices.Contains(Kinds(), k.Kind) {
			t.Errorf("%s: unknown kind %q", k.Name, k.Kind)
		}
		if len(k.Stacks) == 0 {
			t.Errorf("%s: no stacks", k.Name)
		}
		for _, s := range k.Stacks {
			if !slices.Contains(Stacks(), s) {
				t.Errorf("%s: unknown stack %q", k.Name, s)
			}
		}
		if err := k.Check(k.Default); err != nil {
			t.Errorf("%s: default %q is not a valid %s: %v", k.Name, k.Default, k.Kind, err)
		}
		for s, d := range k.StackDefaults {
			if !slices.Contains(k.Stacks, s) {
				t.Errorf("%s: stack default for %q, which it does not affect", k.Name, s)
			}
			if err := k.Check(d); err != nil {
				t.Errorf("%s: %s default %q is not a valid %s: %v", k.Name, s, d, k.Kind, err)
			}
		}
	}
	// All returns copies.
	all[0].Stacks[0] = "mutated"
	if All()[0].Stacks[0] == "mutated" {
		t.Error("All() shares Stacks with the registry")
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = no match
	}{
		{"BENCH_NUM_CTX", "BENCH_NUM_CTX"},
		{"VLLM_MODEL_<alias>", "VLLM_MODEL_<alias>"},
		{"VLLM_MODEL_llama4_16x17b", "VLLM_MODEL_llama4_16x17b"}, // exact entry wins
		{"VLLM_MODEL_mistral_7b", "VLLM_MODEL_<alias>"},
		{"LLAMACPP_PATH_gemma3_4b_it_fp16", "LLAMACPP_PATH_<alias>"},
		{"LLAMACPP_PATH_gemma3_4b_it_fp16_", "LLAMACPP_PATH_<alias>"}, // the original's trailing _
		{"LLAMACPP_PATH_", ""},
		{"LLAMACPP_PATH_a-b", ""},
		{"VLLM_MODEL", ""},
		{"bench_num_ctx", ""},
		{"PATH", ""},
		{"", ""},
	} {
		k, ok := Matches(tc.in)
		if got := map[bool]string{true: k.Name}[ok]; got != tc.want {
			t.Errorf("Matches(%q) = %q, %v; want %q", tc.in, k.Name, ok, tc.want)
		}
	}
	if _, ok := Lookup("VLLM_MODEL_mistral_7b"); ok {
		t.Error("Lookup must match exact names only")
	}
}

func TestParseStack(t *testing.T) {
	for in, want := range map[string]string{
		"ollama": StackOllama, "Ollama": StackOllama, "vLLM": StackVLLM, "VLLM": StackVLLM, "vllm": StackVLLM,
		"llama.cpp": StackLlamaCpp, "llamacpp": StackLlamaCpp, "llama-cpp": StackLlamaCpp,
		"Triton": StackTriton, "bench": StackBench, "env": StackEnv, "report": StackReport,
		"system": StackSystem, "all": StackAll,
	} {
		if got, ok := ParseStack(in); !ok || got != want {
			t.Errorf("ParseStack(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := ParseStack("sglang"); ok {
		t.Error("ParseStack(sglang) should fail")
	}
	for _, s := range Stacks() {
		if got, ok := ParseStack(s); !ok || got != s {
			t.Errorf("ParseStack(%q) = %q, %v", s, got, ok)
		}
	}
}

func TestForStack(t *testing.T) {
	has := func(ks []Knob, name string) bool {
		return slices.ContainsFunc(ks, func(k Knob) bool { return k.Name == name })
	}
	ll := ForStack(StackLlamaCpp)
	for _, n := range []string{"NGL_CANDIDATES", "CTX", "BENCH_NUM_CTX", "LLAMACPP_PATH_<alias>"} {
		if !has(ll, n) {
			t.Errorf("ForStack(llama.cpp) lacks %s", n)
		}
	}
	if has(ll, "FAST_MODE") {
		t.Error("ForStack(llama.cpp) has FAST_MODE")
	}
	all := ForStack(StackAll)
	if !has(all, "BENCH_NUM_CTX") || has(all, "FAST_MODE") {
		t.Errorf("ForStack(all) should hold only knobs of every stack")
	}
}
