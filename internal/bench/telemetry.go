package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/telemetry"
)

// telemetryHub reads TELEMETRY, TELEMETRY_INTERVAL_MS and TELEMETRY_IDLE_MS: the sampler of
// every endpoint's device, or nil when TELEMETRY=0.
func telemetryHub(cfg *knobs.Config, log io.Writer) (*telemetry.Hub, error) {
	on, err := cfg.Bool01("TELEMETRY")
	if err != nil {
		return nil, knobs.Invalid(err)
	}
	if !on {
		return nil, nil
	}
	interval, err1 := cfg.Int("TELEMETRY_INTERVAL_MS")
	idle, err2 := cfg.Int("TELEMETRY_IDLE_MS")
	for _, err := range []error{err1, err2} {
		if err != nil {
			return nil, knobs.Invalid(err)
		}
	}
	if interval < 1 {
		return nil, knobs.Invalid(fmt.Errorf("TELEMETRY_INTERVAL_MS=%q (from %s): want milliseconds ≥ 1", cfg.Get("TELEMETRY_INTERVAL_MS"), cfg.Source("TELEMETRY_INTERVAL_MS")))
	}
	if idle < 0 {
		return nil, knobs.Invalid(fmt.Errorf("TELEMETRY_IDLE_MS=%q (from %s): want milliseconds ≥ 0", cfg.Get("TELEMETRY_IDLE_MS"), cfg.Source("TELEMETRY_IDLE_MS")))
	}
	h := telemetry.New(telemetry.Options{
		Interval: time.Duration(interval) * time.Millisecond,
		Idle:     time.Duration(idle) * time.Millisecond,
		Log:      log,
	})
	fmt.Fprintf(log, "Telemetry  : %s\n", h)
	return h, nil
}
