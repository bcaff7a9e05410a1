package llamacpp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// NParallel is the name of llama-server's --parallel setting in a serving configuration: the
// number of slots, each a sequence decoded in the same batches as the others (continuous
// batching). The slots share --ctx-size, so a serving configuration passes --ctx-size
// CTX × slots: every slot keeps the context a single-stream benchmark has.
const NParallel = "n_parallel"

// parallelOf is the slots c asks for (1 when it does not say) and whether it is a serving
// configuration.
func parallelOf(c stack.Candidate) (int, bool) {
	for _, s := range c.Settings {
		if s.Name == stack.ParallelSetting {
			if n, err := strconv.Atoi(s.Value); err == nil && n > 0 {
				return n, true
			}
			return 1, true
		}
	}
	return 1, false
}

// ServingCandidates implements stack.ServingPlanner: one llama-server per --parallel value
// (empty: --parallel 1, what the benchmark runs), every layer on the GPU (--n-gpu-layers 999;
// the server's own default on the CPU), --ctx-size scaled by the slots, continuous batching.
func (d *Driver) ServingCandidates(_ context.Context, ep stack.Endpoint, t stack.Target, parallel []int) ([]stack.Candidate, error) {
	base := d.candidate(stack.LabelBaseline, t.Alias, "default")
	if ep.GPU != nil {
		base = d.candidate(stack.LabelOptimized, fmt.Sprintf("%s-%s-ngl%d", t.Alias, ep.GPULabel(), -1), "-1")
	}
	if len(parallel) == 0 {
		parallel = []int{1}
	}
	out := make([]stack.Candidate, 0, len(parallel))
	for _, n := range parallel {
		c := base.WithParallel(NParallel, n)
		c.NumCtx = strconv.Itoa(d.cfg.CtxSize * n)
		for i := range c.Settings {
			if c.Settings[i].Name == "ctx_size" {
				c.Settings[i].Value = c.NumCtx
			}
		}
		c.Settings = append(c.Settings,
			stack.Setting{Name: "ctx_per_slot", Value: strconv.Itoa(d.cfg.CtxSize), Level: stack.ServerLevel},
			stack.Setting{Name: "cont_batching", Value: "true", Level: stack.ServerLevel})
		out = append(out, c)
	}
	// The tuning sets are server flags: each server configuration gets its levels and its
	// goodput, which is the search's throughput-at-the-SLO objective.
	if !d.cfg.Tune.empty() {
		out = d.tuned(out, d.cfg.Tune)
	}
	return out, nil
}

// CloseIdleConnections implements stack.IdleCloser.
func (d *Driver) CloseIdleConnections() { closeConns() }

// CountTokens implements stack.Tokenizer: POST /tokenize with add_special, as /completion
// tokenizes a prompt (so the count includes the BOS token the request evaluates).
func (d *Driver) CountTokens(ctx context.Context, ep stack.Endpoint, _ stack.Target, _ stack.Candidate, text string) (int, error) {
	b, _ := json.Marshal(map[string]any{"content": text, "add_special": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep.Addr+"/tokenize", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, measure.Fail(measure.ErrConnect, err)
	}
	defer closeConns()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, measure.Fail(measure.ErrHTTP, apiError(resp))
	}
	var out struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, measure.Fail(measure.ErrConnect, err)
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Tokens == nil {
		return 0, measure.Fail(measure.ErrMalformed, errors.New("/tokenize answered no \"tokens\" array: "+clip(string(raw))))
	}
	return len(out.Tokens), nil
}
