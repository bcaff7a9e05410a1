package triton

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func init() { stack.Register(stack.Registration{Stack: stackname.Triton, New: newFromKnobs}) }

// Readiness deadlines: the original's 30 s for servers that are already running; model
// loading (TensorRT engines, vLLM weights) for servers fuze starts.
const (
	tritonReadyExternal = 30 * time.Second
	tritonReadyStarted  = 10 * time.Minute
)

// ConfigFromKnobs maps the knobs onto the Triton driver's configuration. Besides the registered
// knobs it reads TRITON_BACKEND (auto|vllm|tensorrtllm|llmapi|generic: the request flavour,
// detected per model when unset), TRITON_READY_SECS (readiness deadline) and
// TRITON_PERF_ANALYZER (perf_analyzer executable; default: perf_analyzer on PATH).
func ConfigFromKnobs(cfg *knobs.Config, logDir, runTS string) (Config, error) {
	var c Config
	var errs []error
	num := func(name string, least int) int {
		v, err := cfg.Int(name)
		if err == nil && v < least {
			err = fmt.Errorf("%s=%q (from %s): want an integer ≥ %d", name, cfg.Get(name), cfg.Source(name), least)
		}
		errs = append(errs, err)
		return v
	}
	hostPort := func(name string) string {
		v := strings.TrimSpace(cfg.Get(name))
		if v == "" {
			return ""
		}
		if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("%s=%q (from %s): want HOST:PORT of Triton's HTTP service", name, v, cfg.Source(name)))
		}
		return v
	}
	c.EndpointA = hostPort("TRITON_HTTP_A")
	c.EndpointB = hostPort("TRITON_HTTP_B")
	if c.EndpointA == "" {
		errs = append(errs, errors.New("TRITON_HTTP_A is empty: want HOST:PORT of Triton's HTTP service"))
	}
	entries, err := cfg.List("TRITON_MODELS")
	errs = append(errs, err)
	c.Models, err = ParseModels(entries)
	errs = append(errs, err)
	c.StartCmd = strings.TrimSpace(cfg.Get("TRITON_START_CMD"))
	c.Backend, err = ParseFlavour(cfg.Get("TRITON_BACKEND"))
	errs = append(errs, err)
	c.Prompt = cfg.Get("PROMPT")
	c.NumPredict = num("BENCH_NUM_PREDICT", 2) // one token has no decode interval
	c.Temperature, err = cfg.Float("TEMPERATURE")
	errs = append(errs, err)
	c.Concurrency = num("CONCURRENCY", 1)
	c.Batch = num("BATCH", 1)
	c.RequestCount = num("REQUEST_COUNT", 1)
	c.RequestTimeout, err = cfg.Duration("TIMEOUT_SECS")
	errs = append(errs, err)
	if err == nil && c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("TIMEOUT_SECS=%q (from %s): want a positive number of seconds", cfg.Get("TIMEOUT_SECS"), cfg.Source("TIMEOUT_SECS")))
	}
	c.ReadyTimeout = tritonReadyExternal
	if c.StartCmd != "" {
		c.ReadyTimeout = tritonReadyStarted
	}
	if v := strings.TrimSpace(cfg.Get("TRITON_READY_SECS")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("TRITON_READY_SECS=%q (from %s): want a positive number of seconds", v, cfg.Source("TRITON_READY_SECS")))
		}
		c.ReadyTimeout = time.Duration(f * float64(time.Second))
	}
	c.DebugBench, err = cfg.Bool01("DEBUG_BENCH")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return c, knobs.Invalid(err)
	}
	pa := strings.TrimSpace(cfg.Get("TRITON_PERF_ANALYZER"))
	if pa == "" {
		pa = "perf_analyzer"
	}
	if p, err := server.LookPath(pa); err == nil {
		c.PerfAnalyzer = p
	} else if cfg.IsSet("TRITON_PERF_ANALYZER") {
		return c, knobs.Invalid(fmt.Errorf("TRITON_PERF_ANALYZER=%q (from %s): %v", pa, cfg.Source("TRITON_PERF_ANALYZER"), err))
	}
	c.LogDir = logDir
	c.RunTS = runTS
	c.Environ = cfg.Environ()
	return c, nil
}

// newFromKnobs is the stack's factory: decode tokens/sec from the generate extension's event
// stream per model and endpoint, plus perf_analyzer's inferences/sec (JSONL and console only)
// when it is installed. Triton's settings live in its model repository, so there is no
// sweep: one baseline row per model and endpoint.
func newFromKnobs(_ context.Context, cfg *knobs.Config, rc stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
	cfg = cfg.WithStack(knobs.StackTriton)
	tc, err := ConfigFromKnobs(cfg, rc.LogDir, rc.RunTS)
	if err != nil {
		return nil, p, err
	}
	var models []string
	for _, m := range tc.Models {
		models = append(models, m.Name+" (as "+m.Alias+")")
	}
	start := "none: the servers must already be running (TRITON_START_CMD unset)"
	if tc.StartCmd != "" {
		start = tc.StartCmd
	}
	pa := "not installed"
	if tc.PerfAnalyzer != "" {
		pa = fmt.Sprintf("%s (concurrency %d, batch %d, %d requests; reports inferences/sec)", tc.PerfAnalyzer, tc.Concurrency, tc.Batch, tc.RequestCount)
	}
	backend := "detected per model"
	if tc.Backend != "" {
		backend = string(tc.Backend) + " (TRITON_BACKEND)"
	}
	fmt.Fprintf(rc.Log, "Endpoints  : A %s, B %s\nModels     : %s\nStart      : %s\nFlavour    : %s\nGenerate   : %d tokens, temperature %g, timeout %s, readiness %s\nperf_anal. : %s\n",
		tc.EndpointA, tritonOrNone(tc.EndpointB), strings.Join(models, ", "), start, backend,
		tc.NumPredict, tc.Temperature, tc.RequestTimeout, tc.ReadyTimeout, pa)
	return New(tc, rc.Log), p, nil
}

func tritonOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
