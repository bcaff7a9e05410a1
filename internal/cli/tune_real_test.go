package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/tune"
)

// A real Ollama daemon tuned over a server-level knob (flash attention: the test daemon is
// restarted with its env) and a request-level one (num_thread): every configuration is
// measured under its daemon, each daemon configuration started once, and the tuning report
// lies beside the run CSV. Nothing here asserts a speed.
func TestOllamaTuningSearchRealServer(t *testing.T) {
	srv := persistentWithTiny(t, "tiny:latest")
	be := writeBenchEnv(t, srv, `EXHAUSTIVE=0
BENCH_REPEAT=3
TUNE_ROUNDS=1
OLLAMA_FLASH_ATTENTION_SET="0 1"
NUM_THREAD_SET="2 1"`)
	code, stdout, stderr := runFuze(t, context.Background(), "stack", "@"+be.envFile, "ollama")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rows, _ := readRun(t, be.logDir)
	if len(rows) != 1+1+4 { // header, baseline, 4 configurations
		t.Fatalf("%d rows, want 6:\n%s", len(rows), stderr)
	}
	if !strings.Contains(stderr, `restarting test daemon A`) || !strings.Contains(stderr, `OLLAMA_FLASH_ATTENTION=1`) {
		t.Errorf("the daemon was not restarted with flash attention:\n%s", stderr)
	}
	for _, want := range []string{"=== Tuning result for tiny:latest", "effect on decode_tps       num_thread 2→1", "server starts"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("console lacks %q:\n%s", want, stderr)
		}
	}
	csvs, _ := filepath.Glob(filepath.Join(be.logDir, "ollama_bench_*.csv"))
	reps, err := tune.ReportsOf(csvs[0])
	if err != nil || len(reps) != 1 {
		t.Fatalf("tuning report: %v %v", reps, err)
	}
	r := reps[0]
	if len(r.Configs) != 4 || r.Starts != 2 || r.GridStart != 2 || r.Measured != 4 {
		t.Errorf("report: %d configs, %d starts (grid %d), %d measurements", len(r.Configs), r.Starts, r.GridStart, r.Measured)
	}
	for _, c := range r.Configs {
		if c.Error == "" && len(c.DecodeTPS) != 3 {
			t.Errorf("configuration %v: %d repeats", c.Settings, len(c.DecodeTPS))
		}
	}
}
