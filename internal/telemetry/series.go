package telemetry

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

// Point is one sample of a GPU. A reading the GPU does not give is NaN (HasReasons false for
// the throttle bits).
type Point struct {
	T           time.Time
	PowerW      float64
	SMClockMHz  float64
	MemClockMHz float64
	UtilGPU     float64
	UtilMem     float64
	MemUsedMiB  float64
	Reasons     uint64
	HasReasons  bool
}

// reasonNames are NVML's clock event reasons (nvmlClocksEventReason*), bit by bit, as
// nvidia-smi's clocks_event_reasons.* fields name them.
var reasonNames = []string{
	"gpu_idle",                    // 0x1
	"applications_clocks_setting", // 0x2
	"sw_power_cap",                // 0x4
	"hw_slowdown",                 // 0x8
	"sync_boost",                  // 0x10
	"sw_thermal_slowdown",         // 0x20
	"hw_thermal_slowdown",         // 0x40
	"hw_power_brake_slowdown",     // 0x80
	"display_clock_setting",       // 0x100
}

// ReasonNames names the bits of a clocks_event_reasons.active mask, lowest bit first; an
// unknown bit is named by its value (0x200).
func ReasonNames(mask uint64) []string {
	var out []string
	for mask != 0 {
		b := bits.TrailingZeros64(mask)
		mask &^= 1 << b
		if b < len(reasonNames) {
			out = append(out, reasonNames[b])
		} else {
			out = append(out, fmt.Sprintf("%#x", uint64(1)<<b))
		}
	}
	return out
}

// powerAt is the power at t on the piecewise-linear curve through ps (sorted by time, every
// PowerW finite), held constant before the first sample and after the last.
func powerAt(ps []Point, t time.Time) float64 {
	i := sort.Search(len(ps), func(i int) bool { return !ps[i].T.Before(t) })
	switch {
	case i == 0:
		return ps[0].PowerW
	case i == len(ps):
		return ps[len(ps)-1].PowerW
	case ps[i].T.Equal(t):
		return ps[i].PowerW
	}
	a, b := ps[i-1], ps[i]
	span := b.T.Sub(a.T).Seconds()
	if span <= 0 {
		return b.PowerW
	}
	return a.PowerW + (b.PowerW-a.PowerW)*t.Sub(a.T).Seconds()/span
}

// Integrate is the energy in joules over [t0, t1] of the power curve through ps: trapezoids
// between the samples inside the window, the curve interpolated linearly at the two edges
// (held at the nearest sample where the samples do not reach an edge). It is exact for power
// that is linear between samples. ps must be sorted by time; samples without power are
// skipped. ok is false without a sample with power, or for an empty window.
func Integrate(ps []Point, t0, t1 time.Time) (joules float64, ok bool) {
	ps = withPower(ps)
	if len(ps) == 0 || !t1.After(t0) {
		return 0, false
	}
	prevT, prevP := t0, powerAt(ps, t0)
	for _, p := range ps {
		if p.T.After(t0) && p.T.Before(t1) {
			joules += (prevP + p.PowerW) / 2 * p.T.Sub(prevT).Seconds()
			prevT, prevP = p.T, p.PowerW
		}
	}
	joules += (prevP + powerAt(ps, t1)) / 2 * t1.Sub(prevT).Seconds()
	return joules, true
}

func withPower(ps []Point) []Point {
	out := ps[:0:0]
	for _, p := range ps {
		if !math.IsNaN(p.PowerW) && !math.IsInf(p.PowerW, 0) {
			out = append(out, p)
		}
	}
	return out
}

// Summarize is the telemetry of the window [t0, t1] from the GPU samples ps (sorted by time;
// the ring's samples around the window). interval is the sampling period, used to say when
// the samples do not reach an edge of the window. The energy is the power integral
// (SourcePowerIntegral); mean power is that energy over the window.
func Summarize(ps []Point, t0, t1 time.Time, interval time.Duration) measure.Telemetry {
	tel := measure.Telemetry{Window: t1.Sub(t0)}
	var inside []Point
	var before *Point // the last sample before the window
	for i := range ps {
		switch p := ps[i]; {
		case p.T.Before(t0):
			before = &ps[i]
		case !p.T.After(t1):
			inside = append(inside, p)
		}
	}
	powered := withPower(ps)
	if e, ok := Integrate(powered, t0, t1); ok {
		tel.Source = measure.SourcePowerIntegral
		tel.EnergyJ = measure.F(e)
		if s := tel.Window.Seconds(); s > 0 {
			tel.PowerMeanW = measure.F(e / s)
		}
		in := withPower(inside)
		tel.Samples = len(in)
		peak := math.Inf(-1)
		for _, p := range in {
			peak = max(peak, p.PowerW)
		}
		if len(in) == 0 { // a window shorter than the sampling period
			peak = max(powerAt(powered, t0), powerAt(powered, t1))
		}
		tel.PowerPeakW = measure.F(peak)
		if gap := powered[0].T.Sub(t0); gap > 2*interval {
			tel.Notes = append(tel.Notes, fmt.Sprintf("no power sample in the window's first %s: power held at the first sample's", gap.Round(time.Millisecond)))
		}
		if gap := t1.Sub(powered[len(powered)-1].T); gap > 2*interval {
			tel.Notes = append(tel.Notes, fmt.Sprintf("no power sample in the window's last %s: power held at the last sample's", gap.Round(time.Millisecond)))
		}
	} else {
		tel.NA = "no power samples"
	}

	// Clocks, utilisation and throttling over the samples inside the window; the last one
	// before it stands for a window shorter than the sampling period.
	state := inside
	if len(state) == 0 && before != nil {
		state = []Point{*before}
	}
	tel.SMClockMHz = mean(state, func(p Point) float64 { return p.SMClockMHz })
	tel.MemClockMHz = mean(state, func(p Point) float64 { return p.MemClockMHz })
	tel.UtilGPUPct = mean(state, func(p Point) float64 { return p.UtilGPU })
	tel.UtilMemPct = mean(state, func(p Point) float64 { return p.UtilMem })
	var mask uint64
	hasMask := false
	for _, p := range state {
		if p.HasReasons {
			mask |= p.Reasons
			hasMask = true
		}
	}
	if hasMask {
		tel.ThrottleMask = fmt.Sprintf("%#x", mask)
		tel.Throttle = ReasonNames(mask)
	}
	// Memory in use when the window began counts: it is held through the window.
	memPts := inside
	if before != nil {
		memPts = append([]Point{*before}, inside...)
	}
	peakMem := math.NaN()
	for _, p := range memPts {
		if !math.IsNaN(p.MemUsedMiB) && (math.IsNaN(peakMem) || p.MemUsedMiB > peakMem) {
			peakMem = p.MemUsedMiB
		}
	}
	if !math.IsNaN(peakMem) {
		v := int(math.Round(peakMem))
		tel.MemPeakMiB = &v
	}
	return tel
}

// mean of the finite values f gives over ps; nil when there are none.
func mean(ps []Point, f func(Point) float64) *float64 {
	sum, n := 0.0, 0
	for _, p := range ps {
		if v := f(p); !math.IsNaN(v) && !math.IsInf(v, 0) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return measure.F(sum / float64(n))
}

// medianPower is the median power of the samples in [t0, t1]; ok false without any.
// idleBusyUtilPct is the GPU utilisation above which a span is not idle: an idle GPU with a
// model loaded reads 0%.
const idleBusyUtilPct = 10

// medianUtil is the median GPU utilisation of the points in [t0, t1] that have one.
func medianUtil(ps []Point, t0, t1 time.Time) (float64, bool) {
	var v []float64
	for _, p := range ps {
		if !p.T.Before(t0) && !p.T.After(t1) && !math.IsNaN(p.UtilGPU) {
			v = append(v, p.UtilGPU)
		}
	}
	return median(v)
}

func medianPower(ps []Point, t0, t1 time.Time) (float64, bool) {
	var v []float64
	for _, p := range withPower(ps) {
		if !p.T.Before(t0) && !p.T.After(t1) {
			v = append(v, p.PowerW)
		}
	}
	return median(v)
}

// median sorts v and gives its median; false when v is empty.
func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2, true
	}
	return v[len(v)/2], true
}
