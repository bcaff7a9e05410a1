package vllm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/stack"
)

// APIServerModule is the module the Python form runs.
const APIServerModule = "vllm.entrypoints.openai.api_server"

// DefaultVenvPython is the interpreter of the virtual environment `fuze stack vLLM install`
// creates (the original installer's location).
const DefaultVenvPython = "/opt/vllm-venv/bin/python"

// Launcher is how a vLLM OpenAI-compatible server is started: the `vllm` command line
// (`vllm serve MODEL …`) or a Python interpreter running the API server module
// (`python -m vllm.entrypoints.openai.api_server --model MODEL …`). Both take the same
// engine and server flags.
type Launcher struct {
	Path   string
	Module bool   // Path is a Python interpreter (the -m form)
	Via    string // what chose it (a knob, PATH, the installer's venv), for messages
}

// ServeFlags are the settings every server is started with.
type ServeFlags struct {
	Host        string
	Port        int
	DType       string  // --dtype
	MaxModelLen int     // --max-model-len
	GPUMemUtil  float64 // --gpu-memory-utilization
	MaxNumSeqs  int     // --max-num-seqs (0: not passed, vLLM's default)
	// TensorParallel is --tensor-parallel-size: the GPUs one model is split over (0 or 1:
	// not passed, one GPU).
	TensorParallel int
	Extra          []string // tuning flags (tune.go), appended as they are
}

// Args returns the arguments (after Path) that serve model with f.
func (l Launcher) Args(model string, f ServeFlags) []string {
	var args []string
	if l.Module {
		args = []string{"-m", APIServerModule, "--model", model}
	} else {
		args = []string{"serve", model}
	}
	args = append(args,
		"--host", f.Host,
		"--port", strconv.Itoa(f.Port),
		"--dtype", f.DType,
		"--max-model-len", strconv.Itoa(f.MaxModelLen),
		"--gpu-memory-utilization", strconv.FormatFloat(f.GPUMemUtil, 'f', -1, 64),
	)
	if f.MaxNumSeqs > 0 {
		args = append(args, "--max-num-seqs", strconv.Itoa(f.MaxNumSeqs))
	}
	if f.TensorParallel > 1 {
		args = append(args, "--tensor-parallel-size", strconv.Itoa(f.TensorParallel))
	}
	return append(args, f.Extra...)
}

// String describes the launcher: "vllm serve (VLLM_BIN=…)".
func (l Launcher) String() string {
	if l.Module {
		return fmt.Sprintf("%s -m %s (%s)", l.Path, APIServerModule, l.Via)
	}
	return fmt.Sprintf("%s serve (%s)", l.Path, l.Via)
}

// LauncherSearch is what FindLauncher looks at.
type LauncherSearch struct {
	Bin        string // VLLM_BIN
	Python     string // VLLM_PYTHON
	VenvPython string // the installer's venv interpreter (DefaultVenvPython)
	PythonBin  string // PYTHON_BIN
	// LookPath resolves a command name on PATH (exec.LookPath when nil).
	LookPath func(string) (string, error)
	// HasVLLM reports whether a Python interpreter can import vllm (PythonHasVLLM when nil).
	HasVLLM func(ctx context.Context, python string) error
}

// FindLauncher chooses how to start vLLM, by what is configured and installed, in this
// order: VLLM_BIN (the `vllm` command), VLLM_PYTHON (the module), `vllm` on PATH, the
// installer's venv, PYTHON_BIN if it can import vllm. Knobs that are set must work: a
// VLLM_BIN or VLLM_PYTHON that is missing is an error naming it, not a silent fallback.
func FindLauncher(ctx context.Context, s LauncherSearch) (Launcher, error) {
	lookPath := s.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	hasVLLM := s.HasVLLM
	if hasVLLM == nil {
		hasVLLM = PythonHasVLLM
	}
	resolve := func(bin string) (string, error) {
		if strings.ContainsRune(bin, '/') {
			st, err := os.Stat(bin)
			if err != nil {
				return "", err
			}
			if st.IsDir() || st.Mode()&0o111 == 0 {
				return "", fmt.Errorf("%s is not an executable file", bin)
			}
			return bin, nil
		}
		return lookPath(bin)
	}
	if s.Bin != "" {
		p, err := resolve(s.Bin)
		if err != nil {
			return Launcher{}, fmt.Errorf("VLLM_BIN=%q: %w; point it at the `vllm` command or unset it", s.Bin, err)
		}
		return Launcher{Path: p, Via: "VLLM_BIN"}, nil
	}
	if s.Python != "" {
		p, err := resolve(s.Python)
		if err == nil {
			err = hasVLLM(ctx, p)
		}
		if err != nil {
			return Launcher{}, fmt.Errorf("VLLM_PYTHON=%q: %w; point it at a Python that has vLLM installed or unset it", s.Python, err)
		}
		return Launcher{Path: p, Module: true, Via: "VLLM_PYTHON"}, nil
	}
	if p, err := lookPath("vllm"); err == nil {
		return Launcher{Path: p, Via: "vllm on PATH"}, nil
	}
	var tried []string
	tried = append(tried, "VLLM_BIN and VLLM_PYTHON are unset", "no `vllm` on PATH")
	if s.VenvPython != "" {
		if _, err := os.Stat(s.VenvPython); err == nil {
			if err := hasVLLM(ctx, s.VenvPython); err != nil {
				return Launcher{}, fmt.Errorf("the vLLM venv's %s: %w; reinstall vLLM (`fuze stack vLLM install`) or set VLLM_PYTHON", s.VenvPython, err)
			}
			return Launcher{Path: s.VenvPython, Module: true, Via: "the vLLM venv"}, nil
		}
		tried = append(tried, s.VenvPython+" does not exist")
	}
	if s.PythonBin != "" {
		p, err := resolve(s.PythonBin)
		if err == nil {
			err = hasVLLM(ctx, p)
		}
		if err == nil {
			return Launcher{Path: p, Module: true, Via: "PYTHON_BIN"}, nil
		}
		tried = append(tried, fmt.Sprintf("PYTHON_BIN=%s: %v", s.PythonBin, err))
	}
	return Launcher{}, stack.Unavailable(fmt.Errorf("vLLM is not installed: %s; install it, or set VLLM_BIN to the `vllm` command or VLLM_PYTHON to a Python that has it", strings.Join(tried, ", ")))
}

// ErrNoVLLM reports a Python that cannot import vllm.
var ErrNoVLLM = errors.New("cannot import vllm")

// PythonHasVLLM checks that python finds the vllm package, without importing it (which
// would take seconds and initialise CUDA).
func PythonHasVLLM(ctx context.Context, python string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('vllm') else 3)")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		return ErrNoVLLM
	}
	msg := strings.TrimSpace(string(out))
	if msg == "" {
		return fmt.Errorf("%w: %v", ErrNoVLLM, err)
	}
	return fmt.Errorf("%w: %v: %s", ErrNoVLLM, err, clip(msg, 200))
}
