package measure

import "time"

// Sources of a window's energy (Telemetry.Source).
const (
	// SourceNVMLEnergy: the GPU's total-energy counter (NVML, millijoules since the driver
	// loaded), read at the window's two edges. Only in a fuze built with `-tags nvml`.
	SourceNVMLEnergy = "nvml-energy"
	// SourcePowerIntegral: board power sampled by nvidia-smi, integrated over the window
	// (trapezoids between samples, interpolated at the edges).
	SourcePowerIntegral = "power-integral"
	// SourceRAPL: the CPU packages' RAPL energy counters (/sys/class/powercap), read at the
	// window's two edges.
	SourceRAPL = "rapl"
)

// Telemetry is what the hardware behind an endpoint did during one measured window (one
// request, or one serving level): energy, power, clocks, utilisation, memory and throttling.
// A figure that was not measured is absent (nil), never 0: "n/a" on the console and in the
// reports. NA says why the energy is missing.
type Telemetry struct {
	// Source is where EnergyJ comes from: SourceNVMLEnergy, SourcePowerIntegral or
	// SourceRAPL; "" when there is no energy (NA says why).
	Source string `json:"source,omitempty"`
	// Device is the GPU's UUID, or "cpu".
	Device string `json:"device,omitempty"`
	// Window is the span measured: from just before the request was sent to just after its
	// last byte arrived.
	Window time.Duration `json:"window_ns,omitempty"`
	// Samples is how many power samples fell inside the window (0 for counters read at the
	// edges only).
	Samples int `json:"samples,omitempty"`

	// EnergyJ is the window's energy in joules, from Source.
	EnergyJ *float64 `json:"energy_j,omitempty"`
	// PowerIntegralJ is the power samples integrated over the window, kept beside EnergyJ
	// when the energy comes from a counter, to cross-check the two.
	PowerIntegralJ *float64 `json:"power_integral_j,omitempty"`
	// PowerMeanW is EnergyJ over the window; PowerPeakW the highest power sample in it.
	PowerMeanW *float64 `json:"power_mean_w,omitempty"`
	PowerPeakW *float64 `json:"power_peak_w,omitempty"`
	// IdlePowerW is the device's power at rest: the median power over the idle span measured
	// once per device, just before its first window (servers up, model loaded and warmed up).
	IdlePowerW *float64 `json:"idle_power_w,omitempty"`

	// Means over the samples inside the window.
	SMClockMHz  *float64 `json:"sm_clock_mhz,omitempty"`
	MemClockMHz *float64 `json:"mem_clock_mhz,omitempty"`
	UtilGPUPct  *float64 `json:"util_gpu_pct,omitempty"`
	UtilMemPct  *float64 `json:"util_mem_pct,omitempty"`
	// MemPeakMiB is the highest GPU memory in use (nvidia-smi memory.used: every process on
	// the GPU, CUDA contexts included) over the window and the sample before it.
	MemPeakMiB *int `json:"mem_peak_mib,omitempty"`
	// Throttle names the clock event reasons (nvidia-smi clocks_event_reasons, NVML's
	// nvmlClocksEventReason bits) active in any sample of the window, e.g. sw_power_cap;
	// ThrottleMask is their bits in hex.
	Throttle     []string `json:"throttle,omitempty"`
	ThrottleMask string   `json:"throttle_mask,omitempty"`

	// NA says why EnergyJ is missing (no NVIDIA GPU and RAPL not readable, nvidia-smi failed…).
	NA string `json:"na,omitempty"`
	// Notes are remarks on the measurement (few samples, a ring overrun, the counter's
	// reason for falling back to the power integral…).
	Notes []string `json:"notes,omitempty"`
}

// F returns a pointer to v: a measured figure.
func F(v float64) *float64 { return &v }

// Slowing reports whether any reason in t.Throttle slows the clocks for a reason other than
// idling or the applications' clock setting (power cap, thermal, hardware slowdown…).
func (t *Telemetry) Slowing() []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, r := range t.Throttle {
		switch r {
		case "gpu_idle", "applications_clocks_setting", "display_clock_setting":
		default:
			out = append(out, r)
		}
	}
	return out
}

// joulesPerToken fills m's energy per output token from s's telemetry: the window's energy
// over the output tokens, and the same with the idle power over the window taken away
// (absent when that is not positive: the idle figure is then larger than the window's).
func (m *Metrics) joulesPerToken(s *Sample) {
	t := s.Telemetry
	if t == nil || t.EnergyJ == nil {
		return
	}
	n := s.outputTokens()
	if n <= 0 {
		return
	}
	m.JoulesPerToken = F(*t.EnergyJ / float64(n))
	if t.IdlePowerW != nil && t.Window > 0 {
		if net := *t.EnergyJ - *t.IdlePowerW*t.Window.Seconds(); net > 0 {
			m.JoulesPerTokenAboveIdle = F(net / float64(n))
		}
	}
}

// outputTokens is the server's count of output tokens, or the client's when it gives none.
func (s *Sample) outputTokens() int {
	if s.ServerOutputTokens > 0 {
		return s.ServerOutputTokens
	}
	return len(s.ChunkTimes)
}
