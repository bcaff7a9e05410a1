package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanDryRunThenYes(t *testing.T) {
	root, logDir := t.TempDir(), t.TempDir()
	t.Setenv("FUZE_ROOT", root)
	t.Setenv("LOG_DIR", logDir)
	refinery := filepath.Join(root, "factory", "LLM", "refinery")
	explore := filepath.Join(refinery, "stack", "env", "explore")
	preprod := filepath.Join(refinery, "stack", "env", "preprod")
	for _, p := range []string{
		filepath.Join(logDir, "ollama_bench_20261127_070000.csv"), filepath.Join(logDir, "ollama_bench_20261127_070000.jsonl"),
		filepath.Join(logDir, "ollama_bench_20261127_080000.csv"), filepath.Join(logDir, "ollama_bench_20261127_080000.jsonl"),
		filepath.Join(logDir, "llamacpp_bench_20261127_070000.csv"),
		filepath.Join(logDir, "wrapper_20261127_070000.summary"), filepath.Join(logDir, "debug_20261127_070000", "x.json"),
		filepath.Join(logDir, "notes.txt"),
		filepath.Join(refinery, "benchmarks.csv"), filepath.Join(refinery, "benchmarks.best.csv"),
		filepath.Join(explore, "LLM-FuZe-a.env"), filepath.Join(preprod, "LLM-FuZe-a.env"),
	} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	code, out, stderr := runFuze(t, context.Background(), "clean", "--keep-latest", "1", "--envs")
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(out, "Summary: 7 path(s) would be removed (dry run") {
		t.Fatalf("dry run:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(logDir, "ollama_bench_20261127_070000.csv")); err != nil {
		t.Fatal("a dry run removed something")
	}
	code, out, _ = runFuze(t, context.Background(), "stack", "clean", "--keep-latest", "1", "--envs", "--yes")
	if code != 0 || !strings.Contains(out, "Summary: removed 7 path(s)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for p, want := range map[string]bool{
		"ollama_bench_20261127_080000.csv": true, "ollama_bench_20261127_080000.jsonl": true, // the newest run is kept
		"llamacpp_bench_20261127_070000.csv": true, "notes.txt": true,
		"ollama_bench_20261127_070000.csv": false, "ollama_bench_20261127_070000.jsonl": false,
		"wrapper_20261127_070000.summary": false, "debug_20261127_070000": false,
	} {
		if _, err := os.Stat(filepath.Join(logDir, p)); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, want)
		}
	}
	if _, err := os.Stat(filepath.Join(preprod, "LLM-FuZe-a.env")); err != nil {
		t.Error("preprod env files are removed only with --env preprod and FORCE_PREPROD_ENVS=1")
	}
	code, _, stderr = runFuze(t, context.Background(), "clean", "--envs", "--env", "preprod")
	if code != 2 || !strings.Contains(stderr, "FORCE_PREPROD_ENVS=1") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
