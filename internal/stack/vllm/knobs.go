package vllm

import (
	"errors"
	"fmt"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
)

// Knobs of this driver that the registry does not define (yet); read with these defaults.
const (
	// ReadyKnob bounds a server's start, in seconds. vLLM downloads the weights on first use
	// (tens to hundreds of GB), loads them, compiles and captures CUDA graphs before /health
	// answers: the original's 120 s failed first runs of big models.
	ReadyKnob    = "VLLM_READY_SECS"
	DefaultReady = 30 * time.Minute
	// TimeoutKnob bounds one completion request, in seconds (the original had no timeout).
	TimeoutKnob    = "VLLM_TIMEOUT_SECS"
	DefaultTimeout = 5 * time.Minute
)

// FromKnobs maps the knobs onto the driver's configuration (all but the launcher, which
// FindLauncher chooses from LauncherSearchFromKnobs). Its errors name the knob, its value
// and where it was set.
func FromKnobs(cfg *knobs.Config, logDir, runTS string) (Config, error) {
	cfg = cfg.WithStack(knobs.StackVLLM)
	var errs []error
	num := func(name string) int {
		v, err := cfg.Int(name)
		errs = append(errs, err)
		return v
	}
	float := func(name string) float64 {
		v, err := cfg.Float(name)
		errs = append(errs, err)
		return v
	}
	secs := func(name string, def time.Duration) time.Duration {
		if !cfg.IsSet(name) {
			return def
		}
		v, err := cfg.Duration(name)
		if err == nil && v <= 0 {
			err = fmt.Errorf("%s=%q (from %s): want a number of seconds > 0", name, cfg.Get(name), cfg.Source(name))
		}
		errs = append(errs, err)
		return v
	}
	// "when set" knobs: BENCH_NUM_CTX over CTX, BENCH_NUM_PREDICT over PRED.
	first := func(a, b string) string {
		if cfg.IsSet(a) {
			return a
		}
		return b
	}
	ctxKnob, predKnob := first("BENCH_NUM_CTX", "CTX"), first("BENCH_NUM_PREDICT", "PRED")
	c := Config{
		PortA:          num("PORT_A"),
		PortB:          num("PORT_B"),
		SplitPort:      num("SPLIT_PORT"),
		MaxModelLen:    num(ctxKnob),
		MaxTokens:      num(predKnob),
		DType:          cfg.Get("DTYPE"),
		GPUMemUtil:     float("GPU_MEM_UTIL"),
		Temperature:    float("TEMPERATURE"),
		Prompt:         DefaultPrompt,
		ReadyTimeout:   secs(ReadyKnob, DefaultReady),
		RequestTimeout: secs(TimeoutKnob, DefaultTimeout),
		LogDir:         logDir,
		RunTS:          runTS,
		Environ:        cfg.Environ(),
	}
	if cfg.IsSet("PROMPT") {
		c.Prompt = cfg.Get("PROMPT")
	}
	tu, terrs := tuningFromKnobs(cfg)
	c.Tune = tu
	errs = append(errs, terrs...)
	debug, err := cfg.Bool01("DEBUG_BENCH")
	errs = append(errs, err)
	c.DebugBench = debug
	bad := func(name, why string) {
		errs = append(errs, fmt.Errorf("%s=%q (from %s): %s", name, cfg.Get(name), cfg.Source(name), why))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	for _, p := range []string{"PORT_A", "PORT_B"} {
		if v := num(p); v < 1 || v > 65535 {
			bad(p, "want a TCP port (1-65535)")
		}
	}
	if c.PortA == c.PortB {
		bad("PORT_B", "must differ from PORT_A")
	}
	if c.MaxTokens < 2 {
		bad(predKnob, "want at least 2 tokens (a decode rate needs a first and a last token)")
	}
	if c.MaxModelLen <= c.MaxTokens {
		bad(ctxKnob, fmt.Sprintf("--max-model-len must exceed the %d tokens to generate (%s) plus the prompt", c.MaxTokens, predKnob))
	}
	if c.GPUMemUtil <= 0 || c.GPUMemUtil > 1 {
		bad("GPU_MEM_UTIL", "want a fraction in (0, 1]")
	}
	if c.DType == "" {
		bad("DTYPE", "want a vLLM --dtype (auto, float16, bfloat16, …)")
	}
	entries, err := cfg.List("MODELS")
	errs = append(errs, err)
	if err == nil {
		c.Models, err = ResolveModels(entries, func(name string) (string, string, bool) {
			return cfg.Get(name), cfg.Source(name), cfg.IsSet(name)
		})
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// LauncherSearchFromKnobs is where FindLauncher looks, from VLLM_BIN, VLLM_PYTHON and
// PYTHON_BIN.
func LauncherSearchFromKnobs(cfg *knobs.Config) LauncherSearch {
	cfg = cfg.WithStack(knobs.StackVLLM)
	return LauncherSearch{
		Bin:        cfg.Get("VLLM_BIN"),
		Python:     cfg.Get("VLLM_PYTHON"),
		VenvPython: DefaultVenvPython,
		PythonBin:  cfg.Get("PYTHON_BIN"),
	}
}
