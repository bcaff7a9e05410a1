package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/profile"
	"github.com/fuze-ai/fuze/internal/results"
)

type cleanFlags struct {
	yes, noRepo, envs, variants bool
	keepLatest                  int
	env, logDir                 string
}

func newCleanCommand(s streams) *cobra.Command { return cleanCommand(s, environConfig) }

func cleanCommand(s streams, config configFunc) *cobra.Command {
	var f cleanFlags
	cmd := &cobra.Command{
		Use:   "clean [--yes] [--keep-latest N] [--no-repo] [--envs [--env MODE]] [--variants]",
		Short: "Remove benchmark artifacts: run CSVs and logs in LOG_DIR, the aggregate and best CSVs (dry run unless --yes)",
		Long: `clean lists, and with --yes removes, what benchmark runs leave behind: in LOG_DIR the run
CSVs with their JSONL (all but the newest N per stack with --keep-latest N), wrapper_* logs,
ollama_export_*.csv ledgers, export_errors_* and debug_* folders, created-variant lists and
server logs; in the repository the aggregate benchmarks.csv and the three best CSVs (not with
--no-repo). --envs also removes the generated env files of --env MODE (explore by default;
preprod and prod only with FORCE_PREPROD_ENVS=1 / FORCE_PROD_ENVS=1). --variants removes fuze's
baked Ollama variants (fuze ollama cleanup-variants --force --yes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runClean(cmd.Context(), s, config(), f) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.yes, "yes", false, "remove (default: only list what would be removed)")
	fl.IntVar(&f.keepLatest, "keep-latest", 0, "keep the newest N run CSVs of each stack")
	fl.BoolVar(&f.noRepo, "no-repo", false, "keep the aggregate and best CSVs in the repository")
	fl.BoolVar(&f.envs, "envs", false, "also remove the generated env files of --env")
	fl.StringVar(&f.env, "env", "explore", "env mode whose files --envs removes: explore, preprod or prod")
	fl.BoolVar(&f.variants, "variants", false, "also remove fuze's baked Ollama variants")
	fl.StringVar(&f.logDir, "log-dir", "", "log directory (default LOG_DIR)")
	return cmd
}

func runClean(ctx context.Context, s streams, cfg *knobs.Config, f cleanFlags) error {
	if f.keepLatest < 0 {
		return usageErrorf("--keep-latest %d: want 0 or more", f.keepLatest)
	}
	switch f.env {
	case "explore", "preprod", "prod":
	default:
		return usageErrorf("--env %q: want explore, preprod or prod", f.env)
	}
	if f.envs && f.env != "explore" {
		knob := "FORCE_" + strings.ToUpper(f.env) + "_ENVS"
		if cfg.Get(knob) != "1" {
			return usageErrorf("--envs --env %s removes curated %s profiles: set %s=1 to confirm", f.env, f.env, knob)
		}
	}
	logDir := f.logDir
	if logDir == "" {
		logDir = cfg.Get("LOG_DIR")
	}
	targets, err := cleanTargets(logDir, f.keepLatest)
	if err != nil {
		return err
	}
	root := repoRoot()
	if !f.noRepo {
		refinery := filepath.Join(root, "factory", "LLM", "refinery")
		agg := filepath.Join(refinery, "benchmarks.csv")
		bests, _ := filepath.Glob(filepath.Join(refinery, "benchmarks.best*.csv"))
		targets = append(targets, existing(append([]string{agg}, bests...))...)
	}
	if f.envs {
		envs, _ := filepath.Glob(filepath.Join(profile.Layout{Root: root}.ModeDir(f.env), "*.env"))
		targets = append(targets, envs...)
	}
	verb := "would remove"
	if f.yes {
		verb = "removed"
	}
	for _, p := range targets {
		if f.yes {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("clean: %w", err)
			}
		}
		fmt.Fprintf(s.out, "%s: %s\n", verb, p)
	}
	if f.yes {
		fmt.Fprintf(s.out, "Summary: removed %d path(s)\n", len(targets))
	} else {
		fmt.Fprintf(s.out, "Summary: %d path(s) would be removed (dry run: pass --yes to remove them)\n", len(targets))
	}
	if f.variants {
		args := []string{}
		if f.yes {
			args = []string{"--force", "--yes"}
		}
		return runOllamaManage(ctx, s, cfg, "cleanup-variants", args)
	}
	return nil
}

// cleanTargets lists the run artifacts in logDir, keeping the newest keep run CSVs (and their
// JSONL) of each stack. A missing logDir has nothing to clean.
func cleanTargets(logDir string, keep int) ([]string, error) {
	entries, err := os.ReadDir(logDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean: %w", err)
	}
	runs := map[string][]string{} // stack → run CSV names
	var out []string
	for _, e := range entries {
		name := e.Name()
		if st, ok := results.StackFromFileName(name); ok && strings.HasSuffix(name, ".csv") {
			runs[st] = append(runs[st], name)
			continue
		}
		for _, pattern := range []string{"wrapper_*", "ollama_export_*.csv", "export_errors_*", "debug_*",
			"ollama_created_*.txt", "ollama_create_*.log", "ollama_[ab]_*.log", "llamacpp_*_*.log", "vllm_*_*.log"} {
			if ok, _ := filepath.Match(pattern, name); ok {
				out = append(out, filepath.Join(logDir, name))
				break
			}
		}
	}
	for _, names := range runs {
		// Run file names carry YYYYmmdd_HHMMSS: the name order is the time order.
		sort.Sort(sort.Reverse(sort.StringSlice(names)))
		for i, name := range names {
			if i < keep {
				continue
			}
			csvPath := filepath.Join(logDir, name)
			out = append(out, existing([]string{csvPath, strings.TrimSuffix(csvPath, ".csv") + ".jsonl"})...)
		}
	}
	sort.Strings(out)
	return out, nil
}

func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
