package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/bench"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/profile"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stackname"
)

type benchFlags struct {
	stacks, models []string
	env            string
	debug          bool
}

func newBenchCommand(s streams) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [--stack \"a b\"]... [--model RE]... [--env explore|preprod|prod] [--debug] [STACK...]",
		Short: "Run every env profile × stack, collect the results, print the global bests and the run's analysis (the original ./benchmark.sh)",
		Long: `bench is the orchestrator (the original ./benchmark.sh).

  --env explore   generate env files from the aggressive template into env/explore, run them
  --env preprod   generate from the conservative template into env/preprod, run them
  --env prod      copy env/preprod/*.env to env/prod as they are, run them
  (no --env)      run every *.env under factory/LLM/refinery/stack/env/, in sorted order

Each env file × stack is a step; a failing step is reported and the loop goes on. A profile
with BENCH_SERVING=1 adds a serving step after each stack's sweep (fuze stack <stack> serving
with that profile's serving knobs; its serving CSVs feed the serving view). Every run
CSV of this run is collected into factory/LLM/refinery/benchmarks.csv (de-duplicated), the
three best files are rewritten, then "Global best per model" and this run's analysis are
printed. Steps are logged to LOG_DIR/wrapper_<TS>.summary and the console to
LOG_DIR/wrapper_<TS>.log. A second bench on the same root fails fast.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd.Context(), s, f, args) },
	}
	cmd.Flags().StringArrayVar(&f.stacks, "stack", nil, `stacks to run, comma or space separated (repeatable): ollama, llama.cpp, vLLM, Triton`)
	cmd.Flags().StringArrayVar(&f.models, "model", nil, "keep env files whose name or INCLUDE_MODELS tag matches (repeatable)")
	cmd.Flags().StringVar(&f.env, "env", "", "explore, preprod or prod")
	cmd.Flags().BoolVar(&f.debug, "debug", false, "VERBOSE=1 DEBUG_BENCH=1 unless env files say otherwise")
	return cmd
}

// parseStacks resolves --stack values and positional names to canonical stack names.
func parseStacks(flagValues, positional []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(name string) error {
		info, ok := stackname.Lookup(name)
		if !ok {
			return usageErrorf("unknown stack: %s (stacks: %s)", name, stackname.List())
		}
		st := info.Name
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
		return nil
	}
	for _, v := range flagValues {
		for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if err := add(name); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range positional {
		if err := add(name); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		out = stackname.Names() // the original's discovery order
	}
	return out, nil
}

func runBench(ctx context.Context, s streams, f benchFlags, positional []string) error {
	stacks, err := parseStacks(f.stacks, positional)
	if err != nil {
		return err
	}
	switch f.env {
	case "", "explore", "preprod", "prod":
	default:
		return usageErrorf("--env %q: want explore, preprod or prod", f.env)
	}
	modelREs, err := compileAll("--model", f.models)
	if err != nil {
		return err
	}
	root := repoRoot()
	layout := profile.Layout{Root: root}
	unlock, err := bench.Lock(root)
	if err != nil {
		return err
	}
	defer unlock()

	environ := os.Environ()
	if f.debug {
		environ = append(environ, "VERBOSE=1", "DEBUG_BENCH=1")
	} else {
		environ = append(environ, "VERBOSE=0", "DEBUG_BENCH=0")
	}
	base := knobs.Resolve(environ)
	logDir, warning, err := results.ResolveLogDir(base.Get("LOG_DIR"), nil)
	if err != nil {
		return err
	}
	ts := time.Now().Format(results.RunTSLayout)
	transcript, err := os.OpenFile(filepath.Join(logDir, "wrapper_"+ts+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer transcript.Close()
	s = streams{in: s.in, out: io.MultiWriter(s.out, transcript), err: io.MultiWriter(s.err, transcript)}
	steps, err := bench.OpenSteps(s.err, filepath.Join(logDir, "wrapper_"+ts+".summary"), ts)
	if err != nil {
		return err
	}
	defer steps.Close()
	if warning != "" {
		fmt.Fprintf(s.err, "! %s\n", warning)
	}

	refinery := filepath.Join(root, "factory", "LLM", "refinery")
	fmt.Fprintf(s.out, "== Wrapper start @ %s (logs: %s)\n", ts, logDir)
	fmt.Fprintf(s.out, "Best-per-(stack,model) CSV: %s\n", filepath.Join(refinery, "benchmarks.best.csv"))
	fmt.Fprintf(s.out, "Best-by-(host,model) CSV: %s\n", filepath.Join(refinery, "benchmarks.best.by_host_model.csv"))
	fmt.Fprintf(s.out, "Best-global-by-model CSV: %s\n", filepath.Join(refinery, "benchmarks.best.by_model.csv"))
	fmt.Fprintf(s.out, "CSVs in : %s\n", logDir)

	envRoot := layout.EnvDir()
	switch f.env {
	case "explore", "preprod":
		mode := f.env
		envRoot = layout.ModeDir(mode)
		steps.Run("env-prepare:"+mode, func() error {
			host := "127.0.0.1:" + base.Get("PERSISTENT_PORT")
			tags, err := baseModels(ctx, host, base)
			if err != nil {
				return err
			}
			var include []string
			for _, re := range modelREs {
				include = append(include, re.String())
			}
			var re *regexp.Regexp
			if len(include) > 0 {
				re = regexp.MustCompile(strings.Join(include, "|")) // each part compiled above
			}
			return generateProfiles(s, layout, []string{mode}, tags, re, false, false)
		})
	case "prod":
		envRoot = layout.ModeDir("prod")
		steps.Run("env-prepare:prod", func() error {
			_, err := profile.Promote(s.out, layout.ModeDir("preprod"), envRoot, nil)
			return err
		})
	}
	envFiles, err := profile.Discover(envRoot, modelREs)
	if err != nil {
		return usageError{err}
	}
	if len(envFiles) == 0 {
		return usageErrorf("No env files matched. Use --env explore|preprod|prod or add .env files under factory/LLM/refinery/stack/env/*")
	}

	runCSVs, err := bench.Run(ctx, steps, s.out, bench.Plan{
		EnvFiles: envFiles, Stacks: stacks, Environ: environ,
		RunStack: func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			return bench.RunStack(ctx, s.out, s.err, cfg, root, st)
		},
		RunServing: func(ctx context.Context, cfg *knobs.Config, st string) (string, error) {
			return bench.RunServing(ctx, s.out, s.err, cfg, root, st)
		},
	})
	if err != nil {
		return err
	}

	// Whatever was measured is collected, also after Ctrl-C or failed steps.
	if len(runCSVs) > 0 {
		var aggPath string
		steps.Run("collect", func() error {
			var err error
			aggPath, err = collectRuns(s, root, runCSVs)
			return err
		})
		if aggPath != "" {
			fmt.Fprintln(s.out)
			if err := printGlobalBest(s, aggPath, base); err != nil {
				fmt.Fprintf(s.err, "✖ summary: %v\n", oneLine(err.Error()))
			}
		}
		if err := printServingView(s, logDir, base); err != nil {
			fmt.Fprintf(s.err, "✖ serving view: %v\n", oneLine(err.Error()))
		}
		fmt.Fprintln(s.out)
		fmt.Fprintln(s.out, "Current run analysis:")
		if err := printAnalysis(s, runCSVs, base); err != nil {
			fmt.Fprintf(s.err, "✖ analysis: %v\n", oneLine(err.Error()))
		}
	} else {
		fmt.Fprintf(s.out, "No bench CSVs were produced in this run (logs: %s)\n", logDir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if steps.Failed > 0 {
		return fmt.Errorf("%d of %d steps failed (see %s)", steps.Failed, steps.Total, steps.Path)
	}
	if steps.Unavailable > 0 {
		fmt.Fprintf(s.out, "! %d step(s) skipped: stack unavailable on this machine (reasons above)\n", steps.Unavailable)
	}
	fmt.Fprintf(s.out, "✔ Wrapper complete. Summary: %s\n", steps.Path)
	return nil
}
