package llamacpp_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func TestTensorSplitFromFreeMemory(t *testing.T) {
	a := &gpu.GPU{MemoryMiB: 32607, MemoryUsedMiB: 607}
	b := &gpu.GPU{MemoryMiB: 24564, MemoryUsedMiB: 564}
	if got := llamacpp.TensorSplit([]*gpu.GPU{a, b}, 0); got != "32000,24000" {
		t.Errorf("split %s", got)
	}
	if got := llamacpp.TensorSplit([]*gpu.GPU{a, b}, 8000); got != "24000,16000" {
		t.Errorf("split with 8000 MiB reserved %s", got)
	}
	if got := llamacpp.TensorSplit([]*gpu.GPU{a, b}, 30000); got != "2000,1" {
		t.Errorf("a GPU with no room still gets a share, the smallest: %s", got)
	}
}

// Endpoints A, B and A+B on two fake GPUs, measured with PARALLEL_ENDPOINTS=1: the split
// server sees both GPUs and gets --split-mode and --tensor-split; A+B never runs beside A or
// B, and their servers are stopped before it starts.
func TestSplitEndpointServerAndParallelRun(t *testing.T) {
	cfg, rec := fakeConfig(t, "normal")
	cfg.NGL = []int{-1}
	cfg.SplitPort, cfg.SplitMode = freePort(t), "row"
	var log bytes.Buffer
	d := llamacpp.New(cfg, &log)
	defer d.Close(context.Background())
	a := &gpu.GPU{Index: 0, Name: "NVIDIA H200", UUID: "GPU-aaaa", MemoryMiB: 143771, MemoryUsedMiB: 771, Label: "nvidia-h200"}
	b := &gpu.GPU{Index: 1, Name: "NVIDIA H200", UUID: "GPU-bbbb", MemoryMiB: 143771, MemoryUsedMiB: 1771, Label: "nvidia-h200"}
	eps, err := d.Setup(context.Background(), gpu.Selection{A: a, B: b, Split: true, ReserveMiB: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 3 || eps[2].Suffix != "A+B" {
		t.Fatalf("endpoints %+v", eps)
	}
	w, err := results.CreateRun(t.TempDir(), "llama.cpp", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: sweep.Policy{Exhaustive: true}, Writer: w, Repeat: 1, Parallel: true}
	out, err := e.Run(context.Background())
	if err != nil || len(out) != 3 || !e.Timing.Parallel {
		t.Fatalf("err %v, %d outcomes, timing %+v\n%s", err, len(out), e.Timing, log.String())
	}
	starts, _ := readRecords(t, rec)
	var split []record
	for _, s := range starts {
		if s.CUDA == "GPU-aaaa,GPU-bbbb" {
			split = append(split, s)
		} else if s.CUDA != "GPU-aaaa" && s.CUDA != "GPU-bbbb" {
			t.Errorf("server on %q", s.CUDA)
		}
	}
	if len(split) == 0 {
		t.Fatalf("no server on both GPUs: %+v", starts)
	}
	for _, s := range split {
		argv := strings.Join(s.Argv, " ")
		if !strings.Contains(argv, "--split-mode row --tensor-split 43000,42000") {
			t.Errorf("split server argv %q", argv)
		}
	}
	for _, s := range starts {
		if s.CUDA != "GPU-aaaa,GPU-bbbb" && slices.Contains(s.Argv, "--split-mode") {
			t.Errorf("single-GPU server with a split: %v", s.Argv)
		}
	}
	rows, _, err := results.ReadRunCSV(w.CSVPath())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Suffix == "A+B" {
			n++
			if r.GPUUUID != "GPU-aaaa+GPU-bbbb" || r.GPULabel != "nvidia-h200+nvidia-h200" || r.TokensPerSec <= 0 {
				t.Errorf("split row %+v", r)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no A+B rows in %+v", rows)
	}
}
