package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// A fifth stack is a name in internal/stackname and a registered driver: registered here for
// the test, a scripted stack runs through `fuze stack` and `fuze bench` like the built-in ones,
// with no server at all.
func registerScriptedStack(t *testing.T) {
	t.Helper()
	t.Cleanup(stackname.RegisterForTest(stackname.Stack{Name: "Scripted", FilePrefix: "scripted", KnobScope: "scripted", Aliases: []string{"scripted", "Scripted"}}))
	t.Cleanup(stack.RegisterForTest(stack.Registration{Stack: "Scripted",
		New: func(_ context.Context, _ *knobs.Config, _ stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
			return &scripted.Driver{StackName: "Scripted", Rates: map[string][]float64{
				"base": {10, 10, 10, 10, 10, 10}, "ng3": {30, 30, 30, 30, 30, 30}, "ng2": {20, 20, 20, 20, 20, 20},
			}}, p, nil
		}}))
}

func TestScriptedStackThroughFuzeStack(t *testing.T) {
	registerScriptedStack(t)
	logDir := t.TempDir()
	t.Setenv("FUZE_ROOT", t.TempDir())
	t.Setenv("LOG_DIR", logDir)
	t.Setenv("BENCH_REPEAT", "5") // 1 repeat against 1 can never show a significant gain
	t.Setenv("EXHAUSTIVE", "1")
	code, stdout, stderr := runFuze(t, context.Background(), "stack", "scripted", "bench")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	csvs, _ := filepath.Glob(filepath.Join(logDir, "scripted_bench_*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("run CSVs %v", csvs)
	}
	rows, _, err := results.ReadRunCSV(csvs[0])
	if err != nil || len(rows) != 3 || rows[1].TokensPerSec != 30 {
		t.Fatalf("rows %+v %v", rows, err)
	}
	if !strings.Contains(stdout, "3.00x (p=0.008)") {
		t.Errorf("table:\n%s", stdout)
	}
	if code, _, stderr := runFuze(t, context.Background(), "stack", "scripted", "install"); code != 2 || !strings.Contains(stderr, "unknown Scripted command: install") {
		t.Errorf("a command the stack does not have: exit %d %s", code, stderr)
	}
	if code, stdout, _ := runFuze(t, context.Background(), "stack", "--help"); code != 0 || !strings.Contains(stdout, "scripted|Scripted") {
		t.Errorf("help lacks the registered stack:\n%s", stdout)
	}
}

func TestScriptedStackThroughFuzeBench(t *testing.T) {
	registerScriptedStack(t)
	root := t.TempDir()
	envDir := filepath.Join(root, "factory", "LLM", "refinery", "stack", "env")
	os.MkdirAll(envDir, 0o755)
	os.WriteFile(filepath.Join(envDir, "one.env"), []byte("BENCH_REPEAT=2\nEXHAUSTIVE=1\n"), 0o644)
	logDir := t.TempDir()
	t.Setenv("FUZE_ROOT", root)
	t.Setenv("LOG_DIR", logDir)
	code, stdout, stderr := runFuze(t, context.Background(), "bench", "--stack", "scripted")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "✔ [Scripted:one:benchmark] done") || !strings.Contains(stdout, "✔ Wrapper complete") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	agg, err := os.ReadFile(filepath.Join(root, "factory", "LLM", "refinery", "benchmarks.csv"))
	if err != nil || !strings.Contains(string(agg), "Scripted") {
		t.Fatalf("aggregate: %v\n%s", err, agg)
	}
}
