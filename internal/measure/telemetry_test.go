package measure

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestJoulesPerToken(t *testing.T) {
	s := &Sample{Outcome: OK, ServerOutputTokens: 128, Telemetry: &Telemetry{
		Source: SourcePowerIntegral, Window: 2 * time.Second, EnergyJ: F(800), IdlePowerW: F(125)}}
	m := Derive(s)
	if m.JoulesPerToken == nil || *m.JoulesPerToken != 800.0/128 {
		t.Fatalf("J/token %v, want 800 J / 128 tokens", m.JoulesPerToken)
	}
	// Above idle: 800 J − 125 W × 2 s = 550 J.
	if m.JoulesPerTokenAboveIdle == nil || math.Abs(*m.JoulesPerTokenAboveIdle-550.0/128) > 1e-12 {
		t.Fatalf("J/token above idle %v, want 550 J / 128 tokens", m.JoulesPerTokenAboveIdle)
	}
	// The client's token count when the server gives none.
	s.ServerOutputTokens, s.ChunkTimes = 0, make([]time.Duration, 100)
	if m := Derive(s); *m.JoulesPerToken != 8 {
		t.Errorf("J/token from the client's count: %v", *m.JoulesPerToken)
	}
	// An idle figure above the window's mean power gives no "above idle" value, never 0 or < 0.
	s.Telemetry.IdlePowerW = F(500)
	if m := Derive(s); m.JoulesPerTokenAboveIdle != nil {
		t.Errorf("above idle %v with an idle power over the window's", *m.JoulesPerTokenAboveIdle)
	}
}

// Not measured is absent, never 0: no telemetry, telemetry without energy, a failed request.
func TestJoulesPerTokenAbsent(t *testing.T) {
	for name, s := range map[string]*Sample{
		"no sampler":   {Outcome: OK, ServerOutputTokens: 10},
		"no energy":    {Outcome: OK, ServerOutputTokens: 10, Telemetry: &Telemetry{Device: "cpu", NA: "RAPL not readable"}},
		"no tokens":    {Outcome: OK, Telemetry: &Telemetry{EnergyJ: F(5)}},
		"failed":       {Outcome: ErrHTTP, ServerOutputTokens: 10, Telemetry: &Telemetry{EnergyJ: F(5)}},
		"without idle": {Outcome: OK, ServerOutputTokens: 10, Telemetry: &Telemetry{EnergyJ: F(5), Window: time.Second}},
	} {
		m := Derive(s)
		if name == "without idle" {
			if m.JoulesPerToken == nil || m.JoulesPerTokenAboveIdle != nil {
				t.Errorf("%s: %v %v", name, m.JoulesPerToken, m.JoulesPerTokenAboveIdle)
			}
			continue
		}
		if m.JoulesPerToken != nil || m.JoulesPerTokenAboveIdle != nil {
			t.Errorf("%s: J/token %v, above idle %v; want both absent", name, m.JoulesPerToken, m.JoulesPerTokenAboveIdle)
		}
		b, _ := json.Marshal(m)
		if strings.Contains(string(b), "joules") {
			t.Errorf("%s: JSON carries %s", name, b)
		}
	}
}

func TestTelemetryJSON(t *testing.T) {
	mem := 17012
	tel := Telemetry{Source: SourceNVMLEnergy, Device: "GPU-x", Window: time.Second, Samples: 10,
		EnergyJ: F(440), PowerIntegralJ: F(437.5), PowerMeanW: F(440), PowerPeakW: F(462), IdlePowerW: F(125),
		SMClockMHz: F(1980), UtilGPUPct: F(0), MemPeakMiB: &mem, Throttle: []string{"gpu_idle", "sw_power_cap"}, ThrottleMask: "0x5"}
	b, err := json.Marshal(tel)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"source":"nvml-energy"`, `"energy_j":440`, `"power_integral_j":437.5`, `"power_mean_w":440`,
		`"power_peak_w":462`, `"idle_power_w":125`, `"sm_clock_mhz":1980`, `"util_gpu_pct":0`, `"mem_peak_mib":17012`,
		`"throttle":["gpu_idle","sw_power_cap"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	// A 0% utilisation is a measurement; an unmeasured clock is absent.
	if strings.Contains(string(b), "mem_clock_mhz") {
		t.Errorf("unmeasured field in %s", b)
	}
	if got := tel.Slowing(); len(got) != 1 || got[0] != "sw_power_cap" {
		t.Errorf("Slowing %v", got)
	}
}
