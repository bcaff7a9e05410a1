package stack

import (
	"context"
	"strconv"
)

// Serving benchmarks (`fuze stack <stack> serving`, internal/engine's Serve) send many requests
// at once through the same Client.Send. What a driver may add for them is optional: without
// these interfaces a stack is served in its baseline configuration, its prompts are sized one
// word per token, and its connections are left to its own transport.

// ParallelSetting is the name of the server-level setting every serving configuration carries:
// how many requests the server decodes at once, as the stack's own setting says it
// (OLLAMA_NUM_PARALLEL, llama-server --parallel, vLLM --max-num-seqs). "default": the server
// decides.
const ParallelSetting = "parallel"

// ServingPlanner is implemented by drivers whose servers have a setting that governs how many
// requests they serve at once.
type ServingPlanner interface {
	// ServingCandidates are the configurations a serving run measures for t on ep: the
	// baseline with the concurrency setting at each value of parallel (SERVING_PARALLEL_SET),
	// or at the server's default when parallel is empty. Each carries the ParallelSetting
	// and the stack's own setting at ServerLevel, so that Prepare restarts the server when
	// it changes.
	ServingCandidates(ctx context.Context, ep Endpoint, t Target, parallel []int) ([]Candidate, error)
}

// Tokenizer is implemented by drivers that can count a prompt's tokens the way the server
// counts them for a request (llama-server and vLLM /tokenize; Ollama: prompt_eval_count of a
// one-token generation). The serving workload sizes its prompts with it. The server is
// prepared for c when it is called.
type Tokenizer interface {
	CountTokens(ctx context.Context, ep Endpoint, t Target, c Candidate, text string) (int, error)
}

// IdleCloser is implemented by drivers whose client keeps HTTP connections open between
// requests: CloseIdleConnections closes the idle ones. A serving level calls it when its last
// request has finished, so that nothing of a level outlives it.
type IdleCloser interface {
	CloseIdleConnections()
}

// ParallelValue is the value of c's ParallelSetting ("default" when it has none).
func (c Candidate) ParallelValue() string {
	for _, s := range c.Settings {
		if s.Name == ParallelSetting {
			return s.Value
		}
	}
	return "default"
}

// WithParallel returns c with the ParallelSetting and the stack's own setting (name, e.g.
// "OLLAMA_NUM_PARALLEL") at n, both server-level; n ≤ 0 records "default" and no stack
// setting. Settings of those names that c already has are replaced.
func (c Candidate) WithParallel(name string, n int) Candidate {
	out := c
	out.Settings = nil
	for _, s := range c.Settings {
		if s.Name != ParallelSetting && s.Name != name {
			out.Settings = append(out.Settings, s)
		}
	}
	if n <= 0 {
		out.Settings = append(out.Settings, Setting{Name: ParallelSetting, Value: "default", Level: ServerLevel})
		return out
	}
	v := strconv.Itoa(n)
	out.Settings = append(out.Settings,
		Setting{Name: ParallelSetting, Value: v, Level: ServerLevel},
		Setting{Name: name, Value: v, Level: ServerLevel})
	return out
}
