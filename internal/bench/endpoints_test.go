package bench

import (
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

func TestChooseEndpoints(t *testing.T) {
	two := gpu.Selection{A: &gpu.GPU{Label: "a"}, B: &gpu.GPU{Label: "b"}, Split: true}
	eps := []stack.Endpoint{{Suffix: "A"}, {Suffix: "B"}, {Suffix: "A+B"}}
	suffixes := func(eps []stack.Endpoint) string {
		var s []string
		for _, ep := range eps {
			s = append(s, ep.Suffix)
		}
		return strings.Join(s, " ")
	}
	for env, want := range map[string]string{"": "A B A+B", "ENDPOINTS=A": "A", "ENDPOINTS=a+b, A": "A A+B", "ENDPOINTS=B": "B"} {
		sel := two
		err := wantEndpoints(knobs.Resolve([]string{env}), &sel)
		var got []stack.Endpoint
		if err == nil {
			got, err = chooseEndpoints(sel, eps)
		}
		if err != nil || suffixes(got) != want {
			t.Errorf("%q: %q, %v; want %q", env, suffixes(got), err, want)
		}
	}
	// Named before any server starts: an endpoint the GPUs do not give is an error listing them.
	one := gpu.Selection{A: &gpu.GPU{Label: "a"}, B: &gpu.GPU{Label: "b"}}
	err := wantEndpoints(knobs.Resolve([]string{"ENDPOINTS=A+B"}), &one)
	if err == nil || !strings.Contains(err.Error(), `ENDPOINTS="A+B"`) || !strings.Contains(err.Error(), "endpoints: A B") {
		t.Errorf("unknown endpoint: %v", err)
	}
	// A stack whose only endpoint is none of them (Ollama's persistent daemon) keeps nothing.
	sel := gpu.Selection{Only: []string{"A"}}
	if _, err := chooseEndpoints(sel, []stack.Endpoint{{Suffix: "11434"}}); err == nil || !strings.Contains(err.Error(), "(11434)") {
		t.Errorf("no endpoint kept: %v", err)
	}
}
