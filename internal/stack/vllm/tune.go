package vllm

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Tuning is the values to try of vLLM's tuning flags (issue 16); every one is a `vllm serve`
// flag, so each value is a server of its own. Empty: not swept (no candidates, as before).
type Tuning struct {
	PrefixCaching    []string // VLLM_PREFIX_CACHING_SET: 1 --enable-prefix-caching, 0 --no-enable-prefix-caching
	MaxBatchedTokens []int    // VLLM_MAX_NUM_BATCHED_TOKENS_SET
	KVCacheDType     []string // VLLM_KV_CACHE_DTYPE_SET
}

// Setting names of the tuning flags.
const (
	SetPrefixCaching    = "enable_prefix_caching"
	SetMaxBatchedTokens = "max_num_batched_tokens"
	SetKVCacheDType     = "kv_cache_dtype"
)

func tuningFromKnobs(cfg *knobs.Config) (Tuning, []error) {
	var t Tuning
	var errs []error
	var err error
	t.PrefixCaching, err = cfg.List("VLLM_PREFIX_CACHING_SET")
	errs = append(errs, err)
	for _, v := range t.PrefixCaching {
		if v != "0" && v != "1" {
			errs = append(errs, fmt.Errorf("VLLM_PREFIX_CACHING_SET (from %s): %q is not 0 or 1", cfg.Source("VLLM_PREFIX_CACHING_SET"), v))
		}
	}
	t.MaxBatchedTokens, err = cfg.Ints("VLLM_MAX_NUM_BATCHED_TOKENS_SET")
	errs = append(errs, err)
	t.KVCacheDType, err = cfg.List("VLLM_KV_CACHE_DTYPE_SET")
	errs = append(errs, err)
	return t, errs
}

// Candidates implements stack.Driver: the product of the tuning sets over the baseline, in
// the sets' order; none without tuning sets (no offload to sweep).
func (d *Driver) Candidates(ctx context.Context, ep stack.Endpoint, t stack.Target) ([]stack.Candidate, error) {
	if d.cfg.Tune.empty() {
		return nil, nil
	}
	base, err := d.Baseline(ctx, ep, t)
	if err != nil {
		return nil, err
	}
	base.Label = stack.LabelOptimized
	return tuned([]stack.Candidate{base}, d.cfg.Tune), nil
}

func (t Tuning) empty() bool {
	return len(t.PrefixCaching)+len(t.MaxBatchedTokens)+len(t.KVCacheDType) == 0
}

// tuned is the product of the tuning sets (all server flags) over bases, in the sets' order.
func tuned(bases []stack.Candidate, tu Tuning) []stack.Candidate {
	var out []stack.Candidate
	for _, kv := range stack.TuneValues(tu.KVCacheDType) {
		for _, pc := range stack.TuneValues(tu.PrefixCaching) {
			for _, mb := range stack.TuneInts(tu.MaxBatchedTokens) {
				for _, base := range bases {
					c := base
					c.Settings = append([]stack.Setting(nil), base.Settings...)
					for _, s := range []stack.Setting{{Name: SetKVCacheDType, Value: kv}, {Name: SetPrefixCaching, Value: pc}, {Name: SetMaxBatchedTokens, Value: mb}} {
						if s.Value != "" {
							s.Level = stack.ServerLevel
							c.Settings = append(c.Settings, s)
						}
					}
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// tuningArgs are the `vllm serve` flags of c's tuning settings.
func tuningArgs(c stack.Candidate) []string {
	m := c.SettingsMap()
	var args []string
	switch m[SetPrefixCaching] {
	case "1":
		args = append(args, "--enable-prefix-caching")
	case "0":
		args = append(args, "--no-enable-prefix-caching")
	}
	if v := m[SetMaxBatchedTokens]; v != "" {
		args = append(args, "--max-num-batched-tokens", v)
	}
	if v := m[SetKVCacheDType]; v != "" {
		args = append(args, "--kv-cache-dtype", v)
	}
	return args
}

// ServerCommand implements stack.CommandLiner: the exact `vllm serve` command line of c.
func (d *Driver) ServerCommand(ep stack.Endpoint, _ stack.Target, c stack.Candidate) string {
	_, portStr, _ := net.SplitHostPort(ep.Addr)
	port, _ := strconv.Atoi(portStr)
	args := d.cfg.Launcher.Args(c.ModelTag, ServeFlags{Host: host, Port: port, DType: d.cfg.DType, MaxModelLen: d.cfg.MaxModelLen,
		GPUMemUtil: d.cfg.GPUMemUtil, MaxNumSeqs: maxNumSeqs(c), Extra: tuningArgs(c)})
	return d.cfg.Launcher.Path + " " + strings.Join(args, " ")
}
