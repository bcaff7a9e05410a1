package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamastore"
)

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
	plans, failed, err := ollamastore.PlanVariantCleanup(ctx, hosts, filter, tagsTimeout(cfg), s.out, s.err)
	if err != nil {
		return err
	}
	total := 0
	for _, p := range plans {
		total += len(p.Names)
	}
	removed := 0
	switch {
	case !f.force:
		for _, p := range plans {
			fmt.Fprintf(s.out, "[dry-run] would remove %d model(s) on %s\n", len(p.Names), p.Host)
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
		var notRemoved []string
		removed, notRemoved, err = ollamastore.RemoveVariants(ctx, plans, s.out)
		failed = append(failed, notRemoved...)
		if err != nil {
			return err
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
