package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
)

func runKnobsCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newKnobsCommand(streams{out: &out, err: &errOut})
	cmd.SetArgs(args)
	cmd.SetOut(&errOut) // cobra's own usage text, if any, must not pollute stdout
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestKnobsTable(t *testing.T) {
	out, _, err := runKnobsCmd(t)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(knobs.All())+1 {
		t.Fatalf("got %d lines, want header + %d knobs", len(lines), len(knobs.All()))
	}
	header := regexp.MustCompile(`^NAME +DEFAULT +STACKS +MEANING$`)
	if !header.MatchString(lines[0]) {
		t.Errorf("header = %q", lines[0])
	}
	// Columns are aligned: every row's DEFAULT starts where the header's does.
	col := strings.Index(lines[0], "DEFAULT")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("misaligned row %q", l)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^BENCH_NUM_CTX +4096 +all +Context length`),
		regexp.MustCompile(`(?m)^ALIAS_PREFIX +LLM-FuZe- +ollama,env,report +`),
		regexp.MustCompile(`(?m)^NG_PERCENT_SET +"100 90 75 60 50 40 30 20 10" +ollama +`),
		regexp.MustCompile(`(?m)^CTX +4096, llama\.cpp: 1024 +vllm,llama\.cpp +`),
		regexp.MustCompile(`(?m)^LLAMACPP_BIN +- +llama\.cpp +`),
		regexp.MustCompile(`(?m)^VLLM_MODEL_<alias> +- +vllm +`),
	} {
		if !want.MatchString(out) {
			t.Errorf("table lacks a row matching %s", want)
		}
	}
	// Sorted by name.
	var prev string
	for _, l := range lines[1:] {
		name := strings.Fields(l)[0]
		if name < prev {
			t.Errorf("%s listed after %s", name, prev)
		}
		prev = name
	}
}

func TestKnobsJSON(t *testing.T) {
	out, _, err := runKnobsCmd(t, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got) != len(knobs.All()) {
		t.Fatalf("%d knobs in JSON, registry has %d", len(got), len(knobs.All()))
	}
	for _, k := range got {
		for _, field := range []string{"name", "default", "doc", "stacks", "kind"} {
			if _, ok := k[field]; !ok {
				t.Errorf("%v lacks %q", k["name"], field)
			}
		}
		if k["name"] == "BENCH_NUM_CTX" && (k["default"] != "4096" || k["kind"] != "int") {
			t.Errorf("BENCH_NUM_CTX = %v", k)
		}
		if k["name"] == "BATCH" {
			sd, _ := k["stack_defaults"].(map[string]any)
			if sd["llama.cpp"] != "32" || sd["triton"] != "1" {
				t.Errorf("BATCH stack_defaults = %v", k["stack_defaults"])
			}
		}
	}
}

func TestKnobsStackFilter(t *testing.T) {
	out, _, err := runKnobsCmd(t, "--stack", "llama.cpp", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Name   string   `json:"name"`
		Stacks []string `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= len(knobs.All()) {
		t.Fatalf("--stack llama.cpp gave %d of %d knobs", len(got), len(knobs.All()))
	}
	names := map[string]bool{}
	for _, k := range got {
		names[k.Name] = true
	}
	if !names["NGL_CANDIDATES"] || !names["BENCH_NUM_CTX"] || names["FAST_MODE"] {
		t.Errorf("--stack llama.cpp: NGL_CANDIDATES and BENCH_NUM_CTX (all) expected, FAST_MODE not: %v", names)
	}
	// User spellings of stacks work.
	tbl, _, err := runKnobsCmd(t, "--stack", "vLLM")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tbl, "GPU_MEM_UTIL") || strings.Contains(tbl, "NGL_CANDIDATES") {
		t.Errorf("--stack vLLM table wrong:\n%s", tbl)
	}
}

func TestKnobsUsageErrors(t *testing.T) {
	out, _, err := runKnobsCmd(t, "--stack", "sglang")
	if err == nil {
		t.Fatal("unknown --stack accepted")
	}
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("unknown --stack: %v is not a usage error (exit 2)", err)
	}
	if !strings.Contains(err.Error(), `"sglang"`) || !strings.Contains(err.Error(), "llama.cpp") {
		t.Errorf("error should name the bad stack and the valid ones: %v", err)
	}
	if out != "" {
		t.Errorf("stdout on error: %q", out)
	}
	if _, _, err := runKnobsCmd(t, "extra"); err == nil {
		t.Error("positional argument accepted")
	}
}
