package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamastore"
	"github.com/fuze-ai/fuze/internal/results"
)

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
