package results

import (
	"fmt"
	"math"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stats"
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

// CompareRepeats is the rule's test: stats.Compare(candidate, incumbent, stats.DefaultAlpha).
// It is nil when either side has no repeats (a row without a sample): then nothing can be
// tested and no difference may be claimed.
func CompareRepeats(candidate, incumbent []float64) *stats.Comparison {
	if len(candidate) == 0 || len(incumbent) == 0 {
		return nil
	}
	c := stats.Compare(candidate, incumbent, stats.DefaultAlpha)
	return &c
}

// Beats reports whether a candidate configuration replaces an incumbent: when both have
// repeats, exactly when the candidate's are significantly faster (CompareRepeats(...).Better);
// when either has none, by a strictly higher rate (candTPS > incTPS), the median fallback of
// rows without samples, which Gain shows as "n=1".
func Beats(candTPS float64, cand []float64, incTPS float64, inc []float64) bool {
	if c := CompareRepeats(cand, inc); c != nil {
		return c.Better
	}
	return candTPS > incTPS
}

// Gain is how a table shows a configuration against the server's default measured on the same
// endpoint: the ratio of their rates and the test between their repeats.
type Gain struct {
	// Ratio is the configuration's tok/s over the default's, rounded to the two decimals shown
	// (1 when the default itself is the best configuration shown).
	Ratio float64 `json:"ratio"`
	// Tested: both sides had repeats and the U test ran. False for rows without samples: the
	// ratio of the medians is shown with "n=1" and no difference is claimed.
	Tested bool `json:"tested"`
	// P is the U test's p-value, Significant P ≤ α (only when Tested).
	P           float64 `json:"p,omitempty"`
	Significant bool    `json:"significant"`
	// DefaultIsBest: the row shows the server's default as the best configuration because
	// the tuned one did not significantly beat it.
	DefaultIsBest bool `json:"default_is_best,omitempty"`
	// NTuned and NDefault are the numbers of repeats compared; Note is stats' explanation of a
	// comparison that could not be significant (e.g. not enough repeats).
	NTuned   int    `json:"n_tuned,omitempty"`
	NDefault int    `json:"n_default,omitempty"`
	Note     string `json:"note,omitempty"`
}

// NewGain builds the Gain of a configuration whose rate is ratio times the default's; cmp is
// its comparison with the default (nil: not tested) and defaultIsBest says the default is
// the configuration shown as best.
func NewGain(ratio float64, cmp *stats.Comparison, defaultIsBest bool) *Gain {
	g := &Gain{Ratio: math.Round(ratio*100) / 100, DefaultIsBest: defaultIsBest}
	if cmp != nil {
		g.Tested, g.P, g.Significant = true, cmp.P, cmp.Significant
		g.NTuned, g.NDefault, g.Note = cmp.NCandidate, cmp.NIncumbent, cmp.Note
	}
	return g
}

// String is the table cell: "1.91x (p=0.008)" for a significant difference, "~ (p=0.310)"
// for none, "1.00x (default is best, p=0.008)" when the tuned configuration was
// significantly slower than the default shown as best, and "1.02x (n=1)" when nothing could
// be tested. A nil Gain is "-".
func (g *Gain) String() string {
	switch {
	case g == nil:
		return "-"
	case !g.Tested:
		return fmt.Sprintf("%.2fx (n=1)", g.Ratio)
	case !g.Significant:
		return fmt.Sprintf("~ (p=%.3f)", g.P)
	case g.DefaultIsBest:
		return fmt.Sprintf("%.2fx (default is best, p=%.3f)", g.Ratio, g.P)
	}
	return fmt.Sprintf("%.2fx (p=%.3f)", g.Ratio, g.P)
}
