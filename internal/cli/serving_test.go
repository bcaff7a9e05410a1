package cli

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// registerScriptedServing registers a scripted stack whose server decodes on a schedule, and
// returns the drivers its factory made.
func registerScriptedServing(t *testing.T, itl time.Duration) func() []*scripted.ServingDriver {
	t.Helper()
	var mu sync.Mutex
	var made []*scripted.ServingDriver
	t.Cleanup(stackname.RegisterForTest(stackname.Stack{Name: "Scripted", FilePrefix: "scripted", KnobScope: "scripted", Aliases: []string{"scripted", "Scripted"}}))
	t.Cleanup(stack.RegisterForTest(stack.Registration{Stack: "Scripted",
		New: func(_ context.Context, _ *knobs.Config, _ stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
			d := &scripted.ServingDriver{StackName: "Scripted", TTFT: 2 * time.Millisecond, ITL: itl}
			mu.Lock()
			made = append(made, d)
			mu.Unlock()
			return d, p, nil
		}}))
	return func() []*scripted.ServingDriver {
		mu.Lock()
		defer mu.Unlock()
		return made
	}
}

// `fuze stack <stack> serving` with the serving knobs: a configuration per
// SERVING_PARALLEL_SET value, a row per level, the servers stopped.
func TestServingThroughFuzeStack(t *testing.T) {
	drivers := registerScriptedServing(t, time.Millisecond)
	logDir := t.TempDir()
	t.Setenv("FUZE_ROOT", t.TempDir())
	t.Setenv("LOG_DIR", logDir)
	t.Setenv("CONCURRENCY_SET", "1 2")
	t.Setenv("REQUESTS_PER_LEVEL", "4")
	t.Setenv("SERVING_PARALLEL_SET", "1 2")
	t.Setenv("SERVING_INPUT_TOKENS", "24")
	t.Setenv("SLO_TTFT_MS", "10000")
	code, stdout, stderr := runFuze(t, context.Background(), "stack", "scripted", "serving")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	csvs, _ := filepath.Glob(filepath.Join(logDir, "serving_scripted_*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("serving CSVs %v", csvs)
	}
	rows, err := serving.ReadCSV(csvs[0])
	if err != nil || len(rows) != 4 {
		t.Fatalf("rows %v %v", rows, err)
	}
	for i, want := range [][2]string{{"1", "1"}, {"1", "2"}, {"2", "1"}, {"2", "2"}} {
		if rows[i]["parallel"] != want[0] || rows[i]["concurrency"] != want[1] || rows[i]["completed"] != "4" || rows[i]["input_tokens_mean"] != "24.00" {
			t.Errorf("row %d: %v", i, rows[i])
		}
	}
	if !strings.Contains(stdout, "met: goodput") || !strings.Contains(stderr, "Goodput (base, parallel=2): concurrency 2") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if ds := drivers(); len(ds) != 1 || !ds[0].Closed {
		t.Errorf("servers not stopped: %+v", ds)
	}
	// PROGRESS=json: one JSON object per event, the serving ones included.
	t.Setenv("PROGRESS", "json")
	if code, _, stderr := runFuze(t, context.Background(), "stack", "scripted", "serving"); code != 0 ||
		!strings.Contains(stderr, `{"endpoint":"127.0.0.1:1","event":"serving_level","level":{`) || !strings.Contains(stderr, `"goodput_concurrency":2`) {
		t.Errorf("second run: exit %d %s", code, stderr)
	}
	t.Setenv("PROGRESS", "text")
	t.Setenv("CONCURRENCY_SET", "0 2")
	if code, _, stderr := runFuze(t, context.Background(), "stack", "scripted", "serving"); code != 2 || !strings.Contains(stderr, "CONCURRENCY_SET") {
		t.Errorf("a concurrency of 0: exit %d %s", code, stderr)
	}
	if code, stdout, _ := runFuze(t, context.Background(), "stack", "--help"); code != 0 || !strings.Contains(stdout, "benchmark|bench, serving") {
		t.Errorf("help lacks serving:\n%s", stdout)
	}
}

// Ctrl-C mid-level: exit 130, the level in progress is written with what completed, and the
// servers are stopped.
func TestServingInterruptedThroughFuzeStack(t *testing.T) {
	drivers := registerScriptedServing(t, 20*time.Millisecond)
	logDir := t.TempDir()
	t.Setenv("FUZE_ROOT", t.TempDir())
	t.Setenv("LOG_DIR", logDir)
	t.Setenv("CONCURRENCY_SET", "2 4")
	t.Setenv("REQUESTS_PER_LEVEL", "1000")
	t.Setenv("SERVING_WARMUP", "0")
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(1500*time.Millisecond, cancel).Stop()
	code, stdout, stderr := runFuze(t, ctx, "stack", "scripted", "serving")
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s\n%s", code, stdout, stderr)
	}
	csvs, _ := filepath.Glob(filepath.Join(logDir, "serving_scripted_*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("serving CSVs %v", csvs)
	}
	rows, err := serving.ReadCSV(csvs[0])
	if err != nil || len(rows) != 1 || rows[0]["interrupted"] != "1" || rows[0]["completed"] == "0" || rows[0]["failed"] != "0" {
		t.Fatalf("rows %v %v\n%s", rows, err, stderr)
	}
	// The requests in flight at Ctrl-C are canceled: both streams', or one when the other was
	// between two requests at that moment (the cancel comes on the wall clock); every request
	// sent is accounted for.
	sent, _ := strconv.Atoi(rows[0]["sent"])
	completed, _ := strconv.Atoi(rows[0]["completed"])
	canceled, _ := strconv.Atoi(rows[0]["canceled"])
	if canceled < 1 || canceled > 2 || completed+canceled != sent {
		t.Fatalf("%d sent, %d completed, %d canceled: want the 1 or 2 in flight canceled, the rest completed\n%s", sent, completed, canceled, stderr)
	}
	if ds := drivers(); len(ds) != 1 || !ds[0].Closed {
		t.Errorf("servers not stopped")
	}
}
