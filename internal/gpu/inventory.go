package gpu

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// GPU is one row of the nvidia-smi inventory. Numeric fields that nvidia-smi
// reports as "[N/A]" or "[Not Supported]" are 0, text fields "".
type GPU struct {
	Index         int    // nvidia-smi index (PCI bus order), not CUDA's device number
	Name          string // e.g. "NVIDIA GeForce RTX 3090 Ti"
	UUID          string // e.g. "GPU-5a1b…"
	MemoryMiB     int    // memory.total
	MemoryUsedMiB int    // memory.used
	Driver        string // driver_version, e.g. "570.133.07"
	PCIBusID      string // e.g. "00000000:01:00.0"
	PowerLimitW   float64
	Label         string // Label(Name); "" when the name yields no label
}

// CUDAVisibleDevices returns the value to give CUDA_VISIBLE_DEVICES to pin a
// server to this GPU: its UUID, which, unlike an index, does not depend on
// CUDA_DEVICE_ORDER or on other GPUs being added or removed. Select only
// returns GPUs whose UUID is known.
func (g GPU) CUDAVisibleDevices() string { return g.UUID }

// String names the GPU in messages: "GPU 1 (NVIDIA H100 80GB HBM3)".
func (g GPU) String() string { return fmt.Sprintf("GPU %d (%s)", g.Index, g.Name) }

// QueryFields is what Inventory asks nvidia-smi for, in the column order
// parseRow expects; it runs
//
//	nvidia-smi --query-gpu=QueryFields --format=csv,noheader,nounits
const QueryFields = "index,name,uuid,memory.total,memory.used,driver_version,pci.bus_id,power.limit"

const numFields = 8 // entries in QueryFields

// Runner runs an external program and returns its standard output. When the
// program exits with a failure, the error should be (or wrap) an
// *exec.ExitError, whose Stderr is used in messages; when the program is not
// installed, it should wrap exec.ErrNotFound.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner is the Runner that really runs programs. The zero value is ready
// to use.
type ExecRunner struct {
	// Command builds the command; nil means exec.CommandContext. Tests set it
	// to re-execute the test binary as a fake nvidia-smi.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// Output implements Runner with (*exec.Cmd).Output, which leaves stderr in
// the *exec.ExitError.
func (r ExecRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	command := r.Command
	if command == nil {
		command = exec.CommandContext
	}
	return command(ctx, name, args...).Output()
}

// Inventory lists the host's GPUs in index order.
//
// A host without nvidia-smi is a normal CPU-only host: the result is empty
// and the error nil. So is a host where nvidia-smi reports "No devices were
// found". When nvidia-smi is installed but fails (driver/library mismatch,
// "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA
// driver…"), the error names nvidia-smi and its first line of output.
func Inventory(ctx context.Context, r Runner) ([]GPU, error) {
	if r == nil {
		r = ExecRunner{}
	}
	out, err := r.Output(ctx, "nvidia-smi", "--query-gpu="+QueryFields, "--format=csv,noheader,nounits")
	if errors.Is(err, exec.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("nvidia-smi: %w", ctxErr)
		}
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		line := firstLine(out)
		if line == "" {
			line = firstLine(stderr)
		}
		if noDevices(line) {
			return nil, nil
		}
		if line == "" {
			return nil, fmt.Errorf("nvidia-smi: %w", err)
		}
		return nil, fmt.Errorf("nvidia-smi: %s (%w)", line, err)
	}
	if noDevices(firstLine(out)) {
		return nil, nil
	}
	return parseInventory(out)
}

// parseInventory parses the output of nvidia-smi's QueryFields query.
func parseInventory(out []byte) ([]GPU, error) {
	var gpus []GPU
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		g, err := parseRow(line)
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi output line %d %q: %w", n+1, line, err)
		}
		gpus = append(gpus, g)
	}
	slices.SortStableFunc(gpus, func(a, b GPU) int { return cmp.Compare(a.Index, b.Index) })
	return gpus, nil
}

func parseRow(line string) (GPU, error) {
	f := strings.Split(line, ",")
	if len(f) < numFields {
		return GPU{}, fmt.Errorf("%d fields, want %d", len(f), numFields)
	}
	// The name is the only free-text column: should it ever contain commas,
	// the surplus fields belong to it.
	if extra := len(f) - numFields; extra > 0 {
		f = slices.Concat(f[:1], []string{strings.Join(f[1:2+extra], ",")}, f[2+extra:])
	}
	for i := range f {
		f[i] = value(f[i])
	}
	var g GPU
	var err error
	if f[0] == "" {
		return GPU{}, errors.New("no GPU index")
	}
	if g.Index, err = strconv.Atoi(f[0]); err != nil {
		return GPU{}, fmt.Errorf("index: %w", err)
	}
	g.Name, g.UUID = f[1], f[2]
	if g.MemoryMiB, err = atoi(f[3]); err != nil {
		return GPU{}, fmt.Errorf("memory.total: %w", err)
	}
	if g.MemoryUsedMiB, err = atoi(f[4]); err != nil {
		return GPU{}, fmt.Errorf("memory.used: %w", err)
	}
	g.Driver, g.PCIBusID = f[5], f[6]
	if f[7] != "" {
		if g.PowerLimitW, err = strconv.ParseFloat(f[7], 64); err != nil {
			return GPU{}, fmt.Errorf("power.limit: %w", err)
		}
	}
	g.Label = Label(g.Name)
	return g, nil
}

// value trims a field and maps nvidia-smi's placeholders ("[N/A]",
// "[Not Supported]", "[Unknown Error]", "N/A", …) to "".
func value(s string) string {
	s = strings.TrimSpace(s)
	if s == "N/A" || strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return ""
	}
	return s
}

func atoi(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}

func firstLine(b []byte) string {
	for line := range bytes.Lines(b) {
		if s := strings.TrimSpace(string(line)); s != "" {
			return s
		}
	}
	return ""
}

func noDevices(line string) bool {
	return strings.HasPrefix(line, "No devices were found")
}
