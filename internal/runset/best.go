package runset

import (
	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/results"
)

// Best is the best configuration of cs — configurations of one model on one endpoint or GPU —
// by the one significance rule, as the aggregate chooses (results.SummarizeRun): the baseline
// is the first working base-as-is configuration, replaced only by a later one that beats it;
// the tuned one the first working other configuration, replaced likewise; the best is the
// tuned one when it beats the baseline (or there is no baseline), else the baseline. "Beats"
// is results.Beats: significantly faster repeats (Mann–Whitney U, α = 0.05), or a higher rate
// for configurations without repeats. Failures and measurement errors (above the roofline)
// are never best. Nil when nothing worked.
func Best(cs []*Config) *Config {
	var base, tuned *Config
	for _, c := range cs {
		if c.Failed || results.MeasurementError(c.Sample()) {
			continue
		}
		if c.Label == naming.LabelBaseline {
			if base == nil || Beats(c, base) {
				base = c
			}
			continue
		}
		if tuned == nil || Beats(c, tuned) {
			tuned = c
		}
	}
	if tuned != nil && (base == nil || Beats(tuned, base)) {
		return tuned
	}
	return base
}

// Beats is results.Beats on two configurations.
func Beats(c, inc *Config) bool {
	return results.Beats(c.TPS, c.Repeats, inc.TPS, inc.Repeats)
}
