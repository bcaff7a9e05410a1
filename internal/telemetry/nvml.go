//go:build nvml && cgo

// The NVML energy counter, in a fuze built with `CGO_ENABLED=1 go build -tags nvml`. go-nvml
// loads libnvidia-ml.so.1 at run time: the binary still starts where there is no driver, and
// then falls back to the power integral with the reason in the telemetry's notes.

package telemetry

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

var (
	nvmlOnce sync.Once
	nvmlErr  error
)

func initNVML() error {
	nvmlOnce.Do(func() {
		if ret := nvml.Init(); ret != nvml.SUCCESS {
			nvmlErr = fmt.Errorf("NVML init: %s", nvml.ErrorString(ret))
		}
	})
	return nvmlErr
}

type nvmlCounter struct{ dev nvml.Device }

func (c nvmlCounter) EnergyMJ() (uint64, error) {
	mj, ret := c.dev.GetTotalEnergyConsumption()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("NVML total energy: %s", nvml.ErrorString(ret))
	}
	return mj, nil
}

func init() {
	EnergyBackend = "nvml"
	openEnergyCounter = func(uuid string) (energyCounter, string) {
		if err := initNVML(); err != nil {
			return nil, err.Error() + ": energy is the power integral"
		}
		dev, ret := nvml.DeviceGetHandleByUUID(uuid)
		if ret != nvml.SUCCESS {
			return nil, fmt.Sprintf("NVML device %s: %s: energy is the power integral", uuid, nvml.ErrorString(ret))
		}
		c := nvmlCounter{dev}
		if _, err := c.EnergyMJ(); err != nil { // NOT_SUPPORTED before Volta
			return nil, err.Error() + ": energy is the power integral"
		}
		return c, ""
	}
}
