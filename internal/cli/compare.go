package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/report"
	"github.com/fuze-ai/fuze/internal/runset"
)

func newCompareCommand(s streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compare [--json] OLD NEW",
		Short: "Compare two runs or aggregates, benchstat style: medians, delta, p-value, \"~\" when not significant",
		Long: `compare reads OLD and NEW — each a run CSV (with its JSONL beside it), a run JSONL, an
aggregate (benchmarks.csv with its .repeats.jsonl) or a folder of them — and prints, per
configuration (stack, model, GPU, offload, num_ctx, batch, num_predict), the median client
decode tok/s of each side, the delta of NEW over OLD and the two-sided Mann–Whitney U p-value
over the repeats (golang.org/x/perf/benchmath, as benchstat), "~" when p > 0.05.

An attribute with one value in all of OLD and another in all of NEW (the stack, when OLD is a
llama.cpp run and NEW an Ollama run of the same model) is what is compared: it is shown in the
header and left out of the match. "offload" is "default" for the server's own placement, else
the layers on the GPU, so Ollama num_gpu 33 and llama.cpp -ngl -1 of a 33-layer model match.
A "best" row compares each side's best configuration by the significance rule. Rows without
repeats count as one value and can never be significant.`,
		Args:          cobra.ExactArgs(2),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runCompare(s, args[0], args[1], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of the table")
	return cmd
}

func runCompare(s streams, oldPath, newPath string, asJSON bool) error {
	var sides [2][]runset.Config
	for i, p := range []string{oldPath, newPath} {
		set, warnings, err := runset.Load([]string{p})
		printWarnings(s, warnings)
		if err != nil {
			return usageErrorf("%s: %v", p, strings.TrimPrefix(err.Error(), p+": "))
		}
		sides[i] = set.Configs
	}
	rc := report.CompareRuns(oldPath, sides[0], newPath, sides[1])
	if asJSON {
		return rc.WriteJSON(s.out)
	}
	return rc.WriteText(s.out)
}
