package results

import (
	"math"

	"github.com/fuze-ai/fuze/internal/measure"
)

// # One significance rule
//
// Wherever FuZe says that one configuration beats another — the sweep, the console, the
// aggregate, the best files, the summary and the analysis — it applies one rule: the candidate
// beats the incumbent only when a two-sided Mann–Whitney U test over their repeats says so at
// α = stats.DefaultAlpha (stats.Compare(candidate, incumbent, α).Better). Otherwise the
// incumbent (the server's default, or the configuration seen first) stays best, and tables
// print "~ (p=…)". The repeats of a row come from its JSONL sample (SampleRepeats); a row
// without a sample (the original's CSVs, a JSONL cut short) has no repeats: it falls back to
// its tokens_per_sec, the comparison is shown as "n=1" and no difference is claimed. A sample
// flagged as a measurement error (MeasurementError) is kept in the files but never becomes
// best.

// SampleRepeats returns the decode rates a comparison uses for s: every repeat's rate
// (RepeatTPS), or, for a configuration measured once, its own decode rate as a single repeat.
// It is nil for a missing or failed sample. Rates that are not finite and above 0 are dropped.
func SampleRepeats(s *measure.Sample) []float64 {
	if s == nil || s.Failed() {
		return nil
	}
	var out []float64
	for _, r := range s.RepeatTPS {
		if r > 0 && !math.IsInf(r, 0) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		if r := measure.Derive(s).DecodeTPS; r > 0 && !math.IsInf(r, 0) {
			out = []float64{r}
		}
	}
	return out
}

// MeasurementError reports whether s is flagged as a measurement error: its decode rate is
// above the memory-bandwidth roofline of its GPU (RooflineShare > 1), which no real decode can
// reach. Such a configuration is written but never becomes best.
func MeasurementError(s *measure.Sample) bool {
	return s != nil && s.RooflineShare > 1
}
