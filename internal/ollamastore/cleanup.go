package ollamastore

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fuze-ai/fuze/internal/ollamaapi"
)

// HostVariants are the baked variants selected for removal on one daemon.
type HostVariants struct {
	Host  string
	Names []string
}

// PlanVariantCleanup lists each daemon's models (GET /api/tags, bounded by tagsTimeout) and
// selects the baked variants filter keeps, printing them to out. A daemon that cannot be
// listed is reported on warn and in failed; only ctx's end is an error.
func PlanVariantCleanup(ctx context.Context, hosts []string, filter VariantFilter, tagsTimeout time.Duration, out, warn io.Writer) (plans []HostVariants, failed []string, err error) {
	for _, h := range hosts {
		tctx, cancel := context.WithTimeout(ctx, tagsTimeout)
		models, err := ollamaapi.New(h).Tags(tctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return plans, failed, ctx.Err()
			}
			fmt.Fprintf(warn, "! %s: cannot list models: %v\n", h, err)
			failed = append(failed, h+" unreachable")
			continue
		}
		names := make([]string, 0, len(models))
		for _, m := range models {
			names = append(names, m.Name)
		}
		c := Variants(names, filter)
		fmt.Fprintf(out, "== %s: %d baked variant(s) selected of %d model(s)\n", h, len(c), len(models))
		for _, n := range c {
			fmt.Fprintf(out, "  %s\n", n)
		}
		plans = append(plans, HostVariants{h, c})
	}
	return plans, failed, nil
}

// RemoveVariants deletes the planned variants through each daemon's API, one line each on
// out. A variant that cannot be removed is reported and listed in failed; only ctx's end is
// an error.
func RemoveVariants(ctx context.Context, plans []HostVariants, out io.Writer) (removed int, failed []string, err error) {
	for _, p := range plans {
		c := ollamaapi.New(p.Host)
		for _, n := range p.Names {
			dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := c.Delete(dctx, n)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return removed, failed, ctx.Err()
				}
				fmt.Fprintf(out, "- failed : %s on %s: %v\n", n, p.Host, err)
				failed = append(failed, n+" on "+p.Host)
				continue
			}
			fmt.Fprintf(out, "- removed: %s on %s\n", n, p.Host)
			removed++
		}
	}
	return removed, failed, nil
}
