// Package vllm is the vLLM stack driver: one OpenAI-compatible vLLM server per (endpoint,
// model), started with `vllm serve` or `python -m vllm.entrypoints.openai.api_server`,
// ready when /health answers 200 and /v1/models lists the model, and measured from a
// streamed /v1/completions answer.
//
// The decode rate is taken from the stream: (output tokens − 1) / (last token − first token),
// the output token count being the usage vLLM reports (stream_options.include_usage). vLLM
// reports no durations of its own, and the original's rate (tokens over the whole request
// time) included prefill and HTTP overhead; that end-to-end rate and the time to first token
// are still in the JSONL sample.
//
// CSV base_model and model_tag are both the model actually served (the Hugging Face id),
// never the tag an entry is listed under: the original wrote "llama4:16x17b" for rows
// measured on Llama-3.1-8B. The tag → alias → model mapping is printed before the run.
//
// vLLM has no layer offload to sweep, so each (model, endpoint) gets its baseline only.
package vllm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// Config is the driver's view of the knobs.
type Config struct {
	Tune        Tuning // tuning sets (tune.go)
	Launcher    Launcher
	PortA       int // PORT_A
	PortB       int // PORT_B
	SplitPort   int // SPLIT_PORT: endpoint A+B, tensor parallel over both GPUs (SPLIT_ENDPOINTS=1)
	Models      []Model
	MaxModelLen int     // --max-model-len: BENCH_NUM_CTX, else CTX
	MaxTokens   int     // max_tokens: BENCH_NUM_PREDICT, else PRED
	DType       string  // DTYPE
	GPUMemUtil  float64 // GPU_MEM_UTIL
	Temperature float64 // TEMPERATURE
	Prompt      string
	// ReadyTimeout bounds a server's start: model download, load, compilation and CUDA
	// graph capture all happen before /health answers.
	ReadyTimeout time.Duration
	// RequestTimeout bounds one completion request.
	RequestTimeout time.Duration
	// StopGrace is how long a server gets after SIGTERM before its process group is killed
	// (0: 15 s).
	StopGrace time.Duration
	// WarmupTokens is max_tokens of the warm-up request before each measurement (0: 8).
	WarmupTokens int
	DebugBench   bool // DEBUG_BENCH: request and metrics JSON per attempt under LogDir
	LogDir       string
	RunTS        string   // YYYYmmdd_HHMMSS of the run, in file names and prompts
	Environ      []string // environment for started servers (knobs already applied)
}

// DefaultPrompt is the original's prompt; with ignore_eos the answer's length does not
// depend on it.
const DefaultPrompt = "Write 'ok' repeatedly."

const host = "127.0.0.1"

// Driver implements stack.Runner for vLLM.
type Driver struct {
	cfg       Config
	log       io.Writer
	http      *http.Client
	transport *http.Transport // serving.go

	mu      sync.Mutex
	servers map[string]*vserver // by endpoint address: the one server running there
	// exchanges keeps each attempt's request and stream for Debug (DEBUG_BENCH).
	exchanges map[int]exchange
}

// vserver is a vLLM server fuze started for one model on one endpoint.
type vserver struct {
	model   string
	seqs    int    // --max-num-seqs (0: not passed)
	extra   string // the tuning flags (tune.go), joined
	proc    *server.Process
	logPath string
	// failed is the outcome of a start that did not become ready; the (endpoint, model) is
	// not retried (a readiness deadline suits downloads: waiting for it again per repeat
	// would take the whole run).
	failed error
}

// New returns a driver; call Setup before benchmarking and Close afterwards.
func New(cfg Config, log io.Writer) *Driver {
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 15 * time.Second
	}
	if cfg.WarmupTokens <= 0 {
		cfg.WarmupTokens = 8
	}
	if cfg.Prompt == "" {
		cfg.Prompt = DefaultPrompt
	}
	// No client timeout (streams are bounded by the request context) and no retries.
	tr := newTransport()
	return &Driver{cfg: cfg, log: log, http: &http.Client{Transport: tr}, transport: tr, servers: map[string]*vserver{}, exchanges: map[int]exchange{}}
}

// Name implements stack.Driver.
func (d *Driver) Name() string { return stackname.VLLM }

func hostPort(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// Setup returns endpoint A (GPU A, or the CPU when there is no GPU) and B (GPU B, when
// selected), after checking their ports are free: a port another stack holds (the original's
// Ollama test units) is an error here, not a server that seems ready. Servers start per
// model, at the first measurement.
func (d *Driver) Setup(_ context.Context, sel gpu.Selection) ([]stack.Endpoint, error) {
	if d.cfg.Launcher.Path == "" {
		return nil, errors.New("vLLM: no launcher (set VLLM_BIN or VLLM_PYTHON)")
	}
	eps := []stack.Endpoint{{Suffix: "A", Addr: hostPort(d.cfg.PortA), Unit: "proc", GPU: sel.A}}
	if sel.B != nil {
		eps = append(eps, stack.Endpoint{Suffix: "B", Addr: hostPort(d.cfg.PortB), Unit: "proc", GPU: sel.B})
	}
	if ep, ok := stack.SplitEndpoint(sel, hostPort(d.cfg.SplitPort)); ok {
		eps = append(eps, ep)
	}
	for _, ep := range eps {
		if err := server.CheckPortFree(ep.Addr); err != nil {
			return nil, fmt.Errorf("vLLM endpoint %s: %w", ep.Suffix, err)
		}
	}
	fmt.Fprintf(d.log, "vLLM launcher: %s\n", d.cfg.Launcher)
	return eps, nil
}

// Release implements stack.Releaser: it stops ep's server (vLLM claims
// --gpu-memory-utilization of each GPU it sees), so an endpoint sharing its GPU gets the
// memory; ep's next Prepare starts it again.
func (d *Driver) Release(_ context.Context, ep stack.Endpoint) {
	d.mu.Lock()
	s := d.servers[ep.Addr]
	delete(d.servers, ep.Addr)
	d.mu.Unlock()
	if s != nil && s.proc != nil {
		_ = s.proc.Stop(d.cfg.StopGrace)
	}
}

// ParallelEndpoints implements stack.ParallelEndpoints: one server per endpoint, and the
// driver's lock is not held while a server starts or answers.
func (d *Driver) ParallelEndpoints() bool { return true }

// Close stops every server fuze started (the whole process group of each).
func (d *Driver) Close(context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for addr, s := range d.servers {
		if s.proc != nil {
			_ = s.proc.Stop(d.cfg.StopGrace)
		}
		delete(d.servers, addr)
	}
}

// Targets implements stack.Driver: the configured models, their mapping printed.
func (d *Driver) Targets(context.Context) ([]stack.Target, error) {
	PrintModels(d.log, d.cfg.Models)
	var out []stack.Target
	seen := map[string]string{}
	for _, m := range d.cfg.Models {
		if prev, ok := seen[m.HF]; ok {
			fmt.Fprintf(d.log, "! %s (%s) serves %s, already benchmarked for %s: skipped\n", m.Tag, m.Alias, m.HF, prev)
			continue
		}
		seen[m.HF] = m.Alias
		out = append(out, stack.Target{Model: m.HF, Alias: m.Alias})
	}
	return out, nil
}

// Baseline implements stack.Driver: the server's own defaults with the run's context length.
func (d *Driver) Baseline(_ context.Context, _ stack.Endpoint, t stack.Target) (stack.Candidate, error) {
	return stack.Candidate{
		Label:    stack.LabelBaseline,
		ModelTag: t.Model,
		NumGPU:   "default", // vLLM places the whole model on the GPU(s) it sees
		NumCtx:   strconv.Itoa(d.cfg.MaxModelLen),
		// Nothing passes BATCH to vLLM (its scheduler decides), so the row says so.
		Batch:      "default",
		NumPredict: strconv.Itoa(d.cfg.MaxTokens),
		Settings: []stack.Setting{
			// `vllm serve` flags: a change restarts the server.
			{Name: "max_model_len", Value: strconv.Itoa(d.cfg.MaxModelLen), Level: stack.ServerLevel},
			{Name: "dtype", Value: d.cfg.DType, Level: stack.ServerLevel},
			{Name: "gpu_memory_utilization", Value: strconv.FormatFloat(d.cfg.GPUMemUtil, 'f', -1, 64), Level: stack.ServerLevel},
			{Name: "launcher", Value: d.cfg.Launcher.String(), Level: stack.ServerLevel},
			// Sent with each /v1/completions request.
			{Name: "max_tokens", Value: strconv.Itoa(d.cfg.MaxTokens), Level: stack.RequestLevel},
			{Name: "temperature", Value: strconv.FormatFloat(d.cfg.Temperature, 'f', -1, 64), Level: stack.RequestLevel},
			{Name: "ignore_eos", Value: "true", Level: stack.RequestLevel},
			{Name: "decode_rate", Value: "stream: (usage completion_tokens - 1) / (last token - first token)"},
		},
	}, nil
}

// Server returns the process serving on an endpoint address, or nil.
func (d *Driver) Server(addr string) *server.Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[addr]; s != nil {
		return s.proc
	}
	return nil
}

// ensureServer returns the server for model on ep, starting it (and stopping the previous
// model's) when needed. A failed start is remembered: the (endpoint, model) is not retried.
func (d *Driver) ensureServer(ctx context.Context, ep stack.Endpoint, model string, seqs int, extra []string) (*vserver, error) {
	d.mu.Lock()
	cur := d.servers[ep.Addr]
	d.mu.Unlock()
	if cur != nil && cur.model == model && cur.seqs == seqs && cur.extra == strings.Join(extra, " ") {
		if cur.failed != nil {
			return nil, cur.failed
		}
		return cur, nil
	}
	if cur != nil {
		if cur.proc != nil {
			_ = cur.proc.Stop(d.cfg.StopGrace)
		}
		d.mu.Lock()
		delete(d.servers, ep.Addr)
		d.mu.Unlock()
	}
	srv, err := d.start(ctx, ep, model, seqs, extra)
	if err != nil {
		// The process was stopped after the failure: only the error says whether it had
		// exited on its own (server.ErrExited, with its last log lines).
		failure := classify(err, nil)
		if outcome, _ := measure.Classify(failure); outcome == measure.ErrCanceled {
			return nil, failure // interrupted, not a property of the server: nothing to remember
		}
		if srv == nil {
			srv = &vserver{model: model, seqs: seqs, extra: strings.Join(extra, " ")}
		}
		srv.failed = failure
		d.mu.Lock()
		d.servers[ep.Addr] = srv
		d.mu.Unlock()
		return nil, failure
	}
	return srv, nil
}

// start launches the server for model on ep and waits until it serves the model. On error
// the process is stopped; the returned vserver (when not nil) keeps its log path.
func (d *Driver) start(ctx context.Context, ep stack.Endpoint, model string, seqs int, extra []string) (*vserver, error) {
	if err := server.CheckPortFree(ep.Addr); err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(ep.Addr)
	port, _ := strconv.Atoi(portStr)
	args := d.cfg.Launcher.Args(model, ServeFlags{Host: host, Port: port, DType: d.cfg.DType, MaxModelLen: d.cfg.MaxModelLen, GPUMemUtil: d.cfg.GPUMemUtil, MaxNumSeqs: seqs, TensorParallel: len(ep.GPUs()), Extra: extra})
	cuda := ep.CUDAVisibleDevices() // "" (no GPU): keep vLLM off every GPU
	env := append(append([]string{}, d.cfg.Environ...), "CUDA_VISIBLE_DEVICES="+cuda)
	logPath := filepath.Join(d.cfg.LogDir, fmt.Sprintf("vllm_%s_%s.log", strings.ToLower(strings.ReplaceAll(ep.Suffix, stack.SplitSeparator, "")), d.cfg.RunTS))
	cmdline := d.cfg.Launcher.Path + " " + strings.Join(args, " ")
	// The log is appended to across starts (the original truncated it at every start, so
	// only the last model's log survived); a header says which start each part belongs to.
	if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "\n===== fuze %s: CUDA_VISIBLE_DEVICES=%q %s\n", time.Now().Format(time.RFC3339), cuda, cmdline)
		f.Close()
	}
	fmt.Fprintf(d.log, "== vLLM %s on %s (%s): starting %s (log %s)\n", ep.Suffix, ep.Addr, labelOf(ep), model, logPath)
	fmt.Fprintf(d.log, "   CUDA_VISIBLE_DEVICES=%q %s\n", cuda, cmdline)
	proc, err := server.Start(server.Spec{Name: "vLLM server " + ep.Suffix + " on " + ep.Addr, Path: d.cfg.Launcher.Path, Args: args, Env: env, LogPath: logPath})
	if err != nil {
		return nil, err
	}
	srv := &vserver{model: model, seqs: seqs, extra: strings.Join(extra, " "), proc: proc, logPath: logPath}
	d.mu.Lock()
	d.servers[ep.Addr] = srv
	d.mu.Unlock()
	began := time.Now()
	if err := d.waitReady(ctx, proc, ep.Addr, model); err != nil {
		_ = proc.Stop(d.cfg.StopGrace)
		return srv, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	fmt.Fprintf(d.log, "== vLLM %s ready in %s (pid %d)\n", ep.Suffix, time.Since(began).Round(100*time.Millisecond), proc.PID())
	return srv, nil
}

// wrongModelError is a server that answers but does not serve the model: not something
// waiting longer fixes.
type wrongModelError struct {
	addr, model string
	listed      []string
}

func (e *wrongModelError) Error() string {
	return fmt.Sprintf("the server on %s lists %s in /v1/models, not %s (another server on the port, or a different served model name)", e.addr, quoteList(e.listed), e.model)
}

func quoteList(ids []string) string {
	if len(ids) == 0 {
		return "no model"
	}
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = strconv.Quote(id)
	}
	return strings.Join(q, ", ")
}

// waitReady polls /health until it answers 200, then requires /v1/models to list model.
func (d *Driver) waitReady(ctx context.Context, proc *server.Process, addr, model string) error {
	base := "http://" + addr
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var permanent, last error
	err := proc.WaitReady(wctx, d.cfg.ReadyTimeout, 500*time.Millisecond, func(pctx context.Context) error {
		if err := Health(pctx, d.http, base); err != nil {
			// A probe cut short by the deadline says less than the one before it.
			if pctx.Err() != nil && last != nil {
				return last
			}
			last = err
			return err
		}
		ids, err := Models(pctx, d.http, base)
		if err != nil {
			var ae *APIError
			if errors.Is(err, ErrMalformed) || errors.As(err, &ae) {
				// /health says ready: a vLLM server lists its models from then on.
				permanent = fmt.Errorf("the server on %s answers /health but not /v1/models as vLLM does: %w", addr, err)
				cancel()
			}
			return err
		}
		for _, id := range ids {
			if id == model {
				return nil
			}
		}
		permanent = &wrongModelError{addr: addr, model: model, listed: ids}
		cancel()
		return permanent
	})
	if permanent != nil && ctx.Err() == nil {
		return permanent
	}
	return err
}

func labelOf(ep stack.Endpoint) string {
	if ep.GPU == nil {
		return "cpu"
	}
	return ep.GPULabel() + " " + ep.GPUUUIDs()
}

// Workload implements stack.Planner: PROMPT and MAX_TOKENS.
func (d *Driver) Workload() stack.Workload {
	return stack.Workload{Prompt: d.cfg.Prompt, MaxTokens: d.cfg.MaxTokens, RunTS: d.cfg.RunTS}
}

// Prepare implements stack.Server: make sure the model's server runs on the endpoint, then
// send a warm-up request (not recorded).
func (d *Driver) Prepare(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate) (stack.Prepared, error) {
	srv, err := d.ensureServer(ctx, ep, c.ModelTag, maxNumSeqs(c), tuningArgs(c))
	if err != nil {
		return stack.Prepared{}, err
	}
	p := stack.Prepared{Settings: map[string]string{"server_log": srv.logPath}}
	seed := 42
	warm := CompletionRequest{Model: c.ModelTag, Prompt: "warm up", MaxTokens: d.cfg.WarmupTokens, Temperature: d.cfg.Temperature, Seed: &seed, IgnoreEOS: true}
	wctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	wres, err := Stream(wctx, d.http, "http://"+ep.Addr, warm, nil)
	cancel()
	if err != nil {
		return p, classify(fmt.Errorf("warm-up request: %w", err), srv.proc)
	}
	p.Settings["warmup_ms"] = strconv.FormatInt(wres.End.Milliseconds(), 10)
	return p, nil
}

// Send implements stack.Client: one streamed completion whose prompt no earlier request has
// seen (vLLM caches prefixes: a repeated prompt makes prefill free), ignore_eos, with running
// usage totals so that a chunk carrying several tokens is counted as such.
func (d *Driver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, r stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	mctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	sc, req, res, err := Complete(mctx, d.http, "http://"+ep.Addr, c.ModelTag, d.cfg.Temperature, r, rec)
	if d.cfg.DebugBench {
		d.mu.Lock()
		d.exchanges[r.Seq] = exchange{req: req, res: res}
		d.mu.Unlock()
	}
	if err != nil {
		return sc, classify(err, d.Server(ep.Addr))
	}
	return sc, nil
}

// Complete is the client side of Send on its own: one streamed completion of r for model at
// the OpenAI-compatible server baseURL (ignore_eos, running usage totals, a fixed seed), every
// chunk recorded in rec as it is read. It returns the server's counts, the request sent, what
// the stream delivered (nil when nothing was answered) and the error, not yet classified.
func Complete(ctx context.Context, hc *http.Client, baseURL, model string, temperature float64, r stack.Request, rec stack.Arrivals) (measure.ServerCounters, CompletionRequest, *StreamResult, error) {
	seed := 42
	req := CompletionRequest{
		Model:         model,
		Prompt:        r.Prompt,
		MaxTokens:     r.MaxTokens,
		Temperature:   temperature,
		Seed:          &seed,
		StreamOptions: &StreamOptions{IncludeUsage: true, ContinuousUsageStats: true},
		IgnoreEOS:     true,
	}
	var lastAt time.Duration
	res, err := Stream(ctx, hc, baseURL, req, func(k int) { lastAt = rec.Chunk(k) })
	var sc measure.ServerCounters
	if res != nil {
		sc = Counters(res)
	}
	if err != nil {
		return sc, req, res, err
	}
	times, note, err := res.DecodeTimes()
	if err != nil {
		return sc, req, res, err
	}
	if note != "" {
		sc.Notes = append(sc.Notes, note)
		if missing := len(times) - len(res.TokenTimes); missing > 0 {
			rec.Tokens(lastAt, missing) // counted by usage, shown by no chunk: the last one's
		}
	}
	if sc.OutputTokens != r.MaxTokens {
		sc.Notes = append(sc.Notes, fmt.Sprintf("output length %d differs from max_tokens %d (finish_reason %q)", sc.OutputTokens, r.MaxTokens, sc.StopReason))
	}
	return sc, req, res, nil
}

type exchange struct {
	req CompletionRequest
	res *StreamResult
}

// Counters are what the server reported in a stream: its usage totals and finish reason (vLLM
// reports no decode time: the engine's clock gives the rate), with the stream's shape.
func Counters(r *StreamResult) measure.ServerCounters {
	sc := measure.ServerCounters{StopReason: r.FinishReason, Extra: map[string]string{
		"stream_chunks":               strconv.Itoa(r.Chunks),
		"tokens_per_chunk_from_usage": strconv.FormatBool(r.PerChunk),
	}}
	if r.Usage != nil {
		sc.PromptTokens = r.Usage.PromptTokens
		if r.Usage.CompletionTokens != nil {
			sc.OutputTokens = *r.Usage.CompletionTokens
		}
	}
	return sc
}

// classify gives err its outcome kind.
func classify(err error, proc *server.Process) error {
	var ae *APIError
	var wm *wrongModelError
	switch {
	case proc != nil && proc.ExitError() != nil:
		return measure.Fail(measure.ErrExited, proc.ExitError())
	case errors.Is(err, server.ErrExited):
		return measure.Fail(measure.ErrExited, err)
	case errors.Is(err, context.Canceled):
		return measure.Fail(measure.ErrCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return measure.Fail(measure.ErrTimeout, err)
	case strings.Contains(err.Error(), " not ready after "):
		return measure.Fail(measure.ErrTimeout, err) // server.WaitReady's deadline
	case errors.As(err, &wm):
		return measure.Fail(measure.ErrOther, err)
	case errors.Is(err, ErrMalformed):
		return measure.Fail(measure.ErrMalformed, err)
	case errors.As(err, &ae):
		if m := strings.ToLower(ae.Message); strings.Contains(m, "out of memory") || strings.Contains(m, "engine") && strings.Contains(m, "dead") {
			return measure.Fail(measure.ErrLoad, err)
		}
		return measure.Fail(measure.ErrHTTP, err)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return measure.Fail(measure.ErrConnect, err)
	default:
		return measure.Fail(measure.ErrOther, err)
	}
}

// Debug implements stack.Debugger: it writes the request and the metrics of an attempt
// (DEBUG_BENCH=1).
func (d *Driver) Debug(ep stack.Endpoint, _ stack.Target, c stack.Candidate, r stack.Request, s *measure.Sample) {
	if !d.cfg.DebugBench {
		return
	}
	d.mu.Lock()
	x := d.exchanges[r.Seq]
	delete(d.exchanges, r.Seq)
	d.mu.Unlock()
	req, res, seq := x.req, x.res, r.Seq
	dir := filepath.Join(d.cfg.LogDir, "debug_"+d.cfg.RunTS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		return
	}
	base := fmt.Sprintf("vllm_%s_%s_%s_%03d", ep.Suffix, strings.NewReplacer("/", "-", ":", "-").Replace(c.ModelTag), c.Label, seq)
	write := func(suffix string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, base+suffix), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		}
	}
	write(".request.json", req)
	m := map[string]any{
		"completion_tokens": s.ServerOutputTokens, "prompt_tokens": s.ServerPromptTokens,
		"decode_tokens_per_sec": s.DecodeTokensPerSec(), "e2e_tokens_per_sec": s.EndToEndTokensPerSec(),
		"ttft_ms": float64(s.FirstToken) / 1e6, "endpoint": ep.Addr, "model": c.ModelTag,
		"outcome": s.Outcome, "error": s.Error,
	}
	if res != nil {
		m["chunks"], m["text_chunks"], m["finish_reason"] = res.Chunks, res.TextChunks, res.FinishReason
	}
	write(".metrics.json", m)
}
