package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// chooseEndpoints keeps the endpoints ENDPOINTS names (every one when it is empty), in the
// driver's order. A name that matches no endpoint is an error naming the ones there are, so a
// typo never silently measures nothing or everything.
func chooseEndpoints(cfg *knobs.Config, eps []stack.Endpoint) ([]stack.Endpoint, error) {
	want, err := cfg.List("ENDPOINTS")
	if err != nil || len(want) == 0 {
		return eps, err
	}
	var have []string
	for _, ep := range eps {
		have = append(have, ep.Suffix)
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return nil, fmt.Errorf("ENDPOINTS=%q: no endpoint %q here (endpoints: %s)", cfg.Get("ENDPOINTS"), w, strings.Join(have, " "))
		}
	}
	var kept []stack.Endpoint
	for _, ep := range eps {
		if slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(ep.Suffix, w) }) {
			kept = append(kept, ep)
		}
	}
	return kept, nil
}
