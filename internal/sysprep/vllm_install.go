package sysprep

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// VLLMInstallOptions configures VLLMInstall.
type VLLMInstallOptions struct {
	Host   Host
	Python string // PYTHON_BIN: the interpreter that creates the venv
	// Venv is the virtual environment to create or update (--venv); "": the venv of
	// VLLMPython when it is set, else the venv of DefaultPython.
	Venv string
	// VLLMPython is VLLM_PYTHON ("": unset); DefaultPython the interpreter the benchmark uses
	// when it is unset (the installer's venv, /opt/vllm-venv/bin/python).
	VLLMPython, DefaultPython string
	// Wheels is VLLM_WHEELS: a directory of wheels; every pip install then runs with
	// --no-index --find-links Wheels (offline) and pip itself is not upgraded.
	Wheels string
	// TorchIndex and TorchCPUIndex are VLLM_TORCH_INDEX and VLLM_TORCH_CPU_INDEX: the pip
	// index of PyTorch's CUDA (GPU present) or CPU wheels; "": pip's configured index.
	TorchIndex, TorchCPUIndex string
	Packages                  []string // VLLM_PIP_PACKAGES: installed after torch
	CPU                       bool     // CPU wheels even with a GPU; no gpu-prepare
	DryRun                    bool
	Out                       io.Writer
}

// vllmVersionScript prints the installed vllm distribution's version without importing vllm
// (which loads torch and CUDA).
const vllmVersionScript = `import importlib.metadata as m; print(m.version("vllm"))`

// VLLMInstall creates (or updates) a Python virtual environment with PyTorch and vLLM. With an
// NVIDIA GPU (DetectNVIDIA) and without CPU it first runs gpu-prepare, whose failure is only
// a warning (CUDA PyTorch wheels bring their own CUDA libraries; they need the driver alone),
// then installs torch from TorchIndex; otherwise from TorchCPUIndex. It never falls back from
// CUDA to CPU wheels on a failed install: a failure stops it. Missing python3-venv is
// installed with apt on Debian and Ubuntu (root). DryRun prints the plan and changes nothing.
func VLLMInstall(ctx context.Context, o VLLMInstallOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	h, r := o.Host, o.Host.runner()
	if o.Python == "" {
		o.Python = "python3"
	}
	const sudo = "sudo -E fuze stack vLLM install"
	venv, err := vllmVenv(o)
	if err != nil {
		return fmt.Errorf("vLLM install: %w", err)
	}
	py := filepath.Join(venv, "bin", "python")
	_, pyErr := os.Stat(py)
	haveVenv := pyErr == nil

	var steps []step
	if !haveVenv {
		var missing []tool
		if _, err := r.LookPath(o.Python); err != nil {
			missing = []tool{{o.Python, "python3-venv"}}
		} else if _, err := r.Output(ctx, o.Python, "-c", "import venv, ensurepip"); err != nil {
			missing = []tool{{"the venv module of " + o.Python, "python3-venv"}}
		}
		if steps, err = aptSteps(h, o.Out, missing, o.DryRun, sudo); err != nil {
			return fmt.Errorf("vLLM install: %w", err)
		}
	}

	cuda := false
	if o.CPU {
		fmt.Fprintln(o.Out, "vLLM install: CPU PyTorch wheels (--cpu)")
	} else {
		present, what := DetectNVIDIA(ctx, h)
		cuda = present
		if cuda {
			fmt.Fprintf(o.Out, "vLLM install: %s → gpu-prepare, then CUDA PyTorch wheels\n", what)
			steps = append(steps, gpuPrepareStep(h, o.Out, "CUDA PyTorch wheels bring their own CUDA libraries and need only the NVIDIA driver"))
		} else {
			fmt.Fprintf(o.Out, "vLLM install: %s → CPU PyTorch wheels\n", what)
		}
	}

	if !o.DryRun {
		if err := writableDir(venv); err != nil {
			return fmt.Errorf("vLLM install: the venv %s needs write access (%v): run it as root (%s), or pass --venv DIR (or set VLLM_PYTHON=DIR/bin/python) with a DIR you own", venv, err, sudo)
		}
	}

	if !haveVenv {
		steps = append(steps, cmdStep(r, o.Out, Cmd{Name: o.Python, Args: []string{"-m", "venv", venv}}))
	} else {
		fmt.Fprintf(o.Out, "vLLM install: updating the venv %s\n", venv)
	}
	pip := func(args ...string) Cmd {
		return Cmd{Name: py, Args: append([]string{"-m", "pip", "install"}, args...)}
	}
	var from []string
	if o.Wheels != "" {
		from = []string{"--no-index", "--find-links", o.Wheels}
	} else {
		steps = append(steps, cmdStep(r, o.Out, pip("--upgrade", "pip")))
	}
	torchFrom := from
	if o.Wheels == "" {
		index := o.TorchIndex
		if !cuda {
			index = o.TorchCPUIndex
			if index == "" {
				fmt.Fprintln(o.Out, "! VLLM_TORCH_CPU_INDEX is unset: torch comes from pip's configured index, whose Linux wheels are CUDA builds (they run on the CPU too, but are large); set it to PyTorch's CPU wheel index for CPU-only wheels")
			}
		}
		if index != "" {
			torchFrom = []string{"--index-url", index}
		}
	}
	steps = append(steps, cmdStep(r, o.Out, pip(append(torchFrom, "torch")...)))
	if len(o.Packages) > 0 {
		steps = append(steps, cmdStep(r, o.Out, pip(append(from, o.Packages...)...)))
	}
	verify := Cmd{Name: py, Args: []string{"-c", vllmVersionScript}}
	steps = append(steps, step{show: verify.String(), run: func(ctx context.Context) error {
		out, err := r.Output(ctx, py, "-c", vllmVersionScript)
		if err != nil {
			return fmt.Errorf("vllm is not installed in %s after pip (%s): %w", venv, verify, err)
		}
		fmt.Fprintf(o.Out, "✔ vLLM %s in %s\n", strings.TrimSpace(string(out)), venv)
		return nil
	}})

	if err := runPlan(ctx, o.Out, "vLLM install", steps, o.DryRun); err != nil {
		return err
	}
	vllmPythonHint(o, venv, py)
	return nil
}

// vllmVenv chooses the venv: --venv, else VLLM_PYTHON's, else the default one. A directory
// that exists, is not empty and is not a venv is refused: fuze installs vLLM only into a
// virtual environment, never into a system Python.
func vllmVenv(o VLLMInstallOptions) (string, error) {
	venv := o.Venv
	if venv == "" {
		python, knob := o.DefaultPython, "the default venv"
		if o.VLLMPython != "" {
			python, knob = o.VLLMPython, "VLLM_PYTHON="+o.VLLMPython
		}
		bin := filepath.Dir(python)
		if filepath.Base(bin) != "bin" || !filepath.IsAbs(python) {
			return "", fmt.Errorf("%s is not DIR/bin/python of a virtual environment: set VLLM_PYTHON to one (it is created if missing) or pass --venv DIR", knob)
		}
		venv = filepath.Dir(bin)
	}
	venv, err := filepath.Abs(venv)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(venv)
	if err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(venv, "pyvenv.cfg")); err != nil {
			return "", fmt.Errorf("%s exists and is not a virtual environment (no pyvenv.cfg): fuze installs vLLM only into a venv; pass --venv DIR or set VLLM_PYTHON=DIR/bin/python for another DIR", venv)
		}
	}
	return venv, nil
}

// vllmPythonHint says how the benchmark finds the venv: VLLM_PYTHON, else the default venv.
func vllmPythonHint(o VLLMInstallOptions, venv, py string) {
	inVenv := func(python string) bool {
		return python != "" && filepath.Dir(filepath.Dir(python)) == venv
	}
	switch {
	case inVenv(o.VLLMPython):
		fmt.Fprintf(o.Out, "The vLLM benchmark runs VLLM_PYTHON=%s (unless VLLM_BIN is set).\n", o.VLLMPython)
	case o.VLLMPython != "":
		fmt.Fprintf(o.Out, "! VLLM_PYTHON=%s is set, so the benchmark does not use this venv: set VLLM_PYTHON=%s (environment or env file).\n", o.VLLMPython, py)
	case inVenv(o.DefaultPython):
		fmt.Fprintf(o.Out, "The vLLM benchmark finds %s without VLLM_PYTHON (VLLM_BIN or a vllm command on PATH would come first).\n", o.DefaultPython)
	default:
		fmt.Fprintf(o.Out, "For the vLLM benchmark, set VLLM_PYTHON=%s (export it, or add the line to your env file).\n", py)
	}
}
