package bench

import (
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// The run's closing answer for a split endpoint: A+B's best against A's and B's, by the
// significance rule; too few repeats are said, not read as "no difference".
func TestSplitComparison(t *testing.T) {
	a := &gpu.GPU{UUID: "GPU-a", Label: "nvidia-h200"}
	b := &gpu.GPU{UUID: "GPU-b", Label: "nvidia-h200"}
	sample := func(tps ...float64) *measure.Sample {
		return &measure.Sample{Outcome: measure.OK, RepeatTPS: tps}
	}
	target := stack.Target{Model: "m:latest", Alias: "m"}
	outcomes := []engine.Outcome{
		{Target: target, Endpoint: stack.Endpoint{Suffix: "A", GPU: a}, Baseline: sample(17.7, 17.6, 18.4, 17.9, 18.0)},
		// B's best is a configuration that beat its default.
		{Target: target, Endpoint: stack.Endpoint{Suffix: "B", GPU: b}, Baseline: sample(12, 13, 12), BestRun: sample(18.2, 13.9)},
		{Target: target, Endpoint: stack.Endpoint{Suffix: "A+B", GPU: a, Split: []*gpu.GPU{a, b}}, Baseline: sample(159.9, 163.4, 162.5, 161.0, 160.2)},
		// Another model without a split endpoint: nothing to say.
		{Target: stack.Target{Model: "n:latest", Alias: "n"}, Endpoint: stack.Endpoint{Suffix: "A", GPU: a}, Baseline: sample(5)},
	}
	var out strings.Builder
	printSplitComparison(&out, outcomes)
	want := "split A+B against one GPU (m, each endpoint's best configuration, decode tok/s):\n" +
		"  [A+B] 161.00 against [A] 17.90: 8.99x (p=0.008)\n" +
		"  [A+B] 161.00 against [B] 16.05: 10.03x, not testable: 5 against 2 repeats (the smallest p is 0.095)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	printSplitComparison(&out, outcomes[:2])
	if out.Len() != 0 {
		t.Errorf("no split endpoint, yet:\n%s", out.String())
	}
}
