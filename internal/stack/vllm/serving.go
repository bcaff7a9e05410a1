package vllm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// MaxNumSeqs is the name of vLLM's --max-num-seqs in a serving configuration: the most
// sequences its scheduler runs in one batch (the rest wait in its queue).
const MaxNumSeqs = "max_num_seqs"

// newTransport is the driver's HTTP transport: keep-alive connections, enough kept idle for a
// serving level's streams (http.DefaultTransport keeps 2 per host and would close the rest
// after every request).
func newTransport() *http.Transport {
	tr := arrival.Transport() // chunks timed at the kernel's receipt (internal/arrival)
	tr.MaxIdleConnsPerHost = 1024
	tr.IdleConnTimeout = 30 * time.Second
	return tr
}

// CloseIdleConnections implements stack.IdleCloser.
func (d *Driver) CloseIdleConnections() { d.transport.CloseIdleConnections() }

// maxNumSeqs is the --max-num-seqs c asks for (0: not passed).
func maxNumSeqs(c stack.Candidate) int {
	for _, s := range c.Settings {
		if s.Name == MaxNumSeqs && s.Level == stack.ServerLevel {
			if n, err := strconv.Atoi(s.Value); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// ServingCandidates implements stack.ServingPlanner: the baseline server at each
// --max-num-seqs (a server restart), or at vLLM's own default when parallel is empty.
func (d *Driver) ServingCandidates(ctx context.Context, ep stack.Endpoint, t stack.Target, parallel []int) ([]stack.Candidate, error) {
	base, err := d.Baseline(ctx, ep, t)
	if err != nil {
		return nil, err
	}
	var out []stack.Candidate
	if len(parallel) == 0 {
		out = []stack.Candidate{base.WithParallel(MaxNumSeqs, 0)}
	}
	for _, n := range parallel {
		out = append(out, base.WithParallel(MaxNumSeqs, n))
	}
	// The tuning sets are server flags: each server configuration gets its levels and its
	// goodput, which is the tuning's throughput-at-the-SLO objective.
	if !d.cfg.Tune.empty() {
		out = tuned(out, d.cfg.Tune)
	}
	return out, nil
}

// CountTokens implements stack.Tokenizer: vLLM's POST /tokenize with the special tokens a
// completion adds ({"count": n, "tokens": […], …}).
func (d *Driver) CountTokens(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, text string) (int, error) {
	return Tokenize(ctx, d.http, "http://"+ep.Addr, c.ModelTag, text)
}

// Tokenize counts text's tokens with vLLM's POST /tokenize.
func Tokenize(ctx context.Context, hc *http.Client, baseURL, model, text string) (int, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": text, "add_special_tokens": true})
	endpoint := strings.TrimRight(baseURL, "/") + "/tokenize"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, classify(fmt.Errorf("POST %s: %w", endpoint, err), nil)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, classify(err, nil)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, classify(statusError(endpoint, resp.StatusCode, data), nil)
	}
	var out struct {
		Count  *int              `json:"count"`
		Tokens []json.RawMessage `json:"tokens"`
	}
	if err := json.Unmarshal(data, &out); err != nil || (out.Count == nil && out.Tokens == nil) {
		return 0, measure.Fail(measure.ErrMalformed, malformed("/tokenize answered neither count nor tokens: %s", clip(string(data), 200)))
	}
	if out.Count != nil {
		return *out.Count, nil
	}
	return len(out.Tokens), nil
}
