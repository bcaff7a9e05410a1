// Package triton is the Triton Inference Server stack driver.
//
// Endpoints are TRITON_HTTP_A/B (host:port of Triton's HTTP/REST service). Fuze does not start
// Triton unless TRITON_START_CMD is given: then the command runs once per endpoint under
// `sh -c`, supervised like every other stack's server (own process group, log file in
// LOG_DIR, readiness deadline, stopped with TERM then KILL). Placeholders in the command:
// {port} and {host} of the endpoint, {addr} (host:port), {gpu} (the endpoint's GPU UUID, for
// CUDA_VISIBLE_DEVICES; empty without a GPU) and {suffix} (A or B, e.g. for the Python
// backend's shm-region-prefix-name); the same values are in the environment as
// TRITON_HTTP_PORT, TRITON_HTTP_HOST, TRITON_HTTP_ADDR, CUDA_VISIBLE_DEVICES and
// FUZE_TRITON_ENDPOINT. Two servers on one host need distinct gRPC and metrics ports too,
// e.g. `tritonserver --model-repository=<repo> --http-port={port}
// --grpc-port=$(({port}+1)) --metrics-port=$(({port}+2))`.
//
// Readiness is KServe v2: GET /v2/health/ready, then GET /v2/models/<m>/ready for every
// model, within the readiness deadline. An endpoint that answers an HTTP request with
// non-HTTP bytes is reported as such at once: the original's default TRITON_HTTP_B,
// 127.0.0.1:8001, is Triton's gRPC port, which answers with an HTTP/2 frame.
//
// Measurement (CSV column 12, decode tokens/sec) uses Triton's generate extension:
// POST /v2/models/<m>/generate_stream answers server-sent events, one
// `data: {"text_output": …, "model_name": …, …}` per response, an error as
// `data: {"error": …}`, and no end sentinel. A warm-up request is sent first (once per
// model and endpoint). The request keys depend on the model's backend (see Flavour),
// detected from the model metadata's input names or set by TRITON_BACKEND. Tokens are the
// server's num_output_tokens where the backend reports them (vLLM backend r24.12+, newer
// TensorRT-LLM ensembles, requested with return_num_output_tokens), else one per event that
// carried text_output; the sample says which. The decode rate is the tokens after the first
// over the time from the first to the last token event.
//
// perf_analyzer, when installed, runs once per configuration with correct flags (see
// PerfAnalyzer) and its CSV report is parsed: its Inferences/Second is requests per second,
// recorded in the JSONL sample's settings as perf_analyzer_infer_per_sec and printed as
// inferences/sec — never written as tokens/sec.
//
// There is no candidate sweep: Triton's performance settings (instance counts, batching,
// engine build) live in the model repository, not in requests, so every model is measured
// at its baseline.
package triton

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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/sse"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// Config is the driver's view of the knobs.
type Config struct {
	EndpointA, EndpointB string  // TRITON_HTTP_A/B (host:port); B "" for none
	Models               []Model // TRITON_MODELS
	StartCmd             string  // TRITON_START_CMD; "" = the servers are already running
	Backend              Flavour // TRITON_BACKEND; "" = detect per model
	Prompt               string
	NumPredict           int     // BENCH_NUM_PREDICT: tokens per measured request
	Temperature          float64 // TEMPERATURE
	Concurrency          int     // CONCURRENCY: perf_analyzer --concurrency-range
	Batch                int     // BATCH: perf_analyzer -b
	RequestCount         int     // REQUEST_COUNT: perf_analyzer --request-count
	RequestTimeout       time.Duration
	ReadyTimeout         time.Duration
	PerfAnalyzer         string // perf_analyzer executable; "" = not installed
	DebugBench           bool
	LogDir               string
	RunTS                string
	Environ              []string // environment for started servers
	// Transport carries the driver's HTTP requests; nil: a clone of http.DefaultTransport
	// that times chunks at the kernel's receipt (internal/arrival). (Tests pass an in-memory
	// one to run a fake inside a synctest bubble.)
	Transport http.RoundTripper
}

// Driver implements stack.Runner for Triton.
type Driver struct {
	cfg Config
	log io.Writer

	mu       sync.Mutex
	procs    map[string]*server.Process  // by endpoint address; only those fuze started
	notReady map[string]map[string]error // address → model → why it is not ready
	infos    map[string]*modelInfo       // address|model
	warmed   map[string]bool             // address|model
	perf     map[string]*perfOutcome     // address|model|label
	counted  map[string]bool             // address|model: token-count source announced
	labels   map[string]string           // alias → Triton model name
	bodies   map[int]map[string]any      // attempt → request body, for Debug (DEBUG_BENCH)
}

// New returns a driver; call Setup before benchmarking and Close afterwards.
func New(cfg Config, log io.Writer) *Driver {
	d := &Driver{cfg: cfg, log: log,
		procs: map[string]*server.Process{}, notReady: map[string]map[string]error{},
		infos: map[string]*modelInfo{}, warmed: map[string]bool{}, perf: map[string]*perfOutcome{},
		counted: map[string]bool{}, labels: map[string]string{}, bodies: map[int]map[string]any{},
	}
	for _, m := range cfg.Models {
		d.labels[m.Alias] = m.Name
	}
	return d
}

// Name implements stack.Driver.
func (d *Driver) Name() string { return stackname.Triton }

// endpoints are the endpoints to benchmark: A, and B when it is set and differs from A.
// Servers fuze starts get one GPU each (B only when there is a second GPU); servers already
// running are taken as they are, A on GPU A and B on GPU B of the selection.
func (d *Driver) endpoints(sel gpu.Selection) []stack.Endpoint {
	unit := "external"
	if d.cfg.StartCmd != "" {
		unit = "proc"
	}
	eps := []stack.Endpoint{{Suffix: "A", Addr: d.cfg.EndpointA, Unit: unit, GPU: sel.A}}
	b := d.cfg.EndpointB
	switch {
	case b == "" || b == d.cfg.EndpointA:
	case d.cfg.StartCmd != "" && sel.B == nil:
		fmt.Fprintf(d.log, "== Triton: one GPU (or none): only endpoint A (%s) is started; TRITON_HTTP_B=%s is not used\n", d.cfg.EndpointA, b)
	default:
		eps = append(eps, stack.Endpoint{Suffix: "B", Addr: b, Unit: unit, GPU: sel.B})
	}
	return eps
}

// Setup starts the servers (TRITON_START_CMD) or checks the running ones, waits for server
// and model readiness and returns the endpoints that are ready. An endpoint that is not
// ready is left out with a warning; Setup fails only when none is.
func (d *Driver) Setup(ctx context.Context, sel gpu.Selection) ([]stack.Endpoint, error) {
	if len(d.cfg.Models) == 0 {
		return nil, errors.New("Triton: TRITON_MODELS lists no model (want name|alias entries)")
	}
	if d.cfg.PerfAnalyzer == "" {
		fmt.Fprintln(d.log, "! perf_analyzer not found: inferences/sec will not be measured (tokens/sec comes from generate_stream either way)")
	}
	var ready []stack.Endpoint
	var errs []error
	for _, ep := range d.endpoints(sel) {
		if !sel.Wants(ep.Suffix) {
			continue // not measured (ENDPOINTS): no server started for it
		}
		var proc *server.Process
		if d.cfg.StartCmd != "" {
			p, err := d.start(ep)
			if err != nil {
				errs = append(errs, err)
				fmt.Fprintf(d.log, "✖ %v\n", err)
				continue
			}
			proc = p
		}
		if err := d.waitReady(ctx, ep, proc); err != nil {
			if proc != nil {
				_ = proc.Stop(10 * time.Second)
				d.mu.Lock()
				delete(d.procs, ep.Addr)
				d.mu.Unlock()
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			fmt.Fprintf(d.log, "✖ %v\n", err)
			continue
		}
		d.waitModels(ctx, ep, proc)
		ready = append(ready, ep)
	}
	if len(ready) == 0 {
		return nil, errors.Join(errs...)
	}
	return ready, nil
}

func knobOf(ep stack.Endpoint) string { return "TRITON_HTTP_" + ep.Suffix }

// start runs TRITON_START_CMD for one endpoint.
func (d *Driver) start(ep stack.Endpoint) (*server.Process, error) {
	if err := server.CheckPortFree(ep.Addr); err != nil {
		return nil, fmt.Errorf("Triton %s (%s=%s): %w", ep.Suffix, knobOf(ep), ep.Addr, err)
	}
	host, port, err := net.SplitHostPort(ep.Addr)
	if err != nil {
		return nil, fmt.Errorf("Triton %s: %s=%q is not host:port", ep.Suffix, knobOf(ep), ep.Addr)
	}
	cuda := ""
	if ep.GPU != nil {
		cuda = ep.GPU.CUDAVisibleDevices()
	}
	cmdline := strings.NewReplacer("{port}", port, "{host}", host, "{addr}", ep.Addr, "{gpu}", cuda, "{suffix}", ep.Suffix).Replace(d.cfg.StartCmd)
	env := append(append([]string{}, d.cfg.Environ...),
		"TRITON_HTTP_PORT="+port, "TRITON_HTTP_HOST="+host, "TRITON_HTTP_ADDR="+ep.Addr,
		"FUZE_TRITON_ENDPOINT="+ep.Suffix, "CUDA_VISIBLE_DEVICES="+cuda)
	logPath := ""
	if d.cfg.LogDir != "" {
		logPath = filepath.Join(d.cfg.LogDir, fmt.Sprintf("triton_%s_%s.log", strings.ToLower(ep.Suffix), d.cfg.RunTS))
	}
	proc, err := server.Start(server.Spec{Name: "Triton server " + ep.Suffix + " on " + ep.Addr, Path: "/bin/sh", Args: []string{"-c", cmdline}, Env: env, LogPath: logPath})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.procs[ep.Addr] = proc
	d.mu.Unlock()
	fmt.Fprintf(d.log, "== Triton server %s on %s (%s, pid %d, log %s): %s\n", ep.Suffix, ep.Addr, gpuOf(ep), proc.PID(), logPath, cmdline)
	return proc, nil
}

func gpuOf(ep stack.Endpoint) string {
	if ep.GPU == nil {
		return "no GPU"
	}
	return ep.GPU.Label + " " + ep.GPU.UUID
}

// waitReady polls GET /v2/health/ready (the shared server.WaitFor loop) until it answers 200,
// the deadline passes, the started process exits or the endpoint turns out not to speak HTTP.
func (d *Driver) waitReady(ctx context.Context, ep stack.Endpoint, proc *server.Process) error {
	c := d.newClient(ep.Addr)
	probed := false
	var refusedSince time.Time
	probe := func(pctx context.Context) error {
		err := c.ServerReady(pctx)
		if err == nil {
			return nil
		}
		var se *StatusError
		if !probed && !errors.As(err, &se) && !errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil {
			probed = true
			var nh *NotHTTPError
			if perr := probeHTTP(ctx, ep.Addr, 2*time.Second); errors.As(perr, &nh) && nh.Kind != "silent" {
				return server.Permanent(fmt.Errorf("Triton %s not ready: %w; set %s to the HTTP port (--http-port) of a Triton server", ep.Suffix, nh, knobOf(ep)))
			}
		}
		// Nothing listening where an already-running server should be: say so now rather
		// than after the whole deadline (a server fuze starts may take its time to listen).
		if proc == nil && errors.Is(err, syscall.ECONNREFUSED) {
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			} else if time.Since(refusedSince) >= min(2*time.Second, d.cfg.ReadyTimeout) {
				return server.Permanent(stack.Unavailable(fmt.Errorf("Triton %s on %s not ready: nothing listens there (connection refused); fuze does not start Triton unless TRITON_START_CMD is set, so start it or point %s at its HTTP port", ep.Suffix, ep.Addr, knobOf(ep))))
			}
		} else {
			refusedSince = time.Time{}
		}
		return fmt.Errorf("GET /v2/health/ready: %w", err)
	}
	name := fmt.Sprintf("Triton %s on %s", ep.Suffix, ep.Addr)
	var exited func() error
	var lastLines func() []string
	if proc != nil {
		exited = func() error {
			if err := proc.ExitError(); err != nil {
				return fmt.Errorf("%s not ready: %w", name, err)
			}
			return nil
		}
		lastLines = func() []string { return proc.LastLines(3) }
	} else {
		name += fmt.Sprintf(" (fuze does not start Triton unless TRITON_START_CMD is set; is a server running on %s=%s?)", knobOf(ep), ep.Addr)
	}
	return server.WaitFor(ctx, name, d.cfg.ReadyTimeout, 500*time.Millisecond, probe, exited, lastLines)
}

// waitModels checks GET /v2/models/<m>/ready for every model until ready or the readiness
// deadline passes; a model Triton does not know is not waited for. Models that are not
// ready become failure rows (Measure), not a failed run.
func (d *Driver) waitModels(ctx context.Context, ep stack.Endpoint, proc *server.Process) {
	c := d.newClient(ep.Addr)
	deadline := time.Now().Add(d.cfg.ReadyTimeout)
	for _, m := range d.cfg.Models {
		for {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.ModelReady(pctx, m.Name)
			cancel()
			if err == nil {
				break
			}
			var se *StatusError
			unknown := errors.As(err, &se) && strings.Contains(strings.ToLower(se.Message), "unknown model")
			exited := proc != nil && proc.ExitError() != nil
			if unknown || exited || ctx.Err() != nil || time.Now().After(deadline) {
				why := fmt.Errorf("model %s is not ready on %s: %v", m.Name, ep.Addr, err)
				if exited {
					why = fmt.Errorf("model %s: %w", m.Name, proc.ExitError())
				}
				d.mu.Lock()
				if d.notReady[ep.Addr] == nil {
					d.notReady[ep.Addr] = map[string]error{}
				}
				d.notReady[ep.Addr][m.Name] = why
				d.mu.Unlock()
				fmt.Fprintf(d.log, "! Triton %s: %v\n", ep.Suffix, why)
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// Close stops the servers fuze started.
func (d *Driver) Close(context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for addr, p := range d.procs {
		_ = p.Stop(10 * time.Second)
		delete(d.procs, addr)
	}
}

// Server returns the server process fuze started for an endpoint address, or nil.
func (d *Driver) Server(addr string) *server.Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.procs[addr]
}

// Targets implements stack.Driver: the TRITON_MODELS entries, base_model being the alias.
func (d *Driver) Targets(context.Context) ([]stack.Target, error) {
	var out []stack.Target
	for _, m := range d.cfg.Models {
		out = append(out, stack.Target{Model: m.Alias, Alias: m.Alias})
	}
	return out, nil
}

// Baseline implements stack.Driver: the model as its repository configures it.
func (d *Driver) Baseline(_ context.Context, _ stack.Endpoint, t stack.Target) (stack.Candidate, error) {
	name, ok := d.labels[t.Model]
	if !ok {
		return stack.Candidate{}, fmt.Errorf("Triton: no TRITON_MODELS entry for %q", t.Model)
	}
	c := stack.Candidate{Label: stack.LabelBaseline, ModelTag: name, NumGPU: "default", NumCtx: "default",
		Batch: strconv.Itoa(max(d.cfg.Batch, 1)), NumPredict: strconv.Itoa(d.cfg.NumPredict)}
	c.Settings = []stack.Setting{
		// The model repository's configuration decides the rest; these travel per request
		// (batch is perf_analyzer's -b).
		{Name: "num_predict", Value: c.NumPredict, Level: stack.RequestLevel},
		{Name: "batch", Value: c.Batch, Level: stack.RequestLevel},
		{Name: "num_ctx", Value: c.NumCtx},
		{Name: "num_gpu", Value: c.NumGPU},
		{Name: "temperature", Value: strconv.FormatFloat(d.cfg.Temperature, 'f', -1, 64), Level: stack.RequestLevel},
	}
	return c, nil
}

// Candidates implements stack.Driver: none (see the package comment).
func (d *Driver) Candidates(context.Context, stack.Endpoint, stack.Target) ([]stack.Candidate, error) {
	return nil, nil
}

// Workload implements stack.Planner: PROMPT and BENCH_NUM_PREDICT.
func (d *Driver) Workload() stack.Workload {
	return stack.Workload{Prompt: d.cfg.Prompt, MaxTokens: d.cfg.NumPredict, RunTS: d.cfg.RunTS}
}

// Prepare implements stack.Server: the model must be ready and decoupled (streaming); it is
// warmed up once per model and endpoint.
func (d *Driver) Prepare(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate) (stack.Prepared, error) {
	d.mu.Lock()
	nr := d.notReady[ep.Addr][c.ModelTag]
	_, started := d.procs[ep.Addr]
	d.mu.Unlock()
	p := stack.Prepared{Settings: map[string]string{
		"server": map[bool]string{true: "started by fuze (TRITON_START_CMD)", false: "external (not started by fuze)"}[started],
	}}
	if !started && ep.GPU != nil {
		p.Settings["gpu_assumed"] = "fuze did not start this server: its GPU is taken to be the one selected for endpoint " + ep.Suffix
	}
	if nr != nil {
		return p, measure.Fail(measure.ErrLoad, nr)
	}
	mi, err := d.info(ctx, ep, c.ModelTag)
	if err != nil {
		return p, d.classify(ep, fmt.Errorf("model %s: %w", c.ModelTag, err))
	}
	p.Settings["request_flavour"] = string(mi.Flavour)
	p.Settings["request_flavour_source"] = mi.FlavourWhy
	if mi.Backend != "" {
		p.Settings["backend"] = mi.Backend
	}
	if mi.Platform != "" {
		p.Settings["platform"] = mi.Platform
	}
	if mi.ConfigKnown {
		p.Settings["decoupled"] = strconv.FormatBool(mi.Decoupled)
		p.Settings["max_batch_size"] = strconv.Itoa(mi.MaxBatchSize)
		if !mi.Decoupled {
			return p, d.classify(ep, errNotDecoupled)
		}
	}
	key := ep.Addr + "|" + c.ModelTag
	d.mu.Lock()
	warm := d.warmed[key]
	d.mu.Unlock()
	if !warm {
		start := time.Now()
		if _, err := d.generate(ctx, ep, c.ModelTag, mi, "warm up", min(8, max(d.cfg.NumPredict, 2)), nil); err != nil {
			return p, d.classify(ep, fmt.Errorf("warm-up request: %w", err))
		}
		d.mu.Lock()
		d.warmed[key] = true
		d.mu.Unlock()
		p.Settings["warmup_ns"] = strconv.FormatInt(int64(time.Since(start)), 10)
	}
	return p, nil
}

// Send implements stack.Client: one streamed generation (generate_stream), its tokens counted
// as the backend reports them.
func (d *Driver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, r stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	d.mu.Lock()
	mi := d.infos[ep.Addr+"|"+c.ModelTag]
	d.mu.Unlock()
	if mi == nil {
		return measure.ServerCounters{}, measure.Fail(measure.ErrOther, fmt.Errorf("model %s on %s was not prepared", c.ModelTag, ep.Addr))
	}
	if d.cfg.DebugBench {
		d.mu.Lock()
		d.bodies[r.Seq] = mi.generateBody(r.Prompt, r.MaxTokens, d.cfg.Temperature, true)
		d.mu.Unlock()
	}
	sc, err := d.generate(ctx, ep, c.ModelTag, mi, r.Prompt, r.MaxTokens, rec)
	if err != nil {
		return sc, d.classify(ep, err)
	}
	if sc.OutputTokens != r.MaxTokens {
		note := fmt.Sprintf("output length %d differs from the requested %d tokens", sc.OutputTokens, r.MaxTokens)
		if sc.StopReason != "" {
			note += fmt.Sprintf(" (stop reason %q)", sc.StopReason)
		} else if mi.Flavour == FlavourLLMAPI || mi.Flavour == FlavourGeneric {
			note += " (this backend has no request setting to ignore the end of sequence)"
		}
		sc.Notes = append(sc.Notes, note)
	}
	return sc, nil
}

// Finished implements stack.Finisher: say once where token counts come from, then run
// perf_analyzer (once per configuration) unless the server is gone or the run interrupted.
func (d *Driver) Finished(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, s *measure.Sample) {
	key := ep.Addr + "|" + c.ModelTag
	if !s.Failed() {
		d.announceCount(key, ep, c.ModelTag, s)
	}
	switch s.Outcome {
	case measure.ErrConnect, measure.ErrExited, measure.ErrCanceled, measure.ErrTimeout, measure.ErrLoad:
		return // perf_analyzer would only fail the same way
	}
	d.mu.Lock()
	mi := d.infos[key]
	d.mu.Unlock()
	if mi != nil {
		d.perfAnalyzer(ctx, ep, t, c, mi, s)
	}
}

// errNotDecoupled: a model that is not decoupled answers a request with exactly one
// response, so there is no token stream to time.
var errNotDecoupled = errors.New("the model is not decoupled: Triton returns its whole answer in one response, so generate_stream carries no token stream to time; " +
	"tokens/sec needs a decoupled (streaming) model, e.g. TensorRT-LLM with decoupled_mode=true (the vLLM backend always is)")

// info fetches and caches the model's metadata (input names) and configuration.
func (d *Driver) info(ctx context.Context, ep stack.Endpoint, model string) (*modelInfo, error) {
	key := ep.Addr + "|" + model
	d.mu.Lock()
	mi := d.infos[key]
	d.mu.Unlock()
	if mi != nil {
		return mi, nil
	}
	c := d.newClient(ep.Addr)
	ictx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	md, err := c.Metadata(ictx, model)
	if err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	mi = &modelInfo{Inputs: map[string]bool{}, Outputs: map[string]bool{}, Platform: md.Platform}
	for _, in := range md.Inputs {
		mi.Inputs[in.Name] = true
	}
	for _, out := range md.Outputs {
		mi.Outputs[out.Name] = true
	}
	if !mi.Inputs["text_input"] {
		return nil, fmt.Errorf("%w: the model has no text_input input, so it cannot be driven through the generate extension (inputs: %s)", errMalformed, names(mi.Inputs))
	}
	if mc, err := c.Config(ictx, model); err == nil {
		mi.ConfigKnown = true
		mi.Backend = mc.Backend
		if mc.Platform != "" {
			mi.Platform = mc.Platform
		}
		mi.Decoupled = mc.Decoupled()
		mi.MaxBatchSize = int(mc.MaxBatchSize)
		for _, in := range mc.Input {
			if !in.Optional {
				mi.Required = append(mi.Required, in.Name)
			}
		}
	}
	if d.cfg.Backend != "" {
		mi.Flavour, mi.FlavourWhy = d.cfg.Backend, "set by TRITON_BACKEND"
	} else {
		mi.Flavour, mi.FlavourWhy = detectFlavour(mi.Inputs, mi.Backend)
	}
	fmt.Fprintf(d.log, "== %s on %s: request flavour %s (%s)\n", model, ep.Addr, mi.Flavour, mi.FlavourWhy)
	d.mu.Lock()
	d.infos[key] = mi
	d.mu.Unlock()
	return mi, nil
}

func names(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// event is one server-sent event of a generate_stream answer.
type event struct {
	at       time.Duration // since the request started
	text     string
	hasText  bool
	count    int
	hasCount bool
	fields   []string // the JSON keys, for error messages
}

// generate posts one streamed generation, records its events in rec (nil: the warm-up, not
// recorded) and returns the server's token count and stop reason.
func (d *Driver) generate(ctx context.Context, ep stack.Endpoint, model string, mi *modelInfo, prompt string, maxTokens int, rec stack.Arrivals) (measure.ServerCounters, error) {
	var sc measure.ServerCounters
	if rec == nil {
		rec = discard{start: time.Now()}
	}
	c := d.newClient(ep.Addr)
	body := mi.generateBody(prompt, maxTokens, d.cfg.Temperature, true)
	gctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	var events []event
	n := 0
	err := c.GenerateStream(gctx, model, body, func(time.Time) { rec.Chunk(0) }, func(ev sse.Event) error {
		n++
		at := rec.Chunk(0) // tokens are attributed once the whole stream is seen (tally)
		data := strings.TrimSpace(ev.Data)
		if data == "" || ev.Done() {
			return nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &obj); err != nil {
			return fmt.Errorf("%w: event %d is not a JSON object: %q", errMalformed, n, snippet(data, 120))
		}
		if raw, ok := obj["error"]; ok {
			var msg string
			if json.Unmarshal(raw, &msg) != nil {
				msg = string(raw)
			}
			return &inferenceError{msg: msg}
		}
		e := event{at: at}
		for k := range obj {
			e.fields = append(e.fields, k)
		}
		sort.Strings(e.fields)
		e.text, e.hasText = textOf(obj["text_output"])
		e.count, e.hasCount = countOf(obj["num_output_tokens"])
		if fr, ok := textOf(obj["finish_reason"]); ok && fr != "" {
			sc.StopReason = fr
		}
		events = append(events, e)
		return nil
	})
	if err != nil {
		if errors.Is(gctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return sc, fmt.Errorf("generate_stream did not finish within %s (TIMEOUT_SECS): %w", d.cfg.RequestTimeout, context.DeadlineExceeded)
		}
		return sc, err
	}
	total, source, err := tally(events, mi.Flavour, rec)
	sc.OutputTokens = total
	if source != "" {
		sc.Extra = map[string]string{"output_tokens_source": source}
	}
	return sc, err
}

// discard times a request nobody records (the warm-up).
type discard struct{ start time.Time }

func (d discard) Chunk(int) time.Duration   { return time.Since(d.start) }
func (d discard) Tokens(time.Duration, int) {}

// tally attributes the stream's tokens to its events (in rec) and returns the total and where
// the counts came from.
func tally(events []event, flavour Flavour, rec stack.Arrivals) (total int, source string, err error) {
	if len(events) == 0 {
		return 0, "", fmt.Errorf("%w: generate_stream answered 200 with no event", errMalformed)
	}
	var text []event
	for _, e := range events {
		if e.hasText || e.hasCount {
			text = append(text, e)
		}
	}
	if len(text) == 0 {
		keys := strings.Join(events[0].fields, ", ")
		if keys == "" {
			keys = "none"
		}
		return 0, "", fmt.Errorf("%w: none of the %d events carried text_output (a generate_stream event must; fields of the first: %s)", errMalformed, len(events), keys)
	}
	// A decoupled model's last response may only close the stream: an empty text, no count.
	if last := text[len(text)-1]; len(text) > 1 && last.text == "" && last.count == 0 {
		text = text[:len(text)-1]
	}
	serverCounts := false
	for _, e := range text {
		if e.hasCount {
			serverCounts = true
		}
	}
	tokens := make([]int, len(text))
	if serverCounts {
		// num_output_tokens is documented per response for the vLLM backend; for the others
		// a series that strictly increases over three or more responses is read as a running
		// total.
		cumulative := flavour != FlavourVLLM && len(text) > 2
		prev := 0
		for i, e := range text {
			if !e.hasCount || (i > 0 && e.count <= prev) {
				cumulative = false
			}
			prev = e.count
		}
		prev = 0
		for i, e := range text {
			switch {
			case !e.hasCount && e.text != "":
				tokens[i] = 1
			case cumulative:
				tokens[i] = e.count - prev
				prev = e.count
			default:
				tokens[i] = e.count
			}
		}
		source = "server num_output_tokens (per response)"
		if cumulative {
			source = "server num_output_tokens (running total)"
		}
	} else {
		anyText := false
		for i, e := range text {
			tokens[i] = 1
			anyText = anyText || e.text != ""
		}
		if !anyText {
			return 0, "", fmt.Errorf("%w: text_output was empty in all %d events", errMalformed, len(text))
		}
		source = "stream events: the server reported no token count, one token per text_output event"
	}
	var first, last time.Duration
	carrying := 0 // events that carried tokens
	for i, e := range text {
		if tokens[i] <= 0 {
			continue
		}
		if total == 0 {
			first = e.at
		}
		total += tokens[i]
		carrying++
		last = e.at
		rec.Tokens(e.at, tokens[i])
	}
	if total < 2 || (last <= first && carrying < 2) {
		return total, source, fmt.Errorf("%w: %d token(s) in %d event(s): no decode interval to measure", errMalformed, total, len(text))
	}
	if last <= first {
		// Streamed in several events that one read took in at once (they share its arrival
		// stamp): the client was behind the stream, not a malformed answer. The engine times
		// such a stream at its own clock.
		source += fmt.Sprintf("; all %d events were read at once: the client was behind the stream", carrying)
	}
	return total, source, nil
}

// inferenceError is an error object the server sent inside the event stream.
type inferenceError struct{ msg string }

func (e *inferenceError) Error() string { return "server error in the event stream: " + e.msg }

// textOf reads a string output: Triton strips the array of a one-element tensor.
func textOf(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var arr []string
	if json.Unmarshal(raw, &arr) == nil {
		return strings.Join(arr, ""), true
	}
	return "", false
}

// countOf reads an integer output given as a number or a one-element array.
func countOf(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return int(n), true
	}
	var arr []float64
	if json.Unmarshal(raw, &arr) == nil && len(arr) > 0 {
		sum := 0.0
		for _, v := range arr {
			sum += v
		}
		return int(sum), true
	}
	return 0, false
}

// announceCount says once per model and endpoint where token counts come from.
func (d *Driver) announceCount(key string, ep stack.Endpoint, model string, s *measure.Sample) {
	d.mu.Lock()
	seen := d.counted[key]
	d.counted[key] = true
	d.mu.Unlock()
	if !seen {
		fmt.Fprintf(d.log, "   [%s] %s: output tokens from %s\n", ep.Suffix, model, s.Settings["output_tokens_source"])
	}
}

// classify gives err its outcome kind.
func (d *Driver) classify(ep stack.Endpoint, err error) error {
	proc := d.Server(ep.Addr)
	var se *StatusError
	var nh *NotHTTPError
	var ie *inferenceError
	switch {
	case proc != nil && proc.ExitError() != nil:
		return measure.Fail(measure.ErrExited, proc.ExitError())
	case errors.Is(err, context.Canceled):
		return measure.Fail(measure.ErrCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return measure.Fail(measure.ErrTimeout, err)
	case errors.As(err, &se):
		if m := strings.ToLower(se.Message); strings.Contains(m, "unknown model") || strings.Contains(m, "not ready") || strings.Contains(m, "failed to load") {
			return measure.Fail(measure.ErrLoad, err)
		}
		return measure.Fail(measure.ErrHTTP, err)
	case errors.As(err, &nh), errors.Is(err, errMalformed):
		return measure.Fail(measure.ErrMalformed, err)
	case errors.As(err, &ie), errors.Is(err, errNotDecoupled):
		return measure.Fail(measure.ErrOther, err)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return measure.Fail(measure.ErrConnect, err)
	default:
		// A transport error from something that does not speak HTTP says so.
		pctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		perr := probeHTTP(pctx, ep.Addr, 2*time.Second)
		cancel()
		if errors.As(perr, &nh) && nh.Kind != "silent" {
			return measure.Fail(measure.ErrMalformed, fmt.Errorf("%w; %s", err, nh.Error()))
		}
		return measure.Fail(measure.ErrOther, err)
	}
}

// perfOutcome is the result of the one perf_analyzer run of a configuration.
type perfOutcome struct {
	res     *PerfResult
	skipped string
	err     error
	csv     string
	args    []string
}

func (po *perfOutcome) apply(s *measure.Sample, cfg Config) {
	switch {
	case po.res != nil:
		r := po.res
		s.Settings["perf_analyzer_infer_per_sec"] = strconv.FormatFloat(r.InferPerSec, 'f', 2, 64)
		s.Settings["perf_analyzer_concurrency"] = strconv.Itoa(max(cfg.Concurrency, 1))
		s.Settings["perf_analyzer_batch"] = strconv.Itoa(max(cfg.Batch, 1))
		s.Settings["perf_analyzer_request_count"] = strconv.Itoa(max(cfg.RequestCount, cfg.Concurrency, 1))
		for p, us := range r.LatencyUs {
			s.Settings[fmt.Sprintf("perf_analyzer_p%d_latency_us", p)] = strconv.FormatFloat(us, 'f', -1, 64)
		}
		if r.ResponseThroughput > 0 {
			s.Settings["perf_analyzer_responses_per_sec"] = strconv.FormatFloat(r.ResponseThroughput, 'f', 2, 64)
		}
		s.Settings["perf_analyzer_csv"] = po.csv
		s.Settings["perf_analyzer_args"] = strings.Join(po.args, " ")
	case po.skipped != "":
		s.Settings["perf_analyzer"] = "skipped: " + po.skipped
	case po.err != nil:
		s.Settings["perf_analyzer"] = "failed: " + po.err.Error()
		s.Notes = append(s.Notes, "perf_analyzer failed (no inferences/sec for this row): "+po.err.Error())
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// perfAnalyzer runs perf_analyzer once per configuration and records its inferences/sec.
func (d *Driver) perfAnalyzer(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, mi *modelInfo, s *measure.Sample) {
	if d.cfg.PerfAnalyzer == "" {
		s.Settings["perf_analyzer"] = "not installed"
		return
	}
	key := ep.Addr + "|" + c.ModelTag + "|" + c.Label
	d.mu.Lock()
	po := d.perf[key]
	d.mu.Unlock()
	if po == nil {
		po = d.runPerf(ctx, ep, t, c, mi)
		if ctx.Err() != nil {
			return // interrupted: not a result, and the next run tries again
		}
		d.mu.Lock()
		d.perf[key] = po
		d.mu.Unlock()
		switch {
		case po.res != nil:
			p99 := ""
			if v, ok := po.res.LatencyUs[99]; ok {
				p99 = fmt.Sprintf(", p99 latency %.1f ms", v/1000)
			}
			fmt.Fprintf(d.log, "   perf_analyzer [%s] %s: %.2f inferences/sec (completed requests per second at concurrency %d, batch %d; not tokens/sec)%s\n",
				ep.Suffix, c.ModelTag, po.res.InferPerSec, max(d.cfg.Concurrency, 1), max(d.cfg.Batch, 1), p99)
		case po.skipped != "":
			fmt.Fprintf(d.log, "   perf_analyzer [%s] %s: skipped: %s\n", ep.Suffix, c.ModelTag, po.skipped)
		}
	}
	po.apply(s, d.cfg)
}

func (d *Driver) runPerf(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, mi *modelInfo) *perfOutcome {
	batch := max(d.cfg.Batch, 1)
	switch {
	case mi.ConfigKnown && mi.Decoupled:
		return &perfOutcome{skipped: "the model is decoupled (streaming); perf_analyzer profiles decoupled models only with -i grpc --async --streaming, and fuze knows only the HTTP endpoint"}
	case mi.ConfigKnown && batch > 1 && mi.MaxBatchSize < batch:
		return &perfOutcome{skipped: fmt.Sprintf("BATCH=%d but the model's max_batch_size is %d", batch, mi.MaxBatchSize)}
	}
	inputs, missing := mi.perfInputs(d.cfg.Prompt, d.cfg.NumPredict, d.cfg.Temperature)
	if len(missing) > 0 {
		return &perfOutcome{skipped: "required model inputs fuze cannot fill: " + strings.Join(missing, ", ")}
	}
	base := filepath.Join(d.cfg.LogDir, fmt.Sprintf("triton_%s_%s_%s_%s", strings.ToLower(ep.Suffix),
		unsafeName.ReplaceAllString(t.Alias, "_"), unsafeName.ReplaceAllString(c.ModelTag, "_"), d.cfg.RunTS))
	pa := PerfAnalyzer{Bin: d.cfg.PerfAnalyzer, Model: c.ModelTag, Addr: ep.Addr, Concurrency: d.cfg.Concurrency,
		Batch: batch, RequestCount: d.cfg.RequestCount, InputData: base + ".perf_input.json", CSV: base + ".perf.csv"}
	if err := WriteInputData(pa.InputData, inputs); err != nil {
		return &perfOutcome{err: err}
	}
	// Every request may take up to TIMEOUT_SECS; the run is bounded by that per wave of
	// concurrent requests (and by an hour).
	waves := max(d.cfg.RequestCount, 1)/max(d.cfg.Concurrency, 1) + 2
	timeout := min(time.Duration(waves)*d.cfg.RequestTimeout, time.Hour)
	res, err := pa.Run(ctx, timeout, base+".perf.txt")
	if err != nil {
		return &perfOutcome{err: err, args: pa.Args()}
	}
	return &perfOutcome{res: &res, csv: pa.CSV, args: pa.Args()}
}

// Debug implements stack.Debugger: it writes the request and the metrics of an attempt
// (DEBUG_BENCH=1).
func (d *Driver) Debug(ep stack.Endpoint, t stack.Target, c stack.Candidate, r stack.Request, s *measure.Sample) {
	if !d.cfg.DebugBench {
		return
	}
	d.mu.Lock()
	body, ok := d.bodies[r.Seq]
	delete(d.bodies, r.Seq)
	d.mu.Unlock()
	if !ok {
		body = map[string]any{"prompt": r.Prompt, "max_tokens": r.MaxTokens, "sent": false}
	}
	seq := r.Seq
	dir := filepath.Join(d.cfg.LogDir, "debug_"+d.cfg.RunTS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		return
	}
	base := fmt.Sprintf("triton_%s_%s_%s_%03d", ep.Suffix, unsafeName.ReplaceAllString(t.Alias, "_"), unsafeName.ReplaceAllString(c.ModelTag, "_"), seq)
	write := func(suffix string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, base+suffix), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		}
	}
	write(".request.json", body)
	write(".metrics.json", map[string]any{
		"output_tokens": s.ServerOutputTokens, "tokens_per_sec": s.DecodeTokensPerSec(),
		"perf_analyzer_infer_per_sec": s.Settings["perf_analyzer_infer_per_sec"],
		"endpoint":                    ep.Addr, "model": c.ModelTag, "outcome": s.Outcome, "error": s.Error,
	})
}
