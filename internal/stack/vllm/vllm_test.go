package vllm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/stacktest"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
)

func freePort(t *testing.T) int { return ollamatest.FreePort(t) }

// fakeLauncher writes an executable named name that runs this test binary as the fake vLLM
// server in the given mode, and returns it as a launcher (Module: the python -m form). Every
// start is counted (starts).
func fakeLauncher(t *testing.T, name, mode string, module bool) vllm.Launcher {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	script := "#!/bin/sh\necho start >> '" + p + ".starts'\nFUZE_FAKE_VLLM=1 FAKE_VLLM_MODE='" + mode + "' exec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return vllm.Launcher{Path: p, Module: module, Via: "test"}
}

// starts is how many times the launcher l was run.
func starts(l vllm.Launcher) int {
	b, _ := os.ReadFile(l.Path + ".starts")
	return strings.Count(string(b), "start\n")
}

var tinyA = vllm.Model{Tag: "tiny:a", Alias: "tiny-a", HF: "fuze-test/tiny-a", Source: "MODELS"}
var tinyB = vllm.Model{Tag: "tiny:b", Alias: "tiny-b", HF: "fuze-test/tiny-b", Source: "MODELS"}

func config(t *testing.T, mode, logDir string) vllm.Config {
	return vllm.Config{
		Launcher: fakeLauncher(t, "vllm", mode, false),
		PortA:    freePort(t), PortB: freePort(t),
		Models:      []vllm.Model{tinyA},
		MaxModelLen: 512, MaxTokens: 16, DType: "float16", GPUMemUtil: 0.9,
		ReadyTimeout: 20 * time.Second, RequestTimeout: 20 * time.Second, StopGrace: 2 * time.Second,
		LogDir: logDir, RunTS: "20261127_000000",
		Environ: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()},
	}
}

func TestDriverSuite(t *testing.T) {
	stacktest.Run(t, stacktest.Harness{
		// Two models: each gets its own server on the endpoint (the second replaces the first).
		Working: func(t *testing.T, logDir string) stack.Driver {
			cfg := config(t, "", logDir)
			cfg.Models = []vllm.Model{tinyA, tinyB}
			return vllm.New(cfg, &bytes.Buffer{})
		},
		Broken: func(t *testing.T, logDir string) stack.Driver {
			return vllm.New(config(t, "no-usage", logDir), &bytes.Buffer{})
		},
		NeverReady: func(t *testing.T, logDir string) stack.Driver {
			cfg := config(t, "never-ready", logDir)
			cfg.ReadyTimeout = 700 * time.Millisecond
			return vllm.New(cfg, &bytes.Buffer{})
		},
	})
}

// measureOnce sets up d, measures the first target once, and returns the sample and the
// endpoint; Close is left to the caller (deferred at registration).
func measureOnce(t *testing.T, d *vllm.Driver) (*measure.Sample, stack.Endpoint) {
	t.Helper()
	ctx := context.Background()
	eps, err := d.Setup(ctx, gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	targets, err := d.Targets(ctx)
	if err != nil || len(targets) == 0 {
		t.Fatalf("targets %v %v", targets, err)
	}
	c, err := d.Baseline(ctx, eps[0], targets[0])
	if err != nil {
		t.Fatal(err)
	}
	return (&engine.Engine{Driver: d}).Measure(ctx, eps[0], targets[0], c), eps[0]
}

func readLog(t *testing.T, logDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(logDir, "vllm_a_20261127_000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The decode rate is (usage tokens after the first chunk's) / (last token − first token), also
// when chunks merge tokens or hold one back, with running usage (vLLM's continuous_usage_stats)
// or without it.
func TestDecodeRateFromTheStream(t *testing.T) {
	for _, mode := range []string{"", "no-continuous"} {
		t.Run("mode="+mode, func(t *testing.T) {
			cfg := config(t, mode, t.TempDir())
			s, _ := measureOnce(t, vllm.New(cfg, &bytes.Buffer{}))
			if s.Outcome != measure.OK {
				t.Fatalf("%s: %s", s.Outcome, s.Error)
			}
			n := s.ServerOutputTokens
			if n != 16 || len(s.ChunkTimes) != n || s.ServerDecodeDuration != 0 {
				t.Fatalf("tokens %d, token times %d, server decode duration %s", n, len(s.ChunkTimes), s.ServerDecodeDuration)
			}
			// The tokens after the first chunk's (n − 1 unless one read took the first two in):
			// chunks of one read share its stamp.
			afterFirst := 0
			for _, at := range s.ChunkTimes {
				if at > s.ChunkTimes[0] {
					afterFirst++
				}
			}
			want := float64(afterFirst) / (s.ChunkTimes[n-1] - s.ChunkTimes[0]).Seconds()
			if got := s.DecodeTokensPerSec(); math.Abs(got-want) > 1e-9 || got <= 0 {
				t.Fatalf("decode rate %f, want %f", got, want)
			}
			// Wall-clock figures are only checked for consistency here; their values, exact on
			// the fake's declared timings, are TestDecodeRateIsExactOnTheFakesTimings'.
			if s.FirstToken <= 0 || s.FirstToken != s.ChunkTimes[0] || s.End < s.ChunkTimes[n-1] || s.EndToEndTokensPerSec() != float64(n)/s.End.Seconds() {
				t.Fatalf("ttft %s end %s e2e %f decode %f", s.FirstToken, s.End, s.EndToEndTokensPerSec(), want)
			}
			if s.ServerPromptTokens <= 0 {
				t.Errorf("prompt tokens %d", s.ServerPromptTokens)
			}
			perChunk := s.Settings["tokens_per_chunk_from_usage"] == "true"
			if perChunk != (mode == "") {
				t.Errorf("per-chunk usage %v in mode %q", perChunk, mode)
			}
			// Without running usage the held-back token is only in the total: said in a note.
			if hasNote := len(s.Notes) > 0; hasNote != (mode == "no-continuous") {
				t.Errorf("notes %q in mode %q", s.Notes, mode)
			}
		})
	}
}

// The rates, exactly on the fake's declared timings: the fake (2 ms per token, merged and
// held-back tokens included) is served over in-memory connections inside a synctest bubble,
// where its sleeps are virtual time, and read by the driver's client. 16 tokens, the first at
// 2 ms and the last at 32 ms: decode 15 tokens / 30 ms = 500 tok/s, time to first token 2 ms,
// end to end 16 tokens / 32 ms = 500 tok/s, with running usage or without.
func TestDecodeRateIsExactOnTheFakesTimings(t *testing.T) {
	for _, mode := range []string{"", "no-continuous"} {
		t.Run("mode="+mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := stacktest.NewPipeServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fakeCompletion(w, r, mode, tinyA.HF, 512)
				}))
				defer srv.Close()
				seed := 42
				res, err := vllm.Stream(context.Background(), srv.Client(), "http://pipe", vllm.CompletionRequest{
					Model: tinyA.HF, Prompt: "Tell me a fun fact about GPUs.", MaxTokens: 16, Seed: &seed, IgnoreEOS: true,
					StreamOptions: &vllm.StreamOptions{IncludeUsage: true, ContinuousUsageStats: true}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				// What the engine records: the server's counters, one arrival per token.
				s := &measure.Sample{Outcome: measure.OK}
				s.SetServer(vllm.Counters(res))
				times, _, err := res.DecodeTimes()
				if err != nil {
					t.Fatal(err)
				}
				s.ChunkTimes, s.FirstToken, s.FirstByte, s.End = times, times[0], res.FirstByte, res.End
				ms := time.Millisecond
				if s.ServerOutputTokens != 16 || len(s.ChunkTimes) != 16 || s.ChunkTimes[0] != 2*ms || s.ChunkTimes[15] != 32*ms ||
					s.FirstToken != 2*ms || s.FirstByte != 2*ms || s.End != 32*ms {
					t.Fatalf("%d tokens at %v; first byte %s, first token %s, end %s", s.ServerOutputTokens, s.ChunkTimes, s.FirstByte, s.FirstToken, s.End)
				}
				if got := s.DecodeTokensPerSec(); math.Abs(got-500) > 1e-9 {
					t.Errorf("decode %.12f tok/s, the fake decodes at 500", got)
				}
				if got := s.EndToEndTokensPerSec(); math.Abs(got-500) > 1e-9 {
					t.Errorf("end to end %.12f tok/s, want 16 tokens / 32 ms = 500", got)
				}
			})
		})
	}
}

// What vLLM receives: the documented command line, CUDA_VISIBLE_DEVICES empty on the CPU
// endpoint, and requests with the vLLM extras and a prompt no earlier request used.
func TestCommandLineAndRequests(t *testing.T) {
	logDir := t.TempDir()
	cfg := config(t, "", logDir)
	var log bytes.Buffer
	d := vllm.New(cfg, &log)
	s, ep := measureOnce(t, d)
	if s.Outcome != measure.OK {
		t.Fatalf("%s: %s", s.Outcome, s.Error)
	}
	c, _ := d.Baseline(context.Background(), ep, stack.Target{Model: tinyA.HF})
	if s2 := (&engine.Engine{Driver: d}).Measure(context.Background(), ep, stack.Target{Model: tinyA.HF}, c); s2.Outcome != measure.OK {
		t.Fatalf("second measurement: %s: %s", s2.Outcome, s2.Error)
	}
	out := readLog(t, logDir)
	port := strconv.Itoa(cfg.PortA)
	if want := "args: serve fuze-test/tiny-a --host 127.0.0.1 --port " + port + " --dtype float16 --max-model-len 512 --gpu-memory-utilization 0.9"; !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, `CUDA_VISIBLE_DEVICES=""`) {
		t.Errorf("the CPU endpoint must hide every GPU:\n%s", out)
	}
	if strings.Count(out, "vLLM API server version") != 1 {
		t.Errorf("one server per (endpoint, model): started %d times", strings.Count(out, "vLLM API server version"))
	}
	var reqs []map[string]any
	for _, m := range regexp.MustCompile(`request: (\{.*\})`).FindAllStringSubmatch(out, -1) {
		var r map[string]any
		if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	if len(reqs) != 4 { // warm-up + measurement, twice
		t.Fatalf("want 4 requests, got %d:\n%s", len(reqs), out)
	}
	measured := []map[string]any{reqs[1], reqs[3]}
	for _, r := range measured {
		so, _ := r["stream_options"].(map[string]any)
		if r["stream"] != true || r["ignore_eos"] != true || r["max_tokens"] != 16.0 || r["temperature"] != 0.0 || r["seed"] != 42.0 ||
			so["include_usage"] != true || so["continuous_usage_stats"] != true || r["model"] != tinyA.HF {
			t.Errorf("measured request %v", r)
		}
	}
	if measured[0]["prompt"] == measured[1]["prompt"] || !strings.Contains(measured[0]["prompt"].(string), vllm.DefaultPrompt) {
		t.Errorf("prompts must differ per attempt: %q %q", measured[0]["prompt"], measured[1]["prompt"])
	}
	if !strings.Contains(log.String(), "--max-model-len 512") {
		t.Errorf("console lacks the command line:\n%s", log.String())
	}
}

// The python -m form, with the same fake behind a "python" wrapper.
func TestPythonModuleForm(t *testing.T) {
	logDir := t.TempDir()
	cfg := config(t, "", logDir)
	cfg.Launcher = fakeLauncher(t, "python", "", true)
	s, _ := measureOnce(t, vllm.New(cfg, &bytes.Buffer{}))
	if s.Outcome != measure.OK {
		t.Fatalf("%s: %s", s.Outcome, s.Error)
	}
	if out := readLog(t, logDir); !strings.Contains(out, "args: -m vllm.entrypoints.openai.api_server --model fuze-test/tiny-a --host 127.0.0.1") {
		t.Errorf("log:\n%s", out)
	}
}

// Bad answers and servers become failure rows with their reason; a start that failed is not
// retried for the next repeat.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		mode, dtype, outcome string
		want                 []string
	}{
		{"no-usage", "", measure.ErrMalformed, []string{"no usage in the stream"}},
		{"garbage", "", measure.ErrMalformed, []string{"chunk 3 is not a completion chunk", "nonsense"}},
		{"stream-error", "", measure.ErrHTTP, []string{"error in the stream", "InternalServerError: Internal server error"}},
		{"crash", "", measure.ErrExited, []string{"exit status 1", "CUDA out of memory"}},
		{"wrong-model", "", measure.ErrOther, []string{`lists "some-org/other-model" in /v1/models, not fuze-test/tiny-a`}},
		{"never-ready", "", measure.ErrTimeout, []string{"not ready after", "HTTP 503"}},
		{"", "float8", measure.ErrExited, []string{"exit status 2", "argument --dtype: invalid choice"}},
	} {
		t.Run(tc.mode+tc.dtype, func(t *testing.T) {
			cfg := config(t, tc.mode, t.TempDir())
			if tc.mode == "never-ready" {
				// It fires whatever the load (the server never gets ready), but must outlast
				// the fake's start for its 503 to be named; the other modes keep 20 s.
				cfg.ReadyTimeout = 5 * time.Second
			}
			if tc.dtype != "" {
				cfg.DType = tc.dtype
			}
			d := vllm.New(cfg, &bytes.Buffer{})
			s, ep := measureOnce(t, d)
			if s.Outcome != tc.outcome {
				t.Fatalf("outcome %q (%s), want %q", s.Outcome, s.Error, tc.outcome)
			}
			for _, w := range tc.want {
				if !strings.Contains(s.Error, w) {
					t.Errorf("error %q lacks %q", s.Error, w)
				}
			}
			if s.DecodeTokensPerSec() != 0 {
				t.Errorf("a failure has a rate")
			}
			c, _ := d.Baseline(context.Background(), ep, stack.Target{Model: tinyA.HF})
			again := (&engine.Engine{Driver: d}).Measure(context.Background(), ep, stack.Target{Model: tinyA.HF}, c)
			if again.Outcome != tc.outcome {
				t.Errorf("repeat: %s %s", again.Outcome, again.Error)
			}
			if n := starts(cfg.Launcher); n != 1 {
				t.Errorf("the server was started %d times for two measurements of one configuration, want once", n)
			}
		})
	}
}

// Stopping a server signals its whole process group: the engine core, which the server
// itself does not stop, does not survive it, even when it ignores SIGTERM.
func TestCloseKillsTheEngineCore(t *testing.T) {
	for _, mode := range []string{"", "stubborn-engine"} {
		t.Run("mode="+mode, func(t *testing.T) { closeKillsTheEngineCore(t, mode) })
	}
}

func closeKillsTheEngineCore(t *testing.T, mode string) {
	logDir := t.TempDir()
	cfg := config(t, mode, logDir)
	cfg.StopGrace = 300 * time.Millisecond
	d := vllm.New(cfg, &bytes.Buffer{})
	s, ep := measureOnce(t, d)
	if s.Outcome != measure.OK {
		t.Fatalf("%s: %s", s.Outcome, s.Error)
	}
	m := regexp.MustCompile(`EngineCore pid=(\d+)`).FindStringSubmatch(readLog(t, logDir))
	if m == nil {
		t.Fatal("no engine core pid in the log")
	}
	pid, _ := strconv.Atoi(m[1])
	if !alive(pid) {
		t.Fatal("engine core not running before Close")
	}
	d.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("engine core pid %d survived Close", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", ep.Addr); err == nil {
		c.Close()
		t.Fatal("still listening after Close")
	}
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// A port already held (by another stack's server) is an error naming the holder, before
// anything starts.
func TestPortTakenIsAnError(t *testing.T) {
	cfg := config(t, "", t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg.PortA = l.Addr().(*net.TCPAddr).Port
	_, err = vllm.New(cfg, &bytes.Buffer{}).Setup(context.Background(), gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(cfg.PortA)+" is already in use by pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("got %v", err)
	}
}

// The mapping tag | alias -> served model is printed, and the CSV model is the served one.
func TestTargetsPrintTheMapping(t *testing.T) {
	var log bytes.Buffer
	cfg := config(t, "", t.TempDir())
	cfg.Models = []vllm.Model{vllm.BuiltinModels[0], tinyA, {Tag: "dup", Alias: "dup", HF: tinyA.HF, Source: "MODELS"}}
	cfg.Models[0].Source = "built-in default"
	targets, err := vllm.New(cfg, &log).Targets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 || targets[0].Model != "meta-llama/Llama-3.1-8B-Instruct" || targets[0].Alias != "llama4-16x17b" || targets[1].Model != tinyA.HF {
		t.Fatalf("targets %+v", targets)
	}
	for _, want := range []string{
		"llama4:16x17b | llama4-16x17b -> meta-llama/Llama-3.1-8B-Instruct  [built-in default]",
		"! meta-llama/Llama-3.1-8B-Instruct is not the model llama4:16x17b names (the original's default); set VLLM_MODEL_llama4_16x17b or MODELS",
		"tiny:a | tiny-a -> fuze-test/tiny-a  [MODELS]",
		"! dup (dup) serves fuze-test/tiny-a, already benchmarked for tiny-a: skipped",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// The OpenAI-compatible client against a real server: Ollama serves /v1/completions with
// stream_options.include_usage (it ignores ignore_eos and continuous_usage_stats).
func TestClientAgainstRealOllama(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed := 42
	req := vllm.CompletionRequest{Model: "tiny:latest", Prompt: "Tell me a fun fact about GPUs.", MaxTokens: 32, Seed: &seed,
		IgnoreEOS: true, StreamOptions: &vllm.StreamOptions{IncludeUsage: true, ContinuousUsageStats: true}}
	res, err := vllm.Stream(ctx, http.DefaultClient, srv.URL(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage == nil || res.Usage.CompletionTokens == nil || *res.Usage.CompletionTokens != 32 || res.Usage.PromptTokens <= 0 {
		t.Fatalf("usage %+v", res.Usage)
	}
	// Ollama puts zero usage on every chunk: no running totals, one token per text chunk.
	if res.PerChunk || res.TextChunks < 2 || len(res.TokenTimes) != res.TextChunks || res.FirstByte <= 0 || res.End < res.TokenTimes[len(res.TokenTimes)-1] {
		t.Fatalf("stream %+v", res)
	}
	s := &measure.Sample{Outcome: measure.OK}
	s.SetServer(vllm.Counters(res))
	s.End = res.End
	times, _, err := res.DecodeTimes()
	if err != nil {
		t.Fatal(err)
	}
	s.ChunkTimes = times
	// The decode rate counts the tokens after the first chunk's: two chunks stamped at the same
	// instant (one read, one clock reading) count as one chunk.
	first, last := res.TokenTimes[0], res.TokenTimes[len(res.TokenTimes)-1]
	withFirst := 0
	for _, at := range s.ChunkTimes {
		if at == first {
			withFirst++
		}
	}
	want := float64(32-withFirst) / (last - first).Seconds()
	if s.ServerOutputTokens != 32 || len(s.ChunkTimes) != 32 || math.Abs(s.DecodeTokensPerSec()-want) > 1e-9 || s.EndToEndTokensPerSec() <= 0 {
		t.Fatalf("sample: %d tokens, decode %f (want %f), e2e %f", s.ServerOutputTokens, s.DecodeTokensPerSec(), want, s.EndToEndTokensPerSec())
	}
	// Ollama's readiness answers are those the driver reads.
	ids, err := vllm.Models(ctx, http.DefaultClient, srv.URL())
	if err != nil || !containsString(ids, "tiny:latest") {
		t.Fatalf("models %v %v", ids, err)
	}
	// An unknown model is an HTTP error with Ollama's message.
	req.Model = "no-such-model:latest"
	_, err = vllm.Stream(ctx, http.DefaultClient, srv.URL(), req, nil)
	var ae *vllm.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Message, "not found") {
		t.Fatalf("unknown model: %v", err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HTTP errors carry vLLM's message, in its older and newer error bodies alike.
func TestHTTPErrorBodies(t *testing.T) {
	for _, mode := range []string{"", "old-errors"} {
		t.Run("mode="+mode, func(t *testing.T) {
			s, ep := measureOnce(t, vllm.New(config(t, mode, t.TempDir()), &bytes.Buffer{}))
			if s.Outcome != measure.OK {
				t.Fatalf("%s: %s", s.Outcome, s.Error)
			}
			ctx := context.Background()
			_, err := vllm.Stream(ctx, http.DefaultClient, "http://"+ep.Addr, vllm.CompletionRequest{Model: "nope", Prompt: "x", MaxTokens: 4}, nil)
			var ae *vllm.APIError
			if !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "The model `nope` does not exist." || ae.Type != "NotFoundError" || ae.Code != "404" {
				t.Fatalf("unknown model: %#v", err)
			}
			_, err = vllm.Stream(ctx, http.DefaultClient, "http://"+ep.Addr, vllm.CompletionRequest{Model: tinyA.HF, Prompt: "x", MaxTokens: 4096}, nil)
			if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "HTTP 400: BadRequestError: This model's maximum context length is 512 tokens") {
				t.Fatalf("too long: %v", err)
			}
		})
	}
}

// A server that dies after it was ready gives server_exit rows naming how it ended.
func TestServerKilledGivesServerExit(t *testing.T) {
	d := vllm.New(config(t, "", t.TempDir()), &bytes.Buffer{})
	s, ep := measureOnce(t, d)
	if s.Outcome != measure.OK {
		t.Fatalf("%s: %s", s.Outcome, s.Error)
	}
	p := d.Server(ep.Addr)
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.Done()
	c, _ := d.Baseline(context.Background(), ep, stack.Target{Model: tinyA.HF})
	s = (&engine.Engine{Driver: d}).Measure(context.Background(), ep, stack.Target{Model: tinyA.HF}, c)
	if s.Outcome != measure.ErrExited || !strings.Contains(s.Error, "killed") {
		t.Fatalf("outcome %q error %q", s.Outcome, s.Error)
	}
}
