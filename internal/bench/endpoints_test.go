package bench

import (
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

func TestChooseEndpoints(t *testing.T) {
	eps := []stack.Endpoint{{Suffix: "A"}, {Suffix: "B"}, {Suffix: "A+B"}}
	suffixes := func(eps []stack.Endpoint) string {
		var s []string
		for _, ep := range eps {
			s = append(s, ep.Suffix)
		}
		return strings.Join(s, " ")
	}
	for env, want := range map[string]string{"": "A B A+B", "ENDPOINTS=A": "A", "ENDPOINTS=a+b, A": "A A+B", "ENDPOINTS=B": "B"} {
		got, err := chooseEndpoints(knobs.Resolve([]string{env}), eps)
		if err != nil || suffixes(got) != want {
			t.Errorf("%q: %q, %v; want %q", env, suffixes(got), err, want)
		}
	}
	_, err := chooseEndpoints(knobs.Resolve([]string{"ENDPOINTS=C"}), eps[:2])
	if err == nil || !strings.Contains(err.Error(), `ENDPOINTS="C"`) || !strings.Contains(err.Error(), "endpoints: A B") {
		t.Errorf("unknown endpoint: %v", err)
	}
}
