package ollama_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/ollama"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// Two fake GPUs (no CUDA device has these UUIDs, so the daemons run on the CPU): what is
// checked is what each test daemon was given, read back from its process.
func TestSplitEndpointDaemonsAndParallelRun(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.SplitPort = ollamatest.FreePort(t)
	cfg.NGPercents = []float64{100}
	a := &gpu.GPU{Index: 0, Name: "NVIDIA H200", UUID: "GPU-aaaaaaaa-fake", MemoryMiB: 143771, Label: "nvidia-h200"}
	b := &gpu.GPU{Index: 1, Name: "NVIDIA H200", UUID: "GPU-bbbbbbbb-fake", MemoryMiB: 143771, Label: "nvidia-h200"}
	var log bytes.Buffer
	d := ollama.New(cfg, &log)
	defer d.Close(context.Background())
	eps, err := d.Setup(context.Background(), gpu.Selection{A: a, B: b, Split: true, ReserveMiB: 100000})
	if err != nil {
		t.Fatal(err, log.String())
	}
	var suffixes []string
	for _, ep := range eps {
		suffixes = append(suffixes, ep.Suffix)
	}
	if strings.Join(suffixes, " ") != "A B A+B" || eps[2].GPULabel() != "nvidia-h200+nvidia-h200" {
		t.Fatalf("endpoints %v, split label %q", suffixes, eps[2].GPULabel())
	}
	overhead := "OLLAMA_GPU_OVERHEAD=" + strconv.Itoa(100000<<20)
	for _, tc := range []struct {
		ep           stack.Endpoint
		want, absent []string
	}{
		{eps[0], []string{"CUDA_VISIBLE_DEVICES=GPU-aaaaaaaa-fake", overhead}, []string{"OLLAMA_SCHED_SPREAD=1"}},
		{eps[1], []string{"CUDA_VISIBLE_DEVICES=GPU-bbbbbbbb-fake", overhead}, []string{"OLLAMA_SCHED_SPREAD=1"}},
		{eps[2], []string{"CUDA_VISIBLE_DEVICES=GPU-aaaaaaaa-fake,GPU-bbbbbbbb-fake", "OLLAMA_SCHED_SPREAD=1", overhead, "OLLAMA_HOST=" + eps[2].Addr}, nil},
	} {
		env := processEnv(t, d.Daemon(tc.ep.Addr).(*server.Process).PID())
		for _, w := range tc.want {
			if !slices.Contains(env, w) {
				t.Errorf("daemon %s lacks %s (has %v)", tc.ep.Suffix, w, env)
			}
		}
		for _, n := range tc.absent {
			if slices.Contains(env, n) {
				t.Errorf("daemon %s has %s", tc.ep.Suffix, n)
			}
		}
	}
	if !strings.Contains(log.String(), "test daemon A+B on "+eps[2].Addr+" (nvidia-h200+nvidia-h200 GPU-aaaaaaaa-fake+GPU-bbbbbbbb-fake, OLLAMA_SCHED_SPREAD=1") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, err := os.Stat(cfg.LogDir + "/ollama_ab_" + cfg.RunTS + ".log"); err != nil {
		t.Errorf("split daemon log: %v", err)
	}

	// The three endpoints measured at once: every row written, each under its endpoint.
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: sweep.Policy{}, Writer: w, Repeat: 1, Parallel: true}
	out, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !e.Timing.Parallel || len(out) != 3 {
		t.Fatalf("timing %+v, %d outcomes", e.Timing, len(out))
	}
	rows, _, err := results.ReadRunCSV(w.CSVPath())
	if err != nil {
		t.Fatal(err)
	}
	bySuffix := map[string]results.Row{}
	for _, r := range rows {
		if r.TokensPerSec <= 0 {
			t.Errorf("failed row %+v", r)
		}
		bySuffix[r.Suffix] = r
	}
	if r := bySuffix["A+B"]; r.GPUUUID != "GPU-aaaaaaaa-fake+GPU-bbbbbbbb-fake" || r.GPULabel != "nvidia-h200+nvidia-h200" || len(r.Fields()) != results.NumColumns {
		t.Fatalf("split row %+v", r)
	}
	if bySuffix["A"].GPUUUID != a.UUID || bySuffix["B"].GPUUUID != b.UUID {
		t.Fatalf("rows %+v", bySuffix)
	}
	// A+B ran after A and B, whose models were unloaded first: nothing of theirs was left on
	// the GPUs it measured.
	for _, ep := range eps[:2] {
		if !strings.Contains(log.String(), "== ["+ep.Suffix+"] unloading tiny:latest") {
			t.Errorf("%s not released before A+B:\n%s", ep.Suffix, log.String())
		}
		if ps, err := ollamaapi.New(ep.Addr).PS(context.Background()); err != nil || len(ps) != 0 {
			t.Errorf("%s still has %v loaded (%v)", ep.Suffix, ps, err)
		}
	}
}

// processEnv is a running process's environment (Linux).
func processEnv(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Skipf("cannot read a process's environment here: %v", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// ENDPOINTS=B: Setup starts B's test daemon only, not A's (whose port stays free).
func TestSetupStartsOnlyTheWantedDaemons(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	a := &gpu.GPU{Index: 0, Name: "NVIDIA H200", UUID: "GPU-aaaaaaaa-fake", MemoryMiB: 143771, Label: "nvidia-h200"}
	b := &gpu.GPU{Index: 1, Name: "NVIDIA H200", UUID: "GPU-bbbbbbbb-fake", MemoryMiB: 143771, Label: "nvidia-h200"}
	var log bytes.Buffer
	d := ollama.New(cfg, &log)
	defer d.Close(context.Background())
	eps, err := d.Setup(context.Background(), gpu.Selection{A: a, B: b, Only: []string{"B"}})
	if err != nil {
		t.Fatal(err, log.String())
	}
	if len(eps) != 1 || eps[0].Suffix != "B" {
		t.Fatalf("endpoints %v, want B only", eps)
	}
	if strings.Contains(log.String(), "test daemon A") {
		t.Errorf("daemon A started:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "test daemon B") {
		t.Errorf("daemon B not started:\n%s", log.String())
	}
}

// Under RESERVE_GPU_MEMORY_MIB a configuration that put more on the GPUs than the reserve
// leaves them fails as a load failure (as it would on a GPU of that size); a split endpoint
// has what the reserve leaves on each of its GPUs.
func TestReserveExceeded(t *testing.T) {
	h200 := func() *gpu.GPU { return &gpu.GPU{MemoryMiB: 143771} }
	const reserve = 143771 - 13312
	for _, tc := range []struct {
		vramMiB int64
		gpus    []*gpu.GPU
		fails   bool
	}{
		{10816, []*gpu.GPU{h200()}, false}, // Ollama's own fit: 26 of 33 layers
		{13312, []*gpu.GPU{h200()}, false},
		{14830, []*gpu.GPU{h200()}, true},          // num_gpu 33 forced past the reserve
		{14830, []*gpu.GPU{h200(), h200()}, false}, // the same model split over two
		{14830, nil, false},                        // no GPU: nothing reserved
	} {
		err := ollama.ReserveExceeded(tc.vramMiB<<20, tc.gpus, reserve)
		if (err != nil) != tc.fails {
			t.Errorf("%d MiB on %d GPUs: %v, want failure %v", tc.vramMiB, len(tc.gpus), err, tc.fails)
		}
		if err == nil {
			continue
		}
		if kind, msg := measure.Classify(err); kind != measure.ErrLoad || !strings.Contains(msg, "leaves 13312 MiB") {
			t.Errorf("%d MiB: %v (kind %q)", tc.vramMiB, err, kind)
		}
	}
}
