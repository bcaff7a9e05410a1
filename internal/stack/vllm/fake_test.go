package vllm_test

// A fake vLLM OpenAI-compatible server, built from vLLM's own source (api_server.py,
// serve/instrumentator/health.py, completion/serving.py, engine/protocol.py): this test binary
// re-executed with FUZE_FAKE_VLLM=1 behaves as `vllm serve MODEL …` or
// `python -m vllm.entrypoints.openai.api_server --model MODEL …` does from the driver's point
// of view:
//   - argparse-style command line: unknown flags and bad --dtype choices exit 2;
//   - an engine-core child process in the server's process group that the server does not
//     stop: only a signal to the whole group does (FAKE_VLLM_MODE=stubborn-engine: it also
//     ignores SIGTERM, so only the group's SIGKILL does);
//   - nothing listens while the model "loads", then GET /health answers 503 briefly and 200;
//   - GET /v1/models: {"object":"list","data":[{"id":MODEL,"object":"model",…}]};
//   - POST /v1/completions streamed as SSE "data: {json}\n\n" chunks flushed one by one,
//     several tokens merged into one chunk now and then and a token whose text is held back
//     (empty text), ignore_eos honoured, running usage on every chunk with
//     stream_options.continuous_usage_stats, a last {"choices":[],"usage":…} chunk with
//     include_usage, then "data: [DONE]"; errors as {"error":{"message","type","param","code"}}
//     (FAKE_VLLM_MODE=old-errors: the older {"object":"error",…} body).
//
// FAKE_VLLM_MODE selects a fault: no-usage, no-continuous (an older vLLM without running
// usage), garbage, stream-error, never-ready, crash, wrong-model, old-errors, stubborn-engine.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv("FUZE_FAKE_VLLM_ENGINE") == "1":
		fakeEngineCore()
		return
	case os.Getenv("FUZE_FAKE_VLLM") == "1":
		os.Exit(fakeVLLM(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeEngineCore stands for vLLM's EngineCore process: the server does not stop it, so it
// lives until a signal to its process group ends it (SIGTERM, or only SIGKILL in the
// stubborn-engine mode); bounded, so that a broken test cannot leak it for long.
func fakeEngineCore() {
	if os.Getenv("FAKE_VLLM_MODE") == "stubborn-engine" {
		signal.Ignore(syscall.SIGTERM)
	}
	time.Sleep(2 * time.Minute)
}

type fakeArgs struct {
	model, host, dtype            string
	port, maxModelLen, maxNumSeqs int
	gpuMemUtil                    float64
}

func logf(format string, args ...any) {
	fmt.Printf("INFO %s [fake_vllm] %s\n", time.Now().Format("01-02 15:04:05"), fmt.Sprintf(format, args...))
}

func argError(prog, msg string) int {
	fmt.Fprintf(os.Stderr, "usage: %s [-h] [options]\n%s: error: %s\n", prog, prog, msg)
	return 2
}

func parseFakeArgs(args []string) (fakeArgs, string, string) {
	a := fakeArgs{host: "0.0.0.0", port: 8000, dtype: "auto", maxModelLen: 4096, gpuMemUtil: 0.9}
	prog := "vllm serve"
	var rest []string
	switch {
	case len(args) >= 2 && args[0] == "serve" && !strings.HasPrefix(args[1], "-"):
		a.model, rest = args[1], args[2:]
	case len(args) >= 2 && args[0] == "-m" && args[1] == "vllm.entrypoints.openai.api_server":
		prog, rest = "api_server.py", args[2:]
	default:
		return a, "vllm", "invalid choice or missing model: " + strings.Join(args, " ")
	}
	for i := 0; i < len(rest); i++ {
		name, val, hasVal := strings.Cut(rest[i], "=")
		if !hasVal {
			if i+1 >= len(rest) {
				return a, prog, "argument " + name + ": expected one argument"
			}
			i++
			val = rest[i]
		}
		var err error
		switch name {
		case "--model":
			if prog != "api_server.py" {
				return a, prog, "unrecognized arguments: --model"
			}
			a.model = val
		case "--host":
			a.host = val
		case "--port":
			a.port, err = strconv.Atoi(val)
		case "--dtype":
			switch val {
			case "auto", "half", "float16", "bfloat16", "float", "float32":
				a.dtype = val
			default:
				return a, prog, fmt.Sprintf("argument --dtype: invalid choice: %q (choose from auto, half, float16, bfloat16, float, float32)", val)
			}
		case "--max-model-len":
			a.maxModelLen, err = strconv.Atoi(val)
		case "--gpu-memory-utilization":
			a.gpuMemUtil, err = strconv.ParseFloat(val, 64)
		case "--max-num-seqs":
			a.maxNumSeqs, err = strconv.Atoi(val)
		case "--tensor-parallel-size":
			// vLLM needs that many visible GPUs; the fake serves alike whatever the size.
			var tp int
			if tp, err = strconv.Atoi(val); err == nil && tp < 1 {
				err = fmt.Errorf("must be ≥ 1")
			}
		default:
			return a, prog, "unrecognized arguments: " + name
		}
		if err != nil {
			return a, prog, fmt.Sprintf("argument %s: invalid value: %q", name, val)
		}
	}
	if a.model == "" {
		return a, prog, "the following arguments are required: --model"
	}
	return a, prog, ""
}

func fakeVLLM(args []string) int {
	a, prog, bad := parseFakeArgs(args)
	if bad != "" {
		return argError(prog, bad)
	}
	mode := os.Getenv("FAKE_VLLM_MODE")
	logf("vLLM API server version 0.0.0+fake")
	logf("args: %s", strings.Join(args, " "))
	logf("CUDA_VISIBLE_DEVICES=%q", os.Getenv("CUDA_VISIBLE_DEVICES"))
	engine := exec.Command(os.Args[0])
	engine.Env = append(os.Environ(), "FUZE_FAKE_VLLM_ENGINE=1", "FUZE_FAKE_VLLM=")
	engine.Stdout, engine.Stderr = os.Stdout, os.Stderr
	if err := engine.Start(); err != nil {
		fmt.Println("ERROR cannot start the engine core:", err)
		return 1
	}
	logf("EngineCore pid=%d", engine.Process.Pid)
	time.Sleep(100 * time.Millisecond) // "loading the model": nothing listens yet
	if mode == "crash" {
		_ = engine.Process.Kill() // the engine core is what failed
		_ = engine.Wait()
		fmt.Println("ERROR EngineCore failed to start.")
		fmt.Println("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.63 GiB")
		fmt.Println("RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}")
		return 1
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.host, strconv.Itoa(a.port)))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	listening := time.Now()
	served := a.model
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if mode == "never-ready" || time.Since(listening) < 100*time.Millisecond {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		id := served
		if mode == "wrong-model" {
			id = "some-org/other-model"
		}
		writeJSON(w, 200, map[string]any{"object": "list", "data": []any{map[string]any{
			"id": id, "object": "model", "created": time.Now().Unix(), "owned_by": "vllm", "root": id,
			"parent": nil, "max_model_len": a.maxModelLen, "permission": []any{},
		}}})
	})
	mux.HandleFunc("POST /tokenize", func(w http.ResponseWriter, r *http.Request) {
		// vLLM's tokenize: {"model", "prompt", "add_special_tokens"} → {"count", "max_model_len",
		// "tokens"}; one token per word, and a BOS as completions count it.
		var req struct {
			Model            string `json:"model"`
			Prompt           string `json:"prompt"`
			AddSpecialTokens *bool  `json:"add_special_tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != served {
			fakeError(w, mode, 400, "BadRequestError", "bad tokenize request", "")
			return
		}
		n := len(strings.Fields(req.Prompt))
		if req.AddSpecialTokens == nil || *req.AddSpecialTokens {
			n++
		}
		tokens := make([]int, n)
		writeJSON(w, 200, map[string]any{"count": n, "max_model_len": a.maxModelLen, "tokens": tokens})
	})
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		fakeCompletion(w, r, mode, served, a.maxModelLen)
	})
	srv := &http.Server{Handler: mux}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		logf("Shutting down FastAPI HTTP server.")
		srv.Close()
	}()
	logf("Starting vLLM API server 0 on http://%s", ln.Addr())
	_ = srv.Serve(ln)
	return 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fakeError(w http.ResponseWriter, mode string, status int, typ, msg, param string) {
	if mode == "old-errors" {
		writeJSON(w, status, map[string]any{"object": "error", "message": msg, "type": typ, "param": param, "code": status})
		return
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": param, "code": status}})
}

type fakeRequest struct {
	Model         string  `json:"model"`
	Prompt        string  `json:"prompt"`
	MaxTokens     *int    `json:"max_tokens"`
	Temperature   float64 `json:"temperature"`
	Stream        bool    `json:"stream"`
	IgnoreEOS     bool    `json:"ignore_eos"`
	StreamOptions *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
}

func fakeCompletion(w http.ResponseWriter, r *http.Request, mode, served string, maxModelLen int) {
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		fakeError(w, mode, 400, "BadRequestError", "invalid JSON: "+err.Error(), "")
		return
	}
	logf("request: %s", raw)
	var req fakeRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		fakeError(w, mode, 400, "BadRequestError", err.Error(), "")
		return
	}
	if req.Model != served {
		fakeError(w, mode, 404, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", req.Model), "model")
		return
	}
	promptTokens := len(strings.Fields(req.Prompt)) + 1
	n := 16
	if req.MaxTokens != nil {
		n = *req.MaxTokens
	}
	if promptTokens+n > maxModelLen {
		fakeError(w, mode, 400, "BadRequestError", fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion).", maxModelLen, promptTokens+n, promptTokens, n), "")
		return
	}
	finish := "length"
	if !req.IgnoreEOS && n > 3 {
		n, finish = 3, "stop" // the model's EOS comes early unless ignored
	}
	id, created := "cmpl-fake"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().Unix()
	usage := func(c int) map[string]any {
		return map[string]any{"prompt_tokens": promptTokens, "total_tokens": promptTokens + c, "completion_tokens": c}
	}
	if !req.Stream {
		writeJSON(w, 200, map[string]any{"id": id, "object": "text_completion", "created": created, "model": served,
			"choices": []any{map[string]any{"index": 0, "text": strings.Repeat(" ok", n), "logprobs": nil, "finish_reason": finish, "stop_reason": nil}},
			"usage":   usage(n)})
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	continuous := includeUsage && req.StreamOptions.ContinuousUsageStats
	switch mode {
	case "no-usage":
		includeUsage, continuous = false, false
	case "no-continuous":
		continuous = false
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(200)
	flusher := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		flusher.Flush()
	}
	delay := 2 * time.Millisecond
	produced := 0
	for i := 0; produced < n; i++ {
		if mode == "stream-error" && i == 2 {
			send(map[string]any{"error": map[string]any{"message": "Internal server error", "type": "InternalServerError", "param": nil, "code": 500}})
			break
		}
		if mode == "garbage" && i == 2 {
			fmt.Fprint(w, "data: {\"choices\": \"nonsense\"\n\n")
			flusher.Flush()
			break
		}
		k := 1
		if i%4 == 3 && produced+2 <= n {
			k = 2 // outputs merged while the HTTP side was behind
		}
		time.Sleep(time.Duration(k) * delay)
		text := strings.Repeat(" ok", k)
		if i == 1 {
			text = "" // a token whose text is held back (an incomplete character)
		}
		produced += k
		var fr any
		if produced == n {
			fr = finish
		}
		ch := map[string]any{"id": id, "object": "text_completion", "created": created, "model": served,
			"choices": []any{map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": fr, "stop_reason": nil}}}
		if continuous {
			ch["usage"] = usage(produced)
		}
		send(ch)
	}
	if includeUsage && produced == n {
		send(map[string]any{"id": id, "object": "text_completion", "created": created, "model": served, "choices": []any{}, "usage": usage(n)})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	flusher.Flush()
}
