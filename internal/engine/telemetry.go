package engine

import (
	"fmt"
	"strings"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Sampler measures what an endpoint's hardware does during a measured window: Start opens a
// window on ep's device and returns the function that closes it and returns its telemetry.
// The engine opens a window just before it starts a request's clock and closes it just after
// the clock stops, so sampling never runs inside the timed span (telemetry.Hub).
type Sampler interface {
	Start(ep stack.Endpoint) (stop func() *measure.Telemetry)
}

// StartTelemetry opens a telemetry window on ep (a serving level opens one around all its
// requests); the returned function closes it. Without a Sampler it returns nil telemetry.
func (e *Engine) StartTelemetry(ep stack.Endpoint) (stop func() *measure.Telemetry) {
	if e.Sampler == nil {
		return func() *measure.Telemetry { return nil }
	}
	return e.Sampler.Start(ep)
}

// energyText is the telemetry part of the console's latency line: J/token (and above idle),
// the window's energy and its source, power, peak memory, clocks and throttling; "J/token n/a"
// with the reason when the energy was not measured. "" when no sampler ran.
func energyText(s *measure.Sample, m measure.Metrics) string {
	t := s.Telemetry
	if t == nil {
		return ""
	}
	var parts []string
	if m.JoulesPerToken != nil {
		jt := fmt.Sprintf("%.4g J/token", *m.JoulesPerToken)
		switch {
		case m.JoulesPerTokenAboveIdle != nil:
			jt += fmt.Sprintf(" (%.4g above idle %.0f W)", *m.JoulesPerTokenAboveIdle, *t.IdlePowerW)
		case t.IdlePowerW != nil:
			jt += fmt.Sprintf(" (above idle %.0f W: n/a)", *t.IdlePowerW)
		}
		parts = append(parts, jt)
	} else {
		why := t.NA
		if why == "" {
			why = "no output tokens"
		}
		parts = append(parts, "J/token n/a ("+why+")")
	}
	if t.EnergyJ != nil {
		e := fmt.Sprintf("%.2f J %s", *t.EnergyJ, t.Source)
		if t.PowerIntegralJ != nil {
			e += fmt.Sprintf(" (power integral %.2f J)", *t.PowerIntegralJ)
		}
		parts = append(parts, e)
	}
	if t.PowerMeanW != nil {
		p := fmt.Sprintf("%.0f W mean", *t.PowerMeanW)
		if t.PowerPeakW != nil {
			p += fmt.Sprintf(", %.0f W peak", *t.PowerPeakW)
		}
		parts = append(parts, p)
	}
	if t.MemPeakMiB != nil {
		parts = append(parts, fmt.Sprintf("mem peak %d MiB", *t.MemPeakMiB))
	}
	if t.SMClockMHz != nil {
		parts = append(parts, fmt.Sprintf("sm %.0f MHz", *t.SMClockMHz))
	}
	if t.UtilGPUPct != nil {
		parts = append(parts, fmt.Sprintf("util %.0f%%", *t.UtilGPUPct))
	}
	if slow := t.Slowing(); len(slow) > 0 {
		parts = append(parts, "throttle "+strings.Join(slow, "+"))
	}
	return strings.Join(parts, ", ")
}
