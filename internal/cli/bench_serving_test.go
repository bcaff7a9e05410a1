package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/report"
)

// `fuze bench` with BENCH_SERVING=1 in the profile: the stack's sweep, then its serving step,
// whose serving CSV lands in LOG_DIR and shows in the serving view at the end.
func TestServingThroughFuzeBench(t *testing.T) {
	drivers := registerScriptedServing(t, time.Millisecond)
	root := t.TempDir()
	envDir := filepath.Join(root, "factory", "LLM", "refinery", "stack", "env")
	os.MkdirAll(envDir, 0o755)
	profile := "BENCH_REPEAT=1\nBENCH_SERVING=1\nCONCURRENCY_SET=\"1 2\"\nREQUESTS_PER_LEVEL=4\nSERVING_INPUT_TOKENS=16\nSLO_TTFT_MS=100000\nSLO_ITL_MS=100000\n"
	os.WriteFile(filepath.Join(envDir, "one.env"), []byte(profile), 0o644)
	logDir := t.TempDir()
	t.Setenv("FUZE_ROOT", root)
	t.Setenv("LOG_DIR", logDir)
	code, stdout, stderr := runFuze(t, context.Background(), "bench", "--stack", "scripted")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sweep, serve := strings.Index(stderr, "✔ [Scripted:one:benchmark] done"), strings.Index(stderr, "✔ [Scripted:one:serving] done")
	if sweep < 0 || serve < sweep {
		t.Fatalf("steps (the sweep, then serving):\n%s", stderr)
	}
	if csvs, _ := filepath.Glob(filepath.Join(logDir, "serving_scripted_*.csv")); len(csvs) != 1 {
		t.Fatalf("serving CSVs %v", csvs)
	}
	if !strings.Contains(stdout, report.ServingTitle) {
		t.Errorf("no serving view:\n%s", stdout)
	}
	// One driver for the sweep, one for the serving levels: both stopped their servers.
	if ds := drivers(); len(ds) != 2 || !ds[0].Closed || !ds[1].Closed {
		t.Errorf("drivers %d, servers not all stopped", len(ds))
	}
}
