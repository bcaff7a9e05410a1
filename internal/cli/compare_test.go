package cli

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// gpuResults is the committed GPU results folder.
var gpuResults = filepath.Join("..", "..", "results", "gpu")

// fuze runs fuze in-process: exit status, stdout, stderr.
func fuze(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runFuze(t, t.Context(), args...)
}

func TestCompareCommand(t *testing.T) {
	old, new := filepath.Join(gpuResults, "llamacpp_llama-8b.csv"), filepath.Join(gpuResults, "ollama_llama-8b.csv")
	code, stdout, stderr := fuze(t, "compare", old, new)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"(stack=llama.cpp model=llama-8b batch=32)", "33 layers  153.80 [145.10–154.81]  5  164.65 [161.06–166.58]  5     +7.06%  0.008"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = fuze(t, "compare", "--json", filepath.Join(gpuResults, "ollama_llama-1b.csv"), filepath.Join(gpuResults, "llamacpp_llama-1b.csv"))
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, stderr)
	}
	var rc struct {
		Rows []struct {
			Key         map[string]string `json:"key"`
			Delta       string            `json:"delta"`
			P           float64           `json:"p"`
			Significant bool              `json:"significant"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(stdout), &rc); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	var got []string
	for _, r := range rc.Rows {
		got = append(got, r.Key["offload"]+" "+r.Delta)
	}
	// All layers on the GPU: no difference between the stacks on the 1B (p = 1).
	if strings.Join(got, ", ") != "default -91.08%, 17 ~, best ~" || math.Abs(rc.Rows[1].P-1) > 1e-9 {
		t.Errorf("rows %v", got)
	}
	if code, _, _ := fuze(t, "compare", old); code != ExitUsage {
		t.Errorf("one argument: exit %d", code)
	}
	if code, _, stderr := fuze(t, "compare", old, filepath.Join(gpuResults, "nothing.csv")); code != ExitUsage || !strings.Contains(stderr, "nothing.csv") {
		t.Errorf("a missing file: exit %d %q", code, stderr)
	}
}
