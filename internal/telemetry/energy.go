package telemetry

// energyCounter reads a GPU's total-energy counter: millijoules since the driver loaded.
type energyCounter interface {
	EnergyMJ() (uint64, error)
}

// openEnergyCounter opens the total-energy counter of the GPU with this UUID; without one, it
// says why. The default build has none (nvidia-smi has no query field for the counter); a
// fuze built with `-tags nvml` reads it through NVML (nvml.go).
var openEnergyCounter = func(uuid string) (energyCounter, string) {
	return nil, "this fuze is built without NVML (-tags nvml): energy is the power integral"
}

// EnergyBackend names how this build reads GPU energy: "nvml" or "nvidia-smi".
var EnergyBackend = "nvidia-smi"
