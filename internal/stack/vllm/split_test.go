package vllm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
)

// Endpoint A+B serves one model over both GPUs: both UUIDs visible, --tensor-parallel-size 2.
func TestSplitEndpointTensorParallel(t *testing.T) {
	logDir := t.TempDir()
	cfg := config(t, "", logDir)
	cfg.SplitPort = freePort(t)
	d := vllm.New(cfg, &bytes.Buffer{})
	defer d.Close(context.Background())
	a := &gpu.GPU{Index: 0, Name: "NVIDIA H200", UUID: "GPU-aaaa", MemoryMiB: 143771, Label: "nvidia-h200"}
	b := &gpu.GPU{Index: 1, Name: "NVIDIA H200", UUID: "GPU-bbbb", MemoryMiB: 143771, Label: "nvidia-h200"}
	eps, err := d.Setup(context.Background(), gpu.Selection{A: a, B: b, Split: true})
	if err != nil || len(eps) != 3 || eps[2].Suffix != "A+B" {
		t.Fatalf("endpoints %+v %v", eps, err)
	}
	targets, err := d.Targets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := d.Baseline(context.Background(), eps[2], targets[0])
	if s := (&engine.Engine{Driver: d}).Measure(context.Background(), eps[2], targets[0], c); s.Outcome != measure.OK {
		t.Fatalf("%s: %s", s.Outcome, s.Error)
	}
	log, err := os.ReadFile(filepath.Join(logDir, "vllm_ab_20261127_000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `CUDA_VISIBLE_DEVICES="GPU-aaaa,GPU-bbbb"`) || !strings.Contains(string(log), "--tensor-parallel-size 2") {
		t.Fatalf("server log:\n%s", log)
	}
}
