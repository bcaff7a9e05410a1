package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/profile"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
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

Each env file × stack is a step; a failing step is reported and the loop goes on. Every run
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

// allStacks is the default order, as the original discovered them.
var allStacks = []string{"ollama", "llama.cpp", "vLLM", "Triton"}

// parseStacks resolves --stack values and positional names to canonical stack names.
func parseStacks(flagValues, positional []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(name string) error {
		st, ok := stackAliases[name]
		if !ok {
			return usageErrorf("unknown stack: %s (stacks: ollama, llama.cpp, vLLM, Triton)", name)
		}
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
		out = allStacks
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
	unlock, err := lockRoot(root)
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
	steps, err := newStepLog(s.err, filepath.Join(logDir, "wrapper_"+ts+".summary"), ts)
	if err != nil {
		return err
	}
	defer steps.close()
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
		steps.run("env-prepare:"+mode, func() error {
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
		steps.run("env-prepare:prod", func() error {
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

	var runCSVs []string
loop:
	for _, path := range envFiles {
		fmt.Fprintf(s.out, "== ENV: %s\n", filepath.Base(path))
		file, err := envfile.ParseFile(path)
		if err != nil {
			return usageError{err}
		}
		cfg := knobs.Resolve(environ, knobs.Layer{Name: path, Vars: file.Map()})
		for _, st := range stacks {
			if ctx.Err() != nil {
				break loop
			}
			steps.run(st+":"+strings.TrimSuffix(filepath.Base(path), ".env")+":benchmark", func() error {
				if err := cfg.Validate(); err != nil {
					return err
				}
				run, ok := stackBenchmarks[st]
				if !ok {
					return notBuilt(st + " benchmark")
				}
				csvPath, err := run(ctx, s, cfg)
				if csvPath != "" {
					runCSVs = append(runCSVs, csvPath)
				}
				return err
			})
		}
	}

	// Whatever was measured is collected, also after Ctrl-C or failed steps.
	if len(runCSVs) > 0 {
		var aggPath string
		steps.run("collect", func() error {
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
	if steps.failed > 0 {
		return fmt.Errorf("%d of %d steps failed (see %s)", steps.failed, steps.total, steps.path)
	}
	if steps.unavailable > 0 {
		fmt.Fprintf(s.out, "! %d step(s) skipped: stack unavailable on this machine (reasons above)\n", steps.unavailable)
	}
	fmt.Fprintf(s.out, "✔ Wrapper complete. Summary: %s\n", steps.path)
	return nil
}

// stepLog prints step start/end lines and records ts,step,rc,seconds rows.
type stepLog struct {
	log           io.Writer
	file          *os.File
	path, ts      string
	failed, total int
	unavailable   int
}

func newStepLog(log io.Writer, path, ts string) (*stepLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintln(f, "ts,step,rc,seconds"); err != nil {
		f.Close()
		return nil, err
	}
	return &stepLog{log: log, file: f, path: path, ts: ts}, nil
}

func (l *stepLog) run(name string, fn func() error) {
	fmt.Fprintf(l.log, "== [%s]\n", name)
	start := time.Now()
	err := fn()
	secs := int(time.Since(start).Round(time.Second).Seconds())
	rc := 0
	l.total++
	var unavailable *stack.UnavailableError
	if errors.As(err, &unavailable) {
		// A stack this machine does not have: said, with the reason, but not a failure.
		l.unavailable++
		fmt.Fprintf(l.log, "- [%s] unavailable (%ds): %s\n", name, secs, oneLine(err.Error()))
		fmt.Fprintf(l.file, "%s,%s,%d,%d\n", l.ts, name, rc, secs)
		return
	}
	if err != nil {
		rc = 1
		if errors.Is(err, context.Canceled) {
			rc = ExitInterrupted
		}
		l.failed++
		fmt.Fprintf(l.log, "✖ [%s] rc=%d (%ds): %s\n", name, rc, secs, oneLine(err.Error()))
	} else {
		fmt.Fprintf(l.log, "✔ [%s] done (%ds)\n", name, secs)
	}
	fmt.Fprintf(l.file, "%s,%s,%d,%d\n", l.ts, name, rc, secs)
}

func (l *stepLog) close() { l.file.Close() }

// lockRoot takes an exclusive lock on the root so that a second concurrent bench fails fast.
// The kernel drops the lock when the process ends, however it ends.
func lockRoot(root string) (func(), error) {
	dir := filepath.Join(root, "factory", "LLM", "refinery")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("root %s is not writable: %w", root, err)
	}
	path := filepath.Join(dir, ".fuze-bench.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("root %s is not writable: %w", root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another fuze bench is running on %s (lock %s held by pid %s)", root, path, strings.TrimSpace(string(holder)))
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
