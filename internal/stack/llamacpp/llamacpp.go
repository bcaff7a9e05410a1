// Package llamacpp is the llama.cpp stack driver: GGUF models from LLAMACPP_PATH_<alias>
// variables, the GGUF exporter's models.env, MODEL_DIR patterns or LLAMACPP_MODEL; one
// llama-server per (GPU endpoint, candidate) pinned with CUDA_VISIBLE_DEVICES; candidates from
// NGL_CANDIDATES (--n-gpu-layers); one streamed /completion per attempt with a fixed output
// length, measured by the server's own timings.
//
// Differences from the original script, on purpose: the baseline runs the server without
// --n-gpu-layers (its own default) and records the offload it really used, instead of
// running -ngl 0 and calling it "default"; the sweep follows EXHAUSTIVE (the original always
// stopped after the first candidate); readiness waits as long as a big model needs; the
// model list comes from the environment and the exporter's file, not only a hard-coded list;
// both LLAMACPP_PATH_<alias> and the original's LLAMACPP_PATH_<alias>_ are read.
package llamacpp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// AllLayers is the --n-gpu-layers value passed for NGL -1 ("all layers"): llama.cpp caps it
// at the model's layer count. (Passing -1 itself means "the default", which was 0 layers in
// the servers of early 2025.)
const AllLayers = 999

// Config is the driver's view of the knobs.
type Config struct {
	Bin           string            // LLAMACPP_BIN; "": llama-server on PATH, else server
	PortA, PortB  int               // PORT_A, PORT_B
	SplitPort     int               // SPLIT_PORT: endpoint A+B (SPLIT_ENDPOINTS=1)
	SplitMode     string            // LLAMACPP_SPLIT_MODE: --split-mode of A+B, layer or row ("": layer)
	ModelList     []string          // MODELS entries tag|alias|glob; nil: see Config.Models
	Model         string            // LLAMACPP_MODEL: only this model
	ModelDir      string            // MODEL_DIR
	ModelsEnv     string            // LLAMACPP_MODELS_ENV, resolved to a path
	PathVars      map[string]string // LLAMACPP_PATH_* variables of the environment and env files
	PathVarSource func(name string) string
	NGL           []int // NGL_CANDIDATES; -1: all layers
	CtxSize       int   // --ctx-size: BENCH_NUM_CTX when set, else CTX
	BatchSize     int   // --batch-size: BATCH
	NumPredict    int   // n_predict: BENCH_NUM_PREDICT when set, else PRED
	Temperature   float64
	Seed          int
	Prompt        string
	// ReadyTimeout bounds the wait for /health after a start; 0: ReadyTimeoutFor(model size).
	ReadyTimeout time.Duration
	// RequestTimeout bounds one /completion request; 0: 10 min + 2 s per requested token.
	RequestTimeout time.Duration
	StopGrace      time.Duration // TERM → KILL; 0: 10 s
	DebugBench     bool
	LogDir         string
	RunTS          string
	Environ        []string // environment of started servers (knobs applied)
	// LookPath finds a binary on PATH; nil: exec.LookPath.
	LookPath func(string) (string, error)
	// Tune is the tuning sets (tune.go); a CPU endpoint without any uses cpuTuning.
	Tune Tuning
	// CPUTune (CPU_TUNE): a CPU endpoint tunes threads, batch and KV cache, not the offload.
	CPUTune bool
}

// ReadyTimeoutFor is the default readiness deadline for a model of the given size: 2 minutes,
// plus the time to read the file at 128 MiB/s (a slow disk), so that a 400 GB model gets
// about an hour. A server that dies while loading is noticed at once, whatever the deadline.
func ReadyTimeoutFor(bytes int64) time.Duration {
	return 2*time.Minute + time.Duration(float64(bytes)/(128<<20)*float64(time.Second))
}

func (c *Config) requestTimeout() time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return 10*time.Minute + time.Duration(c.NumPredict)*2*time.Second
}

// Driver implements stack.Runner for llama.cpp.
type Driver struct {
	cfg Config
	log io.Writer
	bin string // resolved binary
	// faOnce/faValue: whether this binary's --flash-attn takes a value (tune.go).
	faOnce  sync.Once
	faValue bool

	// reserveMiB is RESERVE_GPU_MEMORY_MIB, from the selection Setup was given.
	reserveMiB int

	// mu guards the maps below; it is never held while a server starts or answers, so that
	// endpoints can be measured at the same time (stack.ParallelEndpoints).
	mu      sync.Mutex
	models  map[string]Model     // by alias
	servers map[string]*instance // by endpoint address: its server (or the one that failed to start)
	last    *instance            // the server started last (Server, for tests)
	lanes   map[string]*sync.Mutex
	// exchanges keeps each attempt's request and final answer for Debug (DEBUG_BENCH).
	exchanges map[int]exchange
}

type exchange struct {
	req   CompletionRequest
	final []byte
}

// instance is one llama-server for one (endpoint, model, n_gpu_layers).
type instance struct {
	key      string
	ep       stack.Endpoint
	proc     *server.Process
	logPath  string
	args     []string
	offload  string        // "N/M" from the loader's log line; "" when not reported
	loadTime time.Duration // start → /health 200
	failure  error         // a *measure.Failure: why this server cannot serve
}

// New returns a driver; call Setup before benchmarking and Close afterwards.
func New(cfg Config, log io.Writer) *Driver {
	if log == nil {
		log = io.Discard
	}
	return &Driver{cfg: cfg, log: log, models: map[string]Model{}, exchanges: map[int]exchange{},
		servers: map[string]*instance{}, lanes: map[string]*sync.Mutex{}}
}

// Name implements stack.Driver.
func (d *Driver) Name() string { return stackname.LlamaCpp }

// ResolveBin finds the server binary: LLAMACPP_BIN (a path, or a name on PATH), else
// llama-server on PATH, else server (the name of older builds).
func ResolveBin(bin string, lookPath func(string) (string, error)) (string, error) {
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if bin != "" {
		if strings.ContainsRune(bin, '/') {
			st, err := os.Stat(bin)
			if err != nil {
				return "", fmt.Errorf("llama.cpp server binary LLAMACPP_BIN=%s: %w", bin, err)
			}
			if st.IsDir() || st.Mode()&0o111 == 0 {
				return "", fmt.Errorf("llama.cpp server binary LLAMACPP_BIN=%s is not an executable file", bin)
			}
			return bin, nil
		}
		p, err := lookPath(bin)
		if err != nil {
			return "", fmt.Errorf("llama.cpp server binary LLAMACPP_BIN=%s: not found on PATH", bin)
		}
		return p, nil
	}
	for _, name := range []string{"llama-server", "server"} {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", stack.Unavailable(errors.New("cannot find the llama.cpp server binary: no llama-server (or server) on PATH; build llama.cpp's llama-server and set LLAMACPP_BIN to its path"))
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Setup implements stack.Runner: it finds the binary and checks that the endpoints' ports are
// free. Servers are started per candidate by Measure.
func (d *Driver) Setup(_ context.Context, sel gpu.Selection) ([]stack.Endpoint, error) {
	bin, err := ResolveBin(d.cfg.Bin, d.cfg.LookPath)
	if err != nil {
		return nil, err
	}
	d.bin = bin
	eps := []stack.Endpoint{{Suffix: "A", Addr: hostPort(d.cfg.PortA), Unit: "proc", GPU: sel.A}}
	if sel.B != nil {
		if d.cfg.PortB == d.cfg.PortA {
			return nil, fmt.Errorf("PORT_A and PORT_B are both %d; endpoint B needs a port of its own", d.cfg.PortA)
		}
		eps = append(eps, stack.Endpoint{Suffix: "B", Addr: hostPort(d.cfg.PortB), Unit: "proc", GPU: sel.B})
	}
	if ep, ok := stack.SplitEndpoint(sel, hostPort(d.cfg.SplitPort)); ok {
		if d.cfg.SplitPort == d.cfg.PortA || d.cfg.SplitPort == d.cfg.PortB {
			return nil, fmt.Errorf("SPLIT_PORT %d is PORT_A's or PORT_B's; endpoint A+B needs a port of its own", d.cfg.SplitPort)
		}
		eps = append(eps, ep)
	}
	d.reserveMiB = sel.ReserveMiB
	for _, ep := range eps {
		knob := "PORT_" + ep.Suffix
		if ep.IsSplit() {
			knob = "SPLIT_PORT"
		}
		if err := server.CheckPortFree(ep.Addr); err != nil {
			return nil, fmt.Errorf("llama.cpp endpoint %s: %w (%s)", ep.Suffix, err, knob)
		}
		fmt.Fprintf(d.log, "== llama.cpp endpoint %s on %s (%s), server %s\n", ep.Suffix, ep.Addr, epLabel(ep), bin)
	}
	return eps, nil
}

func epLabel(ep stack.Endpoint) string {
	if ep.GPU == nil {
		return "cpu: CUDA_VISIBLE_DEVICES empty"
	}
	return ep.GPULabel() + " " + ep.GPUUUIDs()
}

// Close implements stack.Runner: it stops the running server, if any.
func (d *Driver) Close(context.Context) {
	d.mu.Lock()
	addrs := make([]string, 0, len(d.servers))
	for addr := range d.servers {
		addrs = append(addrs, addr)
	}
	d.mu.Unlock()
	for _, addr := range addrs {
		d.stop(addr)
	}
}

// stop stops the server of the endpoint at addr, if any, and forgets it.
func (d *Driver) stop(addr string) {
	d.mu.Lock()
	in := d.servers[addr]
	delete(d.servers, addr)
	d.mu.Unlock()
	if in != nil && in.proc != nil {
		_ = in.proc.Stop(d.grace())
	}
}

// Release implements stack.Releaser: it stops ep's server, so that the GPU memory it holds is
// free for an endpoint sharing its GPU; ep's next Prepare starts it again.
func (d *Driver) Release(_ context.Context, ep stack.Endpoint) { d.stop(ep.Addr) }

// ParallelEndpoints implements stack.ParallelEndpoints: each endpoint has its own server and
// its own lane (lane), and the driver's lock is held only to read and update its maps.
func (d *Driver) ParallelEndpoints() bool { return true }

// lane is the lock that keeps one endpoint's server starts and stops in order.
func (d *Driver) lane(addr string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.lanes[addr]
	if l == nil {
		l = &sync.Mutex{}
		d.lanes[addr] = l
	}
	return l
}

func (d *Driver) grace() time.Duration {
	if d.cfg.StopGrace > 0 {
		return d.cfg.StopGrace
	}
	return 10 * time.Second
}

// Targets implements stack.Driver (see Config.Models for the order of sources).
func (d *Driver) Targets(context.Context) ([]stack.Target, error) {
	models, warnings, err := d.cfg.Models()
	for _, w := range warnings {
		fmt.Fprintf(d.log, "! llama.cpp: %s\n", w)
	}
	if err != nil {
		return nil, err
	}
	var out []stack.Target
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range models {
		d.models[m.Alias] = m
		fmt.Fprintf(d.log, "   model %s: %s (%s, %.2f GB)\n", m.Alias, m.Path, m.Source, float64(m.Bytes)/1e9)
		out = append(out, stack.Target{Model: m.Tag, Alias: m.Alias, BytesPerToken: bytesPerToken(d.log, m.Path, m.Bytes)})
	}
	return out, nil
}

func (d *Driver) candidate(label, tag, ngl string) stack.Candidate {
	c := stack.Candidate{Label: label, ModelTag: tag, NumGPU: ngl,
		NumCtx: strconv.Itoa(d.cfg.CtxSize), Batch: strconv.Itoa(d.cfg.BatchSize), NumPredict: strconv.Itoa(d.cfg.NumPredict)}
	ngArg := nglArg(c)
	if ngArg == "" {
		ngArg = "not passed"
	}
	c.Settings = []stack.Setting{
		// llama-server's command line: a change restarts the server.
		{Name: "n_gpu_layers", Value: ngl, Level: stack.ServerLevel},
		{Name: "n_gpu_layers_arg", Value: ngArg, Level: stack.ServerLevel},
		{Name: "ctx_size", Value: c.NumCtx, Level: stack.ServerLevel},
		{Name: "batch_size", Value: c.Batch, Level: stack.ServerLevel},
		// Sent with each /completion request.
		{Name: "n_predict", Value: c.NumPredict, Level: stack.RequestLevel},
		{Name: "temperature", Value: strconv.FormatFloat(d.cfg.Temperature, 'f', -1, 64), Level: stack.RequestLevel},
		{Name: "seed", Value: strconv.Itoa(d.cfg.Seed), Level: stack.RequestLevel},
	}
	return c
}

// Baseline implements stack.Driver: the server without --n-gpu-layers, i.e. its own default
// offload, recorded as "default" with the offload the server reports in the sample. A tuning
// search on a GPU that keeps one offload (NGL_CANDIDATES of one value) compares the server's
// defaults of the tuned settings at that offload instead: builds before mid 2025 default to no
// layers on the GPU, a baseline on the CPU that says nothing about the tuned settings and took
// over five minutes for the 8B F16 on an H200 host.
func (d *Driver) Baseline(_ context.Context, ep stack.Endpoint, t stack.Target) (stack.Candidate, error) {
	if ep.GPU != nil && !d.cfg.Tune.empty() && len(d.cfg.NGL) == 1 {
		return d.candidate(stack.LabelBaseline, t.Alias, strconv.Itoa(d.cfg.NGL[0])), nil
	}
	return d.candidate(stack.LabelBaseline, t.Alias, "default"), nil
}

// Candidates implements stack.Driver: one per NGL_CANDIDATES value, in order.
func (d *Driver) Candidates(_ context.Context, ep stack.Endpoint, t stack.Target) ([]stack.Candidate, error) {
	if len(d.cfg.NGL) == 0 {
		return nil, errors.New("NGL_CANDIDATES is empty")
	}
	if ep.GPU == nil && d.cfg.CPUTune {
		// --n-gpu-layers means nothing on a CPU: tune what moves a CPU's rate instead.
		tu := d.cfg.Tune
		if tu.empty() {
			tu = cpuTuning(cores(), d.cfg.BatchSize)
		}
		fmt.Fprintf(d.log, "   CPU endpoint: --n-gpu-layers is not swept; tuning threads, batch and the KV cache instead\n")
		return d.tuned([]stack.Candidate{d.candidate(stack.LabelOptimized, t.Alias+"-cpu", "default")}, tu), nil
	}
	var out []stack.Candidate
	for _, n := range d.cfg.NGL {
		out = append(out, d.candidate(stack.LabelOptimized, fmt.Sprintf("%s-%s-ngl%d", t.Alias, ep.GPULabel(), n), strconv.Itoa(n)))
	}
	if !d.cfg.Tune.empty() {
		out = d.tuned(out, d.cfg.Tune)
	}
	return out, nil
}

// nglArg is the --n-gpu-layers argument of a candidate; "" for the server's default.
func nglArg(c stack.Candidate) string {
	n, err := strconv.Atoi(c.NumGPU)
	if err != nil {
		return ""
	}
	if n < 0 {
		n = AllLayers
	}
	return strconv.Itoa(n)
}

// ServerArgs is the llama-server command line (after the binary) for a candidate.
func (d *Driver) ServerArgs(ep stack.Endpoint, modelPath string, c stack.Candidate) []string {
	host, port, _ := net.SplitHostPort(ep.Addr)
	slots, serving := parallelOf(c)
	args := []string{"--model", modelPath, "--host", host, "--port", port,
		"--ctx-size", strconv.Itoa(d.cfg.CtxSize * slots), "--batch-size", d.batchOf(c), "--parallel", strconv.Itoa(slots)}
	if serving {
		args = append(args, "--cont-batching") // serving.go
	}
	if n := nglArg(c); n != "" {
		args = append(args, "--n-gpu-layers", n)
	}
	if ep.IsSplit() {
		mode := d.cfg.SplitMode
		if mode == "" {
			mode = "layer"
		}
		args = append(args, "--split-mode", mode, "--tensor-split", TensorSplit(ep.GPUs(), d.reserveMiB))
	}
	return append(args, tuningArgs(c, d.FlashAttnTakesValue())...) // tune.go
}

// TensorSplit is llama-server's --tensor-split for a GPU set: each GPU's free memory in MiB
// (total − used when fuze started − reserveMiB), as proportions, so that a GPU with less room
// gets fewer layers (or rows) instead of running out of memory; at least 1 each, so that no
// GPU of the set is left out.
func TensorSplit(gpus []*gpu.GPU, reserveMiB int) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = strconv.Itoa(max(g.MemoryMiB-g.MemoryUsedMiB-reserveMiB, 1))
	}
	return strings.Join(parts, ",")
}

// ServerEnv is the environment of a server on ep: the run's environment, pinned to the
// endpoint's GPU (empty CUDA_VISIBLE_DEVICES: the CPU).
func (d *Driver) ServerEnv(ep stack.Endpoint) []string {
	cuda := ep.CUDAVisibleDevices() // the endpoint's GPUs in order, as --tensor-split lists them
	env := make([]string, 0, len(d.cfg.Environ)+1)
	for _, kv := range d.cfg.Environ {
		if !strings.HasPrefix(kv, "CUDA_VISIBLE_DEVICES=") {
			env = append(env, kv)
		}
	}
	return append(env, "CUDA_VISIBLE_DEVICES="+cuda)
}

func (d *Driver) logPath(ep stack.Endpoint) string {
	return filepath.Join(d.cfg.LogDir, fmt.Sprintf("llamacpp_%s_%s.log", strings.ToLower(strings.ReplaceAll(ep.Suffix, stack.SplitSeparator, "")), d.cfg.RunTS))
}

var offloadLine = regexp.MustCompile(`offloaded (\d+)/(\d+) layers to GPU`)

// ensure returns the server for (ep, model, candidate), starting it (and stopping ep's
// previous one) when needed. Repeats of one candidate share its server; a failed start is not
// retried for the same candidate. The caller holds ep's lane.
func (d *Driver) ensure(ctx context.Context, ep stack.Endpoint, m Model, c stack.Candidate) *instance {
	// Every server-level setting is on the command line: the arguments are the server's key.
	key := ep.Addr + "|" + m.Path + "|" + strings.Join(d.ServerArgs(ep, m.Path, c), " ")
	d.mu.Lock()
	cur := d.servers[ep.Addr]
	d.mu.Unlock()
	if cur != nil && cur.key == key {
		if cur.failure == nil && cur.proc != nil && cur.proc.ExitError() != nil {
			cur.failure = measure.Fail(measure.ErrExited, fmt.Errorf("%v (log: %s)", cur.proc.ExitError(), cur.logPath))
		}
		return cur
	}
	restart := cur != nil
	d.stop(ep.Addr)
	in := &instance{key: key, ep: ep, logPath: d.logPath(ep), args: d.ServerArgs(ep, m.Path, c)}
	d.mu.Lock()
	d.servers[ep.Addr], d.last = in, in
	d.mu.Unlock()
	fail := func(outcome string, err error) *instance {
		in.failure = measure.Fail(outcome, err)
		return in
	}
	if err := waitPortFree(ctx, ep.Addr, restart); err != nil {
		return fail(measure.ErrOther, err)
	}
	env := d.ServerEnv(ep)
	offset := d.logHeader(in, env)
	proc, err := server.Start(server.Spec{
		Name: fmt.Sprintf("llama-server %s on %s", ep.Suffix, ep.Addr),
		Path: d.bin, Args: in.args, Env: env, LogPath: in.logPath,
	})
	if err != nil {
		return fail(measure.ErrOther, err)
	}
	in.proc = proc
	timeout := d.cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = ReadyTimeoutFor(m.Bytes)
	}
	started := time.Now()
	var lastAnswer error // the last probe that got an answer, not one cut by the deadline
	err = proc.WaitReady(ctx, timeout, 250*time.Millisecond, func(ctx context.Context) error {
		err := health(ctx, ep.Addr)
		if err != nil && ctx.Err() == nil {
			lastAnswer = err
		}
		return err
	})
	in.loadTime = time.Since(started)
	if err != nil {
		switch {
		case errors.Is(err, server.ErrExited):
			return fail(measure.ErrExited, fmt.Errorf("%w (log: %s)", err, in.logPath))
		case errors.Is(err, context.Canceled):
			d.mu.Lock()
			delete(d.servers, ep.Addr)
			d.mu.Unlock()
			_ = proc.Stop(time.Second)
			return fail(measure.ErrCanceled, err)
		default:
			// Never ready: stop it now rather than leave it holding the GPU until the next start.
			_ = proc.Stop(d.grace())
			if lastAnswer != nil && !strings.Contains(err.Error(), lastAnswer.Error()) {
				err = fmt.Errorf("%w; last /health answer: %v", err, lastAnswer)
			}
			return fail(measure.ErrTimeout, fmt.Errorf("%w (log: %s)", err, in.logPath))
		}
	}
	in.offload = readOffload(in.logPath, offset, proc)
	fmt.Fprintf(d.log, "== llama-server %s on %s ready in %s (pid %d, --n-gpu-layers %s, offloaded %s, log %s)\n",
		ep.Suffix, ep.Addr, in.loadTime.Round(time.Millisecond), proc.PID(), orDefault(nglArg(c)), orUnknown(in.offload), in.logPath)
	// Warm-up (not recorded): the first request pays for buffer allocation and kernel
	// compilation.
	wctx, cancel := context.WithTimeout(ctx, d.cfg.requestTimeout())
	_, _, err = completion(wctx, ep.Addr, CompletionRequest{Prompt: "warm up", NPredict: 4, Temperature: d.cfg.Temperature, Seed: d.cfg.Seed, Stream: true, IgnoreEOS: true}, nil)
	cancel()
	if err != nil {
		in.failure = d.classify(in, fmt.Errorf("warm-up request: %w", err))
	}
	return in
}

// PortReuseWait bounds the wait for an endpoint's port after fuze stopped the previous server
// on it (the port is released when the process has gone; this covers the kernel's lag).
var PortReuseWait = 10 * time.Second

// waitPortFree checks that addr is free; right after a restart on the same port it retries
// for up to PortReuseWait.
func waitPortFree(ctx context.Context, addr string, restart bool) error {
	err := server.CheckPortFree(addr)
	if err == nil || !restart {
		return err
	}
	deadline := time.Now().Add(PortReuseWait)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if err = server.CheckPortFree(addr); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (still %s after the previous llama-server on it stopped)", err, PortReuseWait)
}

func orDefault(s string) string {
	if s == "" {
		return "not passed (server default)"
	}
	return s
}

func orUnknown(s string) string {
	switch s {
	case "":
		return "not reported"
	case NoOffload:
		return s
	}
	return s + " layers"
}

// logHeader appends a line naming the command to the endpoint's log (the log is appended to,
// across all the servers of the run) and returns the offset where the server's output starts.
func (d *Driver) logHeader(in *instance, env []string) int64 {
	f, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0
	}
	defer f.Close()
	cuda := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "CUDA_VISIBLE_DEVICES="); ok {
			cuda = v
		}
	}
	fmt.Fprintf(f, "==== fuze %s: CUDA_VISIBLE_DEVICES=%q %s %s\n", time.Now().Format(time.RFC3339), cuda, d.bin, strings.Join(in.args, " "))
	off, _ := f.Seek(0, io.SeekEnd)
	return off
}

// readOffload finds the model loader's "offloaded N/M layers to GPU" line of this start: in
// the log file from offset, else in the process's recent output. llama.cpp prints it only
// when the build supports GPU offload; a log that shows the loader at work without it means
// every layer is on the CPU.
func readOffload(logPath string, offset int64, proc *server.Process) string {
	var b []byte
	if f, err := os.Open(logPath); err == nil {
		if _, err := f.Seek(offset, io.SeekStart); err == nil {
			b, _ = io.ReadAll(io.LimitReader(f, 64<<20))
		}
		f.Close()
	}
	if all := offloadLine.FindAllSubmatch(b, -1); len(all) > 0 {
		m := all[len(all)-1]
		return string(m[1]) + "/" + string(m[2])
	}
	if m := proc.FindInLog(offloadLine); m != nil {
		return m[1] + "/" + m[2]
	}
	if bytes.Contains(b, []byte("load_tensors:")) {
		return NoOffload
	}
	return ""
}

// NoOffload is the recorded offload of a server build without GPU support.
const NoOffload = "0 (this llama-server build has no GPU offload)"

// Workload implements stack.Planner: PROMPT and the token budget.
func (d *Driver) Workload() stack.Workload {
	return stack.Workload{Prompt: d.cfg.Prompt, MaxTokens: d.cfg.NumPredict, RunTS: d.cfg.RunTS}
}

// Prepare implements stack.Server: start (or reuse) the candidate's llama-server, wait for
// /health and warm it up.
func (d *Driver) Prepare(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate) (stack.Prepared, error) {
	lane := d.lane(ep.Addr)
	lane.Lock()
	defer lane.Unlock()
	d.mu.Lock()
	m, ok := d.models[t.Alias]
	d.mu.Unlock()
	if !ok {
		return stack.Prepared{}, measure.Fail(measure.ErrOther, errors.New("no model file resolved for "+t.Alias))
	}
	p := stack.Prepared{Settings: map[string]string{"model_path": m.Path, "cuda_visible_devices": ep.CUDAVisibleDevices()}}
	in := d.ensure(ctx, ep, m, c)
	p.Settings["server_log"] = in.logPath
	if in.offload != "" {
		p.Settings["offloaded_layers"] = in.offload
	}
	p.LoadDuration = in.loadTime
	if in.failure != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return p, measure.Fail(measure.ErrCanceled, in.failure)
		}
		return p, in.failure
	}
	return p, nil
}

// Send implements stack.Client: one streamed /completion of req.MaxTokens tokens (ignore_eos)
// with cache_prompt off, so that prefill is really measured. llama-server streams one token
// per event.
func (d *Driver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, _ stack.Candidate, r stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	d.mu.Lock()
	in := d.servers[ep.Addr]
	d.mu.Unlock()
	req := CompletionRequest{
		Prompt:      r.Prompt,
		NPredict:    r.MaxTokens,
		Temperature: d.cfg.Temperature,
		Seed:        d.cfg.Seed,
		Stream:      true,
		CachePrompt: false,
		IgnoreEOS:   true,
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.requestTimeout())
	defer cancel()
	final, raw, err := completion(rctx, ep.Addr, req, func(ch *Chunk, _ time.Time) {
		tokens := 0
		if ch.Content != "" {
			tokens = 1
		}
		rec.Chunk(tokens)
	})
	if d.cfg.DebugBench {
		d.mu.Lock()
		d.exchanges[r.Seq] = exchange{req: req, final: raw}
		d.mu.Unlock()
	}
	if err != nil {
		return measure.ServerCounters{}, d.classify(in, err)
	}
	return fromFinal(final, r.MaxTokens)
}

// fromFinal reads the final answer's counts and timings; an answer without usable timings is
// a malformed failure.
func fromFinal(final *Chunk, numPredict int) (measure.ServerCounters, error) {
	sc := measure.ServerCounters{StopReason: final.StopType}
	if final.Timings == nil {
		return sc, measure.Fail(measure.ErrMalformed, errors.New("final answer has no timings (tokens_predicted="+strconv.Itoa(final.TokensPredicted)+")"))
	}
	tm := final.Timings
	sc.PromptTokens = tm.PromptN
	sc.PromptDuration = msDuration(tm.PromptMS)
	sc.OutputTokens = tm.PredictedN
	sc.DecodeDuration = msDuration(tm.PredictedMS)
	sc.TotalDuration = sc.PromptDuration + sc.DecodeDuration
	sc.Extra = map[string]string{
		"server_predicted_per_second": strconv.FormatFloat(tm.PredictedPerSecond, 'f', 4, 64),
		"server_prompt_per_second":    strconv.FormatFloat(tm.PromptPerSecond, 'f', 4, 64),
		"tokens_evaluated":            strconv.Itoa(final.TokensEvaluated),
	}
	if tm.PredictedN <= 0 || tm.PredictedMS <= 0 {
		return sc, measure.Fail(measure.ErrMalformed, fmt.Errorf("final answer has timings.predicted_n=%d predicted_ms=%g", tm.PredictedN, tm.PredictedMS))
	}
	if tm.PredictedN != numPredict {
		sc.Notes = append(sc.Notes, fmt.Sprintf("output length %d differs from n_predict %d (stop_type %q)", tm.PredictedN, numPredict, final.StopType))
	}
	if final.TokensEvaluated > 0 && tm.PromptN < final.TokensEvaluated {
		sc.Notes = append(sc.Notes, fmt.Sprintf("only %d of %d prompt tokens were evaluated (prompt cache reused)", tm.PromptN, final.TokensEvaluated))
	}
	if final.Truncated {
		sc.Notes = append(sc.Notes, "the context was exceeded during generation (truncated); raise BENCH_NUM_CTX/CTX")
	}
	return sc, nil
}

// msDuration converts the server's float milliseconds to a Duration, to the nanosecond.
func msDuration(ms float64) time.Duration {
	return time.Duration(ms*1e6 + 0.5)
}

// classify gives a request error its outcome kind.
func (d *Driver) classify(in *instance, err error) error {
	if in != nil && in.proc != nil && isConnErr(err) {
		// A server that crashed mid-answer: wait a moment for its exit to be noticed.
		select {
		case <-in.proc.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	var ae *APIError
	switch {
	case in != nil && in.proc != nil && in.proc.ExitError() != nil:
		return measure.Fail(measure.ErrExited, fmt.Errorf("%v (log: %s)", in.proc.ExitError(), in.logPath))
	case errors.Is(err, context.Canceled):
		return measure.Fail(measure.ErrCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return measure.Fail(measure.ErrTimeout, err)
	case errors.As(err, &ae):
		if ae.Code == 503 || strings.Contains(strings.ToLower(ae.Message), "memory") {
			return measure.Fail(measure.ErrLoad, err)
		}
		return measure.Fail(measure.ErrHTTP, err)
	case errors.Is(err, errMalformed):
		return measure.Fail(measure.ErrMalformed, err)
	case isConnErr(err):
		return measure.Fail(measure.ErrConnect, err)
	default:
		return measure.Fail(measure.ErrOther, err)
	}
}

func isConnErr(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}

// Debug implements stack.Debugger: it writes the request, the final answer and the metrics
// of an attempt (DEBUG_BENCH=1).
func (d *Driver) Debug(ep stack.Endpoint, t stack.Target, c stack.Candidate, r stack.Request, s *measure.Sample) {
	if !d.cfg.DebugBench {
		return
	}
	d.mu.Lock()
	x, ok := d.exchanges[r.Seq]
	delete(d.exchanges, r.Seq)
	d.mu.Unlock()
	if !ok { // the server never became ready: no request was sent
		x.req = CompletionRequest{Prompt: r.Prompt, NPredict: r.MaxTokens, Temperature: d.cfg.Temperature, Seed: d.cfg.Seed, Stream: true, IgnoreEOS: true}
	}
	req, final, seq := x.req, x.final, r.Seq
	dir := filepath.Join(d.cfg.LogDir, "debug_"+d.cfg.RunTS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		return
	}
	base := fmt.Sprintf("llamacpp_%s_%s_%s_ngl%s_%03d", ep.Suffix, strings.ReplaceAll(t.Alias, "/", "-"), c.Label, c.NumGPU, seq)
	write := func(suffix string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, base+suffix), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		}
	}
	b, _ := json.MarshalIndent(req, "", "  ")
	write(".request.json", b)
	if final != nil {
		write(".response.json", final)
	}
	b, _ = json.MarshalIndent(map[string]any{
		"predicted_tokens": s.ServerOutputTokens, "predicted_ms": float64(s.ServerDecodeDuration) / 1e6,
		"tokens_per_sec": s.DecodeTokensPerSec(), "endpoint": ep.Addr, "model": c.ModelTag,
		"outcome": s.Outcome, "error": s.Error,
	}, "", "  ")
	write(".metrics.json", b)
}

// Server returns the process of the server started last while it is still the current one
// of its endpoint, or nil (for tests).
func (d *Driver) Server() *server.Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil || d.servers[d.last.ep.Addr] != d.last {
		return nil
	}
	return d.last.proc
}

// bytesPerToken is what decoding one token of the model file reads (gguf.TokenTraffic), or
// the file size, said, when the file's tensors cannot be read.
func bytesPerToken(log io.Writer, path string, fileBytes int64) int64 {
	n, err := gguf.BytesPerTokenFile(path)
	if err != nil || n <= 0 {
		fmt.Fprintf(log, "! roofline of %s: %v; using the file size\n", path, err)
		return fileBytes
	}
	return n
}
