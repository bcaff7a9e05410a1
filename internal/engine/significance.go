package engine

import (
	"fmt"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// measurement is what the sweep sees of a written sample: its repeats (a single repeat for a
// configuration measured once), its row's rate, and whether it is a measurement error (above
// the roofline), which may never become best.
func measurement(s *measure.Sample) sweep.Measurement {
	m := sweep.Measurement{Repeats: results.SampleRepeats(s), TokensPerSec: measure.Derive(s).DecodeTPS}
	if results.MeasurementError(s) {
		m.Invalid = fmt.Sprintf("measurement error: %.0f%% of the memory-bandwidth roofline", 100*s.RooflineShare)
	}
	return m
}
