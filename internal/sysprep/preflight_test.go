package sysprep

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fuze-ai/fuze/internal/ollamatest"
)

// healthyMachine is a GPU host with every stack installed, a persistent Ollama answering and
// free test ports.
func healthyMachine(t *testing.T) (*Fake, Host, func(string) string) {
	t.Helper()
	f := &Fake{Programs: map[string]func([]string) FakeResult{
		"nvidia-smi":    nvidiaSMI,
		"nvcc":          out("nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.8, V12.8.93\n"),
		"ollama":        out("ollama version is 0.17.4\n"),
		"llama-server":  func([]string) FakeResult { return FakeResult{Stderr: "version: 6123 (abc1234)\nbuilt with cc\n"} },
		"vllm":          out("INFO 01-01 some log line\n0.10.1\n"),
		"tritonserver":  out(""),
		"perf_analyzer": out(""),
	}}
	h := testHost(t, f)
	_, persistent := fakeOllamaAPI(t)
	store := filepath.Join(t.TempDir(), "ollama")
	writeFile(t, filepath.Join(store, "manifests", "registry.ollama.ai", "library", "tiny", "latest"), "{}")
	writeFile(t, filepath.Join(store, "blobs", "sha256-aa"), strings.Repeat("x", 2048))
	gguf := t.TempDir()
	writeFile(t, filepath.Join(gguf, "tiny.gguf"), "GGUF")
	get := config(
		"OLLAMA_BIN=ollama",
		"OLLAMA_MODELS_DIR="+store,
		"GGUF_DEST_DIR="+gguf,
		"LOG_DIR="+t.TempDir(),
		"HOME="+t.TempDir(),
		"PERSISTENT_PORT="+strconv.Itoa(persistent),
		"TEST_PORT_A="+strconv.Itoa(freePort(t)),
		"TEST_PORT_B="+strconv.Itoa(freePort(t)),
		"PORT_A="+strconv.Itoa(freePort(t)),
		"PORT_B="+strconv.Itoa(freePort(t)),
		"TRITON_HTTP_A=127.0.0.1:"+strconv.Itoa(freePort(t)),
		"TRITON_HTTP_B=127.0.0.1:"+strconv.Itoa(freePort(t)),
	)
	return f, h, get
}

func find(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func TestPreflightAllOK(t *testing.T) {
	_, h, get := healthyMachine(t)
	rep := Preflight(context.Background(), PreflightOptions{Host: h, Get: get, RepoRoot: t.TempDir()})
	for _, c := range rep.Checks {
		if c.Status != StatusOK {
			t.Errorf("%s/%s: %s %s", c.Section, c.Name, c.Status, c.Message)
		}
	}
	if rep.Failed() {
		t.Fatal("Failed() on a healthy machine")
	}
	sections := map[string]bool{}
	for _, c := range rep.Checks {
		sections[c.Section] = true
	}
	for _, s := range []string{SectionSystem, SectionGPU, SectionBinaries, SectionServices, SectionStores, SectionLogs} {
		if !sections[s] {
			t.Errorf("section %q missing", s)
		}
	}
	for name, want := range map[string]string{
		"os":           "Debian GNU/Linux 12 (bookworm)",
		"memory":       "62.8 GiB",
		"gpu 0":        "NVIDIA H100 80GB HBM3, 81559 MiB, nvidia-h100-80gb",
		"driver":       "570.133.07, CUDA 12.8 (driver API)",
		"cuda toolkit": "nvcc 12.8",
		"ollama":       "0.17.4 (/fake/bin/ollama",
		"llama.cpp":    "6123 (abc1234)",
		"vLLM":         "0.10.1",
		"persistent":   "Ollama 0.0.0-fake answering, pid " + strconv.Itoa(os.Getpid()),
		"ollama store": "1 model(s)",
		"gguf dir":     "1 GGUF file(s)",
	} {
		if c := find(t, rep, name); !strings.Contains(c.Message, want) {
			t.Errorf("%s: %q does not contain %q", name, c.Message, want)
		}
	}

	// Text: one aligned column of messages, no colour unless asked.
	var text bytes.Buffer
	if err := rep.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "\x1b[") {
		t.Error("colour codes without colour")
	}
	col := -1
	lines := strings.Split(text.String(), "\n")
	for _, c := range rep.Checks {
		var line string
		for _, l := range lines {
			if strings.HasPrefix(l, "  ✔ "+c.Name+" ") && strings.HasSuffix(l, c.Message) {
				line = l
				break
			}
		}
		if line == "" {
			t.Fatalf("no line for %s in\n%s", c.Name, text.String())
		}
		at := utf8.RuneCountInString(line[:len(line)-len(c.Message)])
		if col == -1 {
			col = at
		} else if at != col {
			t.Errorf("message of %s starts at column %d, others at %d:\n%s", c.Name, at, col, text.String())
		}
	}
	if !strings.Contains(text.String(), "== "+SectionGPU+"\n") || !strings.HasSuffix(text.String(), "Preflight OK: all key prerequisites look good\n") {
		t.Errorf("sections or verdict missing:\n%s", text.String())
	}
	var colored bytes.Buffer
	rep.WriteText(&colored, true)
	if !strings.Contains(colored.String(), "\x1b[32m✔\x1b[0m") {
		t.Error("no colour when asked")
	}
}

func TestPreflightOllamaMissing(t *testing.T) {
	f, h, _ := healthyMachine(t)
	delete(f.Programs, "ollama")
	delete(f.Programs, "vllm")
	delete(f.Programs, "perf_analyzer")
	get := config("OLLAMA_BIN="+filepath.Join(t.TempDir(), "ollama"), "LOG_DIR="+t.TempDir(), "HOME="+t.TempDir(),
		"OLLAMA_MODELS_DIR="+filepath.Join(t.TempDir(), "absent"), "PERSISTENT_PORT="+strconv.Itoa(freePort(t)))
	rep := Preflight(context.Background(), PreflightOptions{Host: h, Get: get})
	if !rep.Failed() {
		t.Fatal("ollama missing must fail preflight")
	}
	if c := find(t, rep, "ollama"); c.Status != StatusError || !strings.Contains(c.Message, "fuze ollama install") {
		t.Errorf("ollama check %+v", c)
	}
	for _, name := range []string{"vLLM", "perf_analyzer", "persistent", "ollama store"} {
		if c := find(t, rep, name); c.Status != StatusWarn {
			t.Errorf("%s: want warn, got %+v", name, c)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Checks  []Check        `json:"checks"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, buf.String())
	}
	if len(doc.Checks) != len(rep.Checks) || doc.Summary["error"] != rep.Count(StatusError) || doc.Summary["warn"] != rep.Count(StatusWarn) {
		t.Errorf("JSON %+v", doc.Summary)
	}
	var text bytes.Buffer
	rep.WriteText(&text, false)
	if !regexp.MustCompile(`(?m)^  ✖ ollama +not found`).MatchString(text.String()) || !strings.Contains(text.String(), "Preflight found 1 error(s)") {
		t.Errorf("text:\n%s", text.String())
	}
}

func TestPreflightNoGPUAndPCIOnly(t *testing.T) {
	f, h, get := healthyMachine(t)
	delete(f.Programs, "nvidia-smi")
	delete(f.Programs, "nvcc")
	rep := Preflight(context.Background(), PreflightOptions{Host: h, Get: get})
	if c := find(t, rep, "gpu"); c.Status != StatusWarn || !strings.Contains(c.Message, "no NVIDIA GPU") {
		t.Errorf("%+v", c)
	}
	if c := find(t, rep, "cuda toolkit"); c.Status != StatusOK {
		t.Errorf("%+v", c)
	}
	addNVIDIAPCI(t, h)
	rep = Preflight(context.Background(), PreflightOptions{Host: h, Get: get})
	if c := find(t, rep, "gpu"); c.Status != StatusWarn || !strings.Contains(c.Message, "0000:01:00.0") || strings.Contains(c.Message, "0000:00:1f.0") {
		t.Errorf("%+v", c)
	}
	if c := find(t, rep, "cuda toolkit"); c.Status != StatusWarn {
		t.Errorf("%+v", c)
	}
}

// The real Ollama binary: its version line is parsed.
func TestPreflightRealOllama(t *testing.T) {
	bin := ollamatest.Binary(t)
	h := testHost(t, ExecRunner{})
	get := config("OLLAMA_BIN="+bin, "LOG_DIR="+t.TempDir(), "HOME="+t.TempDir(), "PERSISTENT_PORT="+strconv.Itoa(freePort(t)),
		"OLLAMA_HOST=127.0.0.1:"+strconv.Itoa(freePort(t)))
	rep := Preflight(context.Background(), PreflightOptions{Host: h, Get: get})
	c := find(t, rep, "ollama")
	if c.Status != StatusOK || !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\S* \(`+regexp.QuoteMeta(bin)+`\)$`).MatchString(c.Message) {
		t.Fatalf("ollama check %+v", c)
	}
}

func TestOllamaVersion(t *testing.T) {
	for in, want := range map[string]string{
		"ollama version is 0.17.4\n": "0.17.4",
		"Warning: could not connect to a running Ollama instance\nWarning: client version is 0.17.4\n": "0.17.4",
		"ollama version is 0.5.0\nWarning: client version is 0.17.4\n":                                 "0.17.4",
		"garbage": "",
	} {
		if got := OllamaVersion([]byte(in)); got != want {
			t.Errorf("OllamaVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
