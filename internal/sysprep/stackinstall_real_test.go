package sysprep

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// These tests run the installers for real: CMake and the C compiler on a stand-in llama.cpp
// tree (testdata/fake-llama.cpp), python3's venv and pip on wheels built here. Missing tools
// skip them, unless FUZE_REQUIRE_BUILD_TOOLS=1 (make test sets it; scripts/ensure-build-deps.sh
// installs the tools) turns the skip into a failure.

func requireTools(t *testing.T, why string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("FUZE_REQUIRE_BUILD_TOOLS") == "1" {
		t.Fatalf("%s (FUZE_REQUIRE_BUILD_TOOLS=1; scripts/ensure-build-deps.sh installs it)", why)
	}
	t.Skip(why)
}

// cpuOnlyRunner runs real programs but hides nvidia-smi and nvcc, so a test sees a CPU-only
// machine wherever it runs.
type cpuOnlyRunner struct{ ExecRunner }

func hiddenGPU(name string) bool {
	b := filepath.Base(name)
	return b == "nvidia-smi" || b == "nvcc"
}

func (r cpuOnlyRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	if hiddenGPU(name) {
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return r.ExecRunner.Output(ctx, name, args...)
}

func (r cpuOnlyRunner) LookPath(name string) (string, error) {
	if hiddenGPU(name) {
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return r.ExecRunner.LookPath(name)
}

// The CPU path end to end: CMake configures and builds only the llama-server target of a
// source directory, and the binary lands at LLAMACPP_BIN and runs.
func TestLlamaCppInstallRealCPUBuild(t *testing.T) {
	_, cmakeErr := exec.LookPath("cmake")
	_, ccErr := exec.LookPath("cc")
	_, makeErr := exec.LookPath("make")
	requireTools(t, "cmake, cc and make are needed to build the stand-in llama.cpp", cmakeErr == nil && ccErr == nil && makeErr == nil)

	src := filepath.Join(t.TempDir(), "llama.cpp")
	if err := copyTree(filepath.Join("testdata", "fake-llama.cpp"), src); err != nil {
		t.Fatal(err)
	}
	h := testHost(t, cpuOnlyRunner{})
	h.UID = os.Geteuid()
	dest := filepath.Join(t.TempDir(), "bin", "llama-server")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := LlamaCppInstall(ctx, LlamaCppInstallOptions{
		Host: h, Source: src, Dir: filepath.Join(t.TempDir(), "unused"),
		CMakeArgs: []string{"-DLLAMA_CURL=OFF"}, Dest: dest, DestFromKnob: true, Jobs: 2, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got, err := exec.Command(dest, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), "built with the CPU backend") {
		t.Fatalf("%s --version: %v\n%s\ninstall output:\n%s", dest, err, got, out.String())
	}
	for _, want := range []string{"→ CPU build", "-DGGML_CUDA=OFF", "✔ installed " + dest + " (CPU build of " + src + ")", "--version: 0 (fake-llama.cpp)", "runs LLAMACPP_BIN=" + dest} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(src, "build", "bin", "other-tool")); err == nil {
		t.Error("built more than the llama-server target")
	}
}

// writeWheel writes a pure-Python wheel of name==version holding files, as a build backend
// would (METADATA, WHEEL, RECORD with hashes): pip installs it offline.
func writeWheel(t *testing.T, dir, name, version string, files map[string]string) {
	t.Helper()
	info := fmt.Sprintf("%s-%s.dist-info/", name, version)
	all := map[string]string{
		info + "METADATA": fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version),
		info + "WHEEL":    "Wheel-Version: 1.0\nGenerator: fuze-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for k, v := range files {
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(all[n]))
		sum := sha256.Sum256([]byte(all[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[n]))
	}
	record.WriteString(info + "RECORD,,\n")
	w, err := zw.Create(info + "RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", name, version)), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The CPU path end to end, offline: python3 -m venv, then pip --no-index --find-links of a
// wheel directory (VLLM_WHEELS) with stand-in torch, vllm and huggingface_hub wheels.
func TestVLLMInstallRealVenv(t *testing.T) {
	probe := exec.Command("python3", "-c", "import venv, ensurepip")
	requireTools(t, "python3 with the venv and ensurepip modules (python3-venv) is needed", probe.Run() == nil)

	wheels := t.TempDir()
	writeWheel(t, wheels, "torch", "2.0.0", map[string]string{"torch/__init__.py": "__version__ = '2.0.0+fake'\n"})
	writeWheel(t, wheels, "vllm", "0.6.0", map[string]string{
		"vllm/__init__.py":                      "__version__ = '0.6.0'\n",
		"vllm/entrypoints/__init__.py":          "",
		"vllm/entrypoints/openai/__init__.py":   "",
		"vllm/entrypoints/openai/api_server.py": "raise SystemExit('stand-in vLLM: serves nothing')\n",
	})
	writeWheel(t, wheels, "huggingface_hub", "0.1.0", map[string]string{"huggingface_hub/__init__.py": ""})

	h := testHost(t, cpuOnlyRunner{})
	h.UID = os.Geteuid()
	venv := filepath.Join(t.TempDir(), "vllm-venv")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := VLLMInstall(ctx, VLLMInstallOptions{
		Host: h, Python: "python3", Venv: venv,
		DefaultPython: filepath.Join(t.TempDir(), "default", "bin", "python"),
		Wheels:        wheels,
		Packages:      []string{"vllm>=0.5.0", "huggingface_hub"},
		Out:           &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	py := filepath.Join(venv, "bin", "python")
	got, err := exec.Command(py, "-c", "import torch, vllm, huggingface_hub; print(torch.__version__, vllm.__version__)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "2.0.0+fake 0.6.0" {
		t.Fatalf("%s: %v\n%s\ninstall output:\n%s", py, err, got, out.String())
	}
	for _, want := range []string{"→ CPU PyTorch wheels", "--no-index --find-links " + wheels + " torch", "✔ vLLM 0.6.0 in " + venv, "set VLLM_PYTHON=" + py} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "--upgrade pip") {
		t.Errorf("upgraded pip with a wheel directory:\n%s", out.String())
	}
}
