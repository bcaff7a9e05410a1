// Package llamafake is a fake llama-server for tests: the HTTP protocol of llama.cpp's server
// (examples/server at the February 2025 snapshot, build b4753) as its README documents it and
// its server.cpp implements it, without a model.
//
//   - The HTTP port is bound first; every endpoint answers 503
//     {"error":{"code":503,"message":"Loading model","type":"unavailable_error"}} until the
//     "model" is loaded, then GET /health answers 200 {"status":"ok"}.
//   - POST /completion takes prompt, n_predict, temperature, seed, stream, cache_prompt
//     (default true), ignore_eos (default false). Streamed answers are server-sent events,
//     one "data: {json}\n\n" per token ({"content","tokens","stop":false,...}), then a final
//     "data: {json}\n\n" with "stop":true, "content":"", "stop_type", "tokens_predicted",
//     "tokens_evaluated", "generation_settings" and "timings" {prompt_n, prompt_ms,
//     prompt_per_token_ms, prompt_per_second, predicted_n, predicted_ms,
//     predicted_per_token_ms, predicted_per_second}: prompt_ms covers prompt processing,
//     predicted_ms generation (server_slot::get_timings; see "Timings" below).
//   - Errors are {"error":{"code","message","type"}} with the HTTP status of the code.
//   - The model loader's log lines include "load_tensors: offloaded N/M layers to GPU", where
//     N = min(n_gpu_layers, layers+1) and M = layers+1. Without --n-gpu-layers the server's
//     default applies: 0 at that version (later versions default to full offload; see
//     FUZE_FAKE_LLAMA_DEFAULT_NGL).
//
// The decode rate depends on the offloaded layers (CPURate + LayerRate per layer on the GPU),
// so an n_gpu_layers sweep shows a fall. Tokens really are streamed, one flush per event, at
// that rate.
//
// Timings are declared, not measured: every generated token costs one Step (1/Rate) and the
// prompt promptN/Prefill seconds on the fake's Clock, which by default (DeclaredClock) advances
// by exactly those steps while the stream is paced by real sleeps. So predicted_per_second is
// Rate() and prompt_per_second is Prefill, to the nanosecond, however loaded the machine is.
// (The real server starts predicted_ms at its first token, so n tokens span n-1 decode steps
// there; the fake counts one step per token so that its reported rate is its declared one.)
//
// A CPU build (Options.CPUBuild) ignores --n-gpu-layers with the real build's warning and its
// loader logs no "offloaded N/M layers to GPU" line. A replaying fake (Options.Replay) answers
// with the exchanges recorded from a real llama-server (../testdata/real) and prints the
// recorded loader log.
//
// Environment (read through the getenv passed to Main):
//
//	FUZE_FAKE_LLAMA_MODE         normal (default) | no-timings | never-ready | crash | die-mid-stream
//	FUZE_FAKE_LLAMA_LOAD_MS      how long /health answers 503 (default 150)
//	FUZE_FAKE_LLAMA_LAYERS       repeating layers of the model (default 32)
//	FUZE_FAKE_LLAMA_DEFAULT_NGL  n_gpu_layers when the flag is absent (default 0)
//	FUZE_FAKE_LLAMA_EOS_AFTER    without ignore_eos, the model ends after this many tokens (default 5)
//	FUZE_FAKE_LLAMA_RECORD       file that gets one JSON line per start and per request
//	FUZE_FAKE_LLAMA_BUILD        gpu (default) | cpu: a build without GPU offload
//	FUZE_FAKE_LLAMA_CLOCK        declared (default) | wall: timings measured on the wall clock
//	FUZE_FAKE_LLAMA_REPLAY       path prefix of recorded exchanges to replay (see LoadReplay)
package llamafake

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build is what the fake reports as build_info (the snapshot its protocol comes from).
const Build = "b4753-c392e509 (fuze fake)"

// Rates of the fake model.
const (
	CPURate   = 40.0 // decode tokens/sec with no layer on the GPU
	LayerRate = 10.0 // added per offloaded layer
	Prefill   = 2000.0
)

// Options configure a fake server's behaviour.
type Options struct {
	Mode       string // normal | no-timings | never-ready | die-mid-stream
	ModelPath  string
	NGL        int // n_gpu_layers in effect
	Layers     int // repeating layers
	CtxSize    int
	BatchSize  int
	Parallel   int
	LoadDelay  time.Duration
	EOSAfter   int
	Log        io.Writer
	Record     func(v any)
	OnDie      func() // die-mid-stream: called instead of exiting (nil: os.Exit(134))
	HTTPThread int
	NoMmap     bool
	// CPUBuild: a server built without GPU offload: every layer stays on the CPU whatever
	// n_gpu_layers says, and the loader logs no offload line.
	CPUBuild bool
	// Clock stamps the reported timings and paces the stream; nil: a DeclaredClock that also
	// sleeps for real.
	Clock Clock
	// Replay, when set, answers with recorded exchanges instead of the fake model.
	Replay *Replay
}

// Offloaded is the number of layers on the GPU and the number that could be, as the model
// loader logs them.
func (o Options) Offloaded() (n, max int) {
	max = o.Layers + 1
	n = o.NGL
	if n < 0 || o.CPUBuild {
		n = 0
	}
	return min(n, max), max
}

// Rate is the fake's decode rate in tokens/sec.
func (o Options) Rate() float64 {
	n, _ := o.Offloaded()
	return CPURate + LayerRate*float64(n)
}

// Step is the time one generated token costs on the fake's clock: 1/Rate, to the
// nanosecond. The reported predicted_per_second is 1e9/Step.
func (o Options) Step() time.Duration {
	return time.Duration(math.Round(float64(time.Second) / o.Rate()))
}

// PrefillTime is the time the fake spends on a prompt of n tokens: n/Prefill seconds.
func PrefillTime(n int) time.Duration {
	return time.Duration(math.Round(float64(n) / Prefill * float64(time.Second)))
}

// Clock is the fake's time: Sleep paces the stream, Now stamps the timings it reports.
type Clock interface {
	Now() time.Time
	Sleep(time.Duration)
}

// DeclaredClock is time that advances only by what the fake sleeps, so the timings the fake
// reports are exactly the steps it declares, whatever the load of the machine. With Pace,
// Sleep also waits for real, so that the stream still arrives paced.
type DeclaredClock struct {
	Pace bool
	mu   sync.Mutex
	now  time.Time
}

// Now implements Clock.
func (c *DeclaredClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC)
	}
	return c.now
}

// Sleep implements Clock.
func (c *DeclaredClock) Sleep(d time.Duration) {
	if c.Pace {
		time.Sleep(d)
	}
	c.Now() // the epoch
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// WallClock is the real time: timings are measured, as a real server measures them (and so
// vary with the machine's load).
type WallClock struct{}

// Now implements Clock.
func (WallClock) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (WallClock) Sleep(d time.Duration) { time.Sleep(d) }

// Server is the fake's HTTP handler and state.
type Server struct {
	opt   Options
	ready chan struct{}
	mu    sync.Mutex // one slot (--parallel 1): one completion at a time
	cache []string   // prompt tokens of the previous completion (prompt cache)
	tasks int
}

// NewServer returns a fake whose model is still loading; call Loaded (or Load) to finish.
func NewServer(opt Options) *Server {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Layers <= 0 {
		opt.Layers = 32
	}
	if opt.CtxSize <= 0 {
		opt.CtxSize = 4096
	}
	if opt.Record == nil {
		opt.Record = func(any) {}
	}
	if opt.Clock == nil {
		opt.Clock = &DeclaredClock{Pace: true}
	}
	return &Server{opt: opt, ready: make(chan struct{})}
}

// Load logs the model loader's lines and marks the model loaded.
func (s *Server) Load() {
	s.logLoader()
	s.markLoaded()
}

// logLoader prints the model loader's lines, the offload line among them. A real server
// prints them while it loads, long before /health answers 200; Main prints them when loading
// starts, a LoadDelay before it is ready, so that they are in the driver's log by then.
func (s *Server) logLoader() {
	o := s.opt
	if o.Replay != nil && o.Replay.Log != nil {
		o.Log.Write(o.Replay.Log)
		return
	}
	n, max := o.Offloaded()
	fmt.Fprintf(o.Log, "llama_model_loader: loaded meta data with 25 key-value pairs and %d tensors from %s (version GGUF V3 (latest))\n", 9*o.Layers+3, o.ModelPath)
	fmt.Fprintf(o.Log, "print_info: n_layer          = %d\n", o.Layers)
	fmt.Fprintf(o.Log, "load_tensors: loading model tensors, this can take a while... (mmap = %t)\n", !o.NoMmap)
	if o.CPUBuild {
		// A build without GPU offload names no GPU at all (llama.cpp's CI, CPU builds of
		// February 2025): the buffer line and no offload line.
		buf := "CPU_Mapped"
		if o.NoMmap {
			buf = "CPU"
		}
		fmt.Fprintf(o.Log, "load_tensors: %12s model buffer size = %8.2f MiB\n", buf, float64(o.Layers)*1.75)
	} else {
		fmt.Fprintf(o.Log, "load_tensors: offloading %d repeating layers to GPU\n", min(n, o.Layers))
		if n > o.Layers {
			fmt.Fprintf(o.Log, "load_tensors: offloading output layer to GPU\n")
		}
		fmt.Fprintf(o.Log, "load_tensors: offloaded %d/%d layers to GPU\n", n, max)
	}
	fmt.Fprintf(o.Log, "llama_init_from_model: n_ctx         = %d\n", o.CtxSize)
	fmt.Fprintf(o.Log, "llama_init_from_model: n_batch       = %d\n", o.BatchSize)
	fmt.Fprintf(o.Log, "srv          init: initializing slots, n_slots = %d\n", max1(o.Parallel))
}

// markLoaded ends the loading: /health answers 200 from now on.
func (s *Server) markLoaded() {
	fmt.Fprintf(s.opt.Log, "main: model loaded\n")
	close(s.ready)
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func (s *Server) loaded() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// ServeHTTP implements the server's routes and its pre-routing "server state" middleware.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "llama.cpp")
	status := 0
	defer func() {
		fmt.Fprintf(s.opt.Log, "srv  log_server_r: request: %s %s %s %d\n", r.Method, r.URL.Path, r.RemoteAddr, status)
	}()
	if s.opt.Replay != nil {
		status = s.replay(w, r)
		return
	}
	if !s.loaded() || s.opt.Mode == "never-ready" {
		status = writeError(w, 503, "Loading model", "unavailable_error")
		return
	}
	switch {
	case r.URL.Path == "/health" || r.URL.Path == "/v1/health":
		status = writeJSON(w, 200, map[string]any{"status": "ok"})
	case r.URL.Path == "/props" && r.Method == http.MethodGet:
		status = writeJSON(w, 200, s.props())
	case (r.URL.Path == "/completion" || r.URL.Path == "/completions") && r.Method == http.MethodPost:
		status = s.completion(w, r)
	case r.URL.Path == "/tokenize" && r.Method == http.MethodPost:
		status = s.tokenize(w, r)
	default:
		status = writeError(w, 404, "File Not Found", "not_found_error")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
	return status
}

// writeError is res_error(format_error_response(message, type)).
func writeError(w http.ResponseWriter, code int, message, typ string) int {
	return writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": message, "type": typ}})
}

func (s *Server) genSettings(nPredict int, seed uint32, temp float64, ignoreEOS, stream bool) map[string]any {
	// At this version ignore_eos is applied as a -inf logit bias on the EOS token (dumped as
	// null) and the "ignore_eos" setting itself reads false.
	logitBias := []any{}
	if ignoreEOS {
		logitBias = []any{map[string]any{"bias": nil, "token": 2}}
	}
	return map[string]any{
		"n_predict": nPredict, "seed": seed, "temperature": temp, "dynatemp_range": 0.0,
		"dynatemp_exponent": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
		"xtc_probability": 0.0, "xtc_threshold": 0.1, "typical_p": 1.0, "repeat_last_n": 64,
		"repeat_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
		"dry_multiplier": 0.0, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": s.opt.CtxSize,
		"dry_sequence_breakers": []string{"\n", ":", "\"", "*"}, "mirostat": 0, "mirostat_tau": 5.0,
		"mirostat_eta": 0.1, "stop": []string{}, "max_tokens": nPredict, "n_keep": 0, "n_discard": 0,
		"ignore_eos": false, "stream": stream, "logit_bias": logitBias, "n_probs": 0, "min_keep": 0,
		"grammar": "", "grammar_trigger_words": []string{}, "grammar_trigger_tokens": []int{},
		"preserved_tokens": []int{}, "chat_format": "Content-only",
		"samplers":          []string{"penalties", "dry", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"},
		"speculative.n_max": 16, "speculative.n_min": 0, "speculative.p_min": 0.75,
		"timings_per_token": false, "post_sampling_probs": false, "lora": []any{},
	}
}

func (s *Server) props() map[string]any {
	return map[string]any{
		"default_generation_settings": map[string]any{
			"id": 0, "id_task": -1, "n_ctx": s.opt.CtxSize, "speculative": false, "is_processing": false,
			"params": s.genSettings(-1, 4294967295, 0.8, false, true), "prompt": "",
		},
		"total_slots":   max1(s.opt.Parallel),
		"model_path":    s.opt.ModelPath,
		"chat_template": "{% for message in messages %}{{ message['content'] }}{% endfor %}",
		"bos_token":     "<s>",
		"eos_token":     "</s>",
		"build_info":    Build,
	}
}

// completionRequest holds the /completion fields the fake honours; json_value defaults apply
// to absent fields.
type completionRequest struct {
	Prompt      *json.RawMessage `json:"prompt"`
	NPredict    *int             `json:"n_predict"`
	MaxTokens   *int             `json:"max_tokens"`
	Temperature *float64         `json:"temperature"`
	Seed        *int64           `json:"seed"`
	Stream      bool             `json:"stream"`
	CachePrompt *bool            `json:"cache_prompt"`
	IgnoreEOS   bool             `json:"ignore_eos"`
}

func (s *Server) completion(w http.ResponseWriter, r *http.Request) int {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return writeError(w, 500, err.Error(), "server_error")
	}
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		// json::parse throws; the exception handler answers 500 server_error.
		return writeError(w, 500, "[json.exception.parse_error.101] parse error: "+err.Error(), "server_error")
	}
	if req.Prompt == nil {
		// data.at("prompt") throws out_of_range, caught as an invalid request.
		return writeError(w, 400, "[json.exception.out_of_range.403] key 'prompt' not found", "invalid_request_error")
	}
	var prompt string
	if err := json.Unmarshal(*req.Prompt, &prompt); err != nil {
		return writeError(w, 400, "\"prompt\" must be a string, a list of tokens, a list of mixed strings & tokens, or a list of prompts", "invalid_request_error")
	}
	s.opt.Record(map[string]any{"request": json.RawMessage(body)})

	nPredict := -1
	if req.NPredict != nil {
		nPredict = *req.NPredict
	} else if req.MaxTokens != nil {
		nPredict = *req.MaxTokens
	}
	temp := 0.8
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	seed := uint32(4294967295)
	if req.Seed != nil {
		seed = uint32(*req.Seed)
	}
	cachePrompt := req.CachePrompt == nil || *req.CachePrompt

	s.mu.Lock() // the single slot
	defer s.mu.Unlock()
	s.tasks++
	task := s.tasks

	// Tokenize: a BOS token and one token per word.
	tokens := append([]string{"<s>"}, strings.Fields(prompt)...)
	reuse := 0
	if cachePrompt {
		for reuse < len(tokens) && reuse < len(s.cache) && tokens[reuse] == s.cache[reuse] {
			reuse++
		}
		if reuse == len(tokens) { // at least one token is evaluated again
			reuse--
		}
	}
	s.cache = tokens
	promptN := len(tokens) - reuse

	limit := nPredict
	if limit < 0 || limit > s.opt.CtxSize-len(tokens) {
		limit = max(s.opt.CtxSize-len(tokens), 0)
	}
	eosAfter := -1
	if !req.IgnoreEOS && s.opt.EOSAfter > 0 {
		eosAfter = s.opt.EOSAfter
	}

	fmt.Fprintf(s.opt.Log, "slot launch_slot_: id  0 | task %d | processing task\n", task)
	fmt.Fprintf(s.opt.Log, "slot update_slots: id  0 | task %d | new prompt, n_ctx_slot = %d, n_keep = 0, n_prompt_tokens = %d\n", task, s.opt.CtxSize, len(tokens))

	var flusher http.Flusher
	if req.Stream {
		f, ok := w.(http.Flusher)
		if !ok {
			return writeError(w, 500, "streaming unsupported", "server_error")
		}
		flusher = f
		w.Header().Set("Content-Type", "text/event-stream")
		// The server ends a stream by closing the connection (its content provider returns false).
		w.Header().Set("Connection", "close")
		w.WriteHeader(200)
		flusher.Flush()
	}
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}

	// Prompt processing, then one Step per generated token (see the package comment).
	clock := s.opt.Clock
	tStartPrompt := clock.Now()
	clock.Sleep(PrefillTime(promptN))
	tStartGen := clock.Now()
	promptMS := ms(tStartGen.Sub(tStartPrompt))
	var genMS float64
	var content strings.Builder
	nDecoded := 0
	stopType := "none"
	step := s.opt.Step()
	for {
		if nDecoded >= limit {
			stopType = "limit"
			break
		}
		clock.Sleep(step)
		nDecoded++
		piece := " ok"
		if nDecoded == eosAfter {
			piece, stopType = "", "eos"
		}
		content.WriteString(piece)
		if req.Stream && piece != "" {
			if !send(map[string]any{"index": 0, "content": piece, "tokens": []int{3431}, "stop": false,
				"id_slot": -1, "tokens_predicted": nDecoded, "tokens_evaluated": len(tokens)}) {
				return 200 // client went away: the generation is cancelled
			}
		}
		if s.opt.Mode == "die-mid-stream" && nDecoded == 2 {
			fmt.Fprintf(s.opt.Log, "ggml_cuda_compute_forward: fake crash: out of memory\n")
			if s.opt.OnDie != nil {
				s.opt.OnDie()
				panic(http.ErrAbortHandler)
			}
			os.Exit(134)
		}
		if stopType == "eos" {
			break
		}
	}
	genMS = ms(clock.Now().Sub(tStartGen)) // server_slot::release
	timings := map[string]any{
		"prompt_n": promptN, "prompt_ms": promptMS,
		"prompt_per_token_ms": promptMS / float64(promptN), "prompt_per_second": 1e3 / promptMS * float64(promptN),
		"predicted_n": nDecoded, "predicted_ms": genMS,
		"predicted_per_token_ms": genMS / float64(nDecoded), "predicted_per_second": 1e3 / genMS * float64(nDecoded),
	}
	for k, v := range timings {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			timings[k] = nil // nlohmann::json dumps NaN and inf as null
		}
	}
	fmt.Fprintf(s.opt.Log, "slot print_timing: id  0 | task %d | \nprompt eval time = %10.2f ms / %5d tokens\n       eval time = %10.2f ms / %5d tokens (%8.2f tokens per second)\n",
		task, promptMS, promptN, genMS, nDecoded, 1e3/genMS*float64(nDecoded))
	final := map[string]any{
		"index": 0, "content": content.String(), "tokens": []int{}, "id_slot": 0, "stop": true,
		"model": "gpt-3.5-turbo", "tokens_predicted": nDecoded, "tokens_evaluated": len(tokens),
		"generation_settings": s.genSettings(nPredict, seed, temp, req.IgnoreEOS, req.Stream),
		"prompt":              strings.Join(tokens, " "), "has_new_line": false, "truncated": false,
		"stop_type": stopType, "stopping_word": "", "tokens_cached": len(tokens) + nDecoded - 1,
		"timings": timings,
	}
	if s.opt.Mode == "no-timings" {
		delete(final, "timings")
	}
	if !req.Stream {
		return writeJSON(w, 200, final)
	}
	final["content"] = "" // in stream mode, content is already in the partial chunks
	send(final)
	return 200
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tokenize is POST /tokenize: {"content": text, "add_special": bool} → {"tokens": [ids…]},
// tokenized as completion does (a BOS token when add_special, one token per word).
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) int {
	var req struct {
		Content    string `json:"content"`
		AddSpecial bool   `json:"add_special"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return writeError(w, 500, "[json.exception.parse_error.101] parse error: "+err.Error(), "server_error")
	}
	tokens := []int{}
	if req.AddSpecial {
		tokens = append(tokens, 1)
	}
	for range strings.Fields(req.Content) {
		tokens = append(tokens, 3431)
	}
	return writeJSON(w, 200, map[string]any{"tokens": tokens})
}

// Main is the fake llama-server's main: it parses the server's command line, binds the port,
// "loads" the model and serves until SIGTERM or SIGINT. It returns the exit status.
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llama-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt Options
	host, port := "127.0.0.1", 8080
	ngl := -1
	fs.StringVar(&opt.ModelPath, "model", "models/7B/ggml-model-f16.gguf", "")
	fs.StringVar(&opt.ModelPath, "m", "models/7B/ggml-model-f16.gguf", "")
	fs.StringVar(&host, "host", host, "")
	fs.IntVar(&port, "port", port, "")
	for _, n := range []string{"n-gpu-layers", "gpu-layers", "ngl"} {
		fs.IntVar(&ngl, n, -1, "")
	}
	for _, n := range []string{"ctx-size", "c"} {
		fs.IntVar(&opt.CtxSize, n, 4096, "")
	}
	for _, n := range []string{"batch-size", "b"} {
		fs.IntVar(&opt.BatchSize, n, 2048, "")
	}
	for _, n := range []string{"parallel", "np"} {
		fs.IntVar(&opt.Parallel, n, 1, "")
	}
	fs.BoolVar(&opt.NoMmap, "no-mmap", false, "")
	// Multi-GPU placement (common/arg.cpp): accepted and checked as llama-server checks them;
	// the fake's rate does not depend on them.
	var splitMode, tensorSplit string
	for _, n := range []string{"split-mode", "sm"} {
		fs.StringVar(&splitMode, n, "layer", "")
	}
	for _, n := range []string{"tensor-split", "ts"} {
		fs.StringVar(&tensorSplit, n, "", "")
	}
	var contBatching bool // the server's default since 2024; the fake batches nothing (one slot serves at a time)
	fs.BoolVar(&contBatching, "cont-batching", true, "")
	fs.BoolVar(&contBatching, "cb", true, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if splitMode != "none" && splitMode != "layer" && splitMode != "row" {
		fmt.Fprintf(stderr, "error: invalid value for --split-mode: %s\n", splitMode)
		return 1
	}
	if tensorSplit != "" {
		for _, p := range strings.Split(tensorSplit, ",") {
			if _, err := strconv.ParseFloat(p, 64); err != nil {
				fmt.Fprintf(stderr, "error: invalid value for --tensor-split: %s\n", tensorSplit)
				return 1
			}
		}
	}
	opt.CPUBuild = getenv("FUZE_FAKE_LLAMA_BUILD") == "cpu"
	if opt.CPUBuild && ngl != -1 {
		// common/arg.cpp of a build without GPU offload, as llama.cpp's CI logs show it.
		fmt.Fprintf(stderr, "warning: no usable GPU found, --gpu-layers option will be ignored\n")
		fmt.Fprintf(stderr, "warning: one possible reason is that llama.cpp was compiled without GPU support\n")
		fmt.Fprintf(stderr, "warning: consult docs/build.md for compilation instructions\n")
	}
	switch c := getenv("FUZE_FAKE_LLAMA_CLOCK"); c {
	case "", "declared":
		opt.Clock = &DeclaredClock{Pace: true}
	case "wall":
		opt.Clock = WallClock{}
	default:
		fmt.Fprintf(stderr, "error: FUZE_FAKE_LLAMA_CLOCK=%s: want declared or wall\n", c)
		return 1
	}
	if prefix := getenv("FUZE_FAKE_LLAMA_REPLAY"); prefix != "" {
		rp, err := LoadReplay(prefix)
		if err != nil {
			fmt.Fprintf(stderr, "error: FUZE_FAKE_LLAMA_REPLAY: %v\n", err)
			return 1
		}
		opt.Replay = rp
	}
	intEnv := func(name string, def int) int {
		if v, err := strconv.Atoi(getenv(name)); err == nil {
			return v
		}
		return def
	}
	opt.Mode = getenv("FUZE_FAKE_LLAMA_MODE")
	opt.Layers = intEnv("FUZE_FAKE_LLAMA_LAYERS", 32)
	opt.LoadDelay = time.Duration(intEnv("FUZE_FAKE_LLAMA_LOAD_MS", 150)) * time.Millisecond
	opt.EOSAfter = intEnv("FUZE_FAKE_LLAMA_EOS_AFTER", 5)
	if ngl == -1 { // "-1 - use default"
		ngl = intEnv("FUZE_FAKE_LLAMA_DEFAULT_NGL", 0)
	}
	opt.NGL = ngl
	log := &syncWriter{w: stdout}
	opt.Log = log
	var recMu sync.Mutex
	opt.Record = func(v any) {
		path := getenv("FUZE_FAKE_LLAMA_RECORD")
		if path == "" {
			return
		}
		recMu.Lock()
		defer recMu.Unlock()
		b, _ := json.Marshal(v)
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			f.Write(append(b, '\n'))
			f.Close()
		}
	}
	opt.Record(map[string]any{"argv": args, "cuda_visible_devices": getenv("CUDA_VISIBLE_DEVICES"), "pid": os.Getpid()})

	fmt.Fprintf(log, "build: %s with fuze fake for x86_64-linux-gnu\n", Build)
	fmt.Fprintf(log, "system info: n_threads = 8, n_threads_batch = 8, total_threads = 16\n")
	ln, err := Listen(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintf(stderr, "main: couldn't bind HTTP server socket, hostname: %s, port: %d\n", host, port)
		return 1
	}
	fmt.Fprintf(log, "main: HTTP server is listening, hostname: %s, port: %d, http threads: 15\n", host, port)
	fmt.Fprintf(log, "main: loading model\n")
	fmt.Fprintf(log, "srv    load_model: loading model '%s'\n", opt.ModelPath)

	srv := NewServer(opt)
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()

	if reason := loadFailure(opt); reason != nil {
		time.Sleep(opt.LoadDelay / 3)
		for _, l := range reason {
			fmt.Fprintln(stderr, l)
		}
		p := opt.ModelPath
		fmt.Fprintf(stderr, "llama_model_load_from_file_impl: failed to load model\n")
		fmt.Fprintf(stderr, "common_init_from_params: failed to load model '%s'\n", p)
		fmt.Fprintf(stderr, "srv    load_model: failed to load model, '%s'\n", p)
		fmt.Fprintf(stderr, "srv    operator(): operator(): cleaning up before exit...\n")
		fmt.Fprintf(stderr, "terminate called without an active exception\n")
		fmt.Fprintf(stderr, "main: exiting due to model loading error\n")
		return 134 // the real server aborts here (its HTTP thread is never joined)
	}

	srv.logLoader()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(opt.LoadDelay):
	case <-sig:
		return 130 // killed while loading: the handler is not installed yet
	}
	if opt.Mode != "never-ready" { // never-ready: stuck loading, /health stays 503
		srv.markLoaded()
		fmt.Fprintf(log, "main: server is listening on http://%s:%d - starting the main loop\n", host, port)
		fmt.Fprintf(log, "srv  update_slots: all slots are idle\n")
	}
	<-sig
	fmt.Fprintf(log, "srv    operator(): operator(): cleaning up before exit...\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "shutdown: %v\n", err)
	}
	return 0
}

// loadFailure returns the loader's error lines when the model cannot be loaded (as the real
// server prints them), nil when it loads: a missing file, a file without the GGUF magic, or
// mode crash (a GPU out-of-memory failure while allocating the offloaded layers).
func loadFailure(o Options) []string {
	p := o.ModelPath
	loader := "llama_model_load: error loading model: llama_model_loader: failed to load model from " + p + "\n"
	f, err := os.Open(p)
	if err != nil {
		return []string{"gguf_init_from_file: failed to open GGUF file '" + p + "'", loader}
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if string(magic[:n]) != "GGUF" {
		return []string{fmt.Sprintf("gguf_init_from_file_impl: invalid magic characters: '%s', expected 'GGUF'", magic[:n]), loader}
	}
	if o.Mode == "crash" {
		return []string{
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 16384.00 MiB on device 0: cudaMalloc failed: out of memory",
			"alloc_tensor_range: failed to allocate CUDA0 buffer of size 17179869184",
			"llama_model_load: error loading model: unable to allocate CUDA0 buffer\n",
		}
	}
	return nil
}

// Listen binds addr as cpp-httplib does on Linux: SO_REUSEPORT instead of SO_REUSEADDR. The
// connections the server closes inherit it, and their TIME_WAIT sockets then make a plain
// bind (without SO_REUSEPORT) of the port fail for a minute, while the next llama-server binds.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = errors.Join(
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0),
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1))
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// soReusePort is Linux's SO_REUSEPORT (the syscall package does not define it for Linux).
const soReusePort = 0xf

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
