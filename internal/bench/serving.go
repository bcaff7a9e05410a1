package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
)

// RunServing is `fuze stack <stack> serving`: the stack's servers started as for a benchmark,
// then for every model, endpoint and serving configuration (SERVING_PARALLEL_SET) a closed loop
// at each level of CONCURRENCY_SET, written to serving_<stack>_<TS>.csv and .jsonl in LOG_DIR.
// The servers are always stopped, Ctrl-C included (the level in progress is written with what
// completed). It returns the serving CSV's path once it exists.
func RunServing(ctx context.Context, out, log io.Writer, cfg *knobs.Config, root, stackName string) (string, error) {
	reg, ok := stack.Registered(stackName)
	if !ok {
		return "", fmt.Errorf("%s: no driver is linked into this fuze", stackName)
	}
	stackName = reg.Stack
	opt, err := ServingOptions(cfg)
	if err != nil {
		return "", err
	}
	policy, _, err := sweepPolicy(cfg)
	if err != nil {
		return "", err
	}
	var report engine.Reporter
	switch p := cfg.Get("PROGRESS"); p {
	case "", "text":
		report = engine.ServingReporter(log, false, engine.TextReporter(log))
	case "json":
		report = engine.ServingReporter(log, true, engine.JSONReporter(log))
	default:
		return "", knobs.Invalid(fmt.Errorf("PROGRESS=%q (from %s): want text or json", p, cfg.Source("PROGRESS")))
	}
	env, err := setUp(ctx, cfg, log, root)
	if err != nil {
		return "", err
	}
	defer env.close()
	logDir, now, rc, sel, hub := env.logDir, env.now, env.rc, env.sel, env.hub
	fmt.Fprintf(log, "== %s serving: %s, %s per level, SLO p99 TTFT ≤ %s, p99 ITL ≤ %s ==\n",
		stackName, levelsText(opt), levelSize(opt), opt.SLO.TTFT, opt.SLO.ITL)
	driver, _, err := reg.New(ctx, cfg, rc, policy)
	if err != nil {
		return "", err
	}
	defer driver.Close(context.WithoutCancel(ctx))
	endpoints, err := driver.Setup(ctx, sel)
	if err == nil {
		endpoints, err = chooseEndpoints(sel, endpoints)
	}
	if err != nil {
		return "", err
	}
	w, err := serving.Create(logDir, stackName, now)
	if err != nil {
		return "", err
	}
	defer w.Close()
	fmt.Fprintf(log, "CSV        : %s\nJSONL      : %s\n", w.CSVPath(), w.JSONLPath())
	opt.Writer = w
	eng := &engine.Engine{Driver: driver, Endpoints: endpoints, Writer: nil, Report: report}
	if hub != nil {
		eng.Sampler = hub // one window per level: energy per token under load
	}
	outcomes, runErr := eng.Serve(ctx, opt)
	printServing(out, outcomes)
	fmt.Fprintf(out, "CSV: %s\n", w.CSVPath())
	return w.CSVPath(), runErr
}

// levelsText names the levels: the closed loop's concurrencies, or the open loop's rates,
// arrivals, seed and cap.
func levelsText(opt engine.Serving) string {
	if len(opt.Rates) == 0 {
		return fmt.Sprintf("concurrency %v", opt.Concurrency)
	}
	rs := make([]string, len(opt.Rates))
	for i, r := range opt.Rates {
		rs[i] = serving.FormatRate(r)
	}
	capText := "no cap"
	if opt.MaxConcurrency > 0 {
		capText = fmt.Sprintf("at most %d in flight", opt.MaxConcurrency)
	}
	return fmt.Sprintf("open loop at %s requests/s (gamma gaps, burstiness %g, seed %d), %s", strings.Join(rs, " "), opt.Burstiness, opt.Seed, capText)
}

func levelSize(opt engine.Serving) string {
	switch {
	case opt.Requests > 0 && opt.Duration > 0:
		return fmt.Sprintf("%d requests or %s", opt.Requests, opt.Duration)
	case opt.Requests > 0:
		return fmt.Sprintf("%d requests", opt.Requests)
	case opt.Duration > 0:
		return opt.Duration.String()
	case len(opt.Rates) > 0:
		return "10 s of arrivals (32 to 1000 requests; inf: 8 per slot of the cap, at least 32)"
	}
	return "8 requests per stream (at least 32)"
}

// ServingOptions reads the serving knobs.
func ServingOptions(cfg *knobs.Config) (engine.Serving, error) {
	var errs []error
	num := func(name string) int {
		v, err := cfg.Int(name)
		if err == nil && v < 0 {
			err = fmt.Errorf("%s=%q (from %s): want an integer ≥ 0", name, cfg.Get(name), cfg.Source(name))
		}
		errs = append(errs, err)
		return v
	}
	secs := func(name string) time.Duration {
		v, err := cfg.Duration(name)
		errs = append(errs, err)
		return v
	}
	msecs := func(name string) time.Duration {
		v, err := cfg.Float(name)
		if err == nil && v <= 0 {
			err = fmt.Errorf("%s=%q (from %s): want milliseconds > 0", name, cfg.Get(name), cfg.Source(name))
		}
		errs = append(errs, err)
		return time.Duration(v * float64(time.Millisecond))
	}
	positive := func(name string) []int {
		vs, err := cfg.Ints(name)
		for _, v := range vs {
			if err == nil && v < 1 {
				err = fmt.Errorf("%s=%q (from %s): want integers ≥ 1", name, cfg.Get(name), cfg.Source(name))
			}
		}
		errs = append(errs, err)
		return vs
	}
	rates := func(name string) []float64 {
		words, err := cfg.List(name)
		var out []float64
		for _, w := range words {
			r, ok := serving.ParseRate(w)
			if err == nil && (!ok || r == 0) {
				err = fmt.Errorf("%s=%q (from %s): want request rates > 0 (requests/s) or inf", name, cfg.Get(name), cfg.Source(name))
			}
			out = append(out, r)
		}
		errs = append(errs, err)
		return out
	}
	burst, err := cfg.Float("SERVING_BURSTINESS")
	if err == nil && burst <= 0 {
		err = fmt.Errorf("SERVING_BURSTINESS=%q (from %s): want a gamma shape > 0 (1: Poisson)", cfg.Get("SERVING_BURSTINESS"), cfg.Source("SERVING_BURSTINESS"))
	}
	errs = append(errs, err)
	procs, err := cfg.Int("SERVING_GOMAXPROCS")
	if err == nil && procs < -1 {
		err = fmt.Errorf("SERVING_GOMAXPROCS=%q (from %s): want -1 (Go's default), 0 (fuze chooses) or a count", cfg.Get("SERVING_GOMAXPROCS"), cfg.Source("SERVING_GOMAXPROCS"))
	}
	errs = append(errs, err)
	opt := engine.Serving{
		Concurrency:     positive("CONCURRENCY_SET"),
		Requests:        num("REQUESTS_PER_LEVEL"),
		Duration:        secs("SERVING_DURATION_SECS"),
		WarmupPerStream: num("SERVING_WARMUP"),
		RequestTimeout:  secs("SERVING_REQUEST_TIMEOUT_SECS"),
		InputTokens:     num("SERVING_INPUT_TOKENS"),
		OutputTokens:    num("SERVING_OUTPUT_TOKENS"),
		Parallel:        positive("SERVING_PARALLEL_SET"),
		SLO:             serving.SLO{TTFT: msecs("SLO_TTFT_MS"), ITL: msecs("SLO_ITL_MS")},
		Rates:           rates("REQUEST_RATE_SET"),
		Burstiness:      burst,
		Seed:            uint64(num("SERVING_SEED")),
		MaxConcurrency:  num("SERVING_MAX_CONCURRENCY"),
		Procs:           procs,
	}
	for _, err := range errs {
		if err != nil {
			return opt, knobs.Invalid(err)
		}
	}
	if len(opt.Concurrency) == 0 && len(opt.Rates) == 0 {
		return opt, knobs.Invalid(fmt.Errorf("CONCURRENCY_SET (from %s) is empty: want concurrency levels such as \"1 2 4 8\"", cfg.Source("CONCURRENCY_SET")))
	}
	return opt, nil
}

// printServing prints, per configuration, its levels' aggregate rate and p99 latencies, and
// its goodput.
func printServing(out io.Writer, outcomes []engine.ServingOutcome) {
	if len(outcomes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tendpoint\tgpu\tparallel\tconcurrency\tok/sent\treq/s\ttok/s\tttft p99 ms\titl p99 ms\tslo\t")
	for _, o := range outcomes {
		for _, l := range o.Levels {
			slo := "-"
			if l.SLOMet {
				slo = "met"
			}
			if o.Goodput != nil && o.Goodput.Concurrency == l.Concurrency {
				slo = "met: goodput"
			}
			if l.Error != "" {
				slo = "not served"
			}
			if l.PhysicsFlag != "" {
				slo = "measurement error"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t\n", o.Target.Alias, o.Endpoint.Addr, o.Endpoint.GPULabel(),
				l.Parallel, levelCell(l), l.Completed, l.Sent, l.RequestRate, l.OutputTPS, l.TTFT.P99, l.ITL.P99, slo)
		}
	}
	tw.Flush()
}

// levelCell is a closed loop's concurrency, or the open loop's level name.
func levelCell(l serving.Level) string {
	if l.Open == nil {
		return fmt.Sprint(l.Concurrency)
	}
	return l.Name()
}
