package vllm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
)

func executable(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The command line is chosen by what is configured and installed.
func TestFindLauncher(t *testing.T) {
	dir := t.TempDir()
	pathDir := filepath.Join(dir, "bin")
	os.Mkdir(pathDir, 0o755)
	vllmBin := executable(t, dir, "my-vllm")
	venvPy := executable(t, dir, "venv-python")
	withVLLM := executable(t, dir, "python-with-vllm")
	noVLLM := executable(t, dir, "python-without-vllm")
	notExec := filepath.Join(dir, "not-executable")
	os.WriteFile(notExec, nil, 0o644)
	hasVLLM := func(_ context.Context, py string) error {
		if strings.HasSuffix(py, "without-vllm") {
			return ErrNoVLLM
		}
		return nil
	}
	lookIn := func(names ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, n := range names {
				if n == name {
					return filepath.Join(pathDir, n), nil
				}
			}
			return "", exec.ErrNotFound
		}
	}
	for _, tc := range []struct {
		name    string
		s       LauncherSearch
		want    Launcher
		wantErr []string
	}{
		{"VLLM_BIN wins", LauncherSearch{Bin: vllmBin, Python: withVLLM, LookPath: lookIn("vllm")}, Launcher{Path: vllmBin, Via: "VLLM_BIN"}, nil},
		{"VLLM_BIN as a name on PATH", LauncherSearch{Bin: "vllm", LookPath: lookIn("vllm")}, Launcher{Path: filepath.Join(pathDir, "vllm"), Via: "VLLM_BIN"}, nil},
		{"VLLM_BIN missing is an error, not a fallback", LauncherSearch{Bin: filepath.Join(dir, "nope"), LookPath: lookIn("vllm")}, Launcher{}, []string{`VLLM_BIN="` + filepath.Join(dir, "nope") + `"`, "no such file"}},
		{"VLLM_BIN not executable", LauncherSearch{Bin: notExec}, Launcher{}, []string{"VLLM_BIN", "not an executable file"}},
		{"VLLM_PYTHON over PATH", LauncherSearch{Python: withVLLM, LookPath: lookIn("vllm")}, Launcher{Path: withVLLM, Module: true, Via: "VLLM_PYTHON"}, nil},
		{"VLLM_PYTHON without vllm", LauncherSearch{Python: noVLLM, LookPath: lookIn("vllm")}, Launcher{}, []string{"VLLM_PYTHON=", "cannot import vllm"}},
		{"vllm on PATH", LauncherSearch{VenvPython: venvPy, PythonBin: "python3", LookPath: lookIn("vllm", "python3")}, Launcher{Path: filepath.Join(pathDir, "vllm"), Via: "vllm on PATH"}, nil},
		{"installer venv", LauncherSearch{VenvPython: venvPy, PythonBin: "python3", LookPath: lookIn("python3")}, Launcher{Path: venvPy, Module: true, Via: "the vLLM venv"}, nil},
		{"PYTHON_BIN with vllm", LauncherSearch{VenvPython: filepath.Join(dir, "no-venv"), PythonBin: withVLLM, LookPath: lookIn()}, Launcher{Path: withVLLM, Module: true, Via: "PYTHON_BIN"}, nil},
		{"nothing installed", LauncherSearch{VenvPython: filepath.Join(dir, "no-venv"), PythonBin: noVLLM, LookPath: lookIn()}, Launcher{},
			[]string{"vLLM is not installed", "VLLM_BIN and VLLM_PYTHON are unset", "no `vllm` on PATH", filepath.Join(dir, "no-venv") + " does not exist", "PYTHON_BIN=" + noVLLM + ": cannot import vllm", "set VLLM_BIN", "VLLM_PYTHON"}},
		{"no python at all", LauncherSearch{PythonBin: "python3", LookPath: lookIn()}, Launcher{}, []string{"PYTHON_BIN=python3: executable file not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.HasVLLM = hasVLLM
			got, err := FindLauncher(context.Background(), tc.s)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestPythonHasVLLM(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"yes": "exit 0", "no": "exit 3", "broken": "echo 'boom' >&2; exit 1"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755)
	}
	if err := PythonHasVLLM(context.Background(), filepath.Join(dir, "yes")); err != nil {
		t.Error(err)
	}
	if err := PythonHasVLLM(context.Background(), filepath.Join(dir, "no")); !errors.Is(err, ErrNoVLLM) {
		t.Error(err)
	}
	if err := PythonHasVLLM(context.Background(), filepath.Join(dir, "broken")); !errors.Is(err, ErrNoVLLM) || !strings.Contains(err.Error(), "boom") {
		t.Error(err)
	}
}

func TestArgs(t *testing.T) {
	f := ServeFlags{Host: "127.0.0.1", Port: 11435, DType: "bfloat16", MaxModelLen: 8192, GPUMemUtil: 0.85}
	tail := []string{"--host", "127.0.0.1", "--port", "11435", "--dtype", "bfloat16", "--max-model-len", "8192", "--gpu-memory-utilization", "0.85"}
	if got, want := (Launcher{Path: "vllm"}).Args("org/m", f), append([]string{"serve", "org/m"}, tail...); !reflect.DeepEqual(got, want) {
		t.Errorf("serve form %q", got)
	}
	if got, want := (Launcher{Path: "python", Module: true}).Args("org/m", f), append([]string{"-m", "vllm.entrypoints.openai.api_server", "--model", "org/m"}, tail...); !reflect.DeepEqual(got, want) {
		t.Errorf("module form %q", got)
	}
	// Endpoint A+B: one model over both GPUs.
	f.TensorParallel = 2
	if got, want := (Launcher{Path: "vllm"}).Args("org/m", f), append(append([]string{"serve", "org/m"}, tail...), "--tensor-parallel-size", "2"); !reflect.DeepEqual(got, want) {
		t.Errorf("tensor parallel %q", got)
	}
}

func TestResolveModels(t *testing.T) {
	env := map[string]string{"VLLM_MODEL_llama4_16x17b": "org/real-llama4", "VLLM_MODEL_my_model_7b": "org/override"}
	lookup := func(name string) (string, string, bool) {
		v, ok := env[name]
		return v, "environment", ok
	}
	got, err := ResolveModels(nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].HF != "org/real-llama4" || got[0].Mismatch || got[0].Source != "VLLM_MODEL_llama4_16x17b (from environment)" ||
		got[1].HF != "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B" || !got[1].Mismatch || got[1].Source != "built-in default" {
		t.Fatalf("built-ins %+v", got)
	}
	got, err = ResolveModels([]string{"my:7b|my-model-7b|org/plain", "Qwen/Qwen2.5-0.5B-Instruct"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []Model{
		{Tag: "my:7b", Alias: "my-model-7b", HF: "org/override", Source: "VLLM_MODEL_my_model_7b (from environment)"},
		{Tag: "Qwen/Qwen2.5-0.5B-Instruct", Alias: "Qwen2.5-0.5B-Instruct", HF: "Qwen/Qwen2.5-0.5B-Instruct", Source: "MODELS"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"a|b", "a|b|c|d", "a||c"} {
		if _, err := ResolveModels([]string{bad}, lookup); err == nil || !strings.Contains(err.Error(), "MODELS entry \""+bad+"\"") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if OverrideVar("deepseek-r1:70b") != "VLLM_MODEL_deepseek_r1_70b" {
		t.Error(OverrideVar("deepseek-r1:70b"))
	}
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct{ body, msg, typ, code string }{
		{`{"object":"error","message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}`, "The model `x` does not exist.", "NotFoundError", "404"},
		{`{"error":{"message":"bad","type":"BadRequestError","param":"max_tokens","code":400}}`, "bad", "BadRequestError", "400"},
		{`{"error":{"message":"model \"m\" not found, try pulling it first","type":"api_error","param":null,"code":null}}`, `model "m" not found, try pulling it first`, "api_error", ""},
		{`{"error":"plain"}`, "plain", "", ""},
		{`{"detail":"Not Found"}`, "Not Found", "", ""},
	} {
		msg, typ, code, ok := parseError([]byte(tc.body))
		if !ok || msg != tc.msg || typ != tc.typ || code != tc.code {
			t.Errorf("%s: %q %q %q %v", tc.body, msg, typ, code, ok)
		}
	}
	for _, body := range []string{`{"choices":[]}`, `{"error":null,"choices":[]}`, `not json`, `[1]`} {
		if _, _, _, ok := parseError([]byte(body)); ok {
			t.Errorf("%s parsed as an error", body)
		}
	}
	e := statusError("http://h/v1/completions", 502, []byte("<html>Bad Gateway</html>"))
	if e.Error() != "http://h/v1/completions: HTTP 502: <html>Bad Gateway</html>" {
		t.Error(e)
	}
}

// eventReader returns one SSE event per Read, so each has its own arrival time.
type eventReader struct{ events []string }

func (r *eventReader) Read(p []byte) (int, error) {
	if len(r.events) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.events[0])
	r.events[0] = r.events[0][n:]
	if r.events[0] == "" {
		r.events = r.events[1:]
	}
	return n, nil
}

func stream(t *testing.T, events ...string) (*StreamResult, error) {
	t.Helper()
	start := time.Unix(1000, 0)
	tick := 0
	for i := range events {
		events[i] = "data: " + events[i] + "\n\n"
	}
	return readStream("test", &eventReader{events: events}, start, func() time.Time {
		tick++
		return start.Add(time.Duration(tick) * 10 * time.Millisecond)
	}, nil)
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// Token accounting: running usage gives tokens per chunk (merged chunks, held-back text);
// without it each text chunk is one token and the final usage reconciles the count.
func TestTokenAccounting(t *testing.T) {
	const c = `{"object":"text_completion","choices":[{"index":0,"text":%q,"finish_reason":%s}]%s}`
	chunk := func(text, finish string, running int) string {
		u := ""
		if running > 0 {
			u = `,"usage":{"prompt_tokens":5,"total_tokens":0,"completion_tokens":` + itoa(running) + `}`
		}
		if finish == "" {
			finish = "null"
		} else {
			finish = `"` + finish + `"`
		}
		return sprintf(c, text, finish, u)
	}
	final := `{"object":"text_completion","choices":[],"usage":{"prompt_tokens":5,"total_tokens":11,"completion_tokens":6}}`

	// Running totals: 1, 2 (empty text), 4 (two merged), 5, 6.
	res, err := stream(t, chunk("a", "", 1), chunk("", "", 2), chunk("bc", "", 4), chunk("d", "", 5), chunk("e", "length", 6), final, "[DONE]")
	if err != nil {
		t.Fatal(err)
	}
	if !res.PerChunk || !reflect.DeepEqual(res.TokenTimes, ms(10, 20, 30, 30, 40, 50)) || res.FinishReason != "length" || res.End != 70*time.Millisecond || res.FirstByte != 10*time.Millisecond {
		t.Fatalf("%+v", res)
	}
	times, note, err := res.DecodeTimes()
	if err != nil || note != "" || len(times) != 6 {
		t.Fatalf("%v %q %v", times, note, err)
	}

	// No running totals: 4 text chunks for 6 tokens; the rate counts 6 tokens from the first
	// to the last text chunk.
	res, err = stream(t, chunk("a", "", 0), chunk("", "", 0), chunk("bc", "", 0), chunk("d", "", 0), chunk("e", "length", 0), final, "[DONE]")
	if err != nil {
		t.Fatal(err)
	}
	if res.PerChunk || !reflect.DeepEqual(res.TokenTimes, ms(10, 30, 40, 50)) {
		t.Fatalf("%+v", res)
	}
	times, note, err = res.DecodeTimes()
	if err != nil || !reflect.DeepEqual(times, ms(10, 30, 40, 50, 50, 50)) || !strings.Contains(note, "usage reports 6 output tokens, the chunks accounted for 4") {
		t.Fatalf("%v %q %v", times, note, err)
	}
	// More text chunks than tokens: first and last kept.
	res, _ = stream(t, chunk("a", "", 0), chunk("b", "", 0), chunk("c", "", 0), chunk("d", "", 0), `{"choices":[],"usage":{"completion_tokens":3}}`, "[DONE]")
	if times, _, err := res.DecodeTimes(); err != nil || !reflect.DeepEqual(times, ms(10, 20, 40)) {
		t.Fatalf("%v %v", times, err)
	}

	for _, tc := range []struct {
		name   string
		events []string
		want   string
	}{
		{"no usage", []string{chunk("a", "", 0), chunk("b", "", 0), "[DONE]"}, "no usage in the stream"},
		{"one token", []string{chunk("a", "length", 1), `{"choices":[],"usage":{"completion_tokens":1}}`, "[DONE]"}, "a decode rate needs at least 2"},
		{"not streamed", []string{`{"choices":[{"text":"abc","finish_reason":"length"}],"usage":{"completion_tokens":3}}`, "[DONE]"}, "arrived at once"},
		{"no text", []string{chunk("", "length", 0), `{"choices":[],"usage":{"completion_tokens":3}}`, "[DONE]"}, "no chunk carried text"},
	} {
		res, err := stream(t, tc.events...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, _, err := res.DecodeTimes(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	for _, tc := range []struct {
		name   string
		events []string
		want   string
	}{
		{"no [DONE]", []string{chunk("a", "", 1)}, "ended without data: [DONE]"},
		{"garbage", []string{"{oops"}, "chunk 1 is not a completion chunk"},
		{"wrong shape", []string{`{"choices":"x"}`}, "chunk 1 is not a completion chunk"},
		{"empty object", []string{`{}`}, "neither choices nor usage"},
		{"choice without text", []string{`{"choices":[{"index":0}]}`}, "choice without text"},
		{"usage going down", []string{chunk("a", "", 2), chunk("b", "", 1)}, "went down"},
	} {
		if _, err := stream(t, tc.events...); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// An error object mid-stream, in either of vLLM's shapes, is the server's error.
	for _, e := range []string{`{"error":{"message":"oom","type":"InternalServerError","code":500}}`, `{"object":"error","message":"oom","type":"InternalServerError","code":500}`} {
		_, err := stream(t, chunk("a", "", 1), e, "[DONE]")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 0 || ae.Message != "oom" || ae.Code != "500" || !strings.Contains(err.Error(), "error in the stream: InternalServerError: oom") {
			t.Errorf("%s: %v", e, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestFromKnobs(t *testing.T) {
	c, err := FromKnobs(knobs.Resolve(nil), "/logs", "20261127_000000")
	if err != nil {
		t.Fatal(err)
	}
	if c.PortA != 11435 || c.PortB != 11436 || c.MaxModelLen != 4096 || c.MaxTokens != 256 || c.DType != "float16" || c.GPUMemUtil != 0.9 ||
		c.Temperature != 0 || c.ReadyTimeout != DefaultReady || c.RequestTimeout != DefaultTimeout || c.Prompt != DefaultPrompt || len(c.Models) != 3 {
		t.Fatalf("defaults %+v", c)
	}
	c, err = FromKnobs(knobs.Resolve([]string{
		"BENCH_NUM_CTX=2048", "CTX=8192", "BENCH_NUM_PREDICT=32", "PRED=99", "VLLM_READY_SECS=90", "VLLM_TIMEOUT_SECS=12.5",
		"MODELS=q:0.5b|qwen-0.5b|Qwen/Qwen2.5-0.5B-Instruct", "VLLM_MODEL_qwen_0_5b=Qwen/Qwen2.5-1.5B-Instruct", "PROMPT=hi",
	}), "/logs", "x")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxModelLen != 2048 || c.MaxTokens != 32 || c.ReadyTimeout != 90*time.Second || c.RequestTimeout != 12500*time.Millisecond || c.Prompt != "hi" ||
		len(c.Models) != 1 || c.Models[0].HF != "Qwen/Qwen2.5-1.5B-Instruct" || c.Models[0].Source != "VLLM_MODEL_qwen_0_5b (from environment)" {
		t.Fatalf("set %+v", c)
	}
	if c, err := FromKnobs(knobs.Resolve([]string{"CTX=8192", "PRED=99"}), "", ""); err != nil || c.MaxModelLen != 8192 || c.MaxTokens != 99 {
		t.Fatalf("CTX/PRED %+v %v", c, err)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"GPU_MEM_UTIL=1.5"}, `GPU_MEM_UTIL="1.5" (from environment): want a fraction in (0, 1]`},
		{[]string{"PORT_B=11435"}, `PORT_B="11435" (from environment): must differ from PORT_A`},
		{[]string{"BENCH_NUM_PREDICT=1"}, `BENCH_NUM_PREDICT="1" (from environment): want at least 2 tokens`},
		{[]string{"CTX=64", "PRED=64"}, `CTX="64" (from environment): --max-model-len must exceed the 64 tokens to generate (PRED)`},
		{[]string{"PORT_A=x"}, `PORT_A="x" (from environment)`},
		{[]string{"VLLM_READY_SECS=0"}, `VLLM_READY_SECS="0" (from environment): want a number of seconds > 0`},
		{[]string{"MODELS=a|b"}, `MODELS entry "a|b"`},
	} {
		if _, err := FromKnobs(knobs.Resolve(tc.env), "", ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v", tc.env, err)
		}
	}
	s := LauncherSearchFromKnobs(knobs.Resolve([]string{"VLLM_PYTHON=/venv/bin/python"}))
	if s.Python != "/venv/bin/python" || s.Bin != "" || s.PythonBin != "python3" || s.VenvPython != DefaultVenvPython {
		t.Fatalf("%+v", s)
	}
}
