package llamacpp

import (
	"slices"
	"testing"

	"github.com/fuze-ai/fuze/internal/stack"
)

// The two forms of llama-server's flash-attention flag: a bare switch (the February 2025
// snapshot the GPU results were measured with) and a value (later builds).
func TestFlashAttnFlagForm(t *testing.T) {
	bare := "-fa,   --flash-attn                     enable Flash Attention (default: disabled)\n"
	value := "-fa,   --flash-attn [on|off|auto]       set Flash Attention use ('on', 'off', or 'auto', default: 'auto')\n"
	if flashAttnHelp.MatchString(bare) {
		t.Errorf("bare switch read as taking a value")
	}
	if !flashAttnHelp.MatchString(value) {
		t.Errorf("value form not recognised")
	}
	cand := func(fa string) stack.Candidate {
		return stack.Candidate{Settings: []stack.Setting{{Name: SetFlashAttn, Value: fa, Level: stack.ServerLevel}}}
	}
	for _, tc := range []struct {
		fa        string
		takeValue bool
		want      []string
	}{
		{"on", true, []string{"--flash-attn", "on"}},
		{"off", true, []string{"--flash-attn", "off"}},
		{"on", false, []string{"--flash-attn"}},
		{"off", false, nil},
		{"auto", false, nil},
	} {
		if got := tuningArgs(cand(tc.fa), tc.takeValue); !slices.Equal(got, tc.want) {
			t.Errorf("fa=%s value=%v: %q, want %q", tc.fa, tc.takeValue, got, tc.want)
		}
	}
}
