package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/htmlreport"
)

// committedReportArgs are the arguments that made results/gpu/report.html, read back from the
// page: its title and the --meta values in its provenance block.
func committedReportArgs(t *testing.T, page []byte) []string {
	t.Helper()
	d, _, err := htmlreport.EmbeddedData(page)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"report", gpuResults, "--title", d.Title}
	for _, kv := range d.Provenance.Stacks {
		if kv.Key == "llama.cpp" { // not in the runs: given with --meta
			args = append(args, "--meta", kv.Key+"="+kv.Value)
		}
	}
	for _, kv := range d.Provenance.Extra {
		args = append(args, "--meta", kv.Key+"="+kv.Value)
	}
	return args
}

// TestCommittedGPUReport: results/gpu/report.html is what `fuze report results/gpu` writes
// today from the committed runs, byte for byte (tables, embedded data, uPlot and script).
func TestCommittedGPUReport(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join(gpuResults, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.html")
	args := append(committedReportArgs(t, committed), "-o", out)
	code, stdout, stderr := fuze(t, args...)
	if code != 0 {
		t.Fatalf("fuze %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if !strings.Contains(stdout, "2 models, 15 charts") {
		t.Errorf("stdout %q", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		args[1] = "results/gpu"
		t.Errorf("results/gpu/report.html is not what fuze writes from results/gpu today; remake it from the repository root with\n  go run ./cmd/fuze %s -o results/gpu/report.html\nand its screenshot with scripts/report-screenshot.sh", quoteArgs(args))
	}
}

func quoteArgs(args []string) string {
	var out []string
	for _, a := range args {
		if strings.ContainsAny(a, " ()'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func TestReportCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.html")
	code, stdout, stderr := fuze(t, "report", filepath.Join(gpuResults, "ollama_llama-8b.csv"),
		filepath.Join(gpuResults, "llamacpp_llama-8b.jsonl"), "-o", out, "--meta", "site=lab 3", "--title", "8B")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := htmlreport.EmbeddedData(page)
	if err != nil {
		t.Fatal(err)
	}
	if d.Title != "8B" || len(d.Models) != 1 || d.Models[0].Name != "llama-8b" || len(d.Models[0].Rows) != 4 ||
		d.Provenance.Extra[0] != (htmlreport.KV{Key: "site", Value: "lab 3"}) || d.Generator != "fuze "+Version {
		t.Errorf("data: title %q models %d generator %q extra %v", d.Title, len(d.Models), d.Generator, d.Provenance.Extra)
	}
	if !strings.Contains(stdout, "1 models, 2 charts") {
		t.Errorf("stdout %q", stdout)
	}

	// Bad input is a usage error (exit 2) that names the file.
	bad := filepath.Join(gpuResults, "machine.txt.missing")
	if code, _, stderr := fuze(t, "report", bad, "-o", out); code != ExitUsage || !strings.Contains(stderr, "machine.txt.missing") {
		t.Errorf("missing input: exit %d, %q", code, stderr)
	}
	if code, _, stderr := fuze(t, "report", filepath.Join(gpuResults, "gpu-llama-8b.env")); code != ExitUsage || !strings.Contains(stderr, "gpu-llama-8b.env") {
		t.Errorf("an env file: exit %d, %q", code, stderr)
	}
	if code, _, stderr := fuze(t, "report", gpuResults, "--meta", "novalue"); code != ExitUsage || !strings.Contains(stderr, "KEY=VALUE") {
		t.Errorf("--meta novalue: exit %d, %q", code, stderr)
	}
}
