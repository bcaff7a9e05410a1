//go:build gpu

package telemetry_test

// GPU checks of the telemetry (build tag gpu, like internal/stack/ollama/gpu_test.go):
//
//	go test -tags gpu -run 'GPU' -v ./internal/telemetry/
//	CGO_ENABLED=1 go test -tags 'gpu nvml' -run 'GPU' -v ./internal/telemetry/   # with NVML's energy counter
//	FUZE_GPU_RUN_JSONL=run.jsonl go test -tags gpu -run TestGPURunTelemetry -v ./internal/telemetry/
//
// TestGPUTelemetryLive samples the machine's first GPU through the real nvidia-smi (it fails
// where there is none: the tag says this is a GPU machine). TestGPURunTelemetry checks the
// telemetry of a run made on a GPU (`fuze stack … ollama|llama.cpp` with TELEMETRY=1) and
// prints, per row, J/token, power, peak memory against what the server reported, and, in a
// run made by an nvml build, NVML's energy against the integrated power samples.

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/telemetry"
)

// energyTolerance is how far NVML's energy and the integrated power samples may differ.
const energyTolerance = 0.05

func TestGPUTelemetryLive(t *testing.T) {
	gpus, err := gpu.Inventory(t.Context(), nil)
	if err != nil || len(gpus) == 0 {
		t.Fatalf("no NVIDIA GPU (%v): this test needs a GPU machine", err)
	}
	g := gpus[0]
	h := telemetry.New(telemetry.Options{Idle: time.Second, Log: testLog{t}})
	defer h.Close()
	ep := stack.Endpoint{Addr: "none", GPU: &g}
	stop := h.Start(ep)
	time.Sleep(3 * time.Second)
	tel := stop()
	t.Logf("%s (%s): %+v", g.Name, telemetry.EnergyBackend, fmtTel(tel))
	if tel.EnergyJ == nil || *tel.EnergyJ <= 0 || tel.PowerMeanW == nil || tel.PowerPeakW == nil || tel.Samples < 10 {
		t.Fatalf("no energy from a 3 s window: %+v", fmtTel(tel))
	}
	if g.PowerLimitW > 0 && *tel.PowerPeakW > 1.2*g.PowerLimitW {
		t.Errorf("peak %.0f W above the %.0f W limit", *tel.PowerPeakW, g.PowerLimitW)
	}
	if tel.MemPeakMiB == nil || tel.SMClockMHz == nil || tel.IdlePowerW == nil {
		t.Errorf("readings missing: %+v", fmtTel(tel))
	}
	checkEnergyAgrees(t, "live", tel)
}

func TestGPURunTelemetry(t *testing.T) {
	env := os.Getenv("FUZE_GPU_RUN_JSONL")
	if env == "" {
		t.Skip("FUZE_GPU_RUN_JSONL is not set: it checks the telemetry of a run made on a GPU (TELEMETRY=1, the default)")
	}
	for _, path := range filepath.SplitList(env) {
		if path == "" {
			continue
		}
		recs, warns, err := results.ReadRunJSONL(path)
		if err != nil || len(warns) > 0 {
			t.Fatalf("%s: %v %q", path, err, warns)
		}
		for _, r := range recs {
			s := r.Sample
			if s == nil || s.Failed() {
				continue
			}
			name := r.Row.VariantLabel + " num_gpu=" + r.Row.NumGPU
			tel := s.Telemetry
			if tel == nil || tel.EnergyJ == nil || r.JoulesPerToken == nil || *r.JoulesPerToken <= 0 {
				t.Errorf("%s: %s: no energy: %+v", path, name, fmtTel(tel))
				continue
			}
			t.Logf("%s: %.2f tok/s, %s J/token (above idle %s), %+v", name, r.Row.TokensPerSec,
				num(r.JoulesPerToken, 4), num(r.JoulesPerTokenAboveIdle, 4), fmtTel(tel))
			checkEnergyAgrees(t, name, tel)
			checkMemory(t, name, s)
		}
	}
}

// checkEnergyAgrees: with NVML's counter, the integrated power samples agree with it.
func checkEnergyAgrees(t *testing.T, name string, tel *measure.Telemetry) {
	t.Helper()
	if tel.Source != measure.SourceNVMLEnergy || tel.PowerIntegralJ == nil {
		t.Logf("%s: energy from %s only (NVML's counter needs a fuze built with -tags nvml)", name, tel.Source)
		return
	}
	diff := (*tel.PowerIntegralJ - *tel.EnergyJ) / *tel.EnergyJ
	t.Logf("%s: NVML %.2f J, power integral %.2f J (%+.2f%%)", name, *tel.EnergyJ, *tel.PowerIntegralJ, 100*diff)
	if math.Abs(diff) > energyTolerance {
		t.Errorf("%s: the power integral is %+.1f%% off NVML's energy (tolerance %.0f%%)", name, 100*diff, 100*energyTolerance)
	}
}

// checkMemory prints the peak memory beside what the server said it holds: Ollama's
// /api/ps size_vram (settings vram_bytes), llama-server's CUDA buffers from its log.
func checkMemory(t *testing.T, name string, s *measure.Sample) {
	t.Helper()
	peak := s.Telemetry.MemPeakMiB
	if peak == nil || *peak <= 0 {
		t.Errorf("%s: no peak memory", name)
		return
	}
	if v, err := strconv.ParseInt(s.Settings["vram_bytes"], 10, 64); err == nil && v > 0 {
		t.Logf("%s: mem peak %d MiB, Ollama /api/ps size_vram %.0f MiB (peak/size_vram %.3f)", name, *peak, float64(v)/(1<<20), float64(*peak)*(1<<20)/float64(v))
	}
	if log := s.Settings["server_log"]; log != "" {
		if mib, ok := cudaBuffersMiB(log); ok {
			t.Logf("%s: mem peak %d MiB, llama-server CUDA buffers %.0f MiB (model + KV + compute; peak/buffers %.3f)", name, *peak, mib, float64(*peak)/mib)
		}
	}
}

var cudaBuffer = regexp.MustCompile(`CUDA\d+ (?:model|KV|compute) buffer size =\s*([0-9.]+) MiB`)

// cudaBuffersMiB sums the CUDA model, KV and compute buffers llama-server's log reports.
func cudaBuffersMiB(path string) (float64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := cudaBuffer.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			sum, found = sum+v, true
		}
	}
	return sum, found
}

type telView struct {
	Source                                            string
	EnergyJ, IntegralJ, MeanW, PeakW, IdleW, SM, Util string
	MemPeakMiB                                        string
	Samples                                           int
	Window                                            time.Duration
	Throttle                                          []string
	NA                                                string
	Notes                                             []string
}

func fmtTel(t *measure.Telemetry) telView {
	if t == nil {
		return telView{NA: "no telemetry"}
	}
	mem := "n/a"
	if t.MemPeakMiB != nil {
		mem = strconv.Itoa(*t.MemPeakMiB)
	}
	return telView{Source: t.Source, EnergyJ: num(t.EnergyJ, 2), IntegralJ: num(t.PowerIntegralJ, 2), MeanW: num(t.PowerMeanW, 1),
		PeakW: num(t.PowerPeakW, 1), IdleW: num(t.IdlePowerW, 1), SM: num(t.SMClockMHz, 0), Util: num(t.UtilGPUPct, 0),
		MemPeakMiB: mem, Samples: t.Samples, Window: t.Window, Throttle: t.Throttle, NA: t.NA, Notes: t.Notes}
}

func num(v *float64, prec int) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'f', prec, 64)
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
