package llamacpp

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fuze-ai/fuze/internal/knobs"
)

// DefaultSeed is the sampling seed of every request (the same as the Ollama driver's).
const DefaultSeed = 42

// ConfigFromKnobs maps the knobs onto the driver's configuration. root is FUZE_ROOT (the
// directory a relative LLAMACPP_MODELS_ENV is relative to). Which knobs:
//
//   - --ctx-size: BENCH_NUM_CTX when set, else CTX (1024 for llama.cpp); n_predict:
//     BENCH_NUM_PREDICT when set, else PRED; --batch-size: BATCH (32).
//   - Readiness deadline: WAIT_API_SECS when set, else ReadyTimeoutFor(model size) (2 min +
//     the file read at 128 MiB/s); the original's 30 s was too short for big models.
//   - Request timeout: TIMEOUT_GEN when set, else 10 min + 2 s per requested token.
//   - Prompt: PROMPT (the same prompt as the Ollama benchmark), made unique per attempt.
func ConfigFromKnobs(cfg *knobs.Config, root, logDir, runTS string) (Config, error) {
	cfg = cfg.WithStack(knobs.StackLlamaCpp)
	var c Config
	var errs []error
	num := func(name string) int {
		v, err := cfg.Int(name)
		errs = append(errs, err)
		return v
	}
	positive := func(name string, v int) int {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q (from %s): want a positive integer", name, cfg.Get(name), cfg.Source(name)))
		}
		return v
	}
	port := func(name string) int {
		v := num(name)
		if v <= 0 || v > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q (from %s): want a TCP port", name, cfg.Get(name), cfg.Source(name)))
		}
		return v
	}
	c.Bin = cfg.Get("LLAMACPP_BIN")
	c.PortA, c.PortB = port("PORT_A"), port("PORT_B")
	c.SplitPort = port("SPLIT_PORT")
	switch c.SplitMode = cfg.Get("LLAMACPP_SPLIT_MODE"); c.SplitMode {
	case "layer", "row":
	default:
		errs = append(errs, fmt.Errorf("LLAMACPP_SPLIT_MODE=%q (from %s): want layer or row", c.SplitMode, cfg.Source("LLAMACPP_SPLIT_MODE")))
	}
	if cfg.IsSet("MODELS") {
		list, err := cfg.List("MODELS")
		errs = append(errs, err)
		c.ModelList = list
		for _, e := range list {
			if _, err := parseSpec(e); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.Model = strings.TrimSpace(cfg.Get("LLAMACPP_MODEL"))
	c.ModelDir = cfg.Get("MODEL_DIR")
	if p := cfg.Get("LLAMACPP_MODELS_ENV"); p != "" {
		if !filepath.IsAbs(p) && root != "" {
			p = filepath.Join(root, p)
		}
		c.ModelsEnv = p
	}
	c.PathVars = map[string]string{}
	for _, kv := range cfg.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, PathVarPrefix) || strings.HasPrefix(k, TagVarPrefix)) {
			c.PathVars[k] = v
		}
	}
	c.PathVarSource = cfg.Source
	ngl, err := cfg.Ints("NGL_CANDIDATES")
	errs = append(errs, err)
	if err == nil && len(ngl) == 0 {
		errs = append(errs, fmt.Errorf("NGL_CANDIDATES (from %s) is empty", cfg.Source("NGL_CANDIDATES")))
	}
	c.NGL = ngl
	if cfg.IsSet("BENCH_NUM_CTX") {
		c.CtxSize = positive("BENCH_NUM_CTX", num("BENCH_NUM_CTX"))
	} else {
		c.CtxSize = positive("CTX", num("CTX"))
	}
	c.BatchSize = positive("BATCH", num("BATCH"))
	if cfg.IsSet("BENCH_NUM_PREDICT") {
		c.NumPredict = positive("BENCH_NUM_PREDICT", num("BENCH_NUM_PREDICT"))
	} else {
		c.NumPredict = positive("PRED", num("PRED"))
	}
	t, err := cfg.Float("TEMPERATURE")
	errs = append(errs, err)
	c.Temperature = t
	c.Seed = DefaultSeed
	c.Prompt = cfg.Get("PROMPT")
	if cfg.IsSet("WAIT_API_SECS") {
		c.ReadyTimeout, err = cfg.Duration("WAIT_API_SECS")
		errs = append(errs, err)
	}
	if cfg.IsSet("TIMEOUT_GEN") {
		c.RequestTimeout, err = cfg.Duration("TIMEOUT_GEN")
		errs = append(errs, err)
	}
	c.DebugBench, err = cfg.Bool01("DEBUG_BENCH")
	errs = append(errs, err)
	tu, terrs := tuningFromKnobs(cfg)
	c.Tune = tu
	c.CPUTune, err = cfg.Bool01("CPU_TUNE")
	errs = append(errs, err)
	errs = append(errs, terrs...)
	c.LogDir, c.RunTS = logDir, runTS
	c.Environ = cfg.Environ()
	return c, errors.Join(errs...)
}
