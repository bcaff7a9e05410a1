package telemetry

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.Local)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// pts builds samples every 100 ms from t0 with the given powers (and nothing else measured).
func pts(watts ...float64) []Point {
	var out []Point
	for i, w := range watts {
		out = append(out, Point{T: at(100 * i), PowerW: w, SMClockMHz: math.NaN(), MemClockMHz: math.NaN(),
			UtilGPU: math.NaN(), UtilMem: math.NaN(), MemUsedMiB: math.NaN()})
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// The trapezoid rule is exact for power that is linear between samples, edges interpolated.
func TestIntegrateExact(t *testing.T) {
	ramp := pts(100, 200, 300, 400, 500) // +1 W per ms from 100 W at t0
	for _, tc := range []struct {
		name     string
		ps       []Point
		from, to int // ms
		want     float64
	}{
		{"whole ramp", ramp, 0, 400, 0.4 * (100 + 500) / 2},
		{"edges between samples", ramp, 50, 350, 0.3 * (150 + 450) / 2},
		{"inside one interval", ramp, 120, 180, 0.06 * (220 + 280) / 2},
		{"constant", pts(250, 250, 250), 30, 170, 0.14 * 250},
		// Before the first and after the last sample the power is held at that sample's.
		{"held before the first sample", pts(300, 300), -100, 100, 0.2 * 300},
		{"held after the last sample", ramp, 300, 600, 0.1*(400+500)/2 + 0.2*500},
		// A spike between two samples is the triangle the samples see.
		{"spike", pts(100, 500, 100), 0, 200, 0.1*(100+500)/2 + 0.1*(500+100)/2},
	} {
		got, ok := Integrate(tc.ps, at(tc.from), at(tc.to))
		if !ok || !near(got, tc.want) {
			t.Errorf("%s: %v J (ok %v), want %v J", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := Integrate(nil, at(0), at(100)); ok {
		t.Error("no samples integrated")
	}
	if _, ok := Integrate(ramp, at(100), at(100)); ok {
		t.Error("empty window integrated")
	}
	// Samples without power are skipped, not read as 0 W.
	holes := pts(100, math.NaN(), 300)
	if got, _ := Integrate(holes, at(0), at(200)); !near(got, 0.2*(100+300)/2) {
		t.Errorf("with a missing reading: %v", got)
	}
}

func TestSummarize(t *testing.T) {
	ps := pts(100, 200, 300, 400, 500)
	for i := range ps {
		ps[i].SMClockMHz = 1000 + float64(100*i)
		ps[i].MemClockMHz = 2619
		ps[i].UtilGPU = float64(20 * i)
		ps[i].MemUsedMiB = float64(16000 + i)
		ps[i].Reasons, ps[i].HasReasons = 0, true
	}
	ps[0].MemUsedMiB = 17000      // before the window: memory held into it counts
	ps[2].Reasons = 0x4           // sw_power_cap
	ps[3].Reasons = 0x4 | 0x40    // and hw_thermal_slowdown
	ps[4].MemUsedMiB = math.NaN() // [N/A]
	tel := Summarize(ps, at(50), at(350), 100*time.Millisecond)
	if tel.Source != measure.SourcePowerIntegral || tel.Window != 300*time.Millisecond || tel.Samples != 3 {
		t.Fatalf("%+v", tel)
	}
	if !near(*tel.EnergyJ, 0.3*(150+450)/2) || !near(*tel.PowerMeanW, 300) || *tel.PowerPeakW != 400 {
		t.Errorf("energy %v mean %v peak %v", *tel.EnergyJ, *tel.PowerMeanW, *tel.PowerPeakW)
	}
	// Means over the samples inside the window (at 100, 200, 300 ms).
	if *tel.SMClockMHz != 1200 || *tel.MemClockMHz != 2619 || *tel.UtilGPUPct != 40 || tel.UtilMemPct != nil {
		t.Errorf("sm %v mem %v util %v utilmem %v", *tel.SMClockMHz, *tel.MemClockMHz, *tel.UtilGPUPct, tel.UtilMemPct)
	}
	if tel.MemPeakMiB == nil || *tel.MemPeakMiB != 17000 {
		t.Errorf("mem peak %v, want the 17000 MiB held when the window began", tel.MemPeakMiB)
	}
	if !slices.Equal(tel.Throttle, []string{"sw_power_cap", "hw_thermal_slowdown"}) || tel.ThrottleMask != "0x44" {
		t.Errorf("throttle %v %s", tel.Throttle, tel.ThrottleMask)
	}
	if len(tel.Notes) != 0 || tel.NA != "" {
		t.Errorf("notes %q na %q", tel.Notes, tel.NA)
	}

	// A window shorter than the sampling period: the edges' interpolated power is the peak,
	// the sample before it stands for the clocks.
	short := Summarize(ps, at(110), at(150), 100*time.Millisecond)
	if short.Samples != 0 || !near(*short.PowerPeakW, 250) || !near(*short.EnergyJ, 0.04*(210+250)/2) || *short.SMClockMHz != 1100 {
		t.Errorf("short window %+v", short)
	}

	// Samples that do not reach the window's end say so.
	late := Summarize(ps, at(300), at(900), 100*time.Millisecond)
	if len(late.Notes) != 1 || !strings.Contains(late.Notes[0], "last 500ms") {
		t.Errorf("notes %q", late.Notes)
	}

	// No samples at all: energy n/a with the reason, nothing else invented.
	none := Summarize(nil, at(0), at(100), 100*time.Millisecond)
	if none.EnergyJ != nil || none.PowerMeanW != nil || none.MemPeakMiB != nil || none.NA == "" || none.Source != "" {
		t.Errorf("without samples %+v", none)
	}
}

func TestReasonNames(t *testing.T) {
	if got := ReasonNames(0x1 | 0x4 | 0x80 | 0x100 | 0x1000); !slices.Equal(got,
		[]string{"gpu_idle", "sw_power_cap", "hw_power_brake_slowdown", "display_clock_setting", "0x1000"}) {
		t.Errorf("%q", got)
	}
	if ReasonNames(0) != nil {
		t.Error("no reasons named")
	}
}

func TestMedianPower(t *testing.T) {
	ps := pts(100, 130, 90, 2000, 110, 400)
	if m, ok := medianPower(ps, at(0), at(400)); !ok || m != 110 {
		t.Errorf("median %v %v, want 110 (a spike does not move it)", m, ok)
	}
	if m, _ := medianPower(ps, at(0), at(300)); m != 115 {
		t.Errorf("even count: %v, want the mean of the middle two", m)
	}
	if _, ok := medianPower(ps, at(1000), at(2000)); ok {
		t.Error("median of nothing")
	}
}

func TestRing(t *testing.T) {
	r := newRing(4)
	if _, ok := r.last(); ok || r.len() != 0 {
		t.Fatal("empty ring")
	}
	for _, p := range pts(1, 2, 3) {
		r.add(p)
	}
	ps, lost := r.around(at(150), at(150))
	if lost || len(ps) != 2 || ps[0].PowerW != 2 || ps[1].PowerW != 3 {
		t.Errorf("around 150 ms: %v lost %v, want the samples at 100 and 200 ms", ps, lost)
	}
	for _, p := range pts(1, 2, 3, 4, 5, 6, 7)[3:] { // 4..7 at 300..600 ms: 1, 2, 3 overwritten but 3
		r.add(p)
	}
	if r.len() != 4 || r.at(0).PowerW != 4 {
		t.Fatalf("ring keeps %d from %v", r.len(), r.at(0).PowerW)
	}
	if ps, lost := r.around(at(0), at(450)); !lost || ps[0].PowerW != 4 || ps[len(ps)-1].PowerW != 6 {
		t.Errorf("a window older than the ring: %v lost %v", ps, lost)
	}
	if ps, lost := r.around(at(450), at(1000)); lost || len(ps) != 3 || ps[0].PowerW != 5 {
		t.Errorf("a recent window: %v lost %v", ps, lost)
	}
	if last, _ := r.last(); last.PowerW != 7 {
		t.Errorf("last %v", last)
	}
}
