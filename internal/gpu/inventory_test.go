package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Canned nvidia-smi outputs of QueryFields (note the space after each comma).
const (
	smiRTX5090 = "0, NVIDIA GeForce RTX 5090, GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c, 32607, 1234, 570.133.07, 00000000:01:00.0, 575.00\n"

	// The original author's box: the 3090 Ti sits at index 0.
	smiBox = "0, NVIDIA GeForce RTX 3090 Ti, GPU-3a9d0b6c-1f2e-4d5c-8b7a-6e5f4d3c2b1a, 24564, 18, 570.133.07, 00000000:01:00.0, 450.00\n" +
		"1, NVIDIA GeForce RTX 5090, GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c, 32607, 2, 570.133.07, 00000000:02:00.0, 575.00\n"

	smiH100x2 = "0, NVIDIA H100 80GB HBM3, GPU-d3b1a0c2-5e4f-6a7b-8c9d-0e1f2a3b4c5d, 81559, 0, 550.54.15, 00000000:18:00.0, 700.00\n" +
		"1, NVIDIA H100 80GB HBM3, GPU-e4c2b1d3-6f5a-7b8c-9d0e-1f2a3b4c5d6e, 81559, 0, 550.54.15, 00000000:2A:00.0, 700.00\n"

	smiH200 = "0, NVIDIA H200, GPU-a1b2c3d4-e5f6-a7b8-c9d0-e1f2a3b4c5d6, 143771, 0, 560.35.03, 00000000:19:00.0, 700.00\n"

	// Captured from a real host (driver 580, cloud VM).
	smiH100Real = "0, NVIDIA H100 80GB HBM3, GPU-121dc402-a8c7-e1e9-49df-3b23906b9e52, 81559, 0, 580.159.04, 00000000:00:06.0, 700.00\n"

	smiNA = "0, NVIDIA GeForce RTX 5060 Ti, GPU-0f1e2d3c-4b5a-6978-8a9b-acbdcedfe0f1, [N/A], [N/A], 575.51.03, 00000000:01:00.0, [Not Supported]\n"

	smiFailed = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n"

	smiMismatch = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 570.133\n"

	smiNoDevices = "No devices were found\n"
)

var (
	gpu5090 = GPU{Index: 0, Name: "NVIDIA GeForce RTX 5090", UUID: "GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c",
		MemoryMiB: 32607, MemoryUsedMiB: 1234, Driver: "570.133.07", PCIBusID: "00000000:01:00.0", PowerLimitW: 575, Label: "nvidia-5090"}
	box = []GPU{
		{Index: 0, Name: "NVIDIA GeForce RTX 3090 Ti", UUID: "GPU-3a9d0b6c-1f2e-4d5c-8b7a-6e5f4d3c2b1a",
			MemoryMiB: 24564, MemoryUsedMiB: 18, Driver: "570.133.07", PCIBusID: "00000000:01:00.0", PowerLimitW: 450, Label: "nvidia-3090ti"},
		{Index: 1, Name: "NVIDIA GeForce RTX 5090", UUID: "GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c",
			MemoryMiB: 32607, MemoryUsedMiB: 2, Driver: "570.133.07", PCIBusID: "00000000:02:00.0", PowerLimitW: 575, Label: "nvidia-5090"},
	}
	h100x2 = []GPU{
		{Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-d3b1a0c2-5e4f-6a7b-8c9d-0e1f2a3b4c5d",
			MemoryMiB: 81559, Driver: "550.54.15", PCIBusID: "00000000:18:00.0", PowerLimitW: 700, Label: "nvidia-h100-80gb"},
		{Index: 1, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-e4c2b1d3-6f5a-7b8c-9d0e-1f2a3b4c5d6e",
			MemoryMiB: 81559, Driver: "550.54.15", PCIBusID: "00000000:2A:00.0", PowerLimitW: 700, Label: "nvidia-h100-80gb"},
	}
)

// fakeRunner returns canned output and records the command it was asked for.
type fakeRunner struct {
	out  string
	err  error
	argv []string
}

func (f *fakeRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	f.argv = append([]string{name}, args...)
	return []byte(f.out), f.err
}

var wantArgv = []string{"nvidia-smi", "--query-gpu=" + QueryFields, "--format=csv,noheader,nounits"}

func TestInventoryParse(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []GPU
	}{
		{"rtx5090", smiRTX5090, []GPU{gpu5090}},
		{"5090+3090ti", smiBox, box},
		{"h100x2", smiH100x2, h100x2},
		{"h200", smiH200, []GPU{{Index: 0, Name: "NVIDIA H200", UUID: "GPU-a1b2c3d4-e5f6-a7b8-c9d0-e1f2a3b4c5d6",
			MemoryMiB: 143771, Driver: "560.35.03", PCIBusID: "00000000:19:00.0", PowerLimitW: 700, Label: "nvidia-h200"}}},
		{"h100 real", smiH100Real, []GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-121dc402-a8c7-e1e9-49df-3b23906b9e52",
			MemoryMiB: 81559, Driver: "580.159.04", PCIBusID: "00000000:00:06.0", PowerLimitW: 700, Label: "nvidia-h100-80gb"}}},
		{"n/a values", smiNA, []GPU{{Index: 0, Name: "NVIDIA GeForce RTX 5060 Ti", UUID: "GPU-0f1e2d3c-4b5a-6978-8a9b-acbdcedfe0f1",
			Driver: "575.51.03", PCIBusID: "00000000:01:00.0", Label: "nvidia-5060ti"}}},
		{"rows out of order, CRLF, blank lines", "\r\n" +
			"1, NVIDIA GeForce RTX 5090, GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c, 32607, 2, 570.133.07, 00000000:02:00.0, 575.00\r\n" +
			"\r\n" +
			"0, NVIDIA GeForce RTX 3090 Ti, GPU-3a9d0b6c-1f2e-4d5c-8b7a-6e5f4d3c2b1a, 24564, 18, 570.133.07, 00000000:01:00.0, 450.00\r\n  \r\n", box},
		{"comma in name", "0, NVIDIA GeForce RTX 5090, OC, GPU-x, 100, 1, 570.1, 00000000:01:00.0, 575.00\n",
			[]GPU{{Index: 0, Name: "NVIDIA GeForce RTX 5090, OC", UUID: "GPU-x", MemoryMiB: 100, MemoryUsedMiB: 1,
				Driver: "570.1", PCIBusID: "00000000:01:00.0", PowerLimitW: 575, Label: "nvidia-5090-oc"}}},
		{"no name", "0, [N/A], GPU-x, 100, 1, 570.1, 00000000:01:00.0, 575.00\n",
			[]GPU{{Index: 0, UUID: "GPU-x", MemoryMiB: 100, MemoryUsedMiB: 1, Driver: "570.1", PCIBusID: "00000000:01:00.0", PowerLimitW: 575}}},
		{"empty output", "", nil},
		{"no devices", smiNoDevices, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{out: tt.out}
			got, err := Inventory(t.Context(), r)
			if err != nil {
				t.Fatalf("Inventory: %v", err)
			}
			if !slices.Equal(r.argv, wantArgv) {
				t.Errorf("ran %q, want %q", r.argv, wantArgv)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Inventory =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestInventoryParseErrors(t *testing.T) {
	tests := []struct{ name, out, want string }{
		{"too few fields", "0, NVIDIA GeForce RTX 5090, GPU-x\n", "line 1"},
		{"bad index", "x, NVIDIA GeForce RTX 5090, GPU-x, 1, 1, 570, 0:1, 1\n", "index"},
		{"missing index", "[N/A], NVIDIA GeForce RTX 5090, GPU-x, 1, 1, 570, 0:1, 1\n", "no GPU index"},
		{"bad memory", smiRTX5090 + "1, NVIDIA GeForce RTX 5090, GPU-y, lots, 1, 570, 0:1, 1\n", "line 2"},
		{"bad power", "0, NVIDIA GeForce RTX 5090, GPU-x, 1, 1, 570, 0:1, high\n", "power.limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inventory(t.Context(), &fakeRunner{out: tt.out})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Inventory = %v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestInventoryRunnerErrors(t *testing.T) {
	notFound := &exec.Error{Name: "nvidia-smi", Err: exec.ErrNotFound}
	gpus, err := Inventory(t.Context(), &fakeRunner{err: fmt.Errorf("wrapped: %w", notFound)})
	if gpus != nil || err != nil {
		t.Errorf("nvidia-smi not installed: Inventory = %v, %v; want nil, nil", gpus, err)
	}

	_, err = Inventory(t.Context(), &fakeRunner{out: smiFailed, err: errors.New("exit status 9")})
	if err == nil || !strings.HasPrefix(err.Error(), "nvidia-smi: NVIDIA-SMI has failed because") {
		t.Errorf("failing nvidia-smi: err = %v", err)
	}
}

// TestHelperProcess is not a test: it is the fake nvidia-smi that
// helperRunner runs, printing the canned output named by FUZE_GPU_HELPER.
func TestHelperProcess(t *testing.T) {
	which, ok := os.LookupEnv("FUZE_GPU_HELPER")
	if !ok {
		return
	}
	argv := os.Args
	for len(argv) > 0 && argv[0] != "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 || !slices.Equal(argv[1:], wantArgv) {
		fmt.Fprintf(os.Stderr, "fake nvidia-smi: unexpected arguments %q\n", argv)
		os.Exit(2)
	}
	switch which {
	case "rtx5090":
		fmt.Fprint(os.Stderr, "WARNING: some harmless notice on stderr\n")
		fmt.Print(smiRTX5090)
	case "box":
		fmt.Print(smiBox)
	case "failed":
		fmt.Print(smiFailed)
		os.Exit(9)
	case "mismatch":
		fmt.Fprint(os.Stderr, smiMismatch)
		os.Exit(18)
	case "silent":
		os.Exit(255)
	case "nodevices":
		fmt.Print(smiNoDevices)
		os.Exit(6)
	default:
		fmt.Fprintf(os.Stderr, "fake nvidia-smi: unknown case %q\n", which)
		os.Exit(2)
	}
	os.Exit(0)
}

// helperRunner is the real ExecRunner, re-executing the test binary as
// nvidia-smi.
func helperRunner(which string) ExecRunner {
	return ExecRunner{Command: func(ctx context.Context, name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--", name}, args...)...)
		cmd.Env = append(os.Environ(), "FUZE_GPU_HELPER="+which)
		return cmd
	}}
}

func TestInventoryExec(t *testing.T) {
	tests := []struct {
		which   string
		want    []GPU
		wantErr string // prefix of the error
	}{
		{which: "rtx5090", want: []GPU{gpu5090}},
		{which: "box", want: box},
		{which: "nodevices"},
		{which: "failed", wantErr: "nvidia-smi: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running. (exit status 9)"},
		{which: "mismatch", wantErr: "nvidia-smi: Failed to initialize NVML: Driver/library version mismatch (exit status 18)"},
		{which: "silent", wantErr: "nvidia-smi: exit status 255"},
	}
	for _, tt := range tests {
		t.Run(tt.which, func(t *testing.T) {
			got, err := Inventory(t.Context(), helperRunner(tt.which))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Inventory = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inventory: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Inventory =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestInventoryExecNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, r := range []Runner{nil, ExecRunner{}} {
		gpus, err := Inventory(t.Context(), r)
		if gpus != nil || err != nil {
			t.Errorf("Inventory(%v) without nvidia-smi = %v, %v; want nil, nil", r, gpus, err)
		}
	}
}

func TestInventoryCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Inventory(ctx, helperRunner("rtx5090"))
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "nvidia-smi: ") {
		t.Errorf("Inventory with a cancelled context: err = %v, want nvidia-smi: context canceled", err)
	}
}

func TestCUDAVisibleDevices(t *testing.T) {
	if got := box[1].CUDAVisibleDevices(); got != box[1].UUID {
		t.Errorf("CUDAVisibleDevices = %q, want the UUID %q", got, box[1].UUID)
	}
}
