package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
	"github.com/fuze-ai/fuze/internal/sysprep"
)

// runLlamaCppInstall is `fuze stack [@env] llama.cpp install [--cpu] [--dry-run]`.
func runLlamaCppInstall(ctx context.Context, s streams, cfg *knobs.Config, args []string) error {
	return runSubcommand(ctx, s, llamaCppInstallCommand(s, cfg), args)
}

// runVLLMInstall is `fuze stack [@env] vLLM install [--cpu] [--venv DIR] [--dry-run]`.
func runVLLMInstall(ctx context.Context, s streams, cfg *knobs.Config, args []string) error {
	return runSubcommand(ctx, s, vllmInstallCommand(s, cfg), args)
}

// runTritonInstall is `fuze stack [@env] Triton install`: what to run instead (exit 0).
func runTritonInstall(ctx context.Context, s streams, cfg *knobs.Config, args []string) error {
	return runSubcommand(ctx, s, tritonInstallCommand(s, cfg), args)
}

func llamaCppInstallCommand(s streams, cfg *knobs.Config) *cobra.Command {
	var cpu, dryRun bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Build llama.cpp's llama-server (CUDA with an NVIDIA GPU, else CPU) and install it",
		Long: `Build llama-server with CMake from LLAMACPP_SRC (a source directory, built in its build/,
or a git URL cloned into LLAMACPP_DIR at LLAMACPP_REF; a later install updates that checkout)
and install it as LLAMACPP_BIN (unset: /usr/local/bin/llama-server, on PATH, where the
benchmark finds it). LLAMACPP_CMAKE_ARGS are added to the configure step.

With an NVIDIA GPU (nvidia-smi lists one, or one is on the PCI bus) it first runs gpu-prepare
(driver and CUDA toolkit), then builds with GGML_CUDA=ON; if nvcc is still missing it stops
instead of building for the CPU. Without a GPU, or with --cpu, it builds for the CPU. The
binary is linked statically against llama.cpp's libraries, so it runs from anywhere.

Missing build tools (cmake, a C/C++ compiler, make, git) are installed with apt on Debian and
Ubuntu. System paths (apt, /opt, /usr/local/bin) need root; --dry-run prints every command
without root and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cfg.WithStack(knobs.StackLlamaCpp)
			return sysprep.LlamaCppInstall(cmd.Context(), sysprep.LlamaCppInstallOptions{
				Host:         sysprepHost(),
				Source:       c.Get("LLAMACPP_SRC"),
				Ref:          c.Get("LLAMACPP_REF"),
				Dir:          c.Get("LLAMACPP_DIR"),
				CMakeArgs:    strings.Fields(c.Get("LLAMACPP_CMAKE_ARGS")),
				Dest:         c.Get("LLAMACPP_BIN"),
				DestFromKnob: c.Get("LLAMACPP_BIN") != "",
				CPU:          cpu,
				DryRun:       dryRun,
				Out:          s.out,
			})
		},
	}
	cmd.Flags().BoolVar(&cpu, "cpu", false, "build for the CPU even with an NVIDIA GPU (no gpu-prepare)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	return cmd
}

func vllmInstallCommand(s streams, cfg *knobs.Config) *cobra.Command {
	var cpu, dryRun bool
	var venv string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Create a Python venv with PyTorch (CUDA with an NVIDIA GPU, else CPU) and vLLM",
		Long: `Create or update a virtual environment with PyTorch and VLLM_PIP_PACKAGES (vLLM). The venv
is --venv, else the one of VLLM_PYTHON (DIR/bin/python: DIR), else /opt/vllm-venv, which the
vLLM benchmark uses without VLLM_PYTHON; it is created with PYTHON_BIN. At the end it says
which VLLM_PYTHON the benchmark needs, if any.

With an NVIDIA GPU (nvidia-smi lists one, or one is on the PCI bus) it first runs gpu-prepare
(a failure there is a warning: the wheels bring their CUDA libraries and need only the
driver), then installs torch from VLLM_TORCH_INDEX (CUDA wheels); without a GPU, or with --cpu,
from VLLM_TORCH_CPU_INDEX (CPU wheels). Empty indexes mean pip's configured index. A failed
install stops it; it never falls back to other wheels. VLLM_WHEELS=DIR installs offline from a
wheel directory (--no-index --find-links DIR).

A missing python3-venv is installed with apt on Debian and Ubuntu. /opt and apt need root;
--dry-run prints every command without root and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cfg.WithStack(knobs.StackVLLM)
			return sysprep.VLLMInstall(cmd.Context(), sysprep.VLLMInstallOptions{
				Host:          sysprepHost(),
				Python:        c.Get("PYTHON_BIN"),
				Venv:          venv,
				VLLMPython:    c.Get("VLLM_PYTHON"),
				DefaultPython: vllm.DefaultVenvPython,
				Wheels:        c.Get("VLLM_WHEELS"),
				TorchIndex:    c.Get("VLLM_TORCH_INDEX"),
				TorchCPUIndex: c.Get("VLLM_TORCH_CPU_INDEX"),
				Packages:      strings.Fields(c.Get("VLLM_PIP_PACKAGES")),
				CPU:           cpu,
				DryRun:        dryRun,
				Out:           s.out,
			})
		},
	}
	cmd.Flags().BoolVar(&cpu, "cpu", false, "CPU PyTorch wheels even with an NVIDIA GPU (no gpu-prepare)")
	cmd.Flags().StringVar(&venv, "venv", "", "the virtual environment to create or update (default: VLLM_PYTHON's, else /opt/vllm-venv)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	return cmd
}

func tritonInstallCommand(s streams, cfg *knobs.Config) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Say how to run Triton: it comes as NVIDIA's container, which fuze does not install",
		Long: `Triton Inference Server comes as NVIDIA's tritonserver container with the backend your model
repository needs, so there is nothing for fuze to install. This prints the container runtime
found (docker or podman), the command lines that serve TRITON_HTTP_A and TRITON_HTTP_B (one
GPU each) and how TRITON_START_CMD lets the benchmark start them. Exit status 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cfg.WithStack(knobs.StackTriton)
			sysprep.TritonInstall(cmd.Context(), sysprep.TritonInstallOptions{
				Host:         sysprepHost(),
				HTTPA:        c.Get("TRITON_HTTP_A"),
				HTTPB:        c.Get("TRITON_HTTP_B"),
				StartCmd:     c.Get("TRITON_START_CMD"),
				PerfAnalyzer: c.Get("TRITON_PERF_ANALYZER"),
				Out:          s.out,
			})
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "accepted for symmetry: this command changes nothing anyway")
	return cmd
}
