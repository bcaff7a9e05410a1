package sysprep

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ---- fakes shared by the llama.cpp and vLLM installer tests ----

// installFake is a Debian host (root, temporary paths) with the build tools, git and
// python3 installed as recording fakes; gpu adds an nvidia-smi that lists an H100 and nvcc.
func installFake(t *testing.T, gpu bool) (*Fake, Host) {
	t.Helper()
	f := &Fake{Programs: map[string]func([]string) FakeResult{}}
	debianRepo(f)
	for _, p := range []string{"cmake", "c++", "cc", "make", "git", "apt-get"} {
		f.Programs[p] = out("")
	}
	if gpu {
		f.Programs["nvidia-smi"] = nvidiaSMI
		f.Programs["nvcc"] = out("Cuda compilation tools, release 12.8, V12.8.93")
	}
	return f, testHost(t, f)
}

// ran returns the recorded command lines of the given programs (base names), in order.
func ran(calls []string, programs ...string) []string {
	var got []string
	for _, c := range calls {
		name, _, _ := strings.Cut(c, " ")
		if q, rest, ok := strings.Cut(c, "'"); ok && q == "" { // a quoted program path
			name, _, _ = strings.Cut(rest, "'")
		}
		for _, p := range programs {
			if filepath.Base(name) == p {
				got = append(got, c)
			}
		}
	}
	return got
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// planOf returns the lines of the "Plan:" block of an installer's output.
func planOf(output string) []string {
	_, rest, ok := strings.Cut(output, "Plan:\n")
	if !ok {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	return lines
}

// fakeCMakeBuild makes the fake cmake's --build write bin/llama-server into the build dir.
func fakeCMakeBuild(t *testing.T, f *Fake) {
	f.Programs["cmake"] = func(args []string) FakeResult {
		if len(args) > 1 && args[0] == "--build" {
			bin := filepath.Join(args[1], "bin", "llama-server")
			if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(bin, []byte("#!/bin/sh\necho fake\n"), 0o755); err != nil {
				t.Error(err)
			}
		}
		return FakeResult{Stdout: "-- Build files have been written\n"}
	}
	f.Programs["llama-server"] = out("version: 4242 (deadbeef)\nbuilt with cc for x86_64-linux-gnu\n")
}

// ---- llama.cpp ----

const llamaURL = "https://example.invalid/llama.cpp.git"

func llamaOpts(t *testing.T, h Host, out *bytes.Buffer) LlamaCppInstallOptions {
	dir := t.TempDir()
	return LlamaCppInstallOptions{
		Host:      h,
		Source:    llamaURL,
		Dir:       filepath.Join(dir, "llama.cpp"),
		CMakeArgs: []string{"-DLLAMA_CURL=OFF"},
		Dest:      filepath.Join(dir, "bin", "llama-server"),
		Jobs:      4,
		Out:       out,
	}
}

func TestLlamaCppInstallGPUDryRun(t *testing.T) {
	f, h := installFake(t, true)
	h.UID = 1000 // a dry run needs no root
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	o.Ref = "b4500"
	o.DryRun = true
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, "plan", planOf(out.String()), []string{
		"fuze gpu-prepare (NVIDIA driver and CUDA toolkit when missing)",
		"git clone --depth 1 --branch b4500 " + llamaURL + " " + o.Dir,
		"cmake -S " + o.Dir + " -B " + o.Dir + "/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=ON -DLLAMA_CURL=OFF",
		"cmake --build " + o.Dir + "/build --config Release --target llama-server -j 4",
		"install " + o.Dir + "/build/bin/llama-server as " + o.Dest + " (copy, then rename)",
	})
	for _, want := range []string{"NVIDIA GPU: NVIDIA H100 80GB HBM3 (nvidia-smi) → gpu-prepare, then a CUDA build", "== fuze gpu-prepare --dry-run", "Nothing to do", "Dry run: nothing was changed."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got := ran(f.Calls(), "git", "cmake", "apt-get"); len(got) > 0 {
		t.Errorf("a dry run ran %q", got)
	}
	if _, err := os.Stat(filepath.Dir(o.Dest)); err == nil {
		t.Errorf("a dry run created %s", filepath.Dir(o.Dest))
	}
}

func TestLlamaCppInstallGPURun(t *testing.T) {
	f, h := installFake(t, true)
	fakeCMakeBuild(t, f)
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, "commands", ran(f.Calls(), "nvidia-smi", "git", "cmake", "apt-get", "llama-server"), []string{
		"nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,pci.bus_id,power.limit --format=csv,noheader,nounits", // detection
		"nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,pci.bus_id,power.limit --format=csv,noheader,nounits", // gpu-prepare
		"git clone --depth 1 " + llamaURL + " " + o.Dir,
		"cmake -S " + o.Dir + " -B " + o.Dir + "/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=ON -DLLAMA_CURL=OFF",
		"cmake --build " + o.Dir + "/build --config Release --target llama-server -j 4",
		o.Dest + " --version",
	})
	if b, err := os.ReadFile(o.Dest); err != nil || !strings.Contains(string(b), "echo fake") {
		t.Errorf("%s: %q %v", o.Dest, b, err)
	}
	for _, want := range []string{"== fuze gpu-prepare", "✔ installed " + o.Dest + " (CUDA build of " + llamaURL + ")", "--version: 4242 (deadbeef)", "set LLAMACPP_BIN=" + o.Dest} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// A second install updates the checkout instead of cloning, and the knob form of Dest
	// is reported as such.
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.Programs["git"] = func(args []string) FakeResult {
		if strings.Join(args[2:], " ") == "remote get-url origin" {
			return FakeResult{Stdout: strings.TrimSuffix(llamaURL, ".git") + "\n"}
		}
		return FakeResult{}
	}
	before := len(f.Calls())
	out.Reset()
	o.DestFromKnob = true
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, "update", ran(f.Calls()[before:], "git"), []string{
		"git -C " + o.Dir + " remote get-url origin",
		"git -C " + o.Dir + " fetch --depth 1 origin HEAD",
		"git -C " + o.Dir + " reset --hard FETCH_HEAD",
	})
	if !strings.Contains(out.String(), "already up to date: "+o.Dest) || !strings.Contains(out.String(), "runs LLAMACPP_BIN="+o.Dest) {
		t.Errorf("second run:\n%s", out.String())
	}

	// A directory that is a checkout of something else is left alone.
	f.Programs["git"] = func([]string) FakeResult { return FakeResult{Stdout: "https://example.invalid/someone-else.git\n"} }
	out.Reset()
	err := LlamaCppInstall(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "is a checkout of https://example.invalid/someone-else.git") {
		t.Errorf("err = %v", err)
	}
}

func TestLlamaCppInstallNoGPU(t *testing.T) {
	f, h := installFake(t, false)
	fakeCMakeBuild(t, f)
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "no NVIDIA GPU (nvidia-smi lists none, none on the PCI bus) → CPU build") {
		t.Errorf("output:\n%s", out.String())
	}
	wantLines(t, "commands", ran(f.Calls(), "git", "cmake", "apt-get", "apt-cache", "dpkg-query"), []string{
		"git clone --depth 1 " + llamaURL + " " + o.Dir,
		"cmake -S " + o.Dir + " -B " + o.Dir + "/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=OFF -DLLAMA_CURL=OFF",
		"cmake --build " + o.Dir + "/build --config Release --target llama-server -j 4",
	})
	if strings.Contains(out.String(), "gpu-prepare") {
		t.Errorf("gpu-prepare without a GPU:\n%s", out.String())
	}
}

// nvcc outside PATH, under the CUDA prefix (NVIDIA's packages put it there): CMake is told.
func TestLlamaCppInstallNVCCUnderCUDAHome(t *testing.T) {
	f, h := installFake(t, true)
	delete(f.Programs, "nvcc")
	nvcc := filepath.Join(h.CUDAHome, "bin", "nvcc")
	writeFile(t, nvcc, "")
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	o.DryRun = true
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(planOf(out.String()), "\n"); !strings.Contains(p, "-DGGML_CUDA=ON -DCMAKE_CUDA_COMPILER="+nvcc+" -DLLAMA_CURL=OFF") {
		t.Errorf("plan:\n%s", p)
	}
}

// --cpu skips the GPU entirely: no nvidia-smi, no gpu-prepare, GGML_CUDA=OFF.
func TestLlamaCppInstallCPUFlag(t *testing.T) {
	f, h := installFake(t, true)
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	o.CPU, o.DryRun = true, true
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := ran(f.Calls(), "nvidia-smi"); len(got) > 0 {
		t.Errorf("--cpu ran %q", got)
	}
	if p := strings.Join(planOf(out.String()), "\n"); !strings.Contains(p, "-DGGML_CUDA=OFF") || strings.Contains(p, "gpu-prepare") {
		t.Errorf("plan:\n%s", p)
	}
}

// A GPU without a driver (PCI only): gpu-prepare installs driver and CUDA through apt; when
// nvcc is still missing afterwards, the install stops before building and says --cpu.
func TestLlamaCppInstallGPUWithoutNVCC(t *testing.T) {
	f, h := installFake(t, false)
	addNVIDIAPCI(t, h)
	fakeCMakeBuild(t, f)
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	err := LlamaCppInstall(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "nvcc (the CUDA toolkit) is not, even after gpu-prepare") || !strings.Contains(err.Error(), "--cpu") {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	wantLines(t, "commands", ran(f.Calls(), "apt-get", "git", "cmake"), []string{
		"apt-get update",
		"apt-get install -y linux-headers-" + testKernel + " nvidia-driver firmware-misc-nonfree",
		"apt-get install -y nvidia-cuda-toolkit",
		"git clone --depth 1 " + llamaURL + " " + o.Dir,
	})
}

func TestLlamaCppInstallMissingTools(t *testing.T) {
	f, h := installFake(t, false)
	delete(f.Programs, "cmake")
	delete(f.Programs, "make")
	var out bytes.Buffer
	o := llamaOpts(t, h, &out)
	o.DryRun = true
	if err := LlamaCppInstall(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if p := planOf(out.String()); len(p) < 2 || p[0] != "apt-get update" || p[1] != "apt-get install -y --no-install-recommends build-essential cmake" {
		t.Errorf("plan:\n%s", strings.Join(p, "\n"))
	}
	h.UID = 1000
	o.Host, o.DryRun = h, false
	err := LlamaCppInstall(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "cmake, make not found: installing build-essential cmake needs root") {
		t.Errorf("err = %v", err)
	}
	if got := ran(f.Calls(), "apt-get", "git", "cmake"); len(got) > 0 {
		t.Errorf("ran %q", got)
	}
}

func TestLlamaCppInstallSourceErrors(t *testing.T) {
	_, h := installFake(t, false)
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, "x")
	for src, want := range map[string]string{
		"":                  "LLAMACPP_SRC is empty",
		"no/such/dir":       "neither an existing directory nor a git URL",
		file:                "is a file",
		"git@host:repo.git": "",
	} {
		o := llamaOpts(t, h, &bytes.Buffer{})
		o.Source, o.DryRun = src, true
		err := LlamaCppInstall(context.Background(), o)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("LLAMACPP_SRC=%q: err = %v, want %q", src, err, want)
		}
	}
}

// ---- vLLM ----

// fakePython makes python3 create a venv (pyvenv.cfg, bin/python) and the venv's python
// answer pip and the version probe.
func fakePython(t *testing.T, f *Fake) {
	f.Programs["python3"] = func(args []string) FakeResult {
		if len(args) == 3 && args[0] == "-m" && args[1] == "venv" {
			writeFile(t, filepath.Join(args[2], "pyvenv.cfg"), "home = /usr/bin\n")
			writeFile(t, filepath.Join(args[2], "bin", "python"), "")
		}
		return FakeResult{}
	}
	f.Programs["python"] = func(args []string) FakeResult {
		if len(args) == 2 && args[0] == "-c" {
			return FakeResult{Stdout: "0.6.3\n"}
		}
		return FakeResult{Stdout: "Successfully installed\n"}
	}
}

func vllmOpts(t *testing.T, h Host, out *bytes.Buffer) VLLMInstallOptions {
	dir := t.TempDir()
	return VLLMInstallOptions{
		Host:          h,
		Python:        "python3",
		DefaultPython: filepath.Join(dir, "vllm-venv", "bin", "python"),
		TorchIndex:    "https://wheels.example.invalid/cu124",
		TorchCPUIndex: "https://wheels.example.invalid/cpu",
		Packages:      []string{"vllm>=0.5.0", "huggingface_hub"},
		Out:           out,
	}
}

func TestVLLMInstallGPUDryRun(t *testing.T) {
	f, h := installFake(t, true)
	fakePython(t, f)
	h.UID = 1000
	var out bytes.Buffer
	o := vllmOpts(t, h, &out)
	o.DryRun = true
	if err := VLLMInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	venv := filepath.Dir(filepath.Dir(o.DefaultPython))
	py := venv + "/bin/python"
	wantLines(t, "plan", planOf(out.String()), []string{
		"fuze gpu-prepare (NVIDIA driver and CUDA toolkit when missing)",
		"python3 -m venv " + venv,
		py + " -m pip install --upgrade pip",
		py + " -m pip install --index-url https://wheels.example.invalid/cu124 torch",
		py + " -m pip install 'vllm>=0.5.0' huggingface_hub",
		py + ` -c 'import importlib.metadata as m; print(m.version("vllm"))'`,
	})
	if got := ran(f.Calls(), "python", "apt-get"); len(got) > 0 {
		t.Errorf("a dry run ran %q", got)
	}
	if got := ran(f.Calls(), "python3"); len(got) != 1 || !strings.Contains(got[0], "import venv, ensurepip") {
		t.Errorf("a dry run ran %q (only the venv module probe expected)", got)
	}
	if !strings.Contains(out.String(), "finds "+o.DefaultPython+" without VLLM_PYTHON") {
		t.Errorf("hint:\n%s", out.String())
	}
}

func TestVLLMInstallCPURun(t *testing.T) {
	f, h := installFake(t, false)
	fakePython(t, f)
	var out bytes.Buffer
	o := vllmOpts(t, h, &out)
	o.Venv = filepath.Join(t.TempDir(), "my venv")
	if err := VLLMInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	py := o.Venv + "/bin/python"
	q := "'" + py + "'"
	wantLines(t, "commands", ran(f.Calls(), "python3", "python", "apt-get"), []string{
		"python3 -c 'import venv, ensurepip'",
		"python3 -m venv '" + o.Venv + "'",
		q + " -m pip install --upgrade pip",
		q + " -m pip install --index-url https://wheels.example.invalid/cpu torch",
		q + " -m pip install 'vllm>=0.5.0' huggingface_hub",
		q + ` -c 'import importlib.metadata as m; print(m.version("vllm"))'`,
	})
	for _, want := range []string{"→ CPU PyTorch wheels", "✔ vLLM 0.6.3 in " + o.Venv, "set VLLM_PYTHON=" + py} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// Again, with VLLM_PYTHON naming that venv and a wheel directory: the venv is updated
	// offline, pip is left as it is.
	before := len(f.Calls())
	out.Reset()
	o.Venv, o.VLLMPython, o.Wheels = "", py, "/srv/wheels"
	if err := VLLMInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, "update", ran(f.Calls()[before:], "python3", "python"), []string{
		q + " -m pip install --no-index --find-links /srv/wheels torch",
		q + " -m pip install --no-index --find-links /srv/wheels 'vllm>=0.5.0' huggingface_hub",
		q + ` -c 'import importlib.metadata as m; print(m.version("vllm"))'`,
	})
	if !strings.Contains(out.String(), "runs VLLM_PYTHON="+py) {
		t.Errorf("hint:\n%s", out.String())
	}
}

// gpu-prepare failing (it needs root to install the driver) is a warning for vLLM: the CUDA
// wheels are installed anyway.
func TestVLLMInstallGPUPrepareFailureTolerated(t *testing.T) {
	f, h := installFake(t, false)
	fakePython(t, f)
	addNVIDIAPCI(t, h)
	h.UID = 1000
	var out bytes.Buffer
	o := vllmOpts(t, h, &out)
	if err := VLLMInstall(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "! gpu-prepare must install the NVIDIA driver and the CUDA toolkit (nvcc) and needs root") || !strings.Contains(out.String(), "— continuing: CUDA PyTorch wheels") {
		t.Errorf("output:\n%s", out.String())
	}
	if got := ran(f.Calls(), "python"); len(got) < 2 || !strings.Contains(got[1], "--index-url https://wheels.example.invalid/cu124 torch") {
		t.Errorf("pip: %q", got)
	}
	if got := ran(f.Calls(), "apt-get"); len(got) > 0 {
		t.Errorf("ran %q", got)
	}
}

func TestVLLMInstallVenvChecks(t *testing.T) {
	f, h := installFake(t, false)
	fakePython(t, f)
	// VLLM_PYTHON naming a system Python: its "venv" is not one.
	sys := filepath.Join(t.TempDir(), "usr")
	writeFile(t, filepath.Join(sys, "bin", "python3"), "")
	o := vllmOpts(t, h, &bytes.Buffer{})
	o.VLLMPython = filepath.Join(sys, "bin", "python3")
	if err := VLLMInstall(context.Background(), o); err == nil || !strings.Contains(err.Error(), "is not a virtual environment (no pyvenv.cfg)") {
		t.Errorf("system python: err = %v", err)
	}
	o.VLLMPython = "python3"
	if err := VLLMInstall(context.Background(), o); err == nil || !strings.Contains(err.Error(), "VLLM_PYTHON=python3 is not DIR/bin/python") {
		t.Errorf("bare name: err = %v", err)
	}

	// A Python without the venv module: python3-venv through apt (root), else an error.
	f.Programs["python3"] = func([]string) FakeResult { return FakeResult{Stderr: "No module named ensurepip", Exit: 1} }
	var out bytes.Buffer
	o = vllmOpts(t, h, &out)
	o.DryRun = true
	if err := VLLMInstall(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if p := planOf(out.String()); len(p) < 2 || p[1] != "apt-get install -y --no-install-recommends python3-venv" {
		t.Errorf("plan:\n%s", strings.Join(p, "\n"))
	}
	writeFile(t, h.OSRelease, "ID=fedora\nPRETTY_NAME=\"Fedora Linux 40\"\n")
	if err := VLLMInstall(context.Background(), o); err == nil || !strings.Contains(err.Error(), "the venv module of python3 not found: install them (Debian/Ubuntu packages: python3-venv)") {
		t.Errorf("err = %v", err)
	}
}

// ---- Triton ----

func TestTritonInstall(t *testing.T) {
	f, h := installFake(t, true)
	f.Programs["podman"] = out("")
	var buf bytes.Buffer
	TritonInstall(context.Background(), TritonInstallOptions{Host: h, HTTPA: "127.0.0.1:8000", HTTPB: "localhost:9000", Out: &buf})
	for _, want := range []string{
		"nothing for fuze to install",
		"✔ container runtime: /fake/bin/podman",
		"podman run -d --rm --name fuze-triton-a --device nvidia.com/gpu=0 --shm-size=1g -p 127.0.0.1:8000:8000 -v <model_repository>:/models <image> tritonserver --model-repository=/models",
		"podman run -d --rm --name fuze-triton-b --device nvidia.com/gpu=1 --shm-size=1g -p 127.0.0.1:9000:8000",
		"TRITON_START_CMD=",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "no NVIDIA GPU") {
		t.Errorf("GPU not seen:\n%s", buf.String())
	}
	delete(f.Programs, "podman")
	buf.Reset()
	TritonInstall(context.Background(), TritonInstallOptions{Host: h, HTTPA: "10.0.0.5:8000", Out: &buf})
	if !strings.Contains(buf.String(), "! no docker or podman on PATH") || !strings.Contains(buf.String(), `docker run -d --rm --name fuze-triton-a --gpus '"device=0"' --shm-size=1g -p 10.0.0.5:8000:8000`) || strings.Contains(buf.String(), "fuze-triton-b") {
		t.Errorf("output:\n%s", buf.String())
	}
}
