package bench

import (
	"fmt"
	"io"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stats"
)

// printSplitComparison answers the question a split endpoint is measured for: does the model
// run better over A+B than on A or B alone (where it may not fit, and runs partly on the CPU)?
// For every model with a split endpoint, the split's best configuration against each single
// endpoint's whose GPU it shares, by the significance rule over their repeats.
func printSplitComparison(out io.Writer, outcomes []engine.Outcome) {
	for _, split := range outcomes {
		if !split.Endpoint.IsSplit() {
			continue
		}
		s := finalSample(split)
		if s == nil {
			continue
		}
		fmt.Fprintf(out, "split %s against one GPU (%s, each endpoint's best configuration, decode tok/s):\n", split.Endpoint.Suffix, split.Target.Alias)
		for _, one := range outcomes {
			if one.Endpoint.IsSplit() || one.Target.Alias != split.Target.Alias || !sharesGPU(split, one) {
				continue
			}
			o := finalSample(one)
			if o == nil {
				fmt.Fprintf(out, "  [%s] %s: no working configuration\n", split.Endpoint.Suffix, one.Endpoint.Suffix)
				continue
			}
			cmp := stats.Compare(repeats(s), repeats(o), stats.DefaultAlpha)
			verdict := results.NewGain(cmp.Ratio, &cmp, false).String()
			if cmp.Underpowered {
				verdict = fmt.Sprintf("%.2fx, not testable: %d against %d repeats (the smallest p is %.3f)", cmp.Ratio, cmp.NCandidate, cmp.NIncumbent, cmp.MinP)
			}
			fmt.Fprintf(out, "  [%s] %.2f against [%s] %.2f: %s\n", split.Endpoint.Suffix, cmp.CandidateMedian, one.Endpoint.Suffix, cmp.IncumbentMedian, verdict)
		}
	}
}

// finalSample is the measurement an endpoint's sweep ends with: its best configuration's, or
// the default's when nothing beat it; nil when neither worked.
func finalSample(o engine.Outcome) *measure.Sample {
	if o.BestRun != nil && !o.DefaultIsBest && !o.BestRun.Failed() {
		return o.BestRun
	}
	if o.Baseline != nil && !o.Baseline.Failed() {
		return o.Baseline
	}
	return nil
}

// repeats is a sample's repeated rates, or its one rate.
func repeats(s *measure.Sample) []float64 {
	if len(s.RepeatTPS) > 0 {
		return s.RepeatTPS
	}
	return []float64{s.DecodeTokensPerSec()}
}

// sharesGPU says whether the single endpoint one runs on a GPU of the split endpoint.
func sharesGPU(split, one engine.Outcome) bool {
	for _, g := range split.Endpoint.GPUs() {
		for _, h := range one.Endpoint.GPUs() {
			if g.UUID == h.UUID {
				return true
			}
		}
	}
	return false
}
