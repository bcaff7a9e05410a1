// Package ollama is the Ollama stack driver: model discovery on the persistent daemon, one
// test daemon per GPU endpoint, num_gpu candidates from the model's layer count, and one
// measurement per attempt from Ollama's streamed /api/generate answer.
//
// Runtime settings are sent inside "options" (num_gpu, num_predict, num_ctx, temperature,
// seed): Ollama ignores them at the top level of the request, which is why the original's
// sweep measured the same configuration over and over.
package ollama

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/stackname"

	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamastore"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// Config is the driver's view of the knobs.
type Config struct {
	PersistentPort int    // PERSISTENT_PORT: daemon used for discovery, pulls and baking
	TestPortA      int    // TEST_PORT_A
	TestPortB      int    // TEST_PORT_B
	SplitPort      int    // SPLIT_PORT: the A+B test daemon (SPLIT_ENDPOINTS=1)
	SkipTestUnits  bool   // SKIP_TEST_UNITS: bench the persistent daemon itself
	ModelsDir      string // OLLAMA_MODELS_DIR: the store the test daemons serve
	Bin            string // OLLAMA_BIN
	Include        *regexp.Regexp
	Exclude        *regexp.Regexp
	AliasPrefix    string
	AliasSuffix    string
	Prompt         string
	NumPredict     int
	NumCtx         int
	Temperature    float64
	FastMode       bool // FAST_MODE: runtime options (1) or baked variants (0)
	AutoNG         bool // AUTO_NG: candidates from the layer count
	NGPercents     []float64
	NumGPUFallback []int // NUM_GPU_CANDIDATES
	KeepFailed     bool  // KEEP_FAILED_VARIANTS
	GCAfterRun     bool  // GC_AFTER_RUN
	PublishBest    bool  // PUBLISH_BEST
	DebugBench     bool  // DEBUG_BENCH
	TimeoutGen     time.Duration
	TimeoutTags    time.Duration
	WaitAPI        time.Duration
	LogDir         string
	RunTS          string   // YYYYmmdd_HHMMSS of the run, in file names
	Environ        []string // environment for started daemons (knobs already applied)
	// Systemd, when set, runs the test daemons as the seed's units ollama-test-a/-b.service
	// (root on a systemd host); nil runs them as processes fuze supervises.
	Systemd *server.Systemd
	// Tune is the tuning sets beyond num_gpu (tune.go); a CPU endpoint without any uses
	// cpuTuning.
	Tune Tuning
	// CPUTune (CPU_TUNE): a CPU endpoint tunes threads, batch and KV cache, not the offload.
	CPUTune bool
}

// Driver implements stack.Driver for Ollama.
type Driver struct {
	cfg        Config
	log        io.Writer
	persistent *ollamaapi.Client
	// reserveMiB is RESERVE_GPU_MEMORY_MIB, from the selection Setup was given.
	reserveMiB int

	mu      sync.Mutex
	daemons map[string]server.Handle // by endpoint address; only those fuze started
	layers  map[string]int           // base model → offloadable layers
	created []string                 // baked variant names, in creation order
	baked   map[string]bool          // variants that exist now (baked and not removed)
	worked  map[string]bool          // baked variant → produced tokens
	// exchanges keeps each attempt's request and final answer for Debug (DEBUG_BENCH).
	exchanges map[int]exchange
	// daemonEnv is the server-level environment each started daemon got (serving.go).
	daemonEnv map[string]string
	// transport carries the requests to the test daemons (CloseIdleConnections).
	transport *http.Transport
}

// New returns a driver; call Setup before benchmarking and Close afterwards.
func New(cfg Config, log io.Writer) *Driver {
	return &Driver{
		cfg:        cfg,
		log:        log,
		persistent: ollamaapi.New(hostPort(cfg.PersistentPort)),
		daemons:    map[string]server.Handle{},
		layers:     map[string]int{},
		worked:     map[string]bool{},
		baked:      map[string]bool{},
		exchanges:  map[int]exchange{},
		daemonEnv:  map[string]string{},
		transport:  newTransport(),
	}
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func itoa(n int) string { return strconv.Itoa(n) }

// Name implements stack.Driver.
func (d *Driver) Name() string { return stackname.Ollama }

// Setup checks the persistent daemon and starts one test daemon per selected GPU (endpoint A
// on the CPU when there is no GPU). It returns the endpoints to benchmark.
func (d *Driver) Setup(ctx context.Context, sel gpu.Selection) ([]stack.Endpoint, error) {
	tctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutTags)
	_, err := d.persistent.Tags(tctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("persistent Ollama daemon on %s is not answering /api/tags (%v); start it or set PERSISTENT_PORT", hostPort(d.cfg.PersistentPort), err)
	}
	if d.cfg.SkipTestUnits || d.cfg.TestPortA == d.cfg.PersistentPort {
		// The stock daemon sees every GPU; the row names GPU A as the one it is pinned to
		// when there is only one, which is the common case for this mode.
		return []stack.Endpoint{{Suffix: itoa(d.cfg.PersistentPort), Addr: hostPort(d.cfg.PersistentPort), Unit: "persistent", GPU: sel.A}}, nil
	}
	eps := []stack.Endpoint{{Suffix: "A", Addr: hostPort(d.cfg.TestPortA), Unit: "proc", GPU: sel.A}}
	if sel.B != nil {
		eps = append(eps, stack.Endpoint{Suffix: "B", Addr: hostPort(d.cfg.TestPortB), Unit: "proc", GPU: sel.B})
	}
	if ep, ok := stack.SplitEndpoint(sel, hostPort(d.cfg.SplitPort)); ok {
		eps = append(eps, ep)
	}
	// No daemon for an endpoint the run does not measure (ENDPOINTS).
	eps = slices.DeleteFunc(eps, func(ep stack.Endpoint) bool { return !sel.Wants(ep.Suffix) })
	d.reserveMiB = sel.ReserveMiB
	for i := range eps {
		if err := d.startDaemon(ctx, &eps[i]); err != nil {
			d.stopDaemons()
			return nil, err
		}
	}
	return eps, nil
}

// startDaemon starts `ollama serve` for one endpoint and waits until it answers.
func (d *Driver) startDaemon(ctx context.Context, ep *stack.Endpoint, extraEnv ...string) error {
	if err := server.CheckPortFree(ep.Addr); err != nil {
		return err
	}
	env := append(append([]string{}, d.cfg.Environ...), d.DaemonEnv(*ep)...)
	env = append(env, extraEnv...)
	logPath := filepath.Join(d.cfg.LogDir, fmt.Sprintf("ollama_%s_%s.log", fileSuffix(ep.Suffix), d.cfg.RunTS))
	spec := server.Spec{Name: "ollama test daemon " + ep.Suffix + " on " + ep.Addr, Path: d.cfg.Bin, Args: []string{"serve"}, Env: env, LogPath: logPath}
	var h server.Handle
	if d.cfg.Systemd != nil {
		_, port, _ := net.SplitHostPort(ep.Addr)
		unit := "ollama-test-" + fileSuffix(ep.Suffix) + ".service"
		u, err := d.cfg.Systemd.Start(ctx, unit, fmt.Sprintf("Ollama (TEST %s on :%s)", ep.Suffix, port), spec)
		if err != nil {
			return err
		}
		h = u
	} else {
		p, err := server.Start(spec)
		if err != nil {
			return err
		}
		h = p
	}
	ep.Unit = h.Unit()
	d.mu.Lock()
	d.daemons[ep.Addr] = h
	d.daemonEnv[ep.Addr] = strings.Join(extraEnv, " ")
	d.mu.Unlock()
	client := ollamaapi.New(ep.Addr)
	err := h.WaitReady(ctx, d.cfg.WaitAPI, 200*time.Millisecond, func(ctx context.Context) error {
		_, err := client.Tags(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	fmt.Fprintf(d.log, "== test daemon %s on %s (%s, %s, OLLAMA_MODELS=%s, log %s)\n", ep.Suffix, ep.Addr, labelOf(*ep), h.Unit(), d.cfg.ModelsDir, logPath)
	return nil
}

// DaemonEnv is what a test daemon of ep gets beside the run's environment: its address and
// store, the endpoint's GPUs (none: the CPU), OLLAMA_SCHED_SPREAD=1 on a split endpoint (else
// Ollama puts a model that fits one GPU on one GPU only, and A+B would measure a single GPU),
// and OLLAMA_GPU_OVERHEAD, the memory per GPU its scheduler leaves unused
// (RESERVE_GPU_MEMORY_MIB, in bytes as Ollama reads it).
func (d *Driver) DaemonEnv(ep stack.Endpoint) []string {
	env := []string{
		"OLLAMA_HOST=" + ep.Addr,
		"OLLAMA_MODELS=" + d.cfg.ModelsDir,
		"CUDA_VISIBLE_DEVICES=" + ep.CUDAVisibleDevices(),
	}
	if ep.IsSplit() {
		env = append(env, "OLLAMA_SCHED_SPREAD=1")
	}
	if d.reserveMiB > 0 && ep.GPU != nil {
		env = append(env, "OLLAMA_GPU_OVERHEAD="+strconv.FormatInt(int64(d.reserveMiB)<<20, 10))
	}
	return env
}

// fileSuffix is an endpoint suffix as log files and systemd units name it: "a", "b", "ab"
// (systemd refuses '+' in unit names).
func fileSuffix(suffix string) string {
	return strings.ToLower(strings.ReplaceAll(suffix, stack.SplitSeparator, ""))
}

// Release implements stack.Releaser: it unloads every model ep's daemon keeps loaded
// (keep_alive 0), so that its runner leaves the GPU before an endpoint sharing that GPU is
// measured; the daemon itself stays up and the next warm-up loads the model again.
func (d *Driver) Release(ctx context.Context, ep stack.Endpoint) {
	c := d.client(ep.Addr)
	tctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutTags)
	defer cancel()
	loaded, err := c.PS(tctx)
	if err != nil {
		fmt.Fprintf(d.log, "! [%s] release: /api/ps: %v\n", ep.Suffix, err)
		return
	}
	for _, m := range loaded {
		gctx, gcancel := context.WithTimeout(ctx, d.cfg.TimeoutGen)
		_, err := c.Generate(gctx, ollamaapi.GenerateRequest{Model: m.Name, KeepAlive: "0"}, nil)
		gcancel()
		if err != nil {
			fmt.Fprintf(d.log, "! [%s] release %s: %v\n", ep.Suffix, m.Name, err)
			continue
		}
		fmt.Fprintf(d.log, "== [%s] unloading %s (%d MiB on GPU) before an endpoint sharing its GPU\n", ep.Suffix, m.Name, m.SizeVRAM>>20)
	}
	// keep_alive 0 schedules the unload; the memory is free once the runner is gone from
	// /api/ps.
	for len(loaded) > 0 && tctx.Err() == nil {
		if loaded, err = c.PS(tctx); err != nil || len(loaded) == 0 {
			return
		}
		select {
		case <-tctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if len(loaded) > 0 {
		fmt.Fprintf(d.log, "! [%s] release: %d model(s) still loaded after %s\n", ep.Suffix, len(loaded), d.cfg.TimeoutTags)
	}
}

// ParallelEndpoints implements stack.ParallelEndpoints: each endpoint has its own daemon, and
// the driver's lock is never held across a request or a model load.
func (d *Driver) ParallelEndpoints() bool { return true }

func labelOf(ep stack.Endpoint) string {
	if ep.GPU == nil {
		return "cpu"
	}
	s := ep.GPULabel() + " " + ep.GPUUUIDs()
	if ep.IsSplit() {
		s += ", OLLAMA_SCHED_SPREAD=1"
	}
	return s
}

// Close garbage-collects baked variants (GC_AFTER_RUN) and stops the test daemons.
func (d *Driver) Close(ctx context.Context) {
	if d.cfg.GCAfterRun && len(d.created) > 0 {
		removed, kept := 0, 0
		for _, name := range d.created {
			if d.worked[name] {
				kept++
				continue
			}
			if err := d.persistent.Delete(context.WithoutCancel(ctx), name+":latest"); err != nil {
				fmt.Fprintf(d.log, "! GC: could not remove %s: %v\n", name, err)
				continue
			}
			removed++
		}
		fmt.Fprintf(d.log, "GC created variants: removed=%d kept=%d\n", removed, kept)
	}
	d.stopDaemons()
}

func (d *Driver) stopDaemons() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for addr, p := range d.daemons {
		_ = p.Stop(10 * time.Second)
		delete(d.daemons, addr)
	}
}

// Targets lists base models on the persistent daemon, filtered by INCLUDE_MODELS and
// EXCLUDE_MODELS, never fuze's own baked variants.
func (d *Driver) Targets(ctx context.Context) ([]stack.Target, error) {
	tctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutTags)
	defer cancel()
	models, err := d.persistent.Tags(tctx)
	if err != nil {
		return nil, fmt.Errorf("list models on %s: %w", hostPort(d.cfg.PersistentPort), err)
	}
	var out []stack.Target
	for _, m := range models {
		name := m.Name
		switch {
		case naming.IsVariant(name):
			continue
		case d.cfg.Exclude != nil && d.cfg.Exclude.MatchString(name):
			continue
		case d.cfg.Include != nil && !d.cfg.Include.MatchString(name):
			continue
		}
		out = append(out, stack.Target{Model: name, Alias: naming.Alias(name, d.cfg.AliasPrefix, d.cfg.AliasSuffix), BytesPerToken: d.bytesPerToken(name, m.Size)})
	}
	if len(out) == 0 {
		fmt.Fprintf(d.log, "! No base models discovered on %s — you may need to 'ollama pull <model>' there (INCLUDE_MODELS=%q EXCLUDE_MODELS=%q)\n",
			hostPort(d.cfg.PersistentPort), reString(d.cfg.Include), reString(d.cfg.Exclude))
	}
	return out, nil
}

func reString(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	return re.String()
}

func (d *Driver) candidate(label, tag, ng string) stack.Candidate {
	return stack.Candidate{Label: label, ModelTag: tag, NumGPU: ng, NumCtx: itoa(d.cfg.NumCtx), Batch: "default", NumPredict: itoa(d.cfg.NumPredict),
		Settings: []stack.Setting{
			// Runtime options travel with each request ("options"); a baked variant carries
			// num_gpu in its own parameters.
			{Name: "num_gpu", Value: ng, Level: stack.RequestLevel},
			{Name: "num_ctx", Value: itoa(d.cfg.NumCtx), Level: stack.RequestLevel},
			{Name: "num_predict", Value: itoa(d.cfg.NumPredict), Level: stack.RequestLevel},
			{Name: "temperature", Value: strconv.FormatFloat(d.cfg.Temperature, 'f', -1, 64), Level: stack.RequestLevel},
		}}
}

// Baseline implements stack.Driver: the base model with Ollama's own offload decision.
func (d *Driver) Baseline(_ context.Context, _ stack.Endpoint, t stack.Target) (stack.Candidate, error) {
	return d.candidate(stack.LabelBaseline, t.Model, "default"), nil
}

// Candidates implements stack.Driver: num_gpu values from the layer count and NG_PERCENT_SET
// (AUTO_NG=1 with FAST_MODE=1), else NUM_GPU_CANDIDATES.
func (d *Driver) Candidates(ctx context.Context, ep stack.Endpoint, t stack.Target) ([]stack.Candidate, error) {
	ngs := d.cfg.NumGPUFallback
	if d.cfg.FastMode && d.cfg.AutoNG {
		layers, err := d.layerCount(ctx, t.Model)
		if err != nil {
			fmt.Fprintf(d.log, "! AUTO_NG: %v; using NUM_GPU_CANDIDATES\n", err)
		} else {
			ngs = sweep.PercentOfLayers(layers, d.cfg.NGPercents)
			fmt.Fprintf(d.log, "   AUTO_NG (layers=%d) -> num_gpu: %s\n", layers, joinInts(ngs))
		}
	}
	if ep.GPU == nil && d.cfg.CPUTune {
		// num_gpu means nothing on a CPU: the base model at Ollama's own offload, tuned in
		// what moves a CPU's rate (cpuTuning) unless the profile lists its own sets.
		tu := d.cfg.Tune
		if tu.empty() {
			tu = cpuTuning(cores())
		}
		fmt.Fprintf(d.log, "   CPU endpoint: num_gpu is not swept; tuning num_thread, num_batch and the KV cache instead\n")
		return d.tuned([]stack.Candidate{d.candidate(stack.LabelOptimized, t.Model, "default")}, tu), nil
	}
	var out []stack.Candidate
	for _, ng := range ngs {
		tag := t.Model
		if !d.cfg.FastMode {
			tag = naming.VariantName(t.Alias, ep.GPULabel(), ng) + ":latest"
		}
		out = append(out, d.candidate(stack.LabelOptimized, tag, itoa(ng)))
	}
	if !d.cfg.Tune.empty() {
		out = d.tuned(out, d.cfg.Tune)
	}
	return out, nil
}

// tuned is the product of offload candidates and tuning sets, the skipped combinations said.
func (d *Driver) tuned(offload []stack.Candidate, tu Tuning) []stack.Candidate {
	out, skipped := d.tunedCandidates(offload, tu)
	for _, s := range skipped {
		fmt.Fprintf(d.log, "   skipped: %s\n", s)
	}
	return out
}

// layerCount is the number of layers num_gpu counts: the repeating blocks from /api/show
// plus the output layer.
func (d *Driver) layerCount(ctx context.Context, model string) (int, error) {
	d.mu.Lock()
	n, ok := d.layers[model]
	d.mu.Unlock()
	if ok {
		return n, nil
	}
	tctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutTags)
	defer cancel()
	show, err := d.persistent.Show(tctx, model)
	if err != nil {
		return 0, fmt.Errorf("layer count of %s: %w", model, err)
	}
	blocks, ok := show.BlockCount()
	if !ok {
		return 0, fmt.Errorf("layer count of %s: /api/show has no block_count", model)
	}
	d.mu.Lock()
	d.layers[model] = blocks + 1
	d.mu.Unlock()
	return blocks + 1, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = itoa(n)
	}
	return strings.Join(s, " ")
}

// Publish implements stack.Publisher (PUBLISH_BEST=1): bake the best num_gpu as a tag and
// measure the tag itself.
func (d *Driver) Publish(_ context.Context, ep stack.Endpoint, t stack.Target, best stack.Candidate) (stack.Candidate, bool) {
	if !d.cfg.PublishBest {
		return stack.Candidate{}, false
	}
	params := d.bakedParams(best)
	if len(params) == 0 {
		return stack.Candidate{}, false
	}
	pub := best
	pub.Label = stack.LabelPublished
	if len(params) == 1 && params["num_gpu"] != nil {
		pub.ModelTag = naming.VariantName(t.Alias, ep.GPULabel(), params["num_gpu"].(int)) + ":latest"
	} else {
		// A tuned variant carries every tuned request PARAMETER; its name says which set.
		pub.ModelTag = naming.TunedVariantName(t.Alias, ep.GPULabel(), fmt.Sprint(params)) + ":latest"
		env := strings.Join(serverEnv(best), " ")
		if env == "" {
			env = "(none: Ollama's defaults)"
		}
		fmt.Fprintf(d.log, "== publishing %s with PARAMETER %v; the daemon serving it needs: %s\n", pub.ModelTag, params, env)
	}
	return pub, true
}

// bakedParams are the PARAMETERs a published variant of c carries: num_gpu when it is a
// number, and the tuned num_batch and num_thread, and num_ctx when it is not BENCH_NUM_CTX
// (which every request sends anyway).
func (d *Driver) bakedParams(c stack.Candidate) map[string]any {
	params := map[string]any{}
	if ng, err := strconv.Atoi(c.NumGPU); err == nil {
		params["num_gpu"] = ng
	}
	for k, v := range requestOptions(c) {
		if k != "num_ctx" || v != d.cfg.NumCtx {
			params[k] = v
		}
	}
	return params
}

// options are the runtime options of a request for candidate c.
func (d *Driver) options(c stack.Candidate, numPredict int) map[string]any {
	opts := map[string]any{
		"num_predict": numPredict,
		"num_ctx":     d.cfg.NumCtx,
		"temperature": d.cfg.Temperature,
		"seed":        42,
	}
	// Baked variants carry num_gpu and the tuned options in their parameters; runtime options
	// are for the base tag.
	if ng, err := strconv.Atoi(c.NumGPU); err == nil && !isBaked(c) {
		opts["num_gpu"] = ng
	}
	for k, v := range requestOptions(c) {
		opts[k] = v
	}
	if isBaked(c) {
		for k := range d.bakedParams(c) {
			delete(opts, k)
		}
	}
	return opts
}

func isBaked(c stack.Candidate) bool {
	return c.Label == stack.LabelPublished || naming.IsVariant(c.ModelTag)
}

// Workload implements stack.Planner: PROMPT and BENCH_NUM_PREDICT.
func (d *Driver) Workload() stack.Workload {
	return stack.Workload{Prompt: d.cfg.Prompt, MaxTokens: d.cfg.NumPredict, RunTS: d.cfg.RunTS}
}

// Prepare implements stack.Server: bake the variant if needed, then load the configuration
// with a warm-up request (not recorded: load time must not pollute tokens/sec).
func (d *Driver) Prepare(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate) (stack.Prepared, error) {
	if err := d.ensureDaemonEnv(ctx, ep, c); err != nil {
		return stack.Prepared{}, err
	}
	if isBaked(c) {
		if err := d.bake(ctx, t, c); err != nil {
			return stack.Prepared{}, d.classify(ep, err)
		}
	}
	warm := ollamaapi.GenerateRequest{Model: c.ModelTag, Prompt: "warm up", Stream: false, Options: d.options(c, 1)}
	wctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutGen)
	var wres *ollamaapi.GenerateChunk
	err := server.Loading(ctx, "ollama "+ep.Suffix+" loading "+c.ModelTag, d.Daemon(ep.Addr), func() (err error) {
		wres, err = d.client(ep.Addr).Generate(wctx, warm, nil)
		return err
	})
	cancel()
	if err != nil {
		return stack.Prepared{}, d.classify(ep, fmt.Errorf("warm-up (load) request: %w", err))
	}
	if d.reserveMiB > 0 && ep.GPU != nil {
		if err := d.checkReserve(ctx, ep, c); err != nil {
			return stack.Prepared{}, err
		}
	}
	return stack.Prepared{Settings: map[string]string{"warmup_load_ns": strconv.FormatInt(wres.LoadDuration, 10)}}, nil
}

// checkReserve fails a configuration that put more of the model on ep's GPUs than
// RESERVE_GPU_MEMORY_MIB leaves them. Ollama keeps OLLAMA_GPU_OVERHEAD free only for the layers
// it places itself: an explicit num_gpu loads that many layers whatever the overhead (on an
// H200 under a reserve that left 13312 MiB, num_gpu 33 put all 14.8 GiB on the GPU), which a
// GPU that really had only that memory could not hold.
func (d *Driver) checkReserve(ctx context.Context, ep stack.Endpoint, c stack.Candidate) error {
	m, err := d.loaded(ctx, d.client(ep.Addr), c.ModelTag)
	if err != nil {
		return d.classify(ep, fmt.Errorf("/api/ps after loading: %w", err))
	}
	if m == nil {
		return nil
	}
	return ReserveExceeded(m.SizeVRAM, ep.GPUs(), d.reserveMiB)
}

// loaded is what GET /api/ps says of model on client's daemon; nil when it is not loaded.
func (d *Driver) loaded(ctx context.Context, client *ollamaapi.Client, model string) (*ollamaapi.RunningModel, error) {
	pctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutTags)
	defer cancel()
	running, err := client.PS(pctx)
	if err != nil {
		return nil, err
	}
	for i, m := range running {
		if m.Name == model || m.Model == model || m.Name == model+":latest" {
			return &running[i], nil
		}
	}
	return nil, nil
}

// ReserveExceeded is a load failure when vramBytes is more than the GPUs' memory less
// reserveMiB on each: the memory a GPU of that size would have had.
func ReserveExceeded(vramBytes int64, gpus []*gpu.GPU, reserveMiB int) error {
	var leftMiB int64
	for _, g := range gpus {
		leftMiB += max(int64(g.MemoryMiB-reserveMiB), 0)
	}
	if len(gpus) == 0 || vramBytes <= leftMiB<<20 {
		return nil
	}
	return measure.Fail(measure.ErrLoad, fmt.Errorf("does not fit: %d MiB of the model on the GPU, RESERVE_GPU_MEMORY_MIB=%d leaves %d MiB (Ollama keeps its OLLAMA_GPU_OVERHEAD free only for the layers it places itself)", vramBytes>>20, reserveMiB, leftMiB))
}

// Send implements stack.Client: one streamed generation of req. Ollama streams one token per
// chunk; a chunk may hold no text (a partial UTF-8 sequence it holds back), and then counts as
// no token for the client-side rate.
func (d *Driver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, req stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	// Raw mode: no chat template, so a model continues the text instead of answering it and
	// ending its turn early (Ollama has no ignore_eos); rows then compare equal output lengths.
	greq := ollamaapi.GenerateRequest{Model: c.ModelTag, Prompt: req.Prompt, Stream: true, Raw: true, Options: d.options(c, req.MaxTokens)}
	mctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutGen)
	defer cancel()
	final, err := d.client(ep.Addr).Generate(mctx, greq, func(chunk ollamaapi.GenerateChunk, _ time.Time) {
		rec.Chunk(boolInt(chunk.Response != ""))
	})
	d.remember(req.Seq, greq, final)
	if err != nil {
		return measure.ServerCounters{}, d.classify(ep, err)
	}
	sc := measure.ServerCounters{
		PromptTokens: final.PromptEvalCount, OutputTokens: final.EvalCount,
		PromptDuration: time.Duration(final.PromptEvalDuration), DecodeDuration: time.Duration(final.EvalDuration),
		LoadDuration: time.Duration(final.LoadDuration), TotalDuration: time.Duration(final.TotalDuration),
		StopReason: final.DoneReason,
	}
	if final.EvalCount <= 0 || final.EvalDuration <= 0 {
		return sc, measure.Fail(measure.ErrMalformed, fmt.Errorf("final answer has eval_count=%d eval_duration=%d", final.EvalCount, final.EvalDuration))
	}
	if final.EvalCount != req.MaxTokens {
		sc.Notes = append(sc.Notes, fmt.Sprintf("output length %d differs from num_predict %d (done_reason %q)", final.EvalCount, req.MaxTokens, final.DoneReason))
	}
	return sc, nil
}

// Finished implements stack.Finisher: record where the model sits, and keep a baked variant
// that worked or delete one that failed (unless KEEP_FAILED_VARIANTS).
func (d *Driver) Finished(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, s *measure.Sample) {
	if !s.Failed() {
		d.recordPlacement(ctx, ollamaapi.New(ep.Addr), c.ModelTag, s)
	}
	if !isBaked(c) {
		return
	}
	name := strings.TrimSuffix(c.ModelTag, ":latest")
	if !s.Failed() {
		d.mu.Lock()
		d.worked[name] = true
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	shared := d.worked[name] // another endpoint (same GPU label) measured it: keep it
	d.mu.Unlock()
	if !d.cfg.KeepFailed && !shared && d.persistent.Delete(ctx, c.ModelTag) == nil {
		d.mu.Lock()
		delete(d.baked, name)
		d.mu.Unlock()
	}
}

// remember keeps an attempt's request and final answer for Debug.
func (d *Driver) remember(seq int, req ollamaapi.GenerateRequest, final *ollamaapi.GenerateChunk) {
	if !d.cfg.DebugBench {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.exchanges[seq] = exchange{req: req, final: final}
}

type exchange struct {
	req   ollamaapi.GenerateRequest
	final *ollamaapi.GenerateChunk
}

// recordPlacement keeps what Ollama reports about where the model sits (GET /api/ps): the
// evidence that num_gpu really changed offload.
func (d *Driver) recordPlacement(ctx context.Context, client *ollamaapi.Client, model string, s *measure.Sample) {
	m, err := d.loaded(ctx, client, model)
	if err != nil || m == nil {
		return
	}
	s.Settings["model_bytes"] = strconv.FormatInt(m.Size, 10)
	s.Settings["vram_bytes"] = strconv.FormatInt(m.SizeVRAM, 10)
	if m.ContextLength > 0 {
		s.Settings["context_length"] = itoa(m.ContextLength)
	}
}

// bake creates a baked variant (FROM base, PARAMETER num_gpu) on the persistent daemon.
func (d *Driver) bake(ctx context.Context, t stack.Target, c stack.Candidate) error {
	name := strings.TrimSuffix(c.ModelTag, ":latest")
	d.mu.Lock()
	done := d.baked[name]
	d.mu.Unlock()
	if done { // repeats of one configuration bake it once
		return nil
	}
	params := d.bakedParams(c)
	if len(params) == 0 {
		return fmt.Errorf("bake %s: num_gpu %q is not a number and no option is tuned", name, c.NumGPU)
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.TimeoutGen)
	defer cancel()
	if err := d.persistent.Create(cctx, ollamaapi.CreateRequest{Model: name, From: t.Model, Parameters: params}); err != nil {
		return err
	}
	d.mu.Lock()
	// Endpoints measured in parallel on GPUs of one label bake the same variant at the same
	// time: it is created twice (the same model) but recorded once.
	first := !d.baked[name]
	if first {
		d.created = append(d.created, name)
	}
	d.baked[name] = true
	d.mu.Unlock()
	if first {
		d.appendCreated(name)
	}
	return nil
}

func (d *Driver) appendCreated(name string) {
	path := filepath.Join(d.cfg.LogDir, "ollama_created_"+d.cfg.RunTS+".txt")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(d.log, "! cannot record created variant in %s: %v\n", path, err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, name)
}

// classify gives err its outcome kind: a daemon that died, an interrupted or timed-out
// request, an HTTP error (a failed load when the message says so), a dropped connection or
// a malformed answer.
func (d *Driver) classify(ep stack.Endpoint, err error) error {
	var se *ollamaapi.StatusError
	d.mu.Lock()
	proc := d.daemons[ep.Addr]
	d.mu.Unlock()
	switch {
	case proc != nil && proc.ExitError() != nil:
		return measure.Fail(measure.ErrExited, proc.ExitError())
	case errors.Is(err, context.Canceled):
		return measure.Fail(measure.ErrCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return measure.Fail(measure.ErrTimeout, err)
	case errors.As(err, &se):
		if strings.Contains(se.Message, "memory") || strings.Contains(se.Message, "load") || strings.Contains(se.Message, "llama runner") {
			return measure.Fail(measure.ErrLoad, err)
		}
		return measure.Fail(measure.ErrHTTP, err)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return measure.Fail(measure.ErrConnect, err)
	case errors.Is(err, ollamaapi.ErrIncomplete), strings.Contains(err.Error(), "malformed"):
		return measure.Fail(measure.ErrMalformed, err)
	default:
		return measure.Fail(measure.ErrOther, err)
	}
}

// Debug implements stack.Debugger: it writes the request, the final answer and the metrics of
// an attempt (DEBUG_BENCH=1).
func (d *Driver) Debug(ep stack.Endpoint, t stack.Target, c stack.Candidate, r stack.Request, s *measure.Sample) {
	if !d.cfg.DebugBench {
		return
	}
	d.mu.Lock()
	x, ok := d.exchanges[r.Seq]
	delete(d.exchanges, r.Seq)
	d.mu.Unlock()
	if !ok { // the attempt failed before a request was sent (bake or warm-up)
		x.req = ollamaapi.GenerateRequest{Model: c.ModelTag, Prompt: r.Prompt, Stream: true, Options: d.options(c, r.MaxTokens)}
	}
	req, final, seq := x.req, x.final, r.Seq
	dir := filepath.Join(d.cfg.LogDir, "debug_"+d.cfg.RunTS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		return
	}
	ng := c.NumGPU
	base := fmt.Sprintf("ollama_%s_%s_%s_ng%s_%03d", ep.Suffix, strings.NewReplacer("/", "-", ":", "-").Replace(t.Model), c.Label, ng, seq)
	write := func(suffix string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, base+suffix), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(d.log, "! DEBUG_BENCH: %v\n", err)
		}
	}
	write(".request.json", req)
	if final != nil {
		write(".response.json", final)
	}
	write(".metrics.json", map[string]any{
		"eval_count": s.ServerOutputTokens, "eval_duration": s.ServerDecodeDuration.Nanoseconds(),
		"tokens_per_sec": s.DecodeTokensPerSec(), "endpoint": ep.Addr, "model": c.ModelTag,
		"outcome": s.Outcome, "error": s.Error,
	})
}

// Daemon returns the test daemon fuze started for an endpoint address, or nil.
func (d *Driver) Daemon(addr string) server.Handle {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.daemons[addr]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bytesPerToken is what decoding one token of the model reads (gguf.TokenTraffic of its model
// blob in OLLAMA_MODELS_DIR), or its size as /api/tags reports it when the blob cannot be read.
func (d *Driver) bytesPerToken(name string, size int64) int64 {
	if d.cfg.ModelsDir == "" {
		return size
	}
	store := ollamastore.Store{Dir: d.cfg.ModelsDir}
	e, err := store.Lookup(name)
	if err == nil {
		var blob string
		if blob, _, err = store.ModelBlob(e); err == nil {
			var n int64
			if n, err = gguf.BytesPerTokenFile(blob); err == nil && n > 0 {
				return n
			}
		}
	}
	fmt.Fprintf(d.log, "! roofline of %s: %v; using the model's size\n", name, err)
	return size
}
