//go:build realserver

package llamacpp_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// TestRealLlamaServer runs the driver against a real llama-server (built from llama.cpp's
// public source outside this repository; build tag realserver) and checks that every row's
// server timer is the server's own timings.predicted_n / predicted_ms, beside the client's rate
// in column 12, within 3% of it (llama-server's timer and its stream agree). The GPUs are picked as a benchmark run
// picks them (MATCH_GPU_A/B, UUID_A/B); without a GPU the server runs on the CPU.
func TestRealLlamaServer(t *testing.T) {
	bin, model := os.Getenv("FUZE_TEST_LLAMA_SERVER"), os.Getenv("FUZE_TEST_GGUF")
	if bin == "" || model == "" {
		t.Skip("set FUZE_TEST_LLAMA_SERVER to a llama-server binary and FUZE_TEST_GGUF to a GGUF model to run the driver against a real llama-server")
	}
	var sel gpu.Selection
	if gpus, err := gpu.Inventory(context.Background(), nil); err == nil && len(gpus) > 0 {
		s, warnings, err := gpu.Select(gpus, gpu.OptionsFromEnv(os.Getenv))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range warnings {
			t.Log(w)
		}
		sel = s
	}
	cfg := llamacpp.Config{
		Bin:   bin,
		PortA: freePort(t), PortB: freePort(t),
		Model:      model,
		NGL:        []int{-1, 0},
		CtxSize:    1024,
		BatchSize:  32,
		NumPredict: 32,
		Seed:       llamacpp.DefaultSeed,
		Prompt:     "Tell me a 1-sentence fun fact about GPUs.",
		StopGrace:  10 * time.Second,
		DebugBench: true,
		LogDir:     t.TempDir(), RunTS: time.Now().Format("20060102_150405"),
		Environ: os.Environ(),
	}
	res := run(t, cfg, sel, sweep.Policy{Exhaustive: true}, 1)
	t.Logf("%s", res.log)
	responses, _ := filepath.Glob(filepath.Join(cfg.LogDir, "debug_"+cfg.RunTS, "*.response.json"))
	sort.Strings(responses)
	if len(res.rows) != (1+len(cfg.NGL))*len(res.eps) || len(responses) != len(res.rows) {
		t.Fatalf("%d rows, %d responses", len(res.rows), len(responses))
	}
	for i, r := range res.rows {
		s := res.recs[i].Sample
		if s.Outcome != measure.OK {
			t.Fatalf("row %d: %s: %s", i, s.Outcome, s.Error)
		}
		b, err := os.ReadFile(responses[i])
		if err != nil {
			t.Fatal(err)
		}
		var final struct {
			Timings struct {
				PredictedN         int     `json:"predicted_n"`
				PredictedMS        float64 `json:"predicted_ms"`
				PredictedPerSecond float64 `json:"predicted_per_second"`
			} `json:"timings"`
		}
		if err := json.Unmarshal(b, &final); err != nil {
			t.Fatal(err)
		}
		server := float64(final.Timings.PredictedN) / final.Timings.PredictedMS * 1000
		if m := res.recs[i].Metrics; math.Abs(r.TokensPerSec-m.DecodeTPS) > 0.006 || math.Abs(m.ServerDecodeTPS-server) > 1e-6*server ||
			math.Abs(server-final.Timings.PredictedPerSecond) > 1e-6*server || m.TimerDisagrees {
			t.Errorf("row %d: CSV %.2f, JSONL %.6f tok/s; the server's timings: %d tokens in %.3f ms = %.6f (predicted_per_second %.6f)",
				i, r.TokensPerSec, res.recs[i].DecodeTPS, final.Timings.PredictedN, final.Timings.PredictedMS, server, final.Timings.PredictedPerSecond)
		}
		if s.ServerOutputTokens != cfg.NumPredict {
			t.Errorf("row %d: %d tokens, asked for %d", i, s.ServerOutputTokens, cfg.NumPredict)
		}
		t.Logf("%s %s num_gpu=%s offloaded=%s: %.2f tok/s (server %.4f), prefill %d tokens in %s",
			r.Endpoint, r.ModelTag, r.NumGPU, s.Settings["offloaded_layers"], r.TokensPerSec, server, s.ServerPromptTokens, s.ServerPromptDuration)
	}
}
