package ollama

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

func TestTunedCandidatesProductAndQuantizedKVRule(t *testing.T) {
	d := New(Config{NumCtx: 2048, NumPredict: 8, FastMode: true, NumGPUFallback: []int{33}, Tune: Tuning{
		FlashAttention: []string{"0", "1"}, KVCacheType: []string{"f16", "q8_0"}, NumBatch: []int{512, 128}, NumThread: []int{8},
	}}, io.Discard)
	ep := stack.Endpoint{Addr: "127.0.0.1:1", GPU: &gpu.GPU{Label: "nvidia-h200"}}
	cands, err := d.Candidates(context.Background(), ep, stack.Target{Model: "m:1", Alias: "m-1"})
	if err != nil {
		t.Fatal(err)
	}
	// fa0×f16, fa1×f16, fa1×q8_0 (fa0×q8_0 skipped) × 2 batches.
	if len(cands) != 6 {
		t.Fatalf("%d candidates, want 6", len(cands))
	}
	for _, c := range cands {
		m := c.SettingsMap()
		if m[KVCacheType] == "q8_0" && m[FlashAttention] != "1" {
			t.Errorf("quantized KV without flash attention: %v", m)
		}
	}
	c := cands[len(cands)-1]
	if got := c.ServerSettings(); got != "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0" {
		t.Errorf("server settings %q", got)
	}
	opts := d.options(c, 8)
	if opts["num_batch"] != 128 || opts["num_thread"] != 8 || opts["num_gpu"] != 33 || opts["num_ctx"] != 2048 {
		t.Errorf("options %v", opts)
	}
	if env := strings.Join(daemonEnvOf(c), " "); env != "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0" {
		t.Errorf("daemon env %q", env)
	}
	// Published: every tuned request parameter baked, runtime options no longer send them.
	d.cfg.PublishBest = true
	pub, ok := d.Publish(context.Background(), ep, stack.Target{Model: "m:1", Alias: "m-1"}, c)
	if !ok || !strings.HasPrefix(pub.ModelTag, "m-1-nvidia-h200-tuned-") || !isBaked(pub) {
		t.Fatalf("published %+v", pub)
	}
	if p := d.bakedParams(pub); p["num_batch"] != 128 || p["num_thread"] != 8 || p["num_gpu"] != 33 || p["num_ctx"] != nil {
		t.Errorf("baked params %v", p)
	}
	if o := d.options(pub, 8); o["num_batch"] != nil || o["num_gpu"] != nil || o["num_ctx"] != 2048 {
		t.Errorf("published options %v", o)
	}
	if cmd := d.ServerCommand(ep, stack.Target{}, c); !strings.HasPrefix(cmd, "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0 ollama serve") {
		t.Errorf("command %q", cmd)
	}
}

func TestCPUEndpointTunesThreadsBatchAndKVInsteadOfNumGPU(t *testing.T) {
	d := New(Config{NumCtx: 1024, NumPredict: 8, FastMode: true, AutoNG: false, NumGPUFallback: []int{9, 5, 1}, CPUTune: true}, io.Discard)
	cands, err := d.Candidates(context.Background(), stack.Endpoint{Addr: "127.0.0.1:1"}, stack.Target{Model: "m:1", Alias: "m-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		if c.NumGPU != "default" || d.options(c, 8)["num_gpu"] != nil {
			t.Errorf("num_gpu swept on the CPU: %+v", c)
		}
		if c.SettingsMap()[FlashAttention] != "1" {
			t.Errorf("KV types compared without flash attention: %v", c.SettingsMap())
		}
	}
	want := 2 * 2 * len(cpuTuning(cores()).NumThread)
	if len(cands) != want {
		t.Errorf("%d candidates, want %d", len(cands), want)
	}
}

// The GPU proof's env file (results/gpu/tune-llama-8b.env) must give at least 12
// configurations on Ollama.
func TestGPUTuningEnvGivesAtLeast12(t *testing.T) {
	f, err := envfile.ParseFile("../../../results/gpu/tune-llama-8b.env")
	if err != nil {
		t.Fatal(err)
	}
	cfg := knobs.Resolve(nil, knobs.Layer{Name: "tune-llama-8b.env", Vars: f.Map()})
	c, err := ConfigFromKnobs(cfg.WithStack(knobs.StackOllama), t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	c.AutoNG, c.NumGPUFallback = false, []int{33}
	d := New(c, io.Discard)
	cands, err := d.Candidates(context.Background(), stack.Endpoint{Addr: "127.0.0.1:1", GPU: &gpu.GPU{Label: "nvidia-h200"}}, stack.Target{Model: "m:1", Alias: "m-1"})
	if err != nil || len(cands) < 12 {
		t.Fatalf("%d configurations (%v), want ≥ 12", len(cands), err)
	}
	servers := map[string]bool{}
	for _, c := range cands {
		servers[c.ServerSettings()] = true
	}
	t.Logf("%d configurations, %d daemon configurations", len(cands), len(servers))
}

// Serving crosses the daemon-level tuning sets with OLLAMA_NUM_PARALLEL: every server
// configuration gets its levels (its goodput is the throughput-at-the-SLO objective), each a
// distinct daemon environment; request options are left to the single-stream search.
func TestServingCrossesDaemonTuningSets(t *testing.T) {
	var log strings.Builder
	d := New(Config{NumCtx: 2048, NumPredict: 8, Tune: Tuning{
		FlashAttention: []string{"0", "1"}, KVCacheType: []string{"f16", "q8_0"}, NumBatch: []int{512, 128},
	}}, &log)
	cands, err := d.ServingCandidates(context.Background(), stack.Endpoint{Addr: "127.0.0.1:1"}, stack.Target{Model: "m:1"}, []int{1, 8})
	if err != nil {
		t.Fatal(err)
	}
	var envs []string
	for _, c := range cands {
		envs = append(envs, strings.Join(daemonEnvOf(c), " "))
		if m := c.SettingsMap(); m["num_batch"] != "" {
			t.Errorf("serving candidate with a request option: %v", m)
		}
	}
	// fa0×f16, fa1×f16, fa1×q8_0 (fa0×q8_0 skipped) × parallel 1 and 8.
	want := []string{
		"OLLAMA_FLASH_ATTENTION=0 OLLAMA_KV_CACHE_TYPE=f16 OLLAMA_NUM_PARALLEL=1", "OLLAMA_FLASH_ATTENTION=0 OLLAMA_KV_CACHE_TYPE=f16 OLLAMA_NUM_PARALLEL=8",
		"OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=f16 OLLAMA_NUM_PARALLEL=1", "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=f16 OLLAMA_NUM_PARALLEL=8",
		"OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0 OLLAMA_NUM_PARALLEL=1", "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0 OLLAMA_NUM_PARALLEL=8",
	}
	if strings.Join(envs, "\n") != strings.Join(want, "\n") {
		t.Errorf("daemon environments\n%s\nwant\n%s", strings.Join(envs, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(log.String(), "not swept by serving") {
		t.Errorf("log %q: the request options left out are not said", log.String())
	}
}
