package sysprep

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// DefaultLlamaServer is where `llama.cpp install` puts llama-server when LLAMACPP_BIN is
// unset (the original's path): on PATH, where the benchmark looks for it.
const DefaultLlamaServer = "/usr/local/bin/llama-server"

// LlamaCppInstallOptions configures LlamaCppInstall.
type LlamaCppInstallOptions struct {
	Host Host
	// Source is LLAMACPP_SRC: a llama.cpp source directory, built in place (its build/), or a
	// git URL, cloned into Dir (a later install fetches Ref and resets the checkout to it).
	Source string
	Ref    string // LLAMACPP_REF: branch or tag of a git Source; "": the remote's default branch
	Dir    string // LLAMACPP_DIR: the checkout of a git Source
	// CMakeArgs are added to the configure command (LLAMACPP_CMAKE_ARGS).
	CMakeArgs []string
	// Dest is where llama-server goes: LLAMACPP_BIN, else DefaultLlamaServer. DestFromKnob
	// says it came from LLAMACPP_BIN (then the benchmark uses it whatever PATH holds).
	Dest         string
	DestFromKnob bool
	CPU          bool // build for the CPU even with a GPU; no gpu-prepare
	Jobs         int  // parallel build jobs; 0: the number of CPUs
	DryRun       bool
	Out          io.Writer
}

// LlamaCppInstall builds llama.cpp's llama-server with CMake and installs it as Dest. With an
// NVIDIA GPU (DetectNVIDIA) and without CPU it first runs gpu-prepare (driver and CUDA
// toolkit), then builds with GGML_CUDA=ON, and fails when nvcc is still missing rather than
// silently building for the CPU; otherwise it builds for the CPU. The binary is linked
// statically against llama.cpp's own libraries (BUILD_SHARED_LIBS=OFF), so it runs from
// anywhere, and is installed through a temporary file and a rename. Missing build tools are
// installed with apt on Debian and Ubuntu (root). DryRun prints the plan and changes nothing.
func LlamaCppInstall(ctx context.Context, o LlamaCppInstallOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	h, r := o.Host, o.Host.runner()
	if o.Dest == "" {
		o.Dest = DefaultLlamaServer
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	const sudo = "sudo -E fuze stack llama.cpp install"

	src, isGit, err := llamaCppSource(o.Source, o.Dir)
	if err != nil {
		return err
	}
	build := filepath.Join(src, "build")

	tools := []tool{{"cmake", "cmake"}, {"c++|g++|clang++", "build-essential"}, {"cc|gcc|clang", "build-essential"}, {"make", "build-essential"}}
	if isGit {
		tools = append(tools, tool{"git", "git"})
	}
	steps, err := aptSteps(h, o.Out, missingTools(r, tools), o.DryRun, sudo)
	if err != nil {
		return fmt.Errorf("llama.cpp install: %w", err)
	}

	cuda := false
	if o.CPU {
		fmt.Fprintln(o.Out, "llama.cpp install: CPU build (--cpu)")
	} else {
		present, what := DetectNVIDIA(ctx, h)
		cuda = present
		if cuda {
			fmt.Fprintf(o.Out, "llama.cpp install: %s → gpu-prepare, then a CUDA build (GGML_CUDA=ON)\n", what)
			steps = append(steps, gpuPrepareStep(h, o.Out, ""))
		} else {
			fmt.Fprintf(o.Out, "llama.cpp install: %s → CPU build\n", what)
		}
	}

	if !o.DryRun {
		if err := writableDir(filepath.Dir(o.Dest)); err != nil {
			return fmt.Errorf("llama.cpp install: installing %s needs write access to %s (%v): run it as root (%s) or set LLAMACPP_BIN to a path you own", o.Dest, filepath.Dir(o.Dest), err, sudo)
		}
		if err := writableDir(src); err != nil {
			knob := "LLAMACPP_DIR"
			if !isGit {
				knob = "LLAMACPP_SRC"
			}
			return fmt.Errorf("llama.cpp install: building in %s needs write access (%v): run it as root (%s) or set %s to a directory you own", src, err, sudo, knob)
		}
	}

	if isGit {
		s, err := llamaCppCheckout(ctx, r, o, src)
		if err != nil {
			return err
		}
		steps = append(steps, s...)
	}

	configure := func(nvcc string) Cmd {
		args := []string{"-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF"}
		if cuda {
			args = append(args, "-DGGML_CUDA=ON")
			if nvcc != "" && !onPath(r, nvcc) {
				args = append(args, "-DCMAKE_CUDA_COMPILER="+nvcc)
			}
		} else {
			args = append(args, "-DGGML_CUDA=OFF")
		}
		return Cmd{Name: "cmake", Args: append(args, o.CMakeArgs...)}
	}
	planned := configure(findNVCC(h))
	steps = append(steps, step{show: planned.String(), run: func(ctx context.Context) error {
		nvcc := ""
		if cuda {
			// After gpu-prepare, which may just have installed it.
			if nvcc = findNVCC(h); nvcc == "" {
				return fmt.Errorf("an NVIDIA GPU is present but nvcc (the CUDA toolkit) is not, even after gpu-prepare: install the CUDA toolkit (nvcc on PATH or under %s) and rerun, or pass --cpu for a CPU build", h.CUDAHome)
			}
		}
		return cmdStep(r, o.Out, configure(nvcc)).run(ctx)
	}})
	steps = append(steps, cmdStep(r, o.Out, Cmd{Name: "cmake", Args: []string{"--build", build, "--config", "Release", "--target", "llama-server", "-j", strconv.Itoa(o.Jobs)}}))

	kind := "CPU"
	if cuda {
		kind = "CUDA"
	}
	from := o.Source
	if isGit && o.Ref != "" {
		from += " @ " + o.Ref
	}
	steps = append(steps, step{
		show: fmt.Sprintf("install %s as %s (copy, then rename)", filepath.Join(build, "bin", "llama-server"), o.Dest),
		run: func(ctx context.Context) error {
			built := ""
			for _, name := range []string{"llama-server", "server"} { // older trees: bin/server
				p := filepath.Join(build, "bin", name)
				if st, err := os.Stat(p); err == nil && !st.IsDir() {
					built = p
					break
				}
			}
			if built == "" {
				return fmt.Errorf("the build produced no %s (nor bin/server)", filepath.Join(build, "bin", "llama-server"))
			}
			if err := os.MkdirAll(filepath.Dir(o.Dest), 0o755); err != nil {
				return rootHint(err, "install "+o.Dest)
			}
			changed, err := installBinary(built, o.Dest)
			if err != nil {
				return rootHint(err, "install "+o.Dest)
			}
			verb := "installed"
			if !changed {
				verb = "already up to date:"
			}
			fmt.Fprintf(o.Out, "✔ %s %s (%s build of %s)\n", verb, o.Dest, kind, from)
			return nil
		},
	})

	if err := runPlan(ctx, o.Out, "llama.cpp install", steps, o.DryRun); err != nil {
		return err
	}
	if o.DryRun {
		llamaServerHint(r, o, o.Out)
		return nil
	}
	if out, err := combined(ctx, r, o.Dest, "--version"); err == nil {
		if m := llamaVersionRE.FindSubmatch(out); m != nil {
			fmt.Fprintf(o.Out, "✔ %s --version: %s\n", o.Dest, strings.TrimSpace(string(m[1])))
		}
	}
	llamaServerHint(r, o, o.Out)
	return nil
}

// llamaServerHint says how the benchmark finds the installed binary: LLAMACPP_BIN, else
// llama-server on PATH.
func llamaServerHint(r Runner, o LlamaCppInstallOptions, out io.Writer) {
	if o.DestFromKnob {
		fmt.Fprintf(out, "The llama.cpp benchmark runs LLAMACPP_BIN=%s.\n", o.Dest)
		return
	}
	p, err := r.LookPath("llama-server")
	switch {
	case err == nil && !samePath(p, o.Dest):
		fmt.Fprintf(out, "! llama-server on PATH is %s, not %s: set LLAMACPP_BIN=%s (environment or env file) for the benchmark.\n", p, o.Dest, o.Dest)
	case err == nil || dirOnPath(filepath.Dir(o.Dest)):
		fmt.Fprintf(out, "The llama.cpp benchmark finds %s on PATH (LLAMACPP_BIN unset).\n", o.Dest)
	default:
		fmt.Fprintf(out, "! %s is not on PATH: set LLAMACPP_BIN=%s (environment or env file) for the benchmark.\n", filepath.Dir(o.Dest), o.Dest)
	}
}

// dirOnPath reports whether dir is one of PATH's directories.
func dirOnPath(dir string) bool {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != "" && samePath(d, dir) {
			return true
		}
	}
	return false
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// onPath reports whether path is what its base name resolves to on PATH.
func onPath(r Runner, path string) bool {
	p, err := r.LookPath(filepath.Base(path))
	return err == nil && samePath(p, path)
}

// llamaCppSource resolves LLAMACPP_SRC: an existing directory is built in place; a git URL is
// checked out into dir.
func llamaCppSource(source, dir string) (src string, isGit bool, err error) {
	if source == "" {
		return "", false, fmt.Errorf("llama.cpp install: LLAMACPP_SRC is empty: set it to a llama.cpp source directory or git URL")
	}
	if st, err := os.Stat(source); err == nil {
		if !st.IsDir() {
			return "", false, fmt.Errorf("llama.cpp install: LLAMACPP_SRC=%s is a file, not a source directory or git URL", source)
		}
		abs, err := filepath.Abs(source)
		return abs, false, err
	}
	if !gitURL(source) {
		return "", false, fmt.Errorf("llama.cpp install: LLAMACPP_SRC=%s is neither an existing directory nor a git URL", source)
	}
	if dir == "" {
		return "", false, fmt.Errorf("llama.cpp install: LLAMACPP_DIR is empty: set it to the directory the llama.cpp checkout goes into")
	}
	abs, err := filepath.Abs(dir)
	return abs, true, err
}

func gitURL(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, "git@") || strings.HasSuffix(s, ".git")
}

// llamaCppCheckout returns the steps that clone the git source into dir, or update the
// checkout that is there (fetch Ref, reset to it). A directory that is not a checkout of the
// same URL is left alone: an error.
func llamaCppCheckout(ctx context.Context, r Runner, o LlamaCppInstallOptions, dir string) ([]step, error) {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		args := []string{"clone", "--depth", "1"}
		if o.Ref != "" {
			args = append(args, "--branch", o.Ref)
		}
		return []step{cmdStep(r, o.Out, Cmd{Name: "git", Args: append(args, o.Source, dir)})}, nil
	}
	out, err := r.Output(ctx, "git", "-C", dir, "remote", "get-url", "origin")
	origin := strings.TrimSpace(string(out))
	if err != nil || strings.TrimSuffix(origin, ".git") != strings.TrimSuffix(o.Source, ".git") {
		what := "is not a git checkout"
		if err == nil {
			what = "is a checkout of " + origin
		}
		return nil, fmt.Errorf("llama.cpp install: LLAMACPP_DIR=%s exists and %s, not of LLAMACPP_SRC=%s: remove it, or set LLAMACPP_DIR elsewhere (or LLAMACPP_SRC to a source directory to build it as it is)", dir, what, o.Source)
	}
	ref := o.Ref
	if ref == "" {
		ref = "HEAD"
	}
	return []step{
		cmdStep(r, o.Out, Cmd{Name: "git", Args: []string{"-C", dir, "fetch", "--depth", "1", "origin", ref}}),
		cmdStep(r, o.Out, Cmd{Name: "git", Args: []string{"-C", dir, "reset", "--hard", "FETCH_HEAD"}}),
	}, nil
}
