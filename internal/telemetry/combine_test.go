package telemetry

import (
	"testing"

	"github.com/fuze-ai/fuze/internal/measure"
)

func TestCombineSumsASplitEndpointsGPUs(t *testing.T) {
	mem := func(n int) *int { return &n }
	a := &measure.Telemetry{Source: measure.SourcePowerIntegral, Device: "GPU-a", EnergyJ: measure.F(100), PowerMeanW: measure.F(400),
		PowerPeakW: measure.F(450), IdlePowerW: measure.F(80), SMClockMHz: measure.F(1900), MemPeakMiB: mem(30000), ThrottleMask: "0x4", Throttle: []string{"sw_power_cap"}}
	b := &measure.Telemetry{Source: measure.SourcePowerIntegral, Device: "GPU-b", EnergyJ: measure.F(60), PowerMeanW: measure.F(240),
		PowerPeakW: measure.F(300), IdlePowerW: measure.F(75), SMClockMHz: measure.F(1700), MemPeakMiB: mem(20000), ThrottleMask: "0x40"}
	c := Combine([]*measure.Telemetry{a, b})
	if c.Device != "GPU-a+GPU-b" || *c.EnergyJ != 160 || *c.PowerMeanW != 640 || *c.PowerPeakW != 750 || *c.IdlePowerW != 155 ||
		*c.SMClockMHz != 1800 || *c.MemPeakMiB != 50000 || c.ThrottleMask != "0x44" || c.Source != measure.SourcePowerIntegral {
		t.Fatalf("%+v", c)
	}
	// One GPU without energy: the set has none, and says why.
	b.EnergyJ, b.NA = nil, "nvidia-smi failed"
	c = Combine([]*measure.Telemetry{a, b})
	if c.EnergyJ != nil || c.Source != "" || c.NA != "GPU-b: nvidia-smi failed" {
		t.Fatalf("%+v", c)
	}
}
