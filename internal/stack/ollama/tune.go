package ollama

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Tuning settings beyond num_gpu (issue 16). Server-level ones are the daemon's environment
// (a change restarts the test daemon); request-level ones travel in "options".
const (
	FlashAttention = "OLLAMA_FLASH_ATTENTION"
	KVCacheType    = "OLLAMA_KV_CACHE_TYPE"
)

// Tuning is the values to try of each tuning knob (empty: not swept).
type Tuning struct {
	FlashAttention []string // OLLAMA_FLASH_ATTENTION_SET
	KVCacheType    []string // OLLAMA_KV_CACHE_TYPE_SET
	NumParallel    []int    // OLLAMA_NUM_PARALLEL_SET
	NumBatch       []int    // NUM_BATCH_SET
	NumThread      []int    // NUM_THREAD_SET
	NumCtx         []int    // NUM_CTX_SET
}

func (t Tuning) empty() bool {
	return len(t.FlashAttention)+len(t.KVCacheType)+len(t.NumParallel)+len(t.NumBatch)+len(t.NumThread)+len(t.NumCtx) == 0
}

// tuningFromKnobs reads the tuning sets.
func tuningFromKnobs(cfg *knobs.Config) (Tuning, []error) {
	var t Tuning
	var errs []error
	list := func(name string) []string {
		v, err := cfg.List(name)
		errs = append(errs, err)
		return v
	}
	ints := func(name string) []int {
		v, err := cfg.Ints(name)
		errs = append(errs, err)
		return v
	}
	t.FlashAttention = list("OLLAMA_FLASH_ATTENTION_SET")
	t.KVCacheType = list("OLLAMA_KV_CACHE_TYPE_SET")
	t.NumParallel = ints("OLLAMA_NUM_PARALLEL_SET")
	t.NumBatch = ints("NUM_BATCH_SET")
	t.NumThread = ints("NUM_THREAD_SET")
	t.NumCtx = ints("NUM_CTX_SET")
	for _, v := range t.FlashAttention {
		if v != "0" && v != "1" {
			errs = append(errs, fmt.Errorf("OLLAMA_FLASH_ATTENTION_SET=%q (from %s): %q is not 0 or 1", cfg.Get("OLLAMA_FLASH_ATTENTION_SET"), cfg.Source("OLLAMA_FLASH_ATTENTION_SET"), v))
		}
	}
	return t, errs
}

// cpuTuning is what a CPU endpoint sweeps when no tuning set is given: num_gpu means nothing
// there, while the threads decoding (every core, then half), the prompt batch (Ollama's 512,
// then 64) and a quantized KV cache (q8_0, with flash attention on for both types so that the
// KV effect is measured alone) can move the rate.
func cpuTuning(cores int) Tuning {
	t := Tuning{NumBatch: []int{512, 64}, KVCacheType: []string{"f16", "q8_0"}}
	t.NumThread = []int{cores}
	if half := cores / 2; half >= 1 && half != cores {
		t.NumThread = append(t.NumThread, half)
	}
	return t
}

func quantizedKV(kv string) bool { return kv != "" && kv != "f16" }

// tunedCandidates is the product of the tuning sets over the offload candidates: the server
// configurations outermost (the search groups them anyway), the request options inside, every
// list in its given order (the default first). A quantized KV cache with flash attention off
// is skipped with a note: Ollama would silently run it as f16. skipped lists them.
func (d *Driver) tunedCandidates(offload []stack.Candidate, tu Tuning) (out []stack.Candidate, skipped []string) {
	fa := tu.FlashAttention
	anyQuant := false
	for _, kv := range tu.KVCacheType {
		anyQuant = anyQuant || quantizedKV(kv)
	}
	if len(fa) == 0 && anyQuant {
		fa = []string{"1"} // every KV type at flash attention on, so the KV effect is alone
	}
	for _, f := range stack.TuneValues(fa) {
		for _, kv := range stack.TuneValues(tu.KVCacheType) {
			if quantizedKV(kv) && f == "0" {
				skipped = append(skipped, fmt.Sprintf("%s=%s with %s=0: Ollama needs flash attention for a quantized KV cache and would silently use f16", KVCacheType, kv, FlashAttention))
				continue
			}
			for _, par := range stack.TuneInts(tu.NumParallel) {
				for _, base := range offload {
					for _, ctxv := range stack.TuneInts(tu.NumCtx) {
						for _, b := range stack.TuneInts(tu.NumBatch) {
							for _, th := range stack.TuneInts(tu.NumThread) {
								c := base
								c.Settings = append([]stack.Setting(nil), base.Settings...)
								set := func(name, v string, level stack.Level) {
									if v == "" {
										return
									}
									for i := range c.Settings {
										if c.Settings[i].Name == name {
											c.Settings[i].Value = v
											return
										}
									}
									c.Settings = append(c.Settings, stack.Setting{Name: name, Value: v, Level: level})
								}
								set(FlashAttention, f, stack.ServerLevel)
								set(KVCacheType, kv, stack.ServerLevel)
								set(NumParallel, par, stack.ServerLevel)
								set("num_ctx", ctxv, stack.RequestLevel)
								set("num_batch", b, stack.RequestLevel)
								set("num_thread", th, stack.RequestLevel)
								if ctxv != "" {
									c.NumCtx = ctxv
								}
								if b != "" {
									c.Batch = b
								}
								out = append(out, c)
							}
						}
					}
				}
			}
		}
	}
	return out, skipped
}

// requestOptions are the tuned request-level options of c (num_batch, num_thread, num_ctx).
func requestOptions(c stack.Candidate) map[string]int {
	out := map[string]int{}
	for _, s := range c.Settings {
		switch s.Name {
		case "num_batch", "num_thread", "num_ctx":
			if n, err := strconv.Atoi(s.Value); err == nil {
				out[s.Name] = n
			}
		}
	}
	return out
}

// serverEnv is the daemon environment c's server-level settings give (sorted), as
// NAME=value words.
func serverEnv(c stack.Candidate) []string {
	var env []string
	for _, s := range c.Settings {
		if s.Level == stack.ServerLevel && strings.HasPrefix(s.Name, "OLLAMA_") {
			env = append(env, s.Name+"="+s.Value)
		}
	}
	sort.Strings(env)
	return env
}

// ServerCommand implements stack.CommandLiner: how to run the best configuration by hand —
// the daemon's environment, and the model with its request options.
func (d *Driver) ServerCommand(_ stack.Endpoint, _ stack.Target, c stack.Candidate) string {
	env := strings.Join(serverEnv(c), " ")
	if env != "" {
		env += " "
	}
	opts := requestOptions(c)
	if ng, err := strconv.Atoi(c.NumGPU); err == nil {
		opts["num_gpu"] = ng
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var params []string
	for _, k := range keys {
		params = append(params, fmt.Sprintf("%q: %d", k, opts[k]))
	}
	return fmt.Sprintf("%sollama serve; requests to %s with options {%s}", env, c.ModelTag, strings.Join(params, ", "))
}

func cores() int { return runtime.NumCPU() }
