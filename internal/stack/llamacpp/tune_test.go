package llamacpp

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

func TestTunedCandidatesAndTheirCommandLines(t *testing.T) {
	d := New(Config{CtxSize: 2048, BatchSize: 32, NumPredict: 8, NGL: []int{-1}, Tune: Tuning{
		FlashAttn: []string{"off", "on"}, CacheType: []string{"f16", "q8_0"}, Batch: []int{2048}, UBatch: []int{512, 4096}, Threads: []int{8},
	}}, io.Discard)
	ep := stack.Endpoint{Addr: "127.0.0.1:9", GPU: &gpu.GPU{Label: "nvidia-h200"}}
	cands, err := d.Candidates(context.Background(), ep, stack.Target{Model: "m", Alias: "m"})
	if err != nil {
		t.Fatal(err)
	}
	// off×f16, on×f16, on×q8_0 (off×q8_0 skipped) × -ub 512 (4096 > -b 2048 skipped).
	if len(cands) != 3 {
		t.Fatalf("%d candidates, want 3", len(cands))
	}
	args := strings.Join(d.ServerArgs(ep, "/m.gguf", cands[2]), " ")
	for _, want := range []string{"--batch-size 2048", "--n-gpu-layers 999", "--flash-attn on", "--cache-type-k q8_0 --cache-type-v q8_0", "--ubatch-size 512", "--threads 8"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if cands[0].ServerSettings() == cands[2].ServerSettings() {
		t.Error("different command lines share a server key")
	}
	d.cfg.CPUTune = true
	cpu, _ := d.Candidates(context.Background(), stack.Endpoint{Addr: "127.0.0.1:9"}, stack.Target{Model: "m", Alias: "m"})
	for _, c := range cpu {
		if a := strings.Join(d.ServerArgs(stack.Endpoint{Addr: "127.0.0.1:9"}, "/m.gguf", c), " "); strings.Contains(a, "--n-gpu-layers") {
			t.Errorf("CPU candidate offloads: %s", a)
		}
	}
}

// The GPU proof's env file must give at least 12 configurations on llama.cpp.
func TestGPUTuningEnvGivesAtLeast12(t *testing.T) {
	f, err := envfile.ParseFile("../../../results/gpu/tune-llama-8b.env")
	if err != nil {
		t.Fatal(err)
	}
	cfg := knobs.Resolve(nil, knobs.Layer{Name: "tune-llama-8b.env", Vars: f.Map()})
	c, err := ConfigFromKnobs(cfg, "", t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	d := New(c, io.Discard)
	cands, err := d.Candidates(context.Background(), stack.Endpoint{Addr: "127.0.0.1:9", GPU: &gpu.GPU{Label: "nvidia-h200"}}, stack.Target{Model: "m", Alias: "m"})
	if err != nil || len(cands) < 12 {
		t.Fatalf("%d configurations (%v), want ≥ 12", len(cands), err)
	}
}

// A tuning search on a GPU at one offload compares against the server's defaults at that
// offload (an old llama-server's own default, no layers on the GPU, would be a CPU baseline);
// without tuning sets, or sweeping the offload, the baseline stays the server's own default.
func TestTuningBaselineKeepsTheOffload(t *testing.T) {
	gpuEP := stack.Endpoint{Addr: "127.0.0.1:9", GPU: &gpu.GPU{Label: "nvidia-h200"}}
	tu := Tuning{FlashAttn: []string{"off", "on"}}
	for _, tc := range []struct {
		ngl  []int
		tune Tuning
		ep   stack.Endpoint
		want string
	}{
		{[]int{-1}, tu, gpuEP, "--n-gpu-layers 999"},
		{[]int{-1, 16}, tu, gpuEP, ""},
		{[]int{-1}, Tuning{}, gpuEP, ""},
		{[]int{-1}, tu, stack.Endpoint{Addr: "127.0.0.1:9"}, ""},
	} {
		d := New(Config{CtxSize: 2048, BatchSize: 32, NumPredict: 8, NGL: tc.ngl, Tune: tc.tune}, io.Discard)
		base, err := d.Baseline(context.Background(), tc.ep, stack.Target{Model: "m", Alias: "m"})
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(d.ServerArgs(tc.ep, "/m.gguf", base), " ")
		if got := strings.Contains(args, "--n-gpu-layers"); got != (tc.want != "") || (tc.want != "" && !strings.Contains(args, tc.want)) {
			t.Errorf("ngl %v tune %v gpu %v: baseline args %q, want %q", tc.ngl, !tc.tune.empty(), tc.ep.GPU != nil, args, tc.want)
		}
		if base.Label != stack.LabelBaseline {
			t.Errorf("baseline labelled %q", base.Label)
		}
	}
}

// Serving crosses the tuning sets (all server flags) with --parallel: each server
// configuration is its own llama-server with its levels, keeping the slots' context size and
// continuous batching.
func TestServingCrossesTuningSets(t *testing.T) {
	d := New(Config{CtxSize: 2048, BatchSize: 32, NumPredict: 8, NGL: []int{-1}, Tune: Tuning{
		FlashAttn: []string{"off", "on"}, CacheType: []string{"f16", "q8_0"},
	}}, io.Discard)
	ep := stack.Endpoint{Addr: "127.0.0.1:9", GPU: &gpu.GPU{Label: "nvidia-h200"}}
	cands, err := d.ServingCandidates(context.Background(), ep, stack.Target{Model: "m", Alias: "m"}, []int{1, 8})
	if err != nil {
		t.Fatal(err)
	}
	// off×f16, on×f16, on×q8_0 (off×q8_0 skipped) × --parallel 1 and 8.
	if len(cands) != 6 {
		t.Fatalf("%d candidates, want 6", len(cands))
	}
	keys := map[string]bool{}
	for _, c := range cands {
		keys[c.ServerSettings()] = true
		args := strings.Join(d.ServerArgs(ep, "/m.gguf", c), " ")
		slots := c.SettingsMap()["n_parallel"]
		for _, want := range []string{"--parallel " + slots, "--cont-batching", "--ctx-size " + map[string]string{"1": "2048", "8": "16384"}[slots]} {
			if !strings.Contains(args, want) {
				t.Errorf("args %q lack %q", args, want)
			}
		}
		if m := c.SettingsMap(); m[SetCacheType] == "q8_0" && !strings.Contains(args, "--cache-type-k q8_0") {
			t.Errorf("args %q lack the tuned cache type", args)
		}
	}
	if len(keys) != 6 {
		t.Errorf("%d distinct server configurations among 6 candidates", len(keys))
	}
}
