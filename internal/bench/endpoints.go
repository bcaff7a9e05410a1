package bench

import (
	"fmt"
	"strings"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// wantEndpoints reads ENDPOINTS into the selection before any server starts, so drivers start
// none for an endpoint that is not measured. A name the selection gives no endpoint for is an
// error naming the ones there are, so a typo never silently measures nothing or everything.
func wantEndpoints(cfg *knobs.Config, sel *gpu.Selection) error {
	want, err := cfg.List("ENDPOINTS")
	if err != nil || len(want) == 0 {
		return err
	}
	have := []string{"A"} // GPU A, or the CPU when there is no GPU
	if sel.B != nil {
		have = append(have, "B")
		if sel.Split {
			have = append(have, "A"+stack.SplitSeparator+"B")
		}
	}
	for _, w := range want {
		if !containsFold(have, w) {
			return knobs.Invalid(fmt.Errorf("ENDPOINTS=%q (from %s): no endpoint %q here (endpoints: %s)", cfg.Get("ENDPOINTS"), cfg.Source("ENDPOINTS"), w, strings.Join(have, " ")))
		}
	}
	sel.Only = want
	return nil
}

// chooseEndpoints keeps the driver's endpoints the selection wants, in the driver's order:
// drivers that start servers in Setup (Ollama, Triton) already left the others out, the rest
// start theirs per configuration. None left (a stack whose endpoint is not A, B or A+B, e.g.
// Ollama's persistent daemon with SKIP_TEST_UNITS=1) is an error naming what there is.
func chooseEndpoints(sel gpu.Selection, eps []stack.Endpoint) ([]stack.Endpoint, error) {
	var kept []stack.Endpoint
	var have []string
	for _, ep := range eps {
		have = append(have, ep.Suffix)
		if sel.Wants(ep.Suffix) {
			kept = append(kept, ep)
		}
	}
	if len(kept) == 0 && len(eps) > 0 {
		return nil, fmt.Errorf("ENDPOINTS=%q keeps none of this stack's endpoints (%s)", strings.Join(sel.Only, " "), strings.Join(have, " "))
	}
	return kept, nil
}

func containsFold(xs []string, x string) bool {
	for _, y := range xs {
		if strings.EqualFold(x, y) {
			return true
		}
	}
	return false
}
