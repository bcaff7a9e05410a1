package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// registerServing adds a stack named name whose driver answers both the sweep and the serving
// levels on a short real-clock schedule (no figure below depends on the clock).
func registerServing(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(stackname.RegisterForTest(stackname.Stack{Name: name, FilePrefix: strings.ToLower(name), KnobScope: strings.ToLower(name), Aliases: []string{name}}))
	t.Cleanup(stack.RegisterForTest(stack.Registration{Stack: name,
		New: func(_ context.Context, _ *knobs.Config, _ stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
			return &scripted.ServingDriver{StackName: name, TTFT: time.Millisecond, ITL: 100 * time.Microsecond}, p, nil
		}}))
}

// benchPlan is `fuze bench`'s plan over the profiles and stacks, with the serving runs wired as
// the CLI wires them.
func benchPlan(t *testing.T, logDir string, files, stacks []string, out, log *bytes.Buffer) Plan {
	return Plan{
		EnvFiles: files, Stacks: stacks,
		Environ: []string{"LOG_DIR=" + logDir, "BENCH_REPEAT=1", "PATH=" + os.Getenv("PATH"),
			"CONCURRENCY_SET=1 2", "REQUESTS_PER_LEVEL=4", "SERVING_INPUT_TOKENS=16", "SLO_TTFT_MS=10000", "SLO_ITL_MS=10000"},
		RunStack: func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			return RunStack(ctx, out, log, cfg, t.TempDir(), st)
		},
		RunServing: func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			return RunServing(ctx, out, log, cfg, t.TempDir(), st)
		},
	}
}

func writeProfile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// BENCH_SERVING=1 in a profile gives every stack a serving step after its sweep, and a serving
// CSV per stack in LOG_DIR (what the serving view reads); a profile without it runs sweeps
// only. The serving step of a profile whose serving knobs are wrong fails on its own, and the
// sweep's run CSV of that stack is still returned.
func TestBenchRunsServingWhenAProfileAsks(t *testing.T) {
	registerServing(t, "alpha")
	registerServing(t, "beta")
	envDir := t.TempDir()
	for _, tc := range []struct {
		name, profile string
		servingCSVs   int
	}{
		{"off", "", 0},
		{"explicitly off", "BENCH_SERVING=0\n", 0},
		{"on", "BENCH_SERVING=1\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logDir := t.TempDir()
			var out, log bytes.Buffer
			steps, err := OpenSteps(&log, filepath.Join(logDir, "wrapper.summary"), "ts")
			if err != nil {
				t.Fatal(err)
			}
			defer steps.Close()
			files := []string{writeProfile(t, envDir, "p.env", tc.profile)}
			csvs, err := Run(context.Background(), steps, &out, benchPlan(t, logDir, files, []string{"alpha", "beta"}, &out, &log))
			if err != nil {
				t.Fatal(err)
			}
			if len(csvs) != 2 || steps.Failed != 0 || steps.Total != 2+tc.servingCSVs {
				t.Fatalf("run CSVs %v, %d steps, %d failed\n%s", csvs, steps.Total, steps.Failed, log.String())
			}
			for _, st := range []string{"alpha", "beta"} {
				found, _ := filepath.Glob(filepath.Join(logDir, "serving_"+st+"_*.csv"))
				if len(found) != min(tc.servingCSVs, 1) {
					t.Fatalf("%s: serving CSVs %v\n%s", st, found, log.String())
				}
				if len(found) == 0 {
					continue
				}
				rows, err := serving.ReadCSV(found[0])
				if err != nil || len(rows) != 2 || rows[0]["concurrency"] != "1" || rows[1]["concurrency"] != "2" || rows[1]["completed"] != "4" {
					t.Fatalf("%s: serving rows %+v %v", st, rows, err)
				}
				if !strings.Contains(log.String(), "✔ ["+st+":p:serving] done") {
					t.Errorf("step log lacks %s's serving step:\n%s", st, log.String())
				}
			}
			if tc.servingCSVs == 0 && strings.Contains(log.String(), ":serving]") {
				t.Errorf("a serving step without BENCH_SERVING=1:\n%s", log.String())
			}
		})
	}

	t.Run("serving fails", func(t *testing.T) {
		logDir := t.TempDir()
		var out, log bytes.Buffer
		steps, _ := OpenSteps(&log, filepath.Join(logDir, "wrapper.summary"), "ts")
		defer steps.Close()
		// CONCURRENCY_SET=0 is a valid integer list (the sweep runs) but no serving level.
		files := []string{writeProfile(t, envDir, "bad.env", "BENCH_SERVING=1\nCONCURRENCY_SET=0\n")}
		csvs, err := Run(context.Background(), steps, &out, benchPlan(t, logDir, files, []string{"alpha", "beta"}, &out, &log))
		if err != nil {
			t.Fatal(err)
		}
		if len(csvs) != 2 || steps.Total != 4 || steps.Failed != 2 {
			t.Fatalf("run CSVs %v, %d steps, %d failed\n%s", csvs, steps.Total, steps.Failed, log.String())
		}
		for _, st := range []string{"alpha", "beta"} {
			if !strings.Contains(log.String(), "✔ ["+st+":bad:benchmark] done") || !strings.Contains(log.String(), "✖ ["+st+":bad:serving] rc=1") {
				t.Errorf("%s: step log\n%s", st, log.String())
			}
		}
	})

	// Ctrl-C during a stack's sweep: no serving step starts, no further stack runs.
	t.Run("interrupted", func(t *testing.T) {
		logDir := t.TempDir()
		var out, log bytes.Buffer
		steps, _ := OpenSteps(&log, filepath.Join(logDir, "wrapper.summary"), "ts")
		defer steps.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		files := []string{writeProfile(t, envDir, "on.env", "BENCH_SERVING=1\n")}
		p := benchPlan(t, logDir, files, []string{"alpha", "beta"}, &out, &log)
		sweepOnly := p.RunStack
		p.RunStack = func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			csv, err := sweepOnly(ctx, cfg, st)
			cancel()
			return csv, err
		}
		served := 0
		serve := p.RunServing
		p.RunServing = func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			served++
			return serve(ctx, cfg, st)
		}
		csvs, err := Run(ctx, steps, &out, p)
		if err != nil || len(csvs) != 1 || served != 0 || steps.Total != 1 {
			t.Fatalf("err %v, run CSVs %v, %d serving runs, %d steps\n%s", err, csvs, served, steps.Total, log.String())
		}
		if found, _ := filepath.Glob(filepath.Join(logDir, "serving_*.csv")); len(found) != 0 {
			t.Errorf("serving CSVs after Ctrl-C during the sweep: %v", found)
		}
	})
}
