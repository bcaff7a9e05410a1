package serving

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// committedLevel is the part of a committed level record these checks read.
type committedLevel struct {
	Type             string  `json:"type"`
	Stack            string  `json:"stack"`
	Parallel         string  `json:"parallel"`
	Concurrency      int     `json:"concurrency"`
	Completed        int     `json:"completed"`
	Failed           int     `json:"failed"`
	OutputTPS        float64 `json:"output_tps"`
	OutputTokensMean float64 `json:"output_tokens_mean"`
	PhysicsFlag      string  `json:"physics_flag"`
	JoulesPerToken   float64 `json:"joules_per_token"`
	Telemetry        *struct {
		Source         string  `json:"source"`
		EnergyJ        float64 `json:"energy_j"`
		PowerIntegralJ float64 `json:"power_integral_j"`
		MemPeakMiB     float64 `json:"mem_peak_mib"`
	} `json:"telemetry"`
}

func committedLevels(t *testing.T, name string) []committedLevel {
	t.Helper()
	f, err := os.Open(testfixture.Repo(t, "results", "gpu", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []committedLevel
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l committedLevel
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.Type == "level" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no level records", name)
	}
	return out
}

// The committed H200 serving runs (docs/gpu-results.md): every request completed, nothing above
// physics, and the server's concurrency setting is what lets throughput scale: with one slot
// eight streams get the single-stream rate (within 15%), with eight slots more than twice it.
func TestCommittedGPUServingResults(t *testing.T) {
	for _, name := range []string{"serving_ollama_llama8b.jsonl", "serving_llamacpp_llama8b.jsonl"} {
		by := map[string]committedLevel{}
		for _, l := range committedLevels(t, name) {
			if l.Failed != 0 || l.Completed == 0 || l.PhysicsFlag != "" {
				t.Errorf("%s parallel %s c=%d: %d completed, %d failed, flag %q", name, l.Parallel, l.Concurrency, l.Completed, l.Failed, l.PhysicsFlag)
			}
			by[l.Parallel+"/"+strconv.Itoa(l.Concurrency)] = l
		}
		one, one8, eight, eight8 := by["1/1"], by["1/8"], by["8/1"], by["8/8"]
		if r := one8.OutputTPS / one.OutputTPS; r < 0.85 || r > 1.15 {
			t.Errorf("%s: one slot, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should be about equal", name, one8.OutputTPS, one.OutputTPS, r)
		}
		if r := eight8.OutputTPS / eight.OutputTPS; r < 2 {
			t.Errorf("%s: eight slots, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should scale", name, eight8.OutputTPS, eight.OutputTPS, r)
		}
	}
}

// The committed energy runs: each level is one NVML energy window, the power samples
// integrated over it agree within 5%, J/token is the window's energy over the completed
// requests' tokens, and eight streams cost less energy per token than one.
func TestCommittedGPUEnergyResults(t *testing.T) {
	for _, name := range []string{"energy-ollama-llama8b.jsonl", "energy-llamacpp-llama8b.jsonl"} {
		var c1, c8 float64
		for _, l := range committedLevels(t, name) {
			tel := l.Telemetry
			if tel == nil || tel.Source != "nvml-energy" || tel.EnergyJ <= 0 {
				t.Fatalf("%s c=%d: telemetry %+v", name, l.Concurrency, tel)
			}
			if d := math.Abs(tel.PowerIntegralJ-tel.EnergyJ) / tel.EnergyJ; d > 0.05 {
				t.Errorf("%s c=%d: power integral %.1f J vs NVML %.1f J (%.1f%%)", name, l.Concurrency, tel.PowerIntegralJ, tel.EnergyJ, 100*d)
			}
			want := tel.EnergyJ / (l.OutputTokensMean * float64(l.Completed))
			if math.Abs(l.JoulesPerToken-want) > 1e-9*want {
				t.Errorf("%s c=%d: %.6f J/token, energy/tokens is %.6f", name, l.Concurrency, l.JoulesPerToken, want)
			}
			switch l.Concurrency {
			case 1:
				c1 = l.JoulesPerToken
			case 8:
				c8 = l.JoulesPerToken
			}
			t.Logf("%s %s c=%d: %.1f tok/s, %.3f J/token, NVML %.1f J, integral %.1f J, mem peak %.0f MiB", name, l.Stack, l.Concurrency, l.OutputTPS, l.JoulesPerToken, tel.EnergyJ, tel.PowerIntegralJ, tel.MemPeakMiB)
		}
		if !(c8 > 0 && c8 < c1) {
			t.Errorf("%s: J/token at 8 streams %.3f, at 1 %.3f", name, c8, c1)
		}
	}
}

// The committed comparison runs (fuze at 8 and 32 streams on eight slots, beside the
// independent client's figures in results/gpu/independent-load-client.txt): 32 requests per
// level, all completed, nothing above physics, and eight slots saturated: 32 streams give no
// more than 1.25 × the throughput of 8.
func TestCommittedGPUServingComparison(t *testing.T) {
	for _, name := range []string{"serving-cmp_ollama_llama8b.jsonl", "serving-cmp_llamacpp_llama8b.jsonl"} {
		by := map[int]committedLevel{}
		for _, l := range committedLevels(t, name) {
			if l.Parallel != "8" || l.Completed != 32 || l.Failed != 0 || l.PhysicsFlag != "" {
				t.Errorf("%s c=%d: parallel %s, %d completed, %d failed, flag %q", name, l.Concurrency, l.Parallel, l.Completed, l.Failed, l.PhysicsFlag)
			}
			by[l.Concurrency] = l
		}
		if len(by) != 2 {
			t.Fatalf("%s: levels %v, want 8 and 32", name, by)
		}
		if r := by[32].OutputTPS / by[8].OutputTPS; r > 1.25 {
			t.Errorf("%s: 32 streams at %.1f tok/s vs 8 at %.1f (ratio %.2f) on eight slots", name, by[32].OutputTPS, by[8].OutputTPS, r)
		}
	}
}
