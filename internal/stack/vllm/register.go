package vllm

import (
	"context"
	"fmt"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func init() { stack.Register(stack.Registration{Stack: stackname.VLLM, New: newFromKnobs}) }

// newFromKnobs is the stack's factory: one vLLM server per (GPU endpoint, model), started
// with what is installed (VLLM_BIN, VLLM_PYTHON, `vllm` on PATH, the installer's venv,
// PYTHON_BIN), and one baseline row per (model, endpoint).
func newFromKnobs(ctx context.Context, cfg *knobs.Config, rc stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
	vc, err := FromKnobs(cfg, rc.LogDir, rc.RunTS)
	if err != nil {
		return nil, p, knobs.Invalid(err)
	}
	// Not installed is a plain error (the stack is unavailable), not a usage error.
	vc.Launcher, err = FindLauncher(ctx, LauncherSearchFromKnobs(cfg))
	if err != nil {
		return nil, p, err
	}
	fmt.Fprintf(rc.Log, "Launcher   : %s\n", vc.Launcher)
	fmt.Fprintf(rc.Log, "Server     : --max-model-len %d --dtype %s --gpu-memory-utilization %g; max_tokens %d, ready within %s\n",
		vc.MaxModelLen, vc.DType, vc.GPUMemUtil, vc.MaxTokens, vc.ReadyTimeout)
	return New(vc, rc.Log), p, nil
}
