package llamacpp

import (
	"context"
	"fmt"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func init() { stack.Register(stack.Registration{Stack: stackname.LlamaCpp, New: newFromKnobs}) }

// newFromKnobs is the stack's factory: one llama-server per (GPU endpoint, --n-gpu-layers
// candidate), measured by fuze's client with the server's timings beside it. See
// ConfigFromKnobs for which knobs it reads.
func newFromKnobs(_ context.Context, cfg *knobs.Config, rc stack.RunContext, p sweep.Policy) (stack.Driver, sweep.Policy, error) {
	cfg = cfg.WithStack(knobs.StackLlamaCpp)
	root := cfg.Get("FUZE_ROOT")
	if root == "" {
		root = rc.Root
	}
	lc, err := ConfigFromKnobs(cfg, root, rc.LogDir, rc.RunTS)
	if err != nil {
		return nil, p, knobs.Invalid(err)
	}
	// ZERO_TOKPS_BREAK and NO_IMPROVE_LIMIT are Ollama's guards: an --n-gpu-layers sweep
	// runs from full offload down, where every step is expected to be slower (and the
	// first ones may not fit), so EXHAUSTIVE=1 tries every candidate unless they are set.
	if !cfg.IsSet("ZERO_TOKPS_BREAK") {
		p.ZeroBreak = 0
	}
	if !cfg.IsSet("NO_IMPROVE_LIMIT") {
		p.NoImproveLimit = 0
	}
	fmt.Fprintf(rc.Log, "Ports      : A %d, B %d\nNGL        : %v (-1: all layers, passed as --n-gpu-layers %d)\nctx/batch  : --ctx-size %d --batch-size %d, n_predict %d\n",
		lc.PortA, lc.PortB, lc.NGL, AllLayers, lc.CtxSize, lc.BatchSize, lc.NumPredict)
	if lc.ModelsEnv != "" {
		fmt.Fprintf(rc.Log, "models.env : %s\n", lc.ModelsEnv)
	}
	return New(lc, rc.Log), p, nil
}
