// Package stack is what an inference stack driver provides, split the way a benchmark uses
// it: a planner (models to benchmark, configurations to try), a server side (start or reuse a
// server for an endpoint and a configuration, check readiness, stop it) and a client side
// (send one request, report its stream as it arrives, return the server's own counters).
// The engine (internal/engine) owns the loop, the clock and the concurrency; a driver has no
// loop, timer, CSV code or process supervision of its own.
package stack

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/naming"
)

// Endpoint is one server slot pinned to one GPU, to a set of GPUs (a split endpoint, "A+B"),
// or to the CPU when GPU is nil.
type Endpoint struct {
	Suffix string   // CSV column "suffix": "A", "B", "A+B", or the port when it is neither test port
	Addr   string   // host:port the stack's server listens on
	Unit   string   // CSV column "unit": the systemd unit, or "proc" for a process fuze supervises
	GPU    *gpu.GPU // nil: the CPU; for a split endpoint the first GPU of Split
	// Split is the GPU set of an endpoint whose server spreads one model over several GPUs
	// (nil or one GPU: not split). GPU stays the first of them so that code that knows one
	// GPU per endpoint keeps working; code that must see every GPU asks GPUs().
	Split []*gpu.GPU
}

// SplitSeparator joins the GPU labels, names and UUIDs of a split endpoint inside one CSV
// field ("nvidia-h200+nvidia-h200"): it needs no CSV quoting, never occurs in an nvidia-smi
// UUID or a label, and keeps the 16-column schema.
const SplitSeparator = "+"

// GPUs is every GPU the endpoint's server uses, in order (none: the CPU).
func (e Endpoint) GPUs() []*gpu.GPU {
	if len(e.Split) > 0 {
		return e.Split
	}
	if e.GPU == nil {
		return nil
	}
	return []*gpu.GPU{e.GPU}
}

// IsSplit says the endpoint spreads a model over more than one GPU.
func (e Endpoint) IsSplit() bool { return len(e.Split) > 1 }

// GPULabel is the normalised label of the endpoint's GPU, "cpu", or the labels of a split
// endpoint's GPUs joined by SplitSeparator.
func (e Endpoint) GPULabel() string {
	if e.GPU == nil {
		return gpu.CPULabel
	}
	return e.join(func(g *gpu.GPU) string { return g.Label }, SplitSeparator)
}

// GPUNames is the nvidia-smi names of the endpoint's GPUs joined by SplitSeparator ("" on
// the CPU).
func (e Endpoint) GPUNames() string {
	return e.join(func(g *gpu.GPU) string { return g.Name }, SplitSeparator)
}

// GPUUUIDs is the UUIDs of the endpoint's GPUs joined by SplitSeparator ("" on the CPU).
func (e Endpoint) GPUUUIDs() string {
	return e.join(func(g *gpu.GPU) string { return g.UUID }, SplitSeparator)
}

// GPUMemoryMiB is the total memory of the endpoint's GPUs (0 on the CPU).
func (e Endpoint) GPUMemoryMiB() int {
	n := 0
	for _, g := range e.GPUs() {
		n += g.MemoryMiB
	}
	return n
}

// CUDAVisibleDevices is the value that pins a server to the endpoint's GPUs: their UUIDs,
// comma-separated as CUDA reads them ("" on the CPU: no GPU visible).
func (e Endpoint) CUDAVisibleDevices() string {
	return e.join(func(g *gpu.GPU) string { return g.CUDAVisibleDevices() }, ",")
}

func (e Endpoint) join(f func(*gpu.GPU) string, sep string) string {
	gs := e.GPUs()
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = f(g)
	}
	return strings.Join(parts, sep)
}

// SplitEndpoint is the endpoint "A+B" over both selected GPUs, or false when the selection
// does not ask for it (gpu.Selection.Split) or has fewer than two GPUs.
func SplitEndpoint(sel gpu.Selection, addr string) (Endpoint, bool) {
	if !sel.Split || sel.A == nil || sel.B == nil {
		return Endpoint{}, false
	}
	return Endpoint{Suffix: "A+B", Addr: addr, Unit: "proc", GPU: sel.A, Split: []*gpu.GPU{sel.A, sel.B}}, true
}

// ParallelEndpoints is implemented by drivers whose endpoints' servers are independent (no
// lock held across a server start, one server per endpoint), so the engine may measure their
// endpoints at the same time. A driver without it is measured one endpoint after another.
type ParallelEndpoints interface {
	ParallelEndpoints() bool
}

// Target is one model to benchmark.
type Target struct {
	Model string // CSV base_model, as the stack names it (an Ollama tag, a GGUF alias…)
	Alias string // the one alias used in names and summaries
	// BytesPerToken is what decoding one token reads from memory (0: unknown), for the
	// roofline: the weights without the token-embedding table (one row of it), expert
	// tensors scaled by the experts used (gguf.TokenTraffic); the file size when the model
	// file cannot be read.
	BytesPerToken int64
}

// Level says what changing a setting costs: a server-level setting is part of the server's
// command line or environment (changing it restarts the server); a request-level setting
// travels with each request.
type Level string

const (
	ServerLevel  Level = "server"
	RequestLevel Level = "request"
)

// Setting is one named value of a configuration, with its level.
type Setting struct {
	Name, Value string
	Level       Level
}

// Candidate is one configuration to measure.
type Candidate struct {
	Label    string // CSV variant_label: base-as-is | optimized | published
	ModelTag string // CSV model_tag: what is actually requested
	// CSV columns with the values really used ("default" when the server decides).
	NumGPU, NumCtx, Batch, NumPredict string
	// Settings are the configuration's values by name and level, recorded with every sample
	// (JSONL "settings"); the CSV columns above are the seed's view of the same values.
	Settings []Setting
}

// ServerSettings is the candidate's server-level settings as one comparable key: two
// candidates with the same key can share a running server.
func (c Candidate) ServerSettings() string {
	var parts []string
	for _, s := range c.Settings {
		if s.Level == ServerLevel {
			parts = append(parts, s.Name+"="+s.Value)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// SettingsMap is the candidate's settings by name (every level).
func (c Candidate) SettingsMap() map[string]string {
	m := make(map[string]string, len(c.Settings))
	for _, s := range c.Settings {
		m[s.Name] = s.Value
	}
	return m
}

// Labels of the CSV variant_label column (internal/naming).
const (
	LabelBaseline  = naming.LabelBaseline
	LabelOptimized = naming.LabelOptimized
	LabelPublished = naming.LabelPublished
)

// Planner decides what to measure.
type Planner interface {
	// Name is the stack's canonical name (internal/stackname).
	Name() string
	// Targets lists the models to benchmark.
	Targets(ctx context.Context) ([]Target, error)
	// Baseline is the server's own default configuration for t on ep.
	Baseline(ctx context.Context, ep Endpoint, t Target) (Candidate, error)
	// Candidates are the settings to sweep, most promising first.
	Candidates(ctx context.Context, ep Endpoint, t Target) ([]Candidate, error)
	// Workload is what every request of the run asks for (from the stack's knobs).
	Workload() Workload
}

// Workload is what every request of a run asks for.
type Workload struct {
	Prompt    string // made unique per attempt: "[fuze run <RunTS> attempt <n>] <Prompt>"
	MaxTokens int
	RunTS     string
}

// Prepared is what the server side reports after making a server ready for a candidate:
// facts recorded with every sample of it (e.g. the offload the server really used, its log).
type Prepared struct {
	Settings     map[string]string
	LoadDuration time.Duration // the model load the server side waited for, if it knows
	Notes        []string
}

// Server is the server side of a stack.
type Server interface {
	// Setup starts or finds the servers the endpoints need (one per selected GPU, or one on
	// the CPU when there is none) and returns the endpoints.
	Setup(ctx context.Context, sel gpu.Selection) ([]Endpoint, error)
	// Prepare makes ep's server ready to serve c's requests for t: it (re)starts the server
	// when c's server-level settings differ from the running one's, loads the model and warms
	// it up, so that the requests the engine then times measure decoding, not loading. A
	// failure is a *measure.Failure (or any error, classified measure.ErrOther).
	Prepare(ctx context.Context, ep Endpoint, t Target, c Candidate) (Prepared, error)
	// Close stops every server Setup or Prepare started; safe after a failed Setup.
	Close(ctx context.Context)
}

// Request is one generation request: a prompt no earlier request has seen (servers cache
// prompts) and a token budget.
type Request struct {
	Seq       int // attempt number in this run, from 1
	Prompt    string
	MaxTokens int
}

// Arrivals records a response stream on the engine's clock: the client side says when a
// chunk was read, the engine stamps it.
type Arrivals interface {
	// Chunk records a chunk read now that carries tokens output tokens (0: none, or not known
	// until the stream ends) and returns its arrival time since the request started.
	Chunk(tokens int) time.Duration
	// Tokens attributes tokens to the chunk that arrived at `at` (a time Chunk returned), for
	// counts a server gives only at the end of the stream. Calls go in arrival order.
	Tokens(at time.Duration, tokens int)
}

// Client is the client side of a stack. Send must be safe to call from several goroutines.
type Client interface {
	// Send sends req for c to ep's server as a stream, recording each chunk in rec as it is
	// read, and returns the server's own counters for the request. A failure is a
	// *measure.Failure (or any error, classified measure.ErrOther).
	Send(ctx context.Context, ep Endpoint, t Target, c Candidate, req Request, rec Arrivals) (measure.ServerCounters, error)
}

// Driver is an inference stack: a planner, a server side and a client side.
type Driver interface {
	Planner
	Server
	Client
}

// UnavailableError says a stack cannot run on this machine: its server is not installed, or
// not running where fuze was told to find it and fuze was not asked to start it. The
// orchestrator reports it with its reason and goes on; it is not a failed measurement.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable marks err as the stack being unavailable here.
func Unavailable(err error) error { return &UnavailableError{Err: err} }

// Releaser is implemented by drivers whose servers keep GPU memory between configurations
// (a model kept loaded, a server left running): the engine calls Release for an endpoint
// before another endpoint that shares one of its GPUs runs (A or B before A+B, A+B before A
// or B), so that each measures with the memory it would have alone. The endpoint's next
// Prepare brings its server back.
type Releaser interface {
	Release(ctx context.Context, ep Endpoint)
}

// Publisher is implemented by drivers that can publish the best configuration as a model of
// its own (Ollama's PUBLISH_BEST); the engine measures what they publish as a "published" row.
type Publisher interface {
	Publish(ctx context.Context, ep Endpoint, t Target, best Candidate) (Candidate, bool)
}

// Debugger is implemented by drivers that keep a per-attempt debug record (DEBUG_BENCH): the
// engine hands them every finished sample.
type Debugger interface {
	Debug(ep Endpoint, t Target, c Candidate, req Request, s *measure.Sample)
}

// Finisher is implemented by drivers that act on a configuration's result once its repeats
// are measured (Ollama keeps or deletes a baked variant, records where the model sits).
type Finisher interface {
	Finished(ctx context.Context, ep Endpoint, t Target, c Candidate, s *measure.Sample)
}
