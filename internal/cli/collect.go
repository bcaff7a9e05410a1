package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
)

type collectFlags struct {
	logDir string
	out    string
	stacks string
	all    bool
}

func newCollectCommand(s streams) *cobra.Command {
	var f collectFlags
	cmd := &cobra.Command{
		Use:   `collect [--log-dir DIR] [--out PATH] [--stacks "a b"] [--all] [CSV...]`,
		Short: "Append run CSVs to the aggregate (benchmarks.csv) and rewrite the three best CSVs",
		Long: `collect appends one row per (run CSV, model) to the 13-column aggregate
factory/LLM/refinery/benchmarks.csv (OUT_CSV) and rewrites the three best files beside it
(benchmarks.best.csv by stack and model, .by_host_model.csv, .by_model.csv).

The run CSVs are the arguments; without arguments, the newest run CSV of each stack in
--stacks (STACKS) found in LOG_DIR, or every one of them with --all (which also looks at the
other *_bench_*.csv files there, such as the original's legacy llm_bench_*_ALL.csv). A (run
CSV, model) already in the aggregate is not appended again, so collecting twice changes nothing.
STACK_RE, MODEL_RE, HOST_RE and GPU_RE restrict the best files.

A file that is not a run CSV with rows (empty, header only, another header such as the
original's llm_bench_*_ALL.csv, a name that does not say the stack) is skipped with one
warning line saying why; the others are collected. The exit status is 0 when at least one run
CSV was collected and 1 when none was.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCollect(s, f, cmd.Flags().Changed("stacks"), args)
		},
	}
	cmd.Flags().StringVar(&f.logDir, "log-dir", "", "directory of the run CSVs (default LOG_DIR)")
	cmd.Flags().StringVar(&f.out, "out", "", "aggregate CSV (default OUT_CSV: <root>/factory/LLM/refinery/benchmarks.csv)")
	cmd.Flags().StringVar(&f.stacks, "stacks", "", `stacks to collect, comma or space separated (default STACKS: "ollama vLLM llama.cpp Triton")`)
	cmd.Flags().BoolVar(&f.all, "all", false, "every run CSV of the stacks, not only the newest")
	return cmd
}

func runCollect(s streams, f collectFlags, stacksSet bool, args []string) error {
	cfg := knobs.Resolve(os.Environ())
	filters, err := reportFilters(cfg)
	if err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = knobPath(cfg, "OUT_CSV", repoRoot())
	}
	csvs := args
	if len(args) > 0 {
		if f.all || stacksSet || f.logDir != "" {
			return usageErrorf("collect: --all, --stacks and --log-dir choose run CSVs in LOG_DIR; give them or CSV arguments, not both")
		}
	} else {
		list := splitStacks(f.stacks)
		if !stacksSet {
			if list, err = cfg.List("STACKS"); err != nil {
				return usageError{err}
			}
		}
		var names []string
		for _, st := range list {
			c, ok := results.CanonicalStack(st)
			if !ok {
				return usageErrorf("--stacks: unknown stack %q (want ollama, vLLM, llama.cpp or Triton)", st)
			}
			names = append(names, c)
		}
		logDir, err := readLogDir(s, cfg, f.logDir)
		if err != nil {
			return err
		}
		for _, st := range names {
			files, err := results.FindRunCSVs(logDir, st)
			if err != nil {
				return err
			}
			switch {
			case len(files) == 0:
			case f.all:
				for i := len(files) - 1; i >= 0; i-- { // oldest first: the aggregate stays chronological
					csvs = append(csvs, files[i])
				}
			default:
				csvs = append(csvs, files[0])
			}
		}
		if len(csvs) == 0 {
			return fmt.Errorf("collect: nothing collected: no run CSVs of %s in %s", strings.Join(names, ", "), logDir)
		}
		if f.all {
			// The original's glob took these too; Collect says why each is skipped.
			stray, err := results.StrayBenchCSVs(logDir)
			if err != nil {
				return err
			}
			csvs = append(csvs, stray...)
		}
	}
	_, res, err := collectInto(s, out, csvs, filters)
	if err == nil && res.Collected == 0 {
		err = fmt.Errorf("collect: nothing collected: none of the %d CSV files is a run CSV with rows (each is named above with the reason)", len(csvs))
	}
	return err
}

// collectRuns appends the run CSVs of a benchmark run to the aggregate of root (OUT_CSV,
// default <root>/factory/LLM/refinery/benchmarks.csv), rewrites the best files beside it and
// prints both, as `fuze collect CSV...` does. It returns the aggregate's path.
func collectRuns(s streams, root string, runCSVs []string) (aggPath string, err error) {
	cfg := knobs.Resolve(os.Environ())
	filters, err := reportFilters(cfg)
	if err != nil {
		return "", err
	}
	aggPath, _, err = collectInto(s, knobPath(cfg, "OUT_CSV", root), runCSVs, filters)
	return aggPath, err
}

// collectInto is collect's work once the files are known. Files that are not run CSVs with
// rows are skipped, one "! skipped FILE: why" line each. When runCSVs are given and none of
// them is collected, the best files are not rewritten and nothing is printed to stdout (the
// aggregate is only created, header only, when it did not exist).
func collectInto(s streams, aggPath string, runCSVs []string, filters results.Filters) (string, results.CollectResult, error) {
	res, warnings, err := results.Collect(aggPath, runCSVs, shortHostname())
	printWarnings(s, warnings)
	for _, sk := range res.Skipped {
		fmt.Fprintf(s.err, "! skipped %s\n", sk)
	}
	if err != nil {
		return aggPath, res, err
	}
	if len(runCSVs) > 0 && res.Collected == 0 {
		return aggPath, res, nil
	}
	fmt.Fprintf(s.out, "Appended %d summaries to: %s\n", res.Added, aggPath)
	rows, warnings, err := results.ReadAggregate(aggPath)
	printWarnings(s, warnings)
	if err != nil {
		return aggPath, res, err
	}
	paths, err := results.WriteBests(aggPath, rows, filters)
	if err != nil {
		return aggPath, res, err
	}
	giveToSudoUser(s, aggPath, paths.ByStackModel, paths.ByHostModel, paths.ByModel)
	printBestPaths(s, paths)
	return aggPath, res, nil
}

func printBestPaths(s streams, p results.BestPaths) {
	fmt.Fprintf(s.out, "Best-per-(stack,model) CSV: %s\nBest-by-(host,model) CSV: %s\nBest-global-by-model CSV: %s\n",
		p.ByStackModel, p.ByHostModel, p.ByModel)
}
