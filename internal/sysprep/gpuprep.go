package sysprep

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fuze-ai/fuze/internal/gpu"
)

// GPUPrepareOptions configures GPUPrepare.
type GPUPrepareOptions struct {
	Host   Host
	DryRun bool
	Out    io.Writer
}

// CUDA toolkit packages, in order of preference (the original's list, plus NVIDIA's
// repository meta package): the first with an install candidate is installed.
var cudaPackages = []string{"nvidia-cuda-toolkit", "cuda-toolkit", "cuda-toolkit-12-5", "cuda-toolkit-12-4"}

// GPUPrepare installs the NVIDIA driver and the CUDA toolkit when an NVIDIA GPU is present
// and they are missing. No GPU is not an error. On Debian and Ubuntu it installs through apt
// (Ubuntu: ubuntu-drivers picks the driver; Debian: nvidia-driver from non-free); elsewhere it
// says what to install. It needs root unless DryRun, which prints the exact commands.
func GPUPrepare(ctx context.Context, o GPUPrepareOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	r := o.Host.runner()
	gpus, invErr := gpu.Inventory(ctx, r)
	pci := NVIDIAPCIDevices(o.Host.PCIDevices)
	driverOK := invErr == nil && len(gpus) > 0
	switch {
	case driverOK:
		fmt.Fprintf(o.Out, "✔ NVIDIA GPU: %s (driver %s)\n", gpus[0].Name, gpus[0].Driver)
	case len(pci) > 0 && invErr != nil:
		fmt.Fprintf(o.Out, "! NVIDIA PCI device %s; nvidia-smi fails: %v\n", strings.Join(pci, ", "), invErr)
	case len(pci) > 0:
		fmt.Fprintf(o.Out, "! NVIDIA PCI device %s without a driver (no nvidia-smi)\n", strings.Join(pci, ", "))
	default:
		fmt.Fprintln(o.Out, "No NVIDIA GPU detected — skipping driver/CUDA setup.")
		if invErr != nil {
			fmt.Fprintf(o.Out, "! (nvidia-smi is installed but fails: %v)\n", invErr)
		}
		return nil
	}
	nvcc := findNVCC(o.Host)
	needDriver, needCUDA := !driverOK, nvcc == ""
	if !needCUDA {
		fmt.Fprintf(o.Out, "✔ CUDA toolkit: %s\n", nvcc)
	}
	if !needDriver && !needCUDA {
		fmt.Fprintln(o.Out, "Nothing to do: the NVIDIA driver and the CUDA toolkit are installed.")
		return nil
	}
	var missing []string
	if needDriver {
		missing = append(missing, "the NVIDIA driver")
	}
	if needCUDA {
		missing = append(missing, "the CUDA toolkit (nvcc)")
	}
	what := strings.Join(missing, " and ")

	osi, osErr := ReadOSRelease(o.Host.OSRelease)
	if osErr != nil || !osi.Debian() {
		name := osi.PrettyName
		if osErr != nil {
			name = fmt.Sprintf("unknown (%v)", osErr)
		}
		fmt.Fprintf(o.Out, "This system (%s) is not Debian or Ubuntu: gpu-prepare installs packages with apt only.\n", name)
		fmt.Fprintf(o.Out, "Install %s with your distribution's tools or NVIDIA's installers, then run fuze preflight.\n", what)
		if o.DryRun {
			return nil
		}
		return fmt.Errorf("gpu-prepare: %s missing; install it by hand on %s", what, name)
	}
	if !o.DryRun && !o.Host.Root() {
		return fmt.Errorf("gpu-prepare must install %s and needs root: run `sudo fuze gpu-prepare` (`fuze gpu-prepare --dry-run` prints the plan without root)", what)
	}

	run := func(c Cmd) error {
		fmt.Fprintf(o.Out, "== %s\n", c)
		c.Stdout, c.Stderr = o.Out, o.Out
		if err := r.Run(ctx, c); err != nil {
			return fmt.Errorf("gpu-prepare: %s: %w", c, err)
		}
		return nil
	}
	update := Cmd{Name: "apt-get", Args: []string{"update"}}
	if !o.DryRun {
		if err := run(update); err != nil {
			return err
		}
	}
	installs, problems := gpuPlan(ctx, o.Host, osi, needDriver, needCUDA)
	fmt.Fprintln(o.Out, "Plan:")
	for _, c := range append([]Cmd{update}, installs...) {
		fmt.Fprintf(o.Out, "  %s\n", c)
	}
	for _, p := range problems {
		fmt.Fprintf(o.Out, "! %s\n", p)
	}
	if o.DryRun {
		fmt.Fprintln(o.Out, "Dry run: nothing was changed (install candidates come from the current apt lists).")
		return nil
	}
	for _, c := range installs {
		if err := run(c); err != nil {
			return err
		}
	}
	gpuSummary(ctx, r, o)
	if needDriver {
		fmt.Fprintln(o.Out, "Reboot to load the new NVIDIA driver, then run fuze preflight.")
	}
	if len(problems) > 0 {
		return fmt.Errorf("gpu-prepare: %s", strings.Join(problems, "; "))
	}
	return nil
}

// gpuPlan lists the apt commands that install what is missing, and what cannot be installed.
func gpuPlan(ctx context.Context, h Host, osi OSInfo, needDriver, needCUDA bool) (cmds []Cmd, problems []string) {
	r := h.runner()
	install := func(pkgs ...string) Cmd {
		return Cmd{Name: "apt-get", Args: append([]string{"install", "-y"}, pkgs...)}
	}
	if needDriver {
		if osi.Ubuntu() {
			if _, err := r.LookPath("ubuntu-drivers"); err != nil {
				cmds = append(cmds, install("ubuntu-drivers-common"))
			}
			cmds = append(cmds, Cmd{Name: "ubuntu-drivers", Args: []string{"install"}})
		} else {
			var pkgs []string
			if h.Kernel != "" && aptCandidate(ctx, r, "linux-headers-"+h.Kernel) != "" {
				pkgs = append(pkgs, "linux-headers-"+h.Kernel)
			}
			if aptCandidate(ctx, r, "nvidia-driver") == "" {
				problems = append(problems, "nvidia-driver has no install candidate: enable the contrib, non-free and non-free-firmware components in the apt sources, then rerun")
			} else {
				pkgs = append(pkgs, "nvidia-driver")
				if aptCandidate(ctx, r, "firmware-misc-nonfree") != "" {
					pkgs = append(pkgs, "firmware-misc-nonfree")
				}
				cmds = append(cmds, install(pkgs...))
			}
		}
	}
	if needCUDA {
		installed, candidate := "", ""
		for _, p := range cudaPackages {
			if dpkgInstalled(ctx, r, p) {
				installed = p
				break
			}
			if candidate == "" && aptCandidate(ctx, r, p) != "" {
				candidate = p
			}
		}
		switch {
		case installed != "":
			problems = append(problems, fmt.Sprintf("%s is installed but nvcc is not on PATH: add the toolkit's bin directory to PATH", installed))
		case candidate != "":
			cmds = append(cmds, install(candidate))
		default:
			problems = append(problems, fmt.Sprintf("no CUDA toolkit package available (%s): add NVIDIA's CUDA apt repository, then rerun", strings.Join(cudaPackages, ", ")))
		}
	}
	return cmds, problems
}

// aptCandidate returns the version apt would install, "" when there is none.
func aptCandidate(ctx context.Context, r Runner, pkg string) string {
	out, err := r.Output(ctx, "apt-cache", "policy", pkg)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			if v = strings.TrimSpace(v); v != "(none)" {
				return v
			}
		}
	}
	return ""
}

// dpkgInstalled reports whether a package is installed.
func dpkgInstalled(ctx context.Context, r Runner, pkg string) bool {
	out, err := r.Output(ctx, "dpkg-query", "-W", "-f=${Status}", pkg)
	return err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), "install ok installed")
}

func gpuSummary(ctx context.Context, r Runner, o GPUPrepareOptions) {
	if out, err := r.Output(ctx, "nvidia-smi"); err == nil {
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		fmt.Fprintln(o.Out, strings.Join(lines[:min(10, len(lines))], "\n"))
	} else if !notInstalled(err) {
		fmt.Fprintf(o.Out, "! nvidia-smi: %v (a reboot may be needed)\n", err)
	}
	if nvcc := findNVCC(o.Host); nvcc != "" {
		out, _ := combined(ctx, r, nvcc, "--version")
		if m := nvccRE.FindSubmatch(out); m != nil {
			fmt.Fprintf(o.Out, "✔ nvcc %s (%s)\n", m[1], nvcc)
		}
	}
}
