package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// registerScripted adds a stack named name whose driver is built by newDriver, for this test.
func registerScripted(t *testing.T, name string, newDriver func() *scripted.Driver) {
	t.Helper()
	t.Cleanup(stackname.RegisterForTest(stackname.Stack{Name: name, FilePrefix: strings.ToLower(name), KnobScope: strings.ToLower(name), Aliases: []string{name}}))
	t.Cleanup(stack.RegisterForTest(stack.Registration{Stack: name,
		New: func(_ context.Context, _ *knobs.Config, _ stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
			d := newDriver()
			if d == nil {
				return nil, p, errors.New("the factory refused")
			}
			return d, p, nil
		}}))
}

func scriptedRates() *scripted.Driver {
	return &scripted.Driver{StackName: "scripted", Rates: map[string][]float64{
		"base": {10, 12, 11}, "ng3": {20, 22, 21}, "ng2": {15, 15, 15},
	}}
}

func config(t *testing.T, extra ...string) (*knobs.Config, string) {
	t.Helper()
	logDir := t.TempDir()
	env := append([]string{"LOG_DIR=" + logDir, "BENCH_REPEAT=3", "EXHAUSTIVE=1", "PATH=" + os.Getenv("PATH")}, extra...)
	return knobs.Resolve(env), logDir
}

func TestRunStackWritesRowsAndTheTable(t *testing.T) {
	var d *scripted.Driver
	registerScripted(t, "scripted", func() *scripted.Driver { d = scriptedRates(); return d })
	cfg, logDir := config(t)
	var out, log bytes.Buffer
	csvPath, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted")
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if filepath.Dir(csvPath) != logDir || !strings.HasPrefix(filepath.Base(csvPath), "scripted_bench_") {
		t.Fatalf("run CSV %s", csvPath)
	}
	rows, warns, err := results.ReadRunCSV(csvPath)
	if err != nil || len(warns) > 0 || len(rows) != 3 {
		t.Fatalf("rows %+v %v %v", rows, warns, err)
	}
	if rows[0].TokensPerSec != 11 || rows[1].TokensPerSec != 21 || rows[2].TokensPerSec != 15 {
		t.Fatalf("medians %.2f %.2f %.2f, want 11 21 15", rows[0].TokensPerSec, rows[1].TokensPerSec, rows[2].TokensPerSec)
	}
	if !d.Closed {
		t.Error("the driver's servers were not stopped")
	}
	// ng3 (20, 21, 22) against the default (10, 11, 12): 3 repeats against 3 can never be
	// significant, so the default stays best (this table used to claim 1.91x).
	if !strings.Contains(out.String(), "m-1") || !strings.Contains(out.String(), "default       11.00 (10.00–12.00)  ~ (p=0.100)") {
		t.Errorf("baseline-vs-best table:\n%s", out.String())
	}
	if !strings.Contains(log.String(), "✔ [A] optimized ng3 num_gpu=3 -> 21.00 tok/s") {
		t.Errorf("console:\n%s", log.String())
	}
	// Each configuration is prepared once and sent BENCH_REPEAT times.
	if strings.Join(d.Prepared, " ") != "base ng3 ng2" || len(d.Calls) != 9 {
		t.Errorf("prepared %v, sent %v", d.Prepared, d.Calls)
	}
}

// Off a terminal, the run's progress is one plain line per configuration among the text lines,
// without escape codes; PROGRESS=json has none of them.
func TestRunStackProgressLines(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	cfg, _ := config(t)
	var out, log bytes.Buffer
	if _, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted"); err != nil {
		t.Fatal(err)
	}
	var progress []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.HasPrefix(line, "[A] m-1: ") {
			progress = append(progress, strings.TrimPrefix(line, "[A] m-1: "))
		}
	}
	want := []string{"baseline (the server's default), elapsed ", "configuration 1 of 2, elapsed ", "configuration 2 of 2, elapsed ", "done, 2 of 2 configurations measured, elapsed "}
	if len(progress) != len(want) {
		t.Fatalf("progress lines %q\n%s", progress, log.String())
	}
	for i := range want {
		if !strings.HasPrefix(progress[i], want[i]) {
			t.Errorf("progress line %d: %q, want %q…", i, progress[i], want[i])
		}
	}
	if !strings.Contains(progress[1], ", ETA ") || strings.ContainsAny(log.String(), "\x1b\r") {
		t.Errorf("console:\n%q", log.String())
	}
	cfg, _ = config(t, "PROGRESS=json")
	log.Reset()
	if _, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "[A] m-1: ") {
		t.Errorf("plain progress lines with PROGRESS=json:\n%s", log.String())
	}
}

// PROGRESS=json renders the same events as JSON lines, one per event.
func TestRunStackJSONProgress(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	cfg, _ := config(t, "PROGRESS=json")
	var out, log bytes.Buffer
	if _, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted"); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	sc := bufio.NewScanner(&log)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // the run's own header lines (GPU, CSV paths)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		kinds = append(kinds, ev["event"].(string))
		if tps, _ := ev["best_tps"].(float64); ev["event"] == "best_found" && (ev["model_tag"] != "ng3" || math.Abs(tps-21) > 1e-6) {
			t.Errorf("best %v", ev)
		}
	}
	want := "tuning_started configuration_started attempt_measured configuration_started attempt_measured configuration_started attempt_measured best_found run_finished"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if strings.Contains(log.String(), "✔ [A]") {
		t.Error("text lines printed with PROGRESS=json")
	}
}

func TestRunStackBadKnobIsAUsageError(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	cfg, logDir := config(t, "PROGRESS=xml")
	_, err := RunStack(context.Background(), &bytes.Buffer{}, &bytes.Buffer{}, cfg, t.TempDir(), "scripted")
	var ie *knobs.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `PROGRESS="xml"`) {
		t.Fatalf("got %v", err)
	}
	if files, _ := os.ReadDir(logDir); len(files) != 0 {
		t.Errorf("files written before the knob was checked: %v", files)
	}
}

// Every profile × stack is a step: an unavailable stack is said and not a failure, a failing
// one is counted and the loop goes on, and the run CSVs of the steps that ran are returned.
func TestRunProfilesSteps(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	registerScripted(t, "absent", func() *scripted.Driver {
		return &scripted.Driver{StackName: "absent", SetupError: stack.Unavailable(errors.New("absent-server not found on PATH"))}
	})
	registerScripted(t, "broken", func() *scripted.Driver { return nil })
	envDir := t.TempDir()
	var files []string
	for _, name := range []string{"a.env", "b.env"} {
		p := filepath.Join(envDir, name)
		os.WriteFile(p, []byte("BENCH_REPEAT=1\n"), 0o644)
		files = append(files, p)
	}
	logDir := t.TempDir()
	var log, out bytes.Buffer
	steps, err := OpenSteps(&log, filepath.Join(logDir, "wrapper.summary"), "20250101_000000")
	if err != nil {
		t.Fatal(err)
	}
	defer steps.Close()
	var ran []string
	csvs, err := Run(context.Background(), steps, &out, Plan{
		EnvFiles: files, Stacks: []string{"scripted", "absent", "broken"},
		Environ: []string{"LOG_DIR=" + logDir, "EXHAUSTIVE=1"},
		RunStack: func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			ran = append(ran, st+":"+cfg.Get("BENCH_REPEAT"))
			return RunStack(ctx, &out, &log, cfg, t.TempDir(), st)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(csvs) != 2 || steps.Total != 6 || steps.Unavailable != 2 || steps.Failed != 2 {
		t.Fatalf("csvs %v, steps total %d unavailable %d failed %d\n%s", csvs, steps.Total, steps.Unavailable, steps.Failed, log.String())
	}
	if strings.Join(ran, " ") != "scripted:1 absent:1 broken:1 scripted:1 absent:1 broken:1" {
		t.Fatalf("steps ran %v (the profile's knobs must apply)", ran)
	}
	for _, want := range []string{"- [absent:a:benchmark] unavailable (0s): absent-server not found on PATH", "✖ [broken:b:benchmark] rc=1 (0s): the factory refused", "✔ [scripted:a:benchmark] done"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("step log lacks %q:\n%s", want, log.String())
		}
	}
	summary, _ := os.ReadFile(steps.Path)
	if lines := strings.Split(strings.TrimSpace(string(summary)), "\n"); len(lines) != 7 || lines[0] != "ts,step,rc,seconds" || !strings.HasPrefix(lines[3], "20250101_000000,broken:a:benchmark,1,") {
		t.Fatalf("summary file:\n%s", summary)
	}
}

// Ctrl-C between steps stops the loop; what ran is kept.
func TestRunStopsOnCancel(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	ctx, cancel := context.WithCancel(context.Background())
	p := filepath.Join(t.TempDir(), "a.env")
	os.WriteFile(p, nil, 0o644)
	steps, _ := OpenSteps(&bytes.Buffer{}, filepath.Join(t.TempDir(), "s"), "ts")
	defer steps.Close()
	n := 0
	_, err := Run(ctx, steps, &bytes.Buffer{}, Plan{EnvFiles: []string{p}, Stacks: []string{"scripted", "scripted"},
		RunStack: func(context.Context, *knobs.Config, string) (string, error) { n++; cancel(); return "x.csv", nil }})
	if err != nil || n != 1 || steps.Total != 1 {
		t.Fatalf("err %v, %d runs, %d steps", err, n, steps.Total)
	}
}

func TestLockIsExclusive(t *testing.T) {
	root := t.TempDir()
	unlock, err := Lock(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(root); err == nil || !strings.Contains(err.Error(), "another fuze bench is running on "+root) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := Lock(root)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}

func TestPrintOutcomesGain(t *testing.T) {
	rate := func(reps ...float64) *measure.Sample {
		s := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 10,
			ServerDecodeDuration: time.Duration(10 / stats.Median(reps) * float64(time.Second)), RepeatTPS: reps}
		return s
	}
	cmp := func(cand, inc *measure.Sample) *stats.Comparison {
		c := stats.Compare(cand.RepeatTPS, inc.RepeatTPS, stats.DefaultAlpha)
		return &c
	}
	ng := func(n string) *stack.Candidate { return &stack.Candidate{NumGPU: n} }
	out := func(alias string, base, best *measure.Sample, defaultIsBest bool) engine.Outcome {
		o := engine.Outcome{Target: stack.Target{Alias: alias}, Endpoint: stack.Endpoint{Addr: "e"}, Baseline: base}
		if best != nil {
			o.Best, o.BestRun, o.BestTPS = ng("3"), best, best.DecodeTokensPerSec()
			o.DefaultIsBest = defaultIsBest
			if base != nil && !base.Failed() {
				o.Comparison = cmp(best, base)
			}
		}
		return o
	}
	base := rate(10, 10.5, 11, 11.5, 12)
	failed := &measure.Sample{Outcome: measure.ErrHTTP}
	var buf bytes.Buffer
	printOutcomes(&buf, []engine.Outcome{
		out("sig", base, rate(20, 20.5, 21, 21.5, 22), false),
		out("noise", base, rate(10.2, 10.7, 11.2, 11.7, 12.2), true),
		out("worse", base, rate(5, 5.5, 6, 6.5, 7), true),
		out("nobase", failed, rate(20, 21, 22), false),
		out("none", base, nil, false),
	})
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n")[1:] {
		f := strings.SplitN(line, "  ", 2)
		got[f[0]] = strings.TrimSpace(line)
	}
	for alias, want := range map[string]string{
		"sig":    "sig     e         cpu  11.00 (10.00–12.00)  3             21.00 (20.00–22.00)  1.91x (p=0.008)",
		"noise":  "default       11.00 (10.00–12.00)  ~ (p=0.",
		"worse":  "default       11.00 (10.00–12.00)  1.00x (default is best, p=0.008)",
		"nobase": "failed               3             21.00 (20.00–22.00)  -",
		"none":   "11.00 (10.00–12.00)  -             -                    -",
	} {
		if !strings.Contains(got[alias], want) {
			t.Errorf("%s: %q, want it to contain %q\n%s", alias, got[alias], want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "within noise") {
		t.Errorf("old wording:\n%s", buf.String())
	}
}
