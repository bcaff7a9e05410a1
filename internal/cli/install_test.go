package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/sysprep"
)

// `fuze stack @env <stack> install` reaches the installers with the env file's knobs; flags
// are the installers' own.
func TestStackInstallDispatch(t *testing.T) {
	ok := func([]string) sysprep.FakeResult { return sysprep.FakeResult{} }
	f := useFakeHost(t, map[string]func([]string) sysprep.FakeResult{"cmake": ok, "c++": ok, "cc": ok, "make": ok, "git": ok, "python3": ok, "docker": ok})
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "install.env")
	content := "LLAMACPP_SRC=" + src + "\nLLAMACPP_BIN=" + filepath.Join(dir, "bin", "llama-server") + "\n" +
		"VLLM_PYTHON=" + filepath.Join(dir, "venv", "bin", "python") + "\nVLLM_WHEELS=" + filepath.Join(dir, "wheels") + "\n" +
		"TRITON_HTTP_A=127.0.0.1:18000\n"
	if err := os.WriteFile(env, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runFuze(t, context.Background(), "stack", "@"+env, "llama.cpp", "install", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "  cmake -S "+src+" -B "+src+"/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=OFF -DLLAMA_CURL=OFF\n") ||
		!strings.Contains(stdout, "runs LLAMACPP_BIN="+filepath.Join(dir, "bin", "llama-server")) {
		t.Errorf("llama.cpp: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runFuze(t, context.Background(), "stack", "@"+env, "vllm", "install", "--dry-run", "--cpu")
	py := filepath.Join(dir, "venv", "bin", "python")
	if code != 0 || !strings.Contains(stdout, "  python3 -m venv "+filepath.Join(dir, "venv")+"\n") ||
		!strings.Contains(stdout, "  "+py+" -m pip install --no-index --find-links "+filepath.Join(dir, "wheels")+" torch\n") ||
		!strings.Contains(stdout, "runs VLLM_PYTHON="+py) {
		t.Errorf("vLLM: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runFuze(t, context.Background(), "stack", "@"+env, "triton", "install")
	if code != 0 || !strings.Contains(stdout, "nothing for fuze to install") || !strings.Contains(stdout, "-p 127.0.0.1:18000:8000") {
		t.Errorf("Triton: exit %d\n%s%s", code, stdout, stderr)
	}

	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "cmake") || strings.HasPrefix(c, "git") || strings.Contains(c, "-m pip") || strings.Contains(c, "-m venv") {
			t.Errorf("a dry run ran %s", c)
		}
	}

	code, _, stderr = runFuze(t, context.Background(), "stack", "llama.cpp", "install", "--bogus")
	if code != ExitUsage || !strings.Contains(stderr, "unknown flag: --bogus") {
		t.Errorf("bad flag: exit %d: %s", code, stderr)
	}
}

// No help text, and no install command, says "not implemented".
func TestNothingSaysNotImplemented(t *testing.T) {
	useFakeHost(t, map[string]func([]string) sysprep.FakeResult{})
	for _, args := range [][]string{
		{"--help"}, {"stack", "--help"},
		{"stack", "vLLM", "install", "--help"}, {"stack", "llama.cpp", "install", "--help"}, {"stack", "Triton", "install", "--help"},
		{"stack", "Triton", "install"},
	} {
		code, stdout, stderr := runFuze(t, context.Background(), args...)
		if code != 0 || strings.Contains(stdout+stderr, "not implemented") {
			t.Errorf("fuze %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}
