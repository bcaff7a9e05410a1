package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/report"
	"github.com/fuze-ai/fuze/internal/results"
)

type analyzeFlags struct {
	stack  string
	csvs   []string
	model  string
	top    int
	json   bool
	logDir string
}

func newAnalyzeCommand(s streams) *cobra.Command {
	var f analyzeFlags
	cmd := &cobra.Command{
		Use:   "analyze [--stack S] [--csv PATH]... [--model RE] [--top N] [--json]",
		Short: "Analyse run CSVs: baseline vs optimized per endpoint and model, best across endpoints",
		Long: `analyze reads one or several run CSVs (and the JSONL of samples beside each, when present)
and prints the Top N rows by tokens/sec, baseline vs best optimized per (endpoint, model),
the best across endpoints per model, the samples' details (TTFT, prefill rate, repeat spread,
roofline share) and the attempts by outcome. Without --csv it reads the newest run CSV of
--stack (of any stack without it) in LOG_DIR.`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          func(*cobra.Command, []string) error { return runAnalyze(s, f) },
	}
	cmd.Flags().StringVar(&f.stack, "stack", "", "stack of the run CSV: ollama, vLLM, llama.cpp or Triton")
	cmd.Flags().StringArrayVar(&f.csvs, "csv", nil, "run CSV to analyse (repeatable)")
	cmd.Flags().StringVar(&f.model, "model", "", "only base models matching this regular expression")
	cmd.Flags().IntVar(&f.top, "top", defaultAnalyzeTop, "rows of the Top N table; 0 leaves it out")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON instead of tables")
	cmd.Flags().StringVar(&f.logDir, "log-dir", "", "where to look for the newest run CSV (default LOG_DIR)")
	return cmd
}

func runAnalyze(s streams, f analyzeFlags) error {
	cfg := knobs.Resolve(os.Environ())
	st := ""
	if f.stack != "" {
		c, ok := results.CanonicalStack(f.stack)
		if !ok {
			return usageErrorf("--stack: unknown stack %q (want ollama, vLLM, llama.cpp or Triton)", f.stack)
		}
		st = c
	}
	var modelRE *regexp.Regexp
	if f.model != "" {
		re, err := regexp.Compile(f.model)
		if err != nil {
			return usageErrorf("--model: %q is not a regular expression: %v", f.model, err)
		}
		modelRE = re
	}
	if f.top < 0 {
		return usageErrorf("--top: %d is negative", f.top)
	}
	csvs := f.csvs
	if len(csvs) == 0 {
		logDir, err := readLogDir(s, cfg, f.logDir)
		if err != nil {
			return err
		}
		files, err := results.FindRunCSVs(logDir, st)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if len(files) == 0 {
			what := "run CSV"
			if st != "" {
				what = st + " run CSV"
			}
			return fmt.Errorf("no %s in %s; use --csv PATH or run a benchmark first", what, logDir)
		}
		csvs = files[:1]
	}
	a, err := analyzeFiles(s, csvs, st, report.AnalyzeOptions{
		Model: modelRE, Top: f.top, Prefix: cfg.Get("ALIAS_PREFIX"), Suffix: cfg.Get("ALIAS_SUFFIX"),
	})
	if err != nil {
		return err
	}
	if f.json {
		return a.WriteJSON(s.out)
	}
	return a.WriteText(s.out)
}

// printAnalysis prints the analysis of every run CSV of a benchmark run, all stacks together,
// as the orchestrator does at the end of a run.
func printAnalysis(s streams, runCSVs []string, cfg *knobs.Config) error {
	if len(runCSVs) == 0 {
		fmt.Fprintln(s.out, "No run CSVs to analyse.")
		return nil
	}
	a, err := analyzeFiles(s, runCSVs, "", report.AnalyzeOptions{
		Top: defaultAnalyzeTop, Prefix: cfg.Get("ALIAS_PREFIX"), Suffix: cfg.Get("ALIAS_SUFFIX"),
	})
	if err != nil {
		return err
	}
	return a.WriteText(s.out)
}

func analyzeFiles(s streams, csvs []string, stackName string, opts report.AnalyzeOptions) (report.Analysis, error) {
	runs := make([]report.Run, 0, len(csvs))
	for _, p := range csvs {
		run, warnings, err := report.LoadRun(p, stackName)
		printWarnings(s, warnings)
		if err != nil {
			return report.Analysis{}, err
		}
		runs = append(runs, run)
	}
	return report.Analyze(runs, opts), nil
}
