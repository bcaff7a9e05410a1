package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/report"
	"github.com/fuze-ai/fuze/internal/results"
)

// defaultAnalyzeTop is the rows of the analysis' Top table (the original's default).
const defaultAnalyzeTop = 5

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
the aggregate. Model names are aliases (ALIAS_PREFIX, ALIAS_SUFFIX); x is optimized ÷ baseline.
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

// reportFilters compiles STACK_RE, MODEL_RE, HOST_RE and GPU_RE; a bad one is a usage error
// naming the knob.
func reportFilters(cfg *knobs.Config) (results.Filters, error) {
	var f results.Filters
	for _, k := range []struct {
		name string
		dst  **regexp.Regexp
	}{{"STACK_RE", &f.Stack}, {"MODEL_RE", &f.Model}, {"HOST_RE", &f.Host}, {"GPU_RE", &f.GPU}} {
		re, err := cfg.Regexp(k.name)
		if err != nil {
			return f, usageError{err}
		}
		*k.dst = re
	}
	return f, nil
}

// knobPath is a path knob; a relative value is relative to root.
func knobPath(cfg *knobs.Config, name, root string) string {
	p := cfg.Get(name)
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// readLogDir is the directory to read run CSVs from: flag when given; else LOG_DIR when it
// holds run CSVs; else the directory the benchmarks fall back to when LOG_DIR is unusable.
func readLogDir(s streams, cfg *knobs.Config, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	want := cfg.Get("LOG_DIR")
	if files, err := results.FindRunCSVs(want, ""); err == nil && len(files) > 0 {
		return want, nil
	}
	dir, warning, err := results.ResolveLogDir(want, cfg.Get)
	if err != nil {
		return want, nil // nothing usable: report what is (not) in LOG_DIR itself
	}
	if warning != "" {
		fmt.Fprintf(s.err, "! %s\n", warning)
	}
	return dir, nil
}

// splitStacks splits a --stacks value on commas and spaces.
func splitStacks(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// shortHostname is `hostname -s`.
func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

func printWarnings(s streams, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(s.err, "! %s\n", w)
	}
}

// giveToSudoUser hands files fuze wrote into the repository back to the user who ran sudo
// (SUDO_USER), so a run under sudo leaves no root-owned aggregate or best CSVs. It does
// nothing unless running as root with SUDO_USER set; a failure is a warning.
func giveToSudoUser(s streams, paths ...string) {
	name := os.Getenv("SUDO_USER")
	if name == "" || os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(name)
	if err != nil {
		fmt.Fprintf(s.err, "! SUDO_USER=%s: %v; files stay owned by root\n", name, err)
		return
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			fmt.Fprintf(s.err, "! %v\n", err)
		}
	}
}
