package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamastore"
)

// defaultAltStore is the original store-cleanup's default ALT: where a daemon started with
// OLLAMA_MODELS under the /FuZe/ollama convenience link kept its models.
const defaultAltStore = "/FuZe/ollama/models"

// configFunc supplies the knobs a command runs with: the process environment for
// `fuze ollama …`, the env files' configuration for `fuze stack [@env] ollama …`.
type configFunc func() *knobs.Config

func environConfig() *knobs.Config { return knobs.Resolve(os.Environ()) }

func newOllamaCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ollama",
		Short: "Manage Ollama: merge model stores, remove baked variants, export GGUFs for llama.cpp",
	}
	cmd.AddCommand(
		newStoreCleanupCommand(s, environConfig),
		newCleanupVariantsCommand(s, environConfig),
		newExportGGUFCommand(s, environConfig),
		newOllamaInstallCommand(s),
		newServiceCleanupCommand(s),
	)
	return cmd
}

// runOllamaManage runs one Ollama management command by name with ust.sh-style arguments
// (`fuze stack [@env] ollama <command> [args]`), with the env files' configuration.
func runOllamaManage(ctx context.Context, s streams, cfg *knobs.Config, command string, args []string) error {
	get := func() *knobs.Config { return cfg }
	var cmd *cobra.Command
	switch command {
	case "store-cleanup":
		cmd = newStoreCleanupCommand(s, get)
	case "cleanup-variants":
		cmd = newCleanupVariantsCommand(s, get)
	case "export-gguf":
		cmd = newExportGGUFCommand(s, get)
	default:
		return usageErrorf("unknown ollama command: %s", command)
	}
	cmd.SetArgs(args)
	cmd.SetIn(s.in)
	cmd.SetOut(s.out)
	cmd.SetErr(s.err)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := cmd.ExecuteContext(ctx)
	var ue usageError
	if err != nil && !errors.As(err, &ue) && isCobraUsageError(err) {
		return usageError{err}
	}
	return err
}

// compileFlag compiles a regular expression given by a flag, or by a knob when the flag is
// empty; "" gives nil. Errors name the flag or knob.
func compileFlag(flag, value string, cfg *knobs.Config, knob string) (*regexp.Regexp, error) {
	if value == "" {
		if knob == "" {
			return nil, nil
		}
		re, err := cfg.Regexp(knob)
		if err != nil {
			return nil, usageError{err}
		}
		return re, nil
	}
	re, err := regexp.Compile(value)
	if err != nil {
		return nil, usageErrorf("%s %q: bad regular expression: %v", flag, value, err)
	}
	return re, nil
}

// rootHint adds "run as root" to a permission error of a non-root user.
func rootHint(err error, alternative string) error {
	if err != nil && errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		return fmt.Errorf("%w: run as root (sudo)%s", err, alternative)
	}
	return err
}

func knobBool(cfg *knobs.Config, name string) (bool, error) {
	v, err := cfg.Bool01(name)
	if err != nil {
		return false, usageError{err}
	}
	return v, nil
}

func tagsTimeout(cfg *knobs.Config) time.Duration {
	d, err := cfg.Duration("TIMEOUT_TAGS")
	if err != nil || d <= 0 {
		return 10 * time.Second
	}
	return d
}

// ---- store-cleanup ----

type storeCleanupFlags struct {
	canon, alt     string
	dryRun, noStop bool
}

func newStoreCleanupCommand(s streams, cfg configFunc) *cobra.Command {
	var f storeCleanupFlags
	cmd := &cobra.Command{
		Use:   "store-cleanup [--canon PATH] [--alt PATH] [--dry-run]",
		Short: "Merge a second Ollama model store (ALT) into the canonical one (CANON)",
		Long: `store-cleanup moves ALT's blobs/ and manifests/ into CANON: renamed on one file system,
copied (temporary file, fsync, rename) then removed across file systems. A blob in both
stores is kept once, after CANON's copy passed its sha256 check (a corrupt CANON copy is
replaced by ALT's verified one). A manifest in both is dropped from ALT when it describes the
same model (same config and layers) and otherwise kept in both and reported. A second run changes nothing. Progress goes to stderr.

CANON defaults to $CANON, else $OLLAMA_MODELS_DIR (` + "/FuZe/models/ollama" + `); ALT to ` + defaultAltStore + `.
Merging the default system stores needs root. fuze does not stop daemons: stop pulls and
creates that write to ALT first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStoreCleanup(s, cfg(), f)
		},
	}
	cmd.Flags().StringVar(&f.canon, "canon", "", "canonical store (default $CANON, else $OLLAMA_MODELS_DIR)")
	cmd.Flags().StringVar(&f.alt, "alt", "", "store merged into CANON (default "+defaultAltStore+")")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would move; change nothing")
	cmd.Flags().BoolVar(&f.noStop, "no-stop", false, "accepted for compatibility: fuze never stops daemons here")
	return cmd
}

func runStoreCleanup(s streams, cfg *knobs.Config, f storeCleanupFlags) error {
	cfg = cfg.WithStack(knobs.StackOllama)
	systemPaths := false
	canon := f.canon
	if canon == "" {
		if cfg.IsSet("CANON") {
			canon = cfg.Get("CANON")
		} else {
			canon = cfg.Get("OLLAMA_MODELS_DIR")
		}
		systemPaths = !cfg.IsSet("CANON") && !cfg.IsSet("OLLAMA_MODELS_DIR")
	}
	alt := f.alt
	if alt == "" {
		alt = defaultAltStore
		systemPaths = true
	}
	fmt.Fprintf(s.out, "CANON: %s\nALT  : %s\n", canon, alt)
	if _, err := os.Stat(alt); err == nil && systemPaths && !f.dryRun && os.Geteuid() != 0 {
		return fmt.Errorf("store-cleanup merges the system model stores (%s, %s): run as root (sudo), or pass --canon and --alt for stores you own", canon, alt)
	}
	r, err := ollamastore.Merge(canon, alt, ollamastore.MergeOptions{DryRun: f.dryRun, Progress: s.err})
	for _, c := range r.Conflicts {
		fmt.Fprintf(s.err, "! manifest %s differs between the stores: CANON's kept in use, ALT's left in %s\n", c, r.Alt)
	}
	for _, p := range r.Repaired {
		fmt.Fprintf(s.err, "! repaired %s: it failed its sha256 check and was replaced by ALT's verified copy\n", p)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(s.err, "! %s\n", p)
	}
	if err != nil {
		return rootHint(err, "")
	}
	prefix := ""
	if f.dryRun {
		prefix = "[dry-run] "
	}
	fmt.Fprintln(s.out, prefix+r.Summary())
	if r.Changed() && !f.dryRun && !r.AltRemoved {
		fmt.Fprintf(s.out, "ALT %s still holds files (listed above); inspect it before removing it\n", r.Alt)
	}
	if len(r.Problems) > 0 {
		return fmt.Errorf("store-cleanup: %d problem(s) left in ALT %s (listed above)", len(r.Problems), r.Alt)
	}
	return nil
}
