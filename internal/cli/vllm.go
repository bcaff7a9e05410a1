package cli

import (
	"context"
	"fmt"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// runVLLMBenchmark is `fuze stack [@env] vLLM benchmark`: one vLLM server per (GPU endpoint,
// model), started with what is installed (VLLM_BIN, VLLM_PYTHON, `vllm` on PATH, the
// installer's venv, PYTHON_BIN), and one baseline row per (model, endpoint).
func runVLLMBenchmark(ctx context.Context, s streams, cfg *knobs.Config) (string, error) {
	return runStackBenchmark(ctx, s, cfg, "vLLM", func(cfg *knobs.Config, rc runContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
		vc, err := vllm.FromKnobs(cfg, rc.LogDir, rc.RunTS)
		if err != nil {
			return nil, p, usageError{err}
		}
		// Not installed is a plain error (the stack is unavailable), not a usage error.
		vc.Launcher, err = vllm.FindLauncher(ctx, vllm.LauncherSearchFromKnobs(cfg))
		if err != nil {
			return nil, p, err
		}
		fmt.Fprintf(rc.Log, "Launcher   : %s\n", vc.Launcher)
		fmt.Fprintf(rc.Log, "Server     : --max-model-len %d --dtype %s --gpu-memory-utilization %g; max_tokens %d, ready within %s\n",
			vc.MaxModelLen, vc.DType, vc.GPUMemUtil, vc.MaxTokens, vc.ReadyTimeout)
		return vllm.New(vc, rc.Log), p, nil
	})
}
