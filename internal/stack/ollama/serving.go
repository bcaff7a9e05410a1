package ollama

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
)

// NumParallel is the daemon's environment variable that sets how many requests one loaded
// model serves at once; the others wait in the daemon's queue (OLLAMA_MAX_QUEUE). Each slot
// gets its own num_ctx of context, so memory grows with it.
const NumParallel = "OLLAMA_NUM_PARALLEL"

// newTransport is the driver's HTTP transport to its daemons: keep-alive connections, enough
// of them kept idle for a serving level's streams.
func newTransport() *http.Transport {
	tr := arrival.Transport() // chunks timed at the kernel's receipt (internal/arrival)
	tr.MaxIdleConnsPerHost = 1024
	tr.IdleConnTimeout = 30 * time.Second
	return tr
}

// client is an API client for a daemon over the driver's transport.
func (d *Driver) client(addr string) *ollamaapi.Client {
	c := ollamaapi.New(addr)
	c.HTTP = &http.Client{Transport: d.transport}
	return c
}

// CloseIdleConnections implements stack.IdleCloser.
func (d *Driver) CloseIdleConnections() { d.transport.CloseIdleConnections() }

// ServingCandidates implements stack.ServingPlanner: the base model with the runtime options
// of the baseline, at each OLLAMA_NUM_PARALLEL (a daemon environment variable: a change
// restarts the test daemon). Without values, the daemon's own setting: the environment's
// OLLAMA_NUM_PARALLEL when the run sets one, else Ollama's default. The daemon-level tuning sets
// (OLLAMA_FLASH_ATTENTION_SET, OLLAMA_KV_CACHE_TYPE_SET) multiply them: every server
// configuration gets its levels and its goodput, so the serving view's best configuration under
// the SLO is the tuning search's throughput-at-the-SLO objective. Request options are not
// crossed here: a level's configuration is its server's settings.
func (d *Driver) ServingCandidates(_ context.Context, _ stack.Endpoint, t stack.Target, parallel []int) ([]stack.Candidate, error) {
	base := d.candidate(stack.LabelBaseline, t.Model, "default")
	var out []stack.Candidate
	if len(parallel) == 0 {
		c := base.WithParallel(NumParallel, 0)
		if v := d.environ(NumParallel); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				c = base.WithParallel(NumParallel, n)
			}
		}
		out = []stack.Candidate{c}
	}
	for _, n := range parallel {
		out = append(out, base.WithParallel(NumParallel, n))
	}
	if tu := (Tuning{FlashAttention: d.cfg.Tune.FlashAttention, KVCacheType: d.cfg.Tune.KVCacheType}); !tu.empty() {
		out = d.tuned(out, tu)
	}
	if len(d.cfg.Tune.NumBatch)+len(d.cfg.Tune.NumCtx)+len(d.cfg.Tune.NumThread) > 0 {
		fmt.Fprintf(d.log, "   serving: NUM_BATCH_SET, NUM_CTX_SET and NUM_THREAD_SET are request options, not swept by serving (the single-stream search measures them)\n")
	}
	return out, nil
}

// environ is the value of name in the daemons' environment ("" when unset).
func (d *Driver) environ(name string) string {
	v := ""
	for _, kv := range d.cfg.Environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// daemonEnvOf is the environment c's server-level settings give a daemon
// (OLLAMA_NUM_PARALLEL, OLLAMA_FLASH_ATTENTION, OLLAMA_KV_CACHE_TYPE).
func daemonEnvOf(c stack.Candidate) []string { return serverEnv(c) }

// ensureDaemonEnv restarts ep's test daemon when c needs another daemon environment
// (OLLAMA_NUM_PARALLEL, flash attention, KV cache type) than the one it runs with. A daemon fuze did not start (the persistent
// one, SKIP_TEST_UNITS=1) cannot be restarted: a configuration that needs it is a failure.
func (d *Driver) ensureDaemonEnv(ctx context.Context, ep stack.Endpoint, c stack.Candidate) error {
	env := daemonEnvOf(c)
	want := strings.Join(env, " ")
	d.mu.Lock()
	h, started := d.daemons[ep.Addr]
	cur := d.daemonEnv[ep.Addr]
	d.mu.Unlock()
	if !started {
		if want == "" {
			return nil
		}
		return measure.Fail(measure.ErrOther, fmt.Errorf("%s needs a test daemon fuze starts (SKIP_TEST_UNITS=0): the daemon on %s keeps its own setting", want, ep.Addr))
	}
	if cur == want {
		return nil
	}
	fmt.Fprintf(d.log, "== restarting test daemon %s on %s with %q (was %q)\n", ep.Suffix, ep.Addr, want, cur)
	_ = h.Stop(10 * time.Second)
	d.mu.Lock()
	delete(d.daemons, ep.Addr)
	delete(d.daemonEnv, ep.Addr)
	d.mu.Unlock()
	d.transport.CloseIdleConnections()
	if err := waitPortFree(ctx, ep.Addr); err != nil {
		return measure.Fail(measure.ErrOther, err)
	}
	if err := d.startDaemon(ctx, &ep, env...); err != nil {
		if errors.Is(err, context.Canceled) {
			return measure.Fail(measure.ErrCanceled, err)
		}
		return measure.Fail(measure.ErrExited, fmt.Errorf("restart with %s: %w", want, err))
	}
	return nil
}

// waitPortFree waits up to 10 s for addr to be free after its daemon stopped.
func waitPortFree(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := server.CheckPortFree(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CountTokens implements stack.Tokenizer. Ollama has no tokenize endpoint: the count is the
// prompt_eval_count of a one-token generation of text in raw mode (as Send sends prompts),
// which is every prompt token when no cached prefix is reused (serving prompts start with
// words unique to each).
func (d *Driver) CountTokens(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, text string) (int, error) {
	req := ollamaapi.GenerateRequest{Model: c.ModelTag, Prompt: text, Stream: false, Raw: true, Options: d.options(c, 1)}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutGen)
	defer cancel()
	res, err := d.client(ep.Addr).Generate(cctx, req, nil)
	if err != nil {
		return 0, d.classify(ep, err)
	}
	if res.PromptEvalCount <= 0 {
		return 0, measure.Fail(measure.ErrMalformed, errors.New("the answer has no prompt_eval_count"))
	}
	return res.PromptEvalCount, nil
}
