package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/tune"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/profile"
)

func newEnvCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Env profiles: generate from the templates, promote preprod to prod, check files",
	}
	cmd.AddCommand(newEnvGenerateCommand(s), newEnvPromoteCommand(s), newEnvCheckCommand(s))
	return cmd
}

type envGenerateFlags struct {
	mode, include, host string
	template, dest      string // one template into one directory, instead of --mode's
	tuned               string // a run's <run>.tuning.json to write into the profiles
	modeSet             bool
	overwrite, dryRun   bool
}

func newEnvGenerateCommand(s streams) *cobra.Command {
	var f envGenerateFlags
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write one env file per model on the Ollama daemon from the explore/preprod templates",
		Long: `generate asks the Ollama daemon for its models (never fuze's own baked variants) and writes
one env file per model into factory/LLM/refinery/stack/env/<mode>/ from the mode's template,
with __MODEL_TAG__ replaced by the tag (regex metacharacters escaped). Existing files are kept
unless --overwrite. --template FILE --dest DIR (the original generator's pair, given together)
render one template into one directory instead of --mode's. --tuned RUN.tuning.json then writes
each tuned model's best configuration (by decode rate) into its profiles as one-value tuning
sets, in a block at the end that a later --tuned replaces.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.modeSet = cmd.Flags().Changed("mode")
			return runEnvGenerate(cmd.Context(), s, f)
		},
	}
	cmd.Flags().StringVar(&f.mode, "mode", "both", "explore, preprod or both")
	cmd.Flags().StringVar(&f.include, "include", "", "only models whose tag matches this regular expression")
	cmd.Flags().StringVar(&f.host, "host", "", "Ollama daemon HOST:PORT (default 127.0.0.1:$PERSISTENT_PORT)")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "rewrite env files that exist")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would be written")
	cmd.Flags().StringVar(&f.template, "template", "", "render this template file (with --dest; instead of --mode's)")
	cmd.Flags().StringVar(&f.dest, "dest", "", "write the env files into this directory (with --template)")
	cmd.Flags().StringVar(&f.tuned, "tuned", "", "a run's <run>.tuning.json: write its best settings into the matching profiles")
	return cmd
}

func modesOf(mode string) ([]string, error) {
	switch mode {
	case "explore", "preprod":
		return []string{mode}, nil
	case "both", "":
		return profile.Modes, nil
	}
	return nil, usageErrorf("--mode %q: want explore, preprod or both", mode)
}

func runEnvGenerate(ctx context.Context, s streams, f envGenerateFlags) error {
	modes, err := modesOf(f.mode)
	if err != nil {
		return err
	}
	custom := f.template != "" || f.dest != ""
	switch {
	case custom && (f.template == "" || f.dest == ""):
		return usageErrorf("--template and --dest go together: give both or neither")
	case custom && f.modeSet:
		return usageErrorf("--mode chooses the templates; --template and --dest replace it: give one or the other")
	}
	var include *regexp.Regexp
	if f.include != "" {
		if include, err = regexp.Compile(f.include); err != nil {
			return usageErrorf("--include %q: bad regular expression: %v", f.include, err)
		}
	}
	cfg := knobs.Resolve(os.Environ())
	host := f.host
	if host == "" {
		host = "127.0.0.1:" + cfg.Get("PERSISTENT_PORT")
	}
	tags, err := baseModels(ctx, host, cfg)
	if err != nil {
		return err
	}
	dirs := []string{f.dest}
	if custom {
		_, err = profile.Generate(s.out, tags, profile.GenerateOptions{
			Template: f.template, Dest: f.dest, Include: include, Overwrite: f.overwrite, DryRun: f.dryRun,
		})
	} else {
		layout := profile.Layout{Root: repoRoot()}
		err = generateProfiles(s, layout, modes, tags, include, f.overwrite, f.dryRun)
		dirs = dirs[:0]
		for _, m := range modes {
			dirs = append(dirs, layout.ModeDir(m))
		}
	}
	if err != nil || f.tuned == "" {
		return err
	}
	return applyTuned(s, f.tuned, dirs, f.dryRun)
}

// applyTuned writes a tuning report's bests (by decode rate) into the profiles under dirs.
func applyTuned(s streams, path string, dirs []string, dryRun bool) error {
	reports, err := tune.ReadReports(path)
	if err != nil {
		return err
	}
	var tuned []profile.Tuned
	for _, r := range reports {
		if b := r.BestDecode(); b != nil {
			tuned = append(tuned, profile.Tuned{Model: r.Model, Stack: r.Stack, Settings: b.Settings, Source: filepath.Base(path)})
		}
	}
	for _, d := range dirs {
		if _, err := profile.ApplyTuned(s.out, d, tuned, dryRun); err != nil {
			return err
		}
	}
	return nil
}

func generateProfiles(s streams, layout profile.Layout, modes, tags []string, include *regexp.Regexp, overwrite, dryRun bool) error {
	for i, mode := range modes {
		if i > 0 {
			fmt.Fprintln(s.out)
		}
		_, err := profile.Generate(s.out, tags, profile.GenerateOptions{
			Template: layout.Template(mode), Dest: layout.ModeDir(mode), Include: include, Overwrite: overwrite, DryRun: dryRun,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// baseModels lists the daemon's models, without fuze's baked variants. A daemon that is down
// is an error naming it.
func baseModels(ctx context.Context, host string, cfg *knobs.Config) ([]string, error) {
	timeout, err := cfg.Duration("TIMEOUT_TAGS")
	if err != nil {
		return nil, usageError{err}
	}
	tctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	defer cancel()
	models, err := ollamaapi.New(host).Tags(tctx)
	if err != nil {
		return nil, fmt.Errorf("Ollama daemon on %s: %w (start it, or pass --host / set PERSISTENT_PORT)", host, err)
	}
	var tags []string
	for _, m := range models {
		if !naming.IsVariant(m.Name) {
			tags = append(tags, m.Name)
		}
	}
	return tags, nil
}

func newEnvPromoteCommand(s streams) *cobra.Command {
	var all bool
	var models []string
	cmd := &cobra.Command{
		Use:   "promote (--all | --model RE...)",
		Short: "Copy preprod env files to prod as they are",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all && len(models) == 0 {
				return usageErrorf("promote needs --all or --model REGEX")
			}
			res, err := compileAll("--model", models)
			if err != nil {
				return err
			}
			l := profile.Layout{Root: repoRoot()}
			_, err = profile.Promote(s.out, l.ModeDir("preprod"), l.ModeDir("prod"), res)
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "promote every preprod env file")
	cmd.Flags().StringArrayVar(&models, "model", nil, "promote env files whose name or model tag matches (repeatable)")
	return cmd
}

func compileAll(flag string, exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, usageErrorf("%s %q: bad regular expression: %v", flag, e, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func newEnvCheckCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE.env...",
		Short: "Parse env files as bash would read them (without running them) and check every knob",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			for _, path := range args {
				f, err := envfile.ParseFile(path)
				if err != nil {
					return usageError{err}
				}
				cfg := knobs.Resolve(nil, knobs.Layer{Name: path, Vars: f.Map()})
				if err := cfg.Validate(); err != nil {
					return usageError{err}
				}
				unknown := cfg.Unknown()
				fmt.Fprintf(s.out, "%s: %d assignments, ok", path, len(f.Assignments))
				if len(unknown) > 0 {
					fmt.Fprintf(s.out, " (not fuze knobs: %v)", unknown)
				}
				fmt.Fprintln(s.out)
			}
			return nil
		},
	}
}
