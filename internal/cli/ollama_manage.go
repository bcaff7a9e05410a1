package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamastore"
	"github.com/fuze-ai/fuze/internal/results"
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

// ---- cleanup-variants ----

type cleanupVariantsFlags struct {
	hosts, match, keep string
	created            []string
	force, yes, dryRun bool
	ollamaBin          string
}

func newCleanupVariantsCommand(s streams, cfg configFunc) *cobra.Command {
	var f cleanupVariantsFlags
	cmd := &cobra.Command{
		Use:   "cleanup-variants [--hosts \"H:P ...\"] [--match RE] [--keep RE] [--from-created FILE]... [--force] [--yes]",
		Short: "List (default) or remove fuze's baked num_gpu variants (<alias>-<gpu>-ng<N>)",
		Long: `cleanup-variants lists the baked variants (<alias>-<gpu label>-ng<N>) each daemon's
/api/tags shows; other models are never candidates. --match narrows and --keep exempts by
regular expression; --from-created FILE (repeatable, and extra arguments after it are more
files, so a shell glob of several runs works) keeps only the names listed in those files
(one per line, :latest optional). Without --force nothing is removed; --force removes the
candidates through the API after you type "yes", or at once with --yes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if len(f.created) == 0 {
					return usageErrorf("unexpected argument %q", args[0])
				}
				f.created = append(f.created, args...)
			}
			return runCleanupVariants(cmd.Context(), s, cfg(), f)
		},
	}
	cmd.Flags().StringVar(&f.hosts, "hosts", "", "daemons, HOST:PORT separated by spaces or commas (default 127.0.0.1:$PERSISTENT_PORT)")
	cmd.Flags().StringVar(&f.match, "match", "", "only variants matching this regular expression")
	cmd.Flags().StringVar(&f.keep, "keep", "", "keep variants matching this regular expression")
	cmd.Flags().StringArrayVar(&f.created, "from-created", nil, "only names listed in this file (repeatable)")
	cmd.Flags().BoolVar(&f.force, "force", false, "remove the candidates (default: list them)")
	cmd.Flags().BoolVar(&f.yes, "yes", false, "with --force: do not ask for confirmation")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list only (the default without --force)")
	cmd.Flags().StringVar(&f.ollamaBin, "ollama-bin", "", "accepted for compatibility: removal goes through the API")
	_ = cmd.Flags().MarkHidden("ollama-bin")
	return cmd
}

func runCleanupVariants(ctx context.Context, s streams, cfg *knobs.Config, f cleanupVariantsFlags) error {
	cfg = cfg.WithStack(knobs.StackOllama)
	var filter ollamastore.VariantFilter
	var err error
	if filter.Match, err = compileFlag("--match", f.match, cfg, ""); err != nil {
		return err
	}
	if filter.Keep, err = compileFlag("--keep", f.keep, cfg, ""); err != nil {
		return err
	}
	if f.force && f.dryRun {
		return usageErrorf("--force and --dry-run contradict each other")
	}
	if len(f.created) > 0 {
		if filter.Created, err = ollamastore.ReadCreated(f.created...); err != nil {
			return err
		}
	}
	hosts := strings.FieldsFunc(f.hosts, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1:" + cfg.Get("PERSISTENT_PORT")}
	}
	type hostPlan struct {
		host  string
		names []string
	}
	var plans []hostPlan
	var failed []string
	total := 0
	for _, h := range hosts {
		tctx, cancel := context.WithTimeout(ctx, tagsTimeout(cfg))
		models, err := ollamaapi.New(h).Tags(tctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(s.err, "! %s: cannot list models: %v\n", h, err)
			failed = append(failed, h+" unreachable")
			continue
		}
		names := make([]string, 0, len(models))
		for _, m := range models {
			names = append(names, m.Name)
		}
		c := ollamastore.Variants(names, filter)
		fmt.Fprintf(s.out, "== %s: %d baked variant(s) selected of %d model(s)\n", h, len(c), len(models))
		for _, n := range c {
			fmt.Fprintf(s.out, "  %s\n", n)
		}
		plans = append(plans, hostPlan{h, c})
		total += len(c)
	}
	removed := 0
	switch {
	case !f.force:
		for _, p := range plans {
			fmt.Fprintf(s.out, "[dry-run] would remove %d model(s) on %s\n", len(p.names), p.host)
		}
	case total == 0:
	default:
		if !f.yes {
			fmt.Fprintf(s.out, "Remove %d model(s)? Type yes to confirm: ", total)
			line, _ := bufio.NewReader(s.in).ReadString('\n')
			if strings.TrimSpace(line) != "yes" {
				fmt.Fprintln(s.out)
				return errors.New("not confirmed (type yes, or pass --yes): nothing removed")
			}
		}
		for _, p := range plans {
			c := ollamaapi.New(p.host)
			for _, n := range p.names {
				dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				err := c.Delete(dctx, n)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintf(s.out, "- failed : %s on %s: %v\n", n, p.host, err)
					failed = append(failed, n+" on "+p.host)
					continue
				}
				fmt.Fprintf(s.out, "- removed: %s on %s\n", n, p.host)
				removed++
			}
		}
	}
	fmt.Fprintf(s.out, "Summary: candidates=%d removed=%d", total, removed)
	if !f.force {
		fmt.Fprint(s.out, " (dry-run: --force removes them)")
	}
	fmt.Fprintln(s.out)
	if len(failed) > 0 {
		return fmt.Errorf("cleanup-variants: %d failure(s): %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// ---- export-gguf ----

type exportGGUFFlags struct {
	dest, host, include, exclude, envOut, store string
	overwrite, dryRun, noSkipVariants           bool
}

func newExportGGUFCommand(s streams, cfg configFunc) *cobra.Command {
	var f exportGGUFFlags
	cmd := &cobra.Command{
		Use:   "export-gguf [--dest DIR] [--host H:P] [--include RE] [--exclude RE] [--env-out FILE] [--overwrite] [--dry-run]",
		Short: "Export each Ollama model's weights as DEST/<alias>.gguf and map them in llama.cpp's models.env",
		Long: `export-gguf takes the models the daemon lists (/api/tags; when it does not answer, every
manifest of the store), reads each manifest in the store (any registry host), checks that
the model layer's blob is a GGUF and puts it into DEST as <alias>.gguf (alias: the name with
'/' and ':' runs as '-'): a hard link on one file system, else a copy through a temporary
file checked against the layer's sha256. Up-to-date files are skipped unless --overwrite;
GGUF_CLEAN=1 removes DEST/*.gguf first. fuze's baked variants are skipped.

It writes the ledger LOG_DIR/ollama_export_<TS>.csv (ts,model,alias,blob,dest,method,bytes,
status) and models.env (LLAMACPP_PATH_<alias with non-alphanumerics as _>='<file>' lines,
readable by fuze and by bash), keeping earlier mappings of other models whose file exists.

Knobs: OLLAMA_MODELS_DIR (store), DEST_DIR / GGUF_DEST_DIR, HOST, INCLUDE_RE, EXCLUDE_RE,
ENV_OUT, OVERWRITE / FORCE_REEXPORT / EXPORT_OVERWRITE, DRY_RUN, SKIP_VARIANTS,
AUTO_FILTER_NON_GGUF, VALIDATE_EXISTING, GGUF_CLEAN, LOG_DIR, RUN_TS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExportGGUF(cmd.Context(), s, cfg(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dest, "dest", "", "directory for the GGUF files (default $DEST_DIR, else $GGUF_DEST_DIR)")
	fl.StringVar(&f.host, "host", "", "daemon listing the models, HOST:PORT (default $HOST)")
	fl.StringVar(&f.include, "include", "", "only models matching this regular expression (default $INCLUDE_RE)")
	fl.StringVar(&f.exclude, "exclude", "", "skip models matching this regular expression (default $EXCLUDE_RE)")
	fl.StringVar(&f.envOut, "env-out", "", "models.env to write (default $ENV_OUT under the repository)")
	fl.StringVar(&f.store, "store", "", "Ollama model store (default $OLLAMA_MODELS_DIR)")
	fl.BoolVar(&f.overwrite, "overwrite", false, "re-export over existing files")
	fl.BoolVar(&f.dryRun, "dry-run", false, "report what would be exported; write only the ledger")
	fl.BoolVar(&f.noSkipVariants, "no-skip-variants", false, "also export fuze's baked variants")
	return cmd
}

func runExportGGUF(ctx context.Context, s streams, cfg *knobs.Config, f exportGGUFFlags) error {
	cfg = cfg.WithStack(knobs.StackOllama)
	o := ollamastore.ExportOptions{Log: s.out}
	var err error
	if o.Include, err = compileFlag("--include", f.include, cfg, "INCLUDE_RE"); err != nil {
		return err
	}
	if o.Exclude, err = compileFlag("--exclude", f.exclude, cfg, "EXCLUDE_RE"); err != nil {
		return err
	}
	flags := map[string]bool{}
	for _, k := range []string{"OVERWRITE", "FORCE_REEXPORT", "EXPORT_OVERWRITE", "DRY_RUN", "SKIP_VARIANTS",
		"AUTO_FILTER_NON_GGUF", "VALIDATE_EXISTING", "GGUF_CLEAN"} {
		if flags[k], err = knobBool(cfg, k); err != nil {
			return err
		}
	}
	o.Overwrite = f.overwrite || flags["OVERWRITE"] || flags["FORCE_REEXPORT"] || flags["EXPORT_OVERWRITE"]
	o.DryRun = f.dryRun || flags["DRY_RUN"]
	o.KeepVariants = f.noSkipVariants || !flags["SKIP_VARIANTS"]
	o.AutoFilter = flags["AUTO_FILTER_NON_GGUF"]
	o.TrustExisting = !flags["VALIDATE_EXISTING"]
	o.Clean = flags["GGUF_CLEAN"]

	o.Dest = f.dest
	if o.Dest == "" {
		if cfg.IsSet("DEST_DIR") {
			o.Dest = cfg.Get("DEST_DIR")
		} else {
			o.Dest = cfg.Get("GGUF_DEST_DIR")
		}
	}
	o.Store.Dir = f.store
	if o.Store.Dir == "" {
		o.Store.Dir = cfg.Get("OLLAMA_MODELS_DIR")
	}
	envOut := f.envOut
	if envOut == "" {
		envOut = cfg.Get("ENV_OUT")
		if !filepath.IsAbs(envOut) {
			envOut = filepath.Join(repoRoot(), envOut)
		}
	}
	host := f.host
	if host == "" {
		host = cfg.Get("HOST")
	}
	logDir, warning, err := results.ResolveLogDir(cfg.Get("LOG_DIR"), cfg.Get)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintf(s.err, "! %s\n", warning)
	}
	ts := cfg.Get("RUN_TS")
	if ts == "" {
		ts = time.Now().Format("20060102_150405")
	}

	tctx, cancel := context.WithTimeout(ctx, tagsTimeout(cfg))
	models, terr := ollamaapi.New(host).Tags(tctx)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if terr != nil {
		fmt.Fprintf(s.err, "! Ollama on %s does not answer (%v); exporting every manifest of %s\n", host, terr, o.Store.Dir)
	} else {
		o.Models = make([]string, 0, len(models))
		for _, m := range models {
			o.Models = append(o.Models, m.Name)
		}
		fmt.Fprintf(s.out, "== %d model(s) listed by %s; store %s\n", len(models), host, o.Store.Dir)
	}
	fmt.Fprintf(s.out, "== destination %s\n", o.Dest)

	rows, err := ollamastore.Export(o)
	if err != nil {
		return rootHint(err, " or pass --dest")
	}
	ledger, err := ollamastore.WriteLedgerFile(logDir, ts, rows)
	if err != nil {
		return err
	}
	var kept, exported, upToDate, nFailed int
	for _, r := range rows {
		switch {
		case r.Status == ollamastore.StatusExported:
			exported++
		case r.Status == ollamastore.StatusExists:
			upToDate++
		case r.Failed():
			nFailed++
		}
		if !strings.HasPrefix(r.Status, ollamastore.StatusFiltered) {
			kept++
		}
	}
	fmt.Fprintf(s.out, "Summary: found=%d kept=%d exported=%d up-to-date=%d failed=%d\n", len(rows), kept, exported, upToDate, nFailed)
	fmt.Fprintf(s.out, "Ledger: %s\n", ledger)
	if o.DryRun {
		fmt.Fprintf(s.out, "[dry-run] would write %d mapping(s) to %s\n", len(ollamastore.EnvAssignments(rows)), envOut)
	} else {
		header := []string{
			"Written by `fuze ollama export-gguf` " + time.Now().Format(time.RFC3339) + " from " + o.Store.Dir + ".",
			"llama.cpp GGUF files by alias; read by fuze as data, and by bash with: set -a; . models.env",
		}
		written, warn, err := ollamastore.WriteModelsEnv(envOut, rows, header)
		if warn != "" {
			fmt.Fprintf(s.err, "! %s\n", warn)
		}
		if err != nil {
			return rootHint(err, " or pass --env-out")
		}
		fmt.Fprintf(s.out, "models.env: %s (%d mapping(s))\n", envOut, len(written))
	}
	if nFailed > 0 {
		return fmt.Errorf("export-gguf: %d model(s) failed (reasons above and in %s)", nFailed, ledger)
	}
	return nil
}
