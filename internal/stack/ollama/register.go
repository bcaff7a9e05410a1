package ollama

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func init() { stack.Register(stack.Registration{Stack: stackname.Ollama, New: newFromKnobs}) }

// newFromKnobs is the stack's factory: the Ollama test daemons as systemd units where systemd
// is usable, else as processes fuze supervises.
func newFromKnobs(_ context.Context, cfg *knobs.Config, rc stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
	oc, err := ConfigFromKnobs(cfg.WithStack(knobs.StackOllama), rc.LogDir, rc.RunTS)
	if err != nil {
		return nil, p, err
	}
	if !oc.FastMode {
		// The original applied its guards to the runtime-option sweep only.
		p.ZeroBreak, p.NoImproveLimit = 0, 0
	}
	if server.SystemdUsable() {
		oc.Systemd = &server.Systemd{}
	}
	fmt.Fprintf(rc.Log, "Persistent : 127.0.0.1:%d\n", oc.PersistentPort)
	return New(oc, rc.Log), p, nil
}

// ConfigFromKnobs maps the knobs onto the driver's configuration.
func ConfigFromKnobs(cfg *knobs.Config, logDir, runTS string) (Config, error) {
	var c Config
	var errs []error
	num := func(name string) int {
		v, err := cfg.Int(name)
		errs = append(errs, err)
		return v
	}
	secs := func(name string) time.Duration {
		v, err := cfg.Duration(name)
		errs = append(errs, err)
		return v
	}
	flag := func(name string) bool {
		v, err := cfg.Bool01(name)
		errs = append(errs, err)
		return v
	}
	c.PersistentPort = num("PERSISTENT_PORT")
	c.TestPortA = num("TEST_PORT_A")
	c.TestPortB = num("TEST_PORT_B")
	c.SplitPort = num("SPLIT_PORT")
	if cfg.Get("SKIP_TEST_UNITS") != "" {
		c.SkipTestUnits = flag("SKIP_TEST_UNITS")
	}
	c.ModelsDir = cfg.Get("OLLAMA_MODELS_DIR")
	c.AliasPrefix = cfg.Get("ALIAS_PREFIX")
	c.AliasSuffix = cfg.Get("ALIAS_SUFFIX")
	c.Prompt = cfg.Get("PROMPT")
	c.NumPredict = num("BENCH_NUM_PREDICT")
	c.NumCtx = num("BENCH_NUM_CTX")
	t, err := cfg.Float("TEMPERATURE")
	errs = append(errs, err)
	c.Temperature = t
	c.FastMode = flag("FAST_MODE")
	c.AutoNG = flag("AUTO_NG")
	pcts, err := percentList(cfg, "NG_PERCENT_SET")
	errs = append(errs, err)
	c.NGPercents = pcts
	ngs, err := cfg.Ints("NUM_GPU_CANDIDATES")
	errs = append(errs, err)
	c.NumGPUFallback = ngs
	c.KeepFailed = flag("KEEP_FAILED_VARIANTS")
	c.GCAfterRun = flag("GC_AFTER_RUN")
	c.PublishBest = flag("PUBLISH_BEST")
	c.DebugBench = flag("DEBUG_BENCH")
	c.TimeoutGen = secs("TIMEOUT_GEN")
	c.TimeoutTags = secs("TIMEOUT_TAGS")
	c.WaitAPI = secs("WAIT_API_SECS")
	c.LogDir = logDir
	c.RunTS = runTS
	c.Environ = cfg.Environ()
	c.Include, err = cfg.Regexp("INCLUDE_MODELS")
	errs = append(errs, err)
	c.Exclude, err = cfg.Regexp("EXCLUDE_MODELS")
	errs = append(errs, err)
	tu, terrs := tuningFromKnobs(cfg)
	c.Tune = tu
	c.CPUTune = flag("CPU_TUNE")
	errs = append(errs, terrs...)
	if err := errors.Join(errs...); err != nil {
		return c, knobs.Invalid(err)
	}
	c.Bin = cfg.Get("OLLAMA_BIN")
	if _, err := os.Stat(c.Bin); err != nil {
		// The original's default path; fall back to PATH before giving up.
		if p, lerr := exec.LookPath("ollama"); lerr == nil {
			c.Bin = p
		}
	}
	return c, nil
}

// percentList reads a list of percentages in (0, 100].
func percentList(cfg *knobs.Config, name string) ([]float64, error) {
	words, err := cfg.List(name)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, w := range words {
		p, err := strconv.ParseFloat(w, 64)
		if err != nil || p <= 0 || p > 100 {
			return nil, fmt.Errorf("%s=%q (from %s): %q is not a percentage in (0, 100]", name, cfg.Get(name), cfg.Source(name), w)
		}
		out = append(out, p)
	}
	return out, nil
}
