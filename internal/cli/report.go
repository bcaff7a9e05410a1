package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/report"
	"github.com/fuze-ai/fuze/internal/results"
)

// defaultAnalyzeTop is the rows of the analysis' Top table (the original's default).
const defaultAnalyzeTop = 5

type summaryFlags struct {
	csv        string
	top        int
	onlyTop    bool
	onlyGlobal bool
	noPaths    bool
	quiet      bool
	json       bool
}

func newSummaryCommand(s streams) *cobra.Command {
	var f summaryFlags
	cmd := &cobra.Command{
		Use:   "summary [--csv PATH] [--top N] [--only-top] [--only-global] [--no-paths] [--quiet] [--json]",
		Short: "Summarise the aggregate: Top N, best per key, global best per model; rewrite the best CSVs",
		Long: `summary reads the aggregate (CSV, default <root>/factory/LLM/refinery/benchmarks.csv) and
prints the Top N rows by tokens/sec, the best row per (stack, model), per (stack, model, gpu)
and per (host, model), and the global best per model; it rewrites the three best CSVs beside
the aggregate. When LOG_DIR has serving CSVs (serving_*.csv), a serving view follows: per
(model, gpu, stack), the serving configuration with the most output at its goodput (the highest
concurrency, or offered rate, that met its SLO), with its p99 TTFT and ITL and J/token.
Model names are aliases (ALIAS_PREFIX, ALIAS_SUFFIX); x is optimized ÷ baseline.
STACK_RE, MODEL_RE, HOST_RE and GPU_RE filter the rows; MD_OUT also writes the text to a file.`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSummary(s, f, cmd.Flags().Changed("top"))
		},
	}
	cmd.Flags().StringVar(&f.csv, "csv", "", "aggregate CSV (default CSV: <root>/factory/LLM/refinery/benchmarks.csv)")
	cmd.Flags().IntVar(&f.top, "top", 10, "rows of the Top N table (default TOPN); 0 leaves it out")
	cmd.Flags().BoolVar(&f.onlyTop, "only-top", false, "only the Top N and the global best")
	cmd.Flags().BoolVar(&f.onlyGlobal, "only-global", false, "only the global best per model")
	cmd.Flags().BoolVar(&f.noPaths, "no-paths", false, "do not print the paths of the best CSVs")
	cmd.Flags().BoolVar(&f.quiet, "quiet", false, "do not print the Data: line")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON instead of tables")
	return cmd
}

func runSummary(s streams, f summaryFlags, topSet bool) error {
	cfg := knobs.Resolve(os.Environ())
	filters, err := reportFilters(cfg)
	if err != nil {
		return err
	}
	if !topSet {
		if f.top, err = cfg.Int("TOPN"); err != nil {
			return usageError{err}
		}
	}
	if f.top < 0 {
		return usageErrorf("--top: %d is negative", f.top)
	}
	path := f.csv
	if path == "" {
		path = knobPath(cfg, "CSV", repoRoot())
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("No data: %s not found", path)
	}
	rows, warnings, err := results.ReadAggregate(path)
	printWarnings(s, warnings)
	if err != nil {
		return err
	}
	opts := report.SummaryOptions{
		Top: f.top, OnlyTop: f.onlyTop, OnlyGlobal: f.onlyGlobal,
		Prefix: cfg.Get("ALIAS_PREFIX"), Suffix: cfg.Get("ALIAS_SUFFIX"), Filters: filters,
	}
	if !f.quiet {
		opts.Source = path
	}
	rep := report.Summary(rows, opts)
	if !f.onlyTop && !f.onlyGlobal {
		rep.Serving = servingView(s, cfg.Get("LOG_DIR"), cfg, filters)
	}
	paths, bestErr := results.WriteBests(path, rows, filters)
	if bestErr == nil {
		rep.BestFiles = &paths
		giveToSudoUser(s, paths.ByStackModel, paths.ByHostModel, paths.ByModel)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		return err
	}
	if md := cfg.Get("MD_OUT"); md != "" {
		if err := os.WriteFile(md, text.Bytes(), 0o644); err != nil {
			return fmt.Errorf("MD_OUT: %w", err)
		}
	}
	if f.json {
		if err := rep.WriteJSON(s.out); err != nil {
			return err
		}
	} else {
		if _, err := s.out.Write(text.Bytes()); err != nil {
			return err
		}
		if bestErr == nil && !f.noPaths {
			fmt.Fprintln(s.out)
			printBestPaths(s, paths)
		}
	}
	if bestErr != nil {
		return fmt.Errorf("best CSVs not written: %w", bestErr)
	}
	return nil
}

// printGlobalBest prints the "Global best per model" table of the aggregate at aggPath, as
// the orchestrator does after collecting a run.
func printGlobalBest(s streams, aggPath string, cfg *knobs.Config) error {
	filters, err := reportFilters(cfg)
	if err != nil {
		return err
	}
	rows, warnings, err := results.ReadAggregate(aggPath)
	printWarnings(s, warnings)
	if err != nil {
		return err
	}
	rep := report.Summary(rows, report.SummaryOptions{
		OnlyGlobal: true, Prefix: cfg.Get("ALIAS_PREFIX"), Suffix: cfg.Get("ALIAS_SUFFIX"), Filters: filters,
	})
	return rep.WriteText(s.out)
}

// servingView is the serving view of the serving CSVs in dir (nil: none there), its
// unreadable files said on stderr.
func servingView(s streams, dir string, cfg *knobs.Config, filters results.Filters) *report.ServingView {
	view, warnings, ok := report.ServingViewOfDir(dir, filters, cfg.Get("ALIAS_PREFIX"), cfg.Get("ALIAS_SUFFIX"))
	printWarnings(s, warnings)
	if !ok {
		return nil
	}
	return &view
}

// printServingView prints the serving view of the serving CSVs in dir, as `fuze summary` does,
// when there are any.
func printServingView(s streams, dir string, cfg *knobs.Config) error {
	filters, err := reportFilters(cfg)
	if err != nil {
		return err
	}
	if v := servingView(s, dir, cfg, filters); v != nil {
		return v.WriteText(s.out)
	}
	return nil
}
