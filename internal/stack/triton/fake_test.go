package triton

// A fake Triton server and a fake perf_analyzer, run by this test binary itself (TestMain
// re-exec) so that the driver starts, supervises and stops a real process through
// TRITON_START_CMD.
//
// The server follows Triton's documented HTTP/REST protocol: KServe v2 health, model
// readiness and metadata (404-free, errors as 400 {"error": …}), the model configuration
// extension, and the generate extension's generate_stream (request keys that name a model
// input become tensors, the others request parameters; one `data: {json}\n\n` event per
// response, single-element tensors unwrapped, errors as `data: {"error": …}`, no end
// sentinel). Per backend it checks the inputs fuze sends and generates like the backend: a
// natural end of sequence after 6 tokens unless the request fixes the length (vLLM
// ignore_eos, TensorRT-LLM min_tokens), num_output_tokens per response when
// return_num_output_tokens is set, streaming refused by non-decoupled models.

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// fakeModel is one model of the fake's repository: --model=name:flavour:decoupled:counts.
type fakeModel struct {
	name      string
	flavour   Flavour
	decoupled bool
	counts    bool // has the return_num_output_tokens input
}

func (m fakeModel) inputs() (names []string, required map[string]bool) {
	switch m.flavour {
	case FlavourVLLM:
		names = []string{"text_input", "stream", "sampling_parameters", "exclude_input_in_output", "return_finish_reason"}
		required = map[string]bool{"text_input": true}
	case FlavourTRTLLM:
		names = []string{"text_input", "max_tokens", "bad_words", "stop_words", "exclude_input_in_output", "end_id", "pad_id", "top_k", "top_p", "temperature", "min_tokens", "stream"}
		required = map[string]bool{"text_input": true, "max_tokens": true}
	case FlavourLLMAPI:
		names = []string{"text_input", "streaming", "sampling_param_temperature", "sampling_param_top_k", "sampling_param_max_tokens", "sampling_param_exclude_input_from_output"}
		required = map[string]bool{"text_input": true}
	}
	if m.counts {
		names = append(names, "return_num_output_tokens")
	}
	return names, required
}

func (m fakeModel) datatype(input string) string {
	switch input {
	case "text_input", "sampling_parameters", "bad_words", "stop_words":
		return "BYTES"
	case "stream", "streaming", "exclude_input_in_output", "return_finish_reason", "return_num_output_tokens", "sampling_param_exclude_input_from_output":
		return "BOOL"
	case "temperature", "top_p", "sampling_param_temperature":
		return "FP32"
	}
	return "INT32"
}

func (m fakeModel) metadata() map[string]any {
	names, _ := m.inputs()
	var ins []map[string]any
	for _, n := range names {
		ins = append(ins, map[string]any{"name": n, "datatype": m.datatype(n), "shape": []int{-1, 1}})
	}
	outs := []map[string]any{{"name": "text_output", "datatype": "BYTES", "shape": []int{-1, -1}}}
	if m.counts {
		outs = append(outs, map[string]any{"name": "num_output_tokens", "datatype": "UINT32", "shape": []int{-1}})
	}
	platform := map[Flavour]string{FlavourTRTLLM: "ensemble", FlavourVLLM: "vllm", FlavourLLMAPI: "python"}[m.flavour]
	return map[string]any{"name": m.name, "versions": []string{"1"}, "platform": platform, "inputs": ins, "outputs": outs}
}

func (m fakeModel) config() map[string]any {
	names, required := m.inputs()
	var ins []map[string]any
	for _, n := range names {
		dt := m.datatype(n)
		if dt == "BYTES" {
			dt = "STRING"
		}
		ins = append(ins, map[string]any{"name": n, "data_type": "TYPE_" + dt, "dims": []string{"1"}, "optional": !required[n]})
	}
	c := map[string]any{"name": m.name, "max_batch_size": 0, "input": ins,
		"model_transaction_policy": map[string]any{"decoupled": m.decoupled}}
	switch m.flavour {
	case FlavourTRTLLM:
		c["platform"], c["max_batch_size"] = "ensemble", "64" // protobuf JSON writes int64 as a string
	case FlavourVLLM:
		c["backend"] = "vllm"
	case FlavourLLMAPI:
		c["backend"] = "python"
	}
	return c
}

// fakeTriton is the fake server's main.
func fakeTriton(args []string) int {
	fs := flag.NewFlagSet("fake-tritonserver", flag.ContinueOnError)
	port := fs.Int("http-port", 8000, "")
	mode := fs.String("mode", "normal", "normal | no-text | garbage | never-ready | grpc-port | exit")
	tokenGap := fs.Duration("token-gap", 3*time.Millisecond, "time between generated tokens")
	var models []fakeModel
	fs.Func("model", "name:flavour:decoupled:counts", func(s string) error {
		f := strings.Split(s, ":")
		if len(f) != 4 {
			return fmt.Errorf("--model %q: want name:flavour:decoupled:counts", s)
		}
		models = append(models, fakeModel{name: f[0], flavour: Flavour(f[1]), decoupled: f[2] == "1", counts: f[3] == "1"})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	switch *mode {
	case "exit":
		fmt.Println("I0101 00:00:00.000 server.cc:100] Initializing Triton")
		fmt.Println("E0101 00:00:00.001 model_repository_manager.cc:1186] failed to load model repository: no such directory")
		return 1
	case "grpc-port":
		return fakeGRPCPort(addr)
	}
	byName := map[string]fakeModel{}
	for _, m := range models {
		byName[m.name] = m
	}
	f := &fakeServer{mode: *mode, models: byName, gap: *tokenGap}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "E0101 http_server.cc:100] failed to start HTTP service:", err)
		return 1
	}
	fmt.Printf("I0101 00:00:00.000 http_server.cc:4700] Started HTTPService at %s\n", addr)
	if err := http.Serve(l, f); err != nil {
		return 1
	}
	return 0
}

// fakeGRPCPort answers like the gRPC (HTTP/2-only) port of a Triton server: its connection
// preface is a SETTINGS frame (RFC 9113 §3.4); a client preface that is not HTTP/2's gets a
// GOAWAY with PROTOCOL_ERROR and the connection is closed.
func fakeGRPCPort(addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	fmt.Printf("I0101 00:00:00.000 grpc_server.cc:2466] Started GRPCInferenceService at %s\n", addr)
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		go func(c net.Conn) {
			defer c.Close()
			// SETTINGS, 6 bytes: SETTINGS_MAX_CONCURRENT_STREAMS = 100.
			c.Write([]byte{0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 100})
			buf := make([]byte, 24)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Read(buf)
			if string(buf[:n]) != "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
				// GOAWAY, last stream 0, PROTOCOL_ERROR (1).
				c.Write([]byte{0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
			}
		}(c)
	}
}

type fakeServer struct {
	mode   string
	models map[string]fakeModel
	gap    time.Duration
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/health/live":
		w.WriteHeader(http.StatusOK)
		return
	case p == "/v2/health/ready":
		if f.mode == "never-ready" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case strings.HasPrefix(p, "/v2/models/"):
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Not Found"})
		return
	}
	rest := strings.TrimPrefix(p, "/v2/models/")
	name, kind, _ := strings.Cut(rest, "/")
	m, ok := f.models[name]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("Request for unknown model: '%s' is not found", name)})
		return
	}
	switch kind {
	case "ready":
		if f.mode == "never-ready" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	case "":
		writeJSON(w, http.StatusOK, m.metadata())
	case "config":
		writeJSON(w, http.StatusOK, m.config())
	case "generate_stream":
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "generate_stream expects POST"})
			return
		}
		f.generateStream(w, r, m)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Not Found"})
	}
}

// generateStream handles POST /v2/models/<m>/generate_stream.
func (f *fakeServer) generateStream(w http.ResponseWriter, r *http.Request, m fakeModel) {
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "failed to parse the request JSON buffer: " + err.Error()})
		return
	}
	// The generate extension: top-level keys and "parameters" keys that name a model input
	// are tensors, the others request parameters.
	names, required := m.inputs()
	isInput := map[string]bool{}
	for _, n := range names {
		isInput[n] = true
	}
	tensors, params := map[string]any{}, map[string]any{}
	add := func(k string, v any) {
		if isInput[k] {
			tensors[k] = v
		} else {
			params[k] = v
		}
	}
	for k, v := range req {
		if k == "parameters" {
			obj, ok := v.(map[string]any)
			if !ok {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Expected JSON object for keyword: 'parameters'"})
				return
			}
			for pk, pv := range obj {
				add(pk, pv)
			}
			continue
		}
		add(k, v)
	}
	for n := range required {
		if _, ok := tensors[n]; !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("[request id: <id_unknown>] expected input '%s' for model '%s'", n, m.name)})
			return
		}
	}
	for k, v := range tensors {
		ok := true
		switch m.datatype(k) {
		case "BYTES":
			_, ok = v.(string)
		case "BOOL":
			_, ok = v.(bool)
		default:
			_, ok = v.(float64)
		}
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unable to parse '%s' as %s: %v", k, m.datatype(k), v)})
			return
		}
	}
	num := func(k string, def int) int {
		if v, ok := tensors[k].(float64); ok {
			return int(v)
		}
		return def
	}
	flag := func(k string) bool { b, _ := tensors[k].(bool); return b }
	const eos = 6 // the fake model's natural end of sequence
	var n int
	var stream bool
	switch m.flavour {
	case FlavourVLLM:
		sp := map[string]any{}
		if s, ok := tensors["sampling_parameters"].(string); ok {
			if err := json.Unmarshal([]byte(s), &sp); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "[vllm] sampling_parameters is not JSON: " + err.Error()})
				return
			}
		} else {
			sp = params // request parameters are the alternative
		}
		n = 16 // vLLM's default max_tokens
		if v, ok := sp["max_tokens"].(float64); ok {
			n = int(v)
		}
		if ign, _ := sp["ignore_eos"].(bool); !ign {
			n = min(n, eos)
		}
		stream = flag("stream")
		if stream && !flag("exclude_input_in_output") {
			if _, set := tensors["exclude_input_in_output"]; set {
				writeSSEError(w, "When streaming, `exclude_input_in_output` = False is not allowed.")
				return
			}
		}
	case FlavourTRTLLM:
		n = min(num("max_tokens", 0), max(eos, num("min_tokens", 0)))
		stream = flag("stream")
	case FlavourLLMAPI:
		n = min(num("sampling_param_max_tokens", 16), eos)
		stream = flag("streaming")
	}
	if stream && !m.decoupled {
		writeSSEError(w, "Streaming is only supported if model is deployed using decoupled mode.")
		return
	}
	counts := flag("return_num_output_tokens")
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v map[string]any) {
		switch f.mode {
		case "garbage":
			fmt.Fprint(w, "data: \x01\x02 this is not JSON {\n\n")
		case "no-text":
			fmt.Fprintf(w, "data: {\"model_name\":%q,\"model_version\":\"1\"}\n\n", m.name)
		default:
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if fl != nil {
			fl.Flush()
		}
	}
	base := func() map[string]any { return map[string]any{"model_name": m.name, "model_version": "1"} }
	if !stream {
		time.Sleep(time.Duration(n) * f.gap)
		v := base()
		v["text_output"] = strings.Repeat("tok ", n)
		if counts {
			v["num_output_tokens"] = n
		}
		send(v)
		return
	}
	for i := range n {
		time.Sleep(f.gap)
		v := base()
		v["text_output"] = fmt.Sprintf("tok%d ", i)
		if counts {
			v["num_output_tokens"] = 1
		}
		send(v)
	}
	if m.flavour == FlavourVLLM {
		// The vLLM backend's final response carries no new text.
		v := base()
		v["text_output"] = ""
		if counts {
			v["num_output_tokens"] = 0
		}
		send(v)
	}
}

// writeSSEError is an inference error after the stream started (HTTP 200, error event).
func writeSSEError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	b, _ := json.Marshal(map[string]string{"error": msg})
	fmt.Fprintf(w, "data: %s\n\n", b)
}

// fakePerfAnalyzer is the fake perf_analyzer's main. It accepts the documented flags fuze
// uses (and rejects the original's misuse: -p as a request count, --request-interval-us,
// "-v 0"), records its arguments, checks the server and the input data, and writes the
// latency report CSV in perf_analyzer's format.
func fakePerfAnalyzer(args []string) int {
	fs := flag.NewFlagSet("perf_analyzer", flag.ContinueOnError)
	model := fs.String("m", "", "model name")
	url := fs.String("u", "localhost:8000", "server URL")
	proto := fs.String("i", "http", "protocol")
	conc := fs.String("concurrency-range", "1", "start:end:step")
	batch := fs.Int("b", 1, "batch size")
	count := fs.Int("request-count", 0, "requests")
	interval := fs.Int("p", 5000, "measurement interval, ms")
	input := fs.String("input-data", "", "input data")
	report := fs.String("f", "", "latency report file")
	_ = interval
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if rec := os.Getenv("FAKE_PA_RECORD"); rec != "" {
		b, _ := json.Marshal(args)
		os.WriteFile(rec, b, 0o644)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "error: "+format+"\n", a...)
		return 1
	}
	if *model == "" {
		return fail("-m must be specified")
	}
	if strings.Contains(*url, "://") {
		return fail("-u %q: give host:port, without a scheme", *url)
	}
	if *proto != "http" && *proto != "grpc" {
		return fail("unsupported protocol %q", *proto)
	}
	c, err := strconv.Atoi(*conc)
	if err != nil || c < 1 {
		return fail("failed to parse concurrency range %q", *conc)
	}
	if *count != 0 && *count < c {
		return fail("--request-count can not be less than concurrency")
	}
	resp, err := http.Get("http://" + *url + "/v2/models/" + *model + "/config")
	if err != nil {
		return fail("failed to get model config: %v", err)
	}
	var cfg struct {
		Transaction struct {
			Decoupled bool `json:"decoupled"`
		} `json:"model_transaction_policy"`
	}
	json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("model %s: HTTP %d", *model, resp.StatusCode)
	}
	if cfg.Transaction.Decoupled && *proto == "http" {
		return fail("Decoupled models must be run with `--async` and `--streaming` and either `-i grpc` or `--service-kind=triton_c_api`")
	}
	if *input != "" {
		raw, err := os.ReadFile(*input)
		if err != nil {
			return fail("input data: %v", err)
		}
		var data struct {
			Data []map[string]struct {
				Content []any `json:"content"`
				Shape   []int `json:"shape"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &data); err != nil || len(data.Data) == 0 {
			return fail("input data %s: not the documented JSON: %v", *input, err)
		}
		if t, ok := data.Data[0]["text_input"]; !ok || len(t.Content) != 1 || len(t.Shape) != 1 {
			return fail("input data has no text_input content")
		}
	}
	fmt.Printf("*** Measurement Settings ***\n  Batch size: %d\n  Using \"count_windows\" mode for stabilization\n  Minimum number of samples in each window: %d\n\n", *batch, *count)
	fmt.Printf("Request concurrency: %d\n  Client: \n    Request count: %d\n    Throughput: 12.5 infer/sec\n    Avg latency: 80000 usec (standard deviation 900 usec)\n", c, *count)
	fmt.Printf("Inferences/Second vs. Client Average Batch Latency\nConcurrency: %d, throughput: 12.5 infer/sec, latency 80000 usec\n", c)
	if *report != "" {
		out, err := os.Create(*report)
		if err != nil {
			return fail("%v", err)
		}
		bw := bufio.NewWriter(out)
		fmt.Fprintln(bw, "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency")
		fmt.Fprintf(bw, "%d,12.5,30,100,5,10,79800,20,15,80100,80200,80300,80500\n", c)
		bw.Flush()
		out.Close()
	}
	return 0
}
