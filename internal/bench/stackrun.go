package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/progress"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/sweep"
	"github.com/fuze-ai/fuze/internal/telemetry"
)

// RunStack is the benchmark run every stack shares: LOG_DIR, sweep policy, repeats,
// GPU inventory and A/B selection, the run CSV + JSONL, the driver's servers (always stopped),
// the engine, and the baseline-vs-best table. It returns the run CSV's path once it exists
// (also with an error: rows measured before the error are on disk).
func RunStack(ctx context.Context, out, log io.Writer, cfg *knobs.Config, root, stackName string) (string, error) {
	reg, ok := stack.Registered(stackName)
	if !ok {
		return "", fmt.Errorf("%s: no driver is linked into this fuze", stackName)
	}
	stackName = reg.Stack
	progressMode := cfg.Get("PROGRESS")
	if progressMode != "" && progressMode != "text" && progressMode != "json" {
		return "", knobs.Invalid(fmt.Errorf("PROGRESS=%q (from %s): want text or json", progressMode, cfg.Source("PROGRESS")))
	}
	var report engine.Reporter
	var sweepProgress *endpointSweeps
	if progressMode == "json" {
		report = engine.JSONReporter(log)
	} else {
		// Progress beside the text lines: configuration i of N, elapsed, ETA, waits for servers
		// to load; a bar on a terminal, one plain line per step otherwise (or with NO_COLOR).
		con := progress.New(log, nil)
		log = con.Writer()
		first := con.Sweep()
		sweepProgress = newEndpointSweeps(con, first)
		defer sweepProgress.Close()
		report = engine.Reporters(engine.TextReporter(log), sweepProgress)
		ctx = server.WithWaitProgress(ctx, first.Wait)
	}
	policy, repeat, err := sweepPolicy(cfg)
	if err != nil {
		return "", err
	}
	env, err := setUp(ctx, cfg, log, root)
	if err != nil {
		return "", err
	}
	defer env.close()
	logDir, now, rc, sel, hub := env.logDir, env.now, env.rc, env.sel, env.hub
	fmt.Fprintf(log, "== %s auto-tune + bench ==\n", stackName)
	driver, policy, err := reg.New(ctx, cfg, rc, policy)
	if err != nil {
		return "", err
	}
	// Servers are stopped even after Ctrl-C (Close gets a context that is not cancelled) and
	// after a failed Setup (it may have started some).
	defer driver.Close(context.WithoutCancel(ctx))
	endpoints, err := driver.Setup(ctx, sel)
	if err == nil {
		endpoints, err = chooseEndpoints(sel, endpoints)
	}
	if err != nil {
		return "", err // no run file for a stack that could not start
	}
	w, err := results.CreateRun(logDir, stackName, now)
	if err != nil {
		return "", err
	}
	defer w.Close()
	fmt.Fprintf(log, "CSV        : %s\nJSONL      : %s\n", w.CSVPath(), w.JSONLPath())
	parallel, err := cfg.Bool01("PARALLEL_ENDPOINTS")
	if err != nil {
		return "", knobs.Invalid(err)
	}
	eng := &engine.Engine{Driver: driver, Endpoints: endpoints, Policy: policy, Writer: w, Report: report, Repeat: repeat, Parallel: parallel}
	if hub != nil {
		eng.Sampler = hub
	}
	outcomes, runErr := eng.Run(ctx)
	// The run's wall time, overall and per endpoint, closes the JSONL (also after Ctrl-C), so
	// a parallel run can be set beside a sequential one from the files alone.
	if err := writeTiming(w, eng.Timing); err != nil {
		fmt.Fprintf(log, "! %v\n", err)
	}
	if sweepProgress != nil {
		sweepProgress.Close() // the bar leaves the terminal before the table
	}
	printOutcomes(out, outcomes)
	printSplitComparison(out, outcomes)
	if len(eng.Timing.Endpoints) > 1 {
		fmt.Fprintf(out, "%s\n", eng.Timing)
	}
	fmt.Fprintf(out, "CSV: %s\n", w.CSVPath())
	return w.CSVPath(), runErr
}

// writeTiming appends the run's timing to the JSONL as {"run_summary": …}, a line readers of
// row records skip (results.RunSummaryKey).
func writeTiming(w *results.RunWriter, t engine.RunTiming) error {
	if len(t.Endpoints) == 0 {
		return nil // no target was measured
	}
	line, err := json.Marshal(map[string]any{results.RunSummaryKey: t.Summary()})
	if err != nil {
		return err
	}
	return w.Append(nil, append(line, '\n'))
}

// sweepPolicy reads EXHAUSTIVE, ZERO_TOKPS_BREAK, NO_IMPROVE_LIMIT, TUNE_ROUNDS and BENCH_REPEAT.
func sweepPolicy(cfg *knobs.Config) (sweep.Policy, int, error) {
	exhaustive, err1 := cfg.Bool01("EXHAUSTIVE")
	zeroBreak, err2 := cfg.Int("ZERO_TOKPS_BREAK")
	noImprove, err3 := cfg.Int("NO_IMPROVE_LIMIT")
	repeat, err4 := cfg.Int("BENCH_REPEAT")
	rounds, err5 := cfg.Int("TUNE_ROUNDS")
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return sweep.Policy{}, 0, knobs.Invalid(err)
		}
	}
	if repeat < 1 {
		return sweep.Policy{}, 0, knobs.Invalid(fmt.Errorf("BENCH_REPEAT=%q (from %s): want an integer ≥ 1", cfg.Get("BENCH_REPEAT"), cfg.Source("BENCH_REPEAT")))
	}
	return sweep.Policy{Exhaustive: exhaustive, ZeroBreak: zeroBreak, NoImproveLimit: noImprove, TuneRounds: rounds}, repeat, nil
}

// printOutcomes prints baseline vs best per (model, endpoint), aligned. The spread is the
// range of the repeated measurements. The sweep's best is shown only when it significantly
// beat the server's default (the engine's DefaultIsBest): the gain is then "1.91x (p=0.008)";
// otherwise the default is the best configuration and the gain "~ (p=0.310)" (or
// "1.00x (default is best, p=…)" when the best candidate was significantly slower).
func printOutcomes(out io.Writer, outcomes []engine.Outcome) {
	if len(outcomes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tendpoint\tgpu\tbase tok/s\tbest num_gpu\tbest tok/s\tgain\t")
	for _, o := range outcomes {
		baseCell, base := "failed", 0.0
		if o.Baseline != nil && !o.Baseline.Failed() {
			base = o.Baseline.DecodeTokensPerSec()
			baseCell = rateCell(o.Baseline)
		}
		bestNG, bestCell, gain := "-", "-", "-"
		switch {
		case o.Best == nil || o.BestRun == nil:
		case o.DefaultIsBest:
			// No candidate significantly beat the server's own defaults: that is the best
			// configuration.
			bestNG, bestCell = "default", baseCell
			gain = results.NewGain(1, o.Comparison, true).String()
		default:
			bestNG, bestCell = o.Best.NumGPU, rateCell(o.BestRun)
			switch {
			case base <= 0:
			case o.Comparison == nil: // the baseline is a measurement error: no incumbent
				gain = fmt.Sprintf("%.2fx (default: measurement error)", o.BestTPS/base)
			default:
				gain = results.NewGain(o.BestTPS/base, o.Comparison, false).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", o.Target.Alias, o.Endpoint.Addr, o.Endpoint.GPULabel(), baseCell, bestNG, bestCell, gain)
	}
	tw.Flush()
}

// rateCell is "median (lo–hi)" for a repeated measurement, else the rate.
func rateCell(s *measure.Sample) string {
	r := s.DecodeTokensPerSec()
	if len(s.RepeatTPS) > 1 {
		lo, hi := s.Spread()
		return fmt.Sprintf("%.2f (%.2f–%.2f)", r, lo, hi)
	}
	return fmt.Sprintf("%.2f", r)
}

// runEnv is what every stack run sets up before its driver: LOG_DIR, the run's time stamp and
// the drivers' RunContext, the telemetry sampler, and the GPUs selected for endpoints A and B.
type runEnv struct {
	logDir string
	now    time.Time
	rc     stack.RunContext
	sel    gpu.Selection
	hub    *telemetry.Hub // nil: TELEMETRY=0
}

func (e *runEnv) close() {
	if e.hub != nil {
		e.hub.Close()
	}
}

// setUp resolves LOG_DIR (saying where it fell back to), the run time stamp (RUN_TS overrides
// it), starts the telemetry sampler, and selects the GPUs, printing them.
func setUp(ctx context.Context, cfg *knobs.Config, log io.Writer, root string) (*runEnv, error) {
	logDir, warning, err := results.ResolveLogDir(cfg.Get("LOG_DIR"), nil)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		fmt.Fprintf(log, "! %s\n", warning)
	}
	e := &runEnv{logDir: logDir, now: time.Now()}
	e.rc = stack.RunContext{Root: root, LogDir: logDir, RunTS: e.now.Format(results.RunTSLayout), Log: log}
	if v := cfg.Get("RUN_TS"); v != "" {
		e.rc.RunTS = v
	}
	if e.hub, err = telemetryHub(cfg, log); err != nil {
		return nil, err
	}
	gpus, err := gpu.Inventory(ctx, nil)
	if err != nil {
		e.close()
		return nil, err
	}
	sel, warnings, err := gpu.Select(gpus, gpu.OptionsFromEnv(cfg.Get))
	if err == nil {
		err = splitAndReserve(cfg, &sel, &warnings)
	}
	if err == nil {
		err = wantEndpoints(cfg, &sel)
	}
	if err != nil {
		e.close()
		return nil, err
	}
	e.sel = sel
	for _, w := range warnings {
		fmt.Fprintf(log, "! %s\n", w)
	}
	for _, g := range gpus {
		fmt.Fprintf(log, "GPU: %s, %s, %d MiB\n", g.Name, g.UUID, g.MemoryMiB)
	}
	if len(gpus) == 0 {
		fmt.Fprintln(log, "GPU: none found; endpoint A runs on the CPU (gpu_label cpu)")
	}
	return e, nil
}

// splitAndReserve reads SPLIT_ENDPOINTS and RESERVE_GPU_MEMORY_MIB into the selection the
// drivers set their endpoints up from.
func splitAndReserve(cfg *knobs.Config, sel *gpu.Selection, warnings *[]string) error {
	split, err := cfg.Bool01("SPLIT_ENDPOINTS")
	if err != nil {
		return knobs.Invalid(err)
	}
	reserve, err := cfg.Int("RESERVE_GPU_MEMORY_MIB")
	if err != nil || reserve < 0 {
		return knobs.Invalid(fmt.Errorf("RESERVE_GPU_MEMORY_MIB=%q (from %s): want MiB ≥ 0", cfg.Get("RESERVE_GPU_MEMORY_MIB"), cfg.Source("RESERVE_GPU_MEMORY_MIB")))
	}
	if split && sel.B == nil {
		*warnings = append(*warnings, "SPLIT_ENDPOINTS=1 needs two GPUs; no A+B endpoint")
		split = false
	}
	sel.Split, sel.ReserveMiB = split, reserve
	return nil
}
