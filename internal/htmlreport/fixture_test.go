package htmlreport

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/tune"
)

// writeFixture writes, into dir, inputs with every section of the report: an Ollama run and a
// llama.cpp run of one model under two names (the same weight bytes), energy per token in
// their JSONL (nested in a telemetry object for Ollama, at the top for llama.cpp), a failure,
// two serving CSVs (one with energy), a tuning report beside the Ollama run and a machine.txt.
// Everything is computed from fixed numbers, so the report built from it is the same on every
// machine.
func writeFixture(t testing.TB, dir string) {
	t.Helper()
	gpu := results.Row{Endpoint: "127.0.0.1:11435", Unit: "proc", Suffix: "A", GPULabel: "nvidia-h200",
		GPUName: "NVIDIA H200", GPUUUID: "GPU-00000000-fixture", GPUMemMiB: 143771}
	type cfg struct {
		label, numGPU, offloaded string
		repeats                  []float64
		ttft                     time.Duration
		energy                   float64 // J/token; 0: none
		fail                     string
	}
	write := func(stack, name, model string, at time.Time, batch string, cfgs []cfg, nested bool) {
		var lines []string
		var rows [][]string
		for i, c := range cfgs {
			s := &measure.Sample{
				Stack: stack, Endpoint: gpu.Endpoint, Model: model, ModelTag: model, Label: c.label,
				Settings:  map[string]string{"num_gpu": c.numGPU, "num_ctx": "2048", "num_predict": "64", "temperature": "0"},
				MaxTokens: 64, ServerPromptTokens: 12, ServerOutputTokens: 64,
				Start:      at.Add(time.Duration(i) * 10 * time.Second),
				FirstToken: c.ttft, FirstByte: c.ttft,
				ModelBytes: 1_000_000_000, RooflineTPS: 4800, Outcome: measure.OK,
			}
			if c.offloaded != "" {
				s.Settings["offloaded_layers"] = c.offloaded
			}
			if c.fail != "" {
				s.Outcome, s.Error = measure.ErrTimeout, c.fail
			} else {
				s.RepeatTPS = c.repeats
				// The median request's chunks: one token each, at the median rate, with a
				// fixed ripple; the slowest gap every 16th token.
				rate := measure.Derive(&measure.Sample{Outcome: measure.OK, RepeatTPS: c.repeats}).DecodeTPS
				gap := time.Duration(float64(time.Second) / rate)
				at := c.ttft
				for k := range 64 {
					s.ChunkTimes = append(s.ChunkTimes, at)
					d := gap + time.Duration(k%5-2)*gap/40
					if k%16 == 15 {
						d += gap / 2
					}
					at += d
				}
				s.End = at
				s.ServerDecodeDuration = at - c.ttft
				s.RooflineShare = rate / s.RooflineTPS
			}
			row := gpu
			row.TS = s.Start.Add(5 * time.Second)
			row.BaseModel, row.VariantLabel, row.ModelTag, row.NumGPU = model, c.label, model, c.numGPU
			row.NumCtx, row.Batch, row.NumPredict = "2048", batch, "64"
			row.TokensPerSec = measure.Derive(s).DecodeTPS
			rows = append(rows, row.Fields())
			b, err := json.Marshal(results.NewRecord(row, s))
			if err != nil {
				t.Fatal(err)
			}
			if c.energy > 0 {
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if nested {
					m["telemetry"] = map[string]any{"joules_per_token": c.energy, "power_w_mean": 400.5}
				} else {
					m["joules_per_token"] = c.energy
				}
				if b, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			lines = append(lines, string(b))
		}
		f, err := os.Create(filepath.Join(dir, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		if err := w.WriteAll(append([][]string{results.Header}, rows...)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, name+".jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	write("ollama", "ollama_bench_20261201_100000", "fuze-tiny:latest", day, "default", []cfg{
		{label: "base-as-is", numGPU: "default", repeats: []float64{300.5, 302.25, 305, 298.75, 301}, ttft: 90 * time.Millisecond, energy: 0.91},
		{label: "optimized", numGPU: "2", fail: "context deadline exceeded"},
		{label: "optimized", numGPU: "4", repeats: []float64{150.5, 149, 152.25, 151, 150}, ttft: 140 * time.Millisecond, energy: 1.52},
		{label: "optimized", numGPU: "9", repeats: []float64{303, 301.5, 304.25, 302, 300.5}, ttft: 85 * time.Millisecond, energy: 0.88},
	}, true)
	write("llama.cpp", "llamacpp_bench_20261201_101000", "tiny", day.Add(10*time.Minute), "32", []cfg{
		{label: "base-as-is", numGPU: "default", offloaded: "0/9", repeats: []float64{40.25, 41, 39.5, 40.75, 40}, ttft: 400 * time.Millisecond, energy: 4.2},
		{label: "optimized", numGPU: "4", offloaded: "4/9", repeats: []float64{90, 91.5, 89.25, 90.5, 92}, ttft: 150 * time.Millisecond, energy: 2.1},
		{label: "optimized", numGPU: "-1", offloaded: "9/9", repeats: []float64{330.5, 332, 329.25, 331, 333.5}, ttft: 12 * time.Millisecond, energy: 0.8},
	}, false)

	// The tuning search's report beside the Ollama run, as the engine writes it: a significant
	// best and one within noise, one whose default was not measured, an effect on each side of
	// 1 and one whose interval covers it, and a value the page must escape.
	tuning := []tune.Report{{
		Stack: "ollama", Model: "fuze-tiny:latest", Endpoint: "127.0.0.1:11435", GPULabel: "nvidia-h200",
		Knobs: []string{"OLLAMA_FLASH_ATTENTION", "num_batch"}, Search: "halving", Rounds: 2, Repeat: 3,
		Starts: 3, GridStart: 4, GroupedGS: 2, Measured: 15, GridMeas: 24,
		Best: []tune.ObjectiveBest{
			{Objective: "decode_tps", Settings: map[string]string{"OLLAMA_FLASH_ATTENTION": "1", "num_batch": "128"},
				Median: 310.25, BaselineMedian: 301, Ratio: 310.25 / 301, P: 0.0079, Significant: true},
			{Objective: "ttft_ms", Settings: map[string]string{"OLLAMA_FLASH_ATTENTION": "1", "num_batch": "<512&>"},
				Median: 88.5, BaselineMedian: 90, Ratio: 88.5 / 90, P: 0.42},
			{Objective: "joules_per_token", Settings: map[string]string{"OLLAMA_FLASH_ATTENTION": "0", "num_batch": "128"},
				Median: 0.8766, Note: "the default's energy was not read"},
		},
		Effects: []tune.Effect{
			{Objective: "decode_tps", Knob: "OLLAMA_FLASH_ATTENTION", Reference: "0", Value: "1", Pairs: 2,
				Ratio: 1.0312, Low: 1.0106, High: 1.0498, Significant: true, Better: true},
			{Objective: "decode_tps", Knob: "num_batch", Reference: "<512&>", Value: "128", Pairs: 2,
				Ratio: 0.9975, Low: 0.981, High: 1.012},
			{Objective: "ttft_ms", Knob: "num_batch", Reference: "<512&>", Value: "128", Pairs: 2,
				Ratio: 1.2, Low: 1.05, High: 1.41, Significant: true},
		},
		Limitations: []string{"pruning uses the decode rate only"},
	}}
	b, err := json.Marshal(tuning)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tune.Path(filepath.Join(dir, "ollama_bench_20261201_100000.csv")), b, 0o644); err != nil {
		t.Fatal(err)
	}

	serving := func(name string, header []string, rows [][]any) {
		var b strings.Builder
		b.WriteString(strings.Join(header, ",") + "\n")
		for _, r := range rows {
			cells := make([]string, len(r))
			for i, v := range r {
				cells[i] = fmt.Sprint(v)
			}
			b.WriteString(strings.Join(cells, ",") + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	serving("serving_ollama_20261201_102000.csv",
		[]string{"ts", "base_model", "gpu_label", "gpu_name", "num_parallel", "concurrency", "completed", "failed", "request_throughput", "output_tps",
			"ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "e2e_p99_ms", "joules_per_token"},
		[][]any{
			{"2026-12-01T10:20:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 1, 1, 32, 0, 4.6, 295.1, 88, 95, 101, 3.3, 3.5, 3.9, 230, 0.9},
			{"2026-12-01T10:21:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 1, 2, 32, 0, 4.6, 296.0, 300, 320, 340, 3.3, 3.5, 3.9, 470, 0.9},
			{"2026-12-01T10:22:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 1, 4, 32, 0, 4.6, 296.4, 700, 750, 800, 3.3, 3.6, 4.0, 950, 0.89},
			{"2026-12-01T10:23:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 8, 1, 32, 0, 4.5, 290.2, 90, 97, 104, 3.4, 3.6, 4.0, 235, 0.95},
			{"2026-12-01T10:24:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 8, 2, 32, 0, 8.4, 540.8, 95, 104, 112, 3.6, 3.9, 4.4, 250, 0.55},
			{"2026-12-01T10:25:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 8, 4, 32, 0, 15.1, 968.0, 101, 112, 125, 4.0, 4.5, 5.2, 280, 0.33},
			{"2026-12-01T10:26:00+00:00", "fuze-tiny:latest", "nvidia-h200", "NVIDIA H200", 8, 8, 31, 1, 25.3, 1620.5, 120, 140, 166, 4.8, 5.6, 7.1, 340, 0.22},
		})
	serving("serving_llamacpp_20261201_103000.csv",
		[]string{"ts", "base_model", "gpu_label", "parallel", "concurrency", "completed", "failed", "output_tps",
			"ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "e2e_p99_ms"},
		[][]any{
			{"2026-12-01T10:30:00+00:00", "tiny", "nvidia-h200", 8, 1, 32, 0, 325.0, 13, 15, 3.0, 3.3, 210},
			{"2026-12-01T10:31:00+00:00", "tiny", "nvidia-h200", 8, 2, 32, 0, 610.4, 14, 18, 3.2, 3.6, 226},
			{"2026-12-01T10:32:00+00:00", "tiny", "nvidia-h200", 8, 4, 32, 0, 1105.9, 16, 24, 3.5, 4.1, 250},
			{"2026-12-01T10:33:00+00:00", "tiny", "nvidia-h200", 8, 8, 32, 0, 1790.2, 21, 35, 4.3, 5.4, 310},
		})
	machine := `date: 2026-12-01T09:59:00+00:00
uname: Linux 6.1.0 x86_64
ollama: 0.17.4
fuze: fuze 0.1.0-dev
nvidia-smi --query-gpu:
index, name, uuid, memory.total [MiB], driver_version, pci.bus_id, power.limit [W], clocks.max.memory [MHz]
0, NVIDIA H200, GPU-00000000-fixture, 143771 MiB, 580.159.04, 00000000:00:06.0, 700.00 W, 3201 MHz

+-------------------+
| NVIDIA-SMI table  |
+-------------------+
nvcc:
Cuda compilation tools, release 13.0, V13.0.88
Build cuda_13.0.r13.0/compiler.36424714_0
cmake: cmake version 4.4.3
`
	if err := os.WriteFile(filepath.Join(dir, "machine.txt"), []byte(machine), 0o644); err != nil {
		t.Fatal(err)
	}
	// Files a results folder also holds, which the report leaves alone.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("console transcript\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
