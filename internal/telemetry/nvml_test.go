//go:build nvml && cgo

package telemetry

import (
	"strings"
	"testing"
)

// With or without an NVIDIA driver, a GPU that is not there has no counter, and says why
// (the library is loaded at run time, so a machine without the driver does not crash).
func TestNVMLCounterMissingGPU(t *testing.T) {
	if EnergyBackend != "nvml" {
		t.Fatalf("EnergyBackend %q in an nvml build", EnergyBackend)
	}
	c, why := openEnergyCounter("GPU-00000000-0000-0000-0000-000000000000")
	if c != nil || !strings.Contains(why, "energy is the power integral") {
		t.Fatalf("counter %v, reason %q", c, why)
	}
	t.Log(why)
}
