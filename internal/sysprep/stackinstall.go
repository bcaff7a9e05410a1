package sysprep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fuze-ai/fuze/internal/gpu"
)

// This file holds what the installers of the other stacks (llama.cpp, vLLM) share: a plan of
// steps printed before anything runs (and only printed in a dry run), NVIDIA GPU detection,
// gpu-prepare as a step, and the apt packages that provide missing build tools.

// step is one action of an install plan.
type step struct {
	show string                          // the plan's line: a command line or what is done
	run  func(ctx context.Context) error // does it
	dry  func(ctx context.Context) error // runs instead in a dry run (read-only); nil: nothing
}

// cmdStep runs c, streaming its output to out.
func cmdStep(r Runner, out io.Writer, c Cmd) step {
	return step{show: c.String(), run: func(ctx context.Context) error {
		c.Stdout, c.Stderr = out, out
		if err := r.Run(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		return nil
	}}
}

// runPlan prints the plan, then runs it: each step announced by "== its line". A dry run runs
// only the steps' dry functions (gpu-prepare's own dry run) and changes nothing.
func runPlan(ctx context.Context, out io.Writer, what string, steps []step, dryRun bool) error {
	fmt.Fprintln(out, "Plan:")
	for _, s := range steps {
		fmt.Fprintf(out, "  %s\n", s.show)
	}
	for _, s := range steps {
		f := s.run
		if dryRun {
			f = s.dry
		}
		if f == nil {
			continue
		}
		if !dryRun {
			fmt.Fprintf(out, "== %s\n", s.show)
		}
		if err := f(ctx); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if dryRun {
		fmt.Fprintln(out, "Dry run: nothing was changed.")
	}
	return nil
}

// DetectNVIDIA reports whether the machine has an NVIDIA GPU, as gpu-prepare decides it: one
// that nvidia-smi lists, else an NVIDIA display controller on the PCI bus (its driver is then
// missing or broken, which gpu-prepare repairs). what describes the finding.
func DetectNVIDIA(ctx context.Context, h Host) (present bool, what string) {
	gpus, err := gpu.Inventory(ctx, h.runner())
	if err == nil && len(gpus) > 0 {
		names := make([]string, len(gpus))
		for i, g := range gpus {
			names[i] = g.Name
		}
		return true, fmt.Sprintf("NVIDIA GPU: %s (nvidia-smi)", strings.Join(names, ", "))
	}
	if pci := NVIDIAPCIDevices(h.PCIDevices); len(pci) > 0 {
		why := "no nvidia-smi"
		if err != nil {
			why = err.Error()
		}
		return true, fmt.Sprintf("NVIDIA PCI device %s without a working driver (%s)", strings.Join(pci, ", "), why)
	}
	return false, "no NVIDIA GPU (nvidia-smi lists none, none on the PCI bus)"
}

// gpuPrepareStep runs gpu-prepare on h (its dry run in a dry run). tolerate turns its failure
// into a warning that ends with why the install can go on.
func gpuPrepareStep(h Host, out io.Writer, tolerate string) step {
	prepare := func(ctx context.Context, dry bool) error {
		err := GPUPrepare(ctx, GPUPrepareOptions{Host: h, DryRun: dry, Out: out})
		if err != nil && tolerate != "" {
			fmt.Fprintf(out, "! %v — continuing: %s\n", err, tolerate)
			return nil
		}
		return err
	}
	return step{
		show: "fuze gpu-prepare (NVIDIA driver and CUDA toolkit when missing)",
		run:  func(ctx context.Context) error { return prepare(ctx, false) },
		dry: func(ctx context.Context) error {
			fmt.Fprintln(out, "== fuze gpu-prepare --dry-run")
			return prepare(ctx, true)
		},
	}
}

// tool is a program an installer needs and the Debian package that provides it.
type tool struct{ program, pkg string }

// missingTools returns the tools that are not on PATH; a tool with alternatives
// ("c++|g++") is found by any of them.
func missingTools(r Runner, tools []tool) []tool {
	var missing []tool
	for _, t := range tools {
		found := false
		for _, p := range strings.Split(t.program, "|") {
			if _, err := r.LookPath(p); err == nil {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, t)
		}
	}
	return missing
}

// aptSteps returns the apt-get steps that install the missing tools' packages, or an error
// saying what to install when this machine cannot do it (not Debian or Ubuntu; not root, unless
// dryRun).
func aptSteps(h Host, out io.Writer, missing []tool, dryRun bool, rootHint string) ([]step, error) {
	if len(missing) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var programs, pkgs []string
	for _, t := range missing {
		programs = append(programs, strings.ReplaceAll(t.program, "|", " or "))
		if !seen[t.pkg] {
			seen[t.pkg] = true
			pkgs = append(pkgs, t.pkg)
		}
	}
	sort.Strings(pkgs)
	osi, osErr := ReadOSRelease(h.OSRelease)
	if osErr != nil || !osi.Debian() {
		return nil, fmt.Errorf("%s not found: install them (Debian/Ubuntu packages: %s) and rerun", strings.Join(programs, ", "), strings.Join(pkgs, " "))
	}
	if !dryRun && !h.Root() {
		return nil, fmt.Errorf("%s not found: installing %s needs root (%s), or install them yourself and rerun", strings.Join(programs, ", "), strings.Join(pkgs, " "), rootHint)
	}
	r := h.runner()
	return []step{
		cmdStep(r, out, Cmd{Name: "apt-get", Args: []string{"update"}}),
		cmdStep(r, out, Cmd{Name: "apt-get", Args: append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)}),
	}, nil
}

// writableDir checks, without creating anything, that dir or its nearest existing parent is
// a directory this process may write into.
func writableDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := checkWritable(d); err != nil {
				return err
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(d) == d {
			return err
		}
	}
}
