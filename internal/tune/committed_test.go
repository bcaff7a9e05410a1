package tune

import (
	"math"
	"testing"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// The committed tuning search of the 8B F16 on Ollama on one H200 (docs/gpu-results.md):
// at least 12 configurations measured, fewer server starts than the full grid's, and every
// knob effect in the report recomputed from the configurations' own repeats — flash attention
// significantly faster, a quantized KV cache significantly slower on decode.
func TestCommittedGPUTuning(t *testing.T) {
	reports, err := ReadReports(testfixture.Repo(t, "results", "gpu", "tune-ollama-llama8b.tuning.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1", len(reports))
	}
	r := reports[0]
	var cands []Candidate[map[string]string]
	servers := map[string]bool{}
	for _, c := range r.Configs {
		if len(c.DecodeTPS) == 0 {
			continue
		}
		servers[c.Server] = true
		cands = append(cands, Candidate[map[string]string]{C: c.Settings, Server: c.Server, Decode: c.DecodeTPS, TTFTms: c.TTFTms, JPerToken: c.JPerToken})
	}
	if len(cands) < 12 {
		t.Fatalf("%d configurations measured, want at least 12", len(cands))
	}
	// The full grid of the two rounds begun starts a server at every change of daemon
	// configuration in the planner's order: 4 per round at the least.
	if r.Starts >= 2*len(servers)*2 || len(servers) != 4 {
		t.Errorf("%d server starts for %d daemon configurations over %d rounds", r.Starts, len(servers), r.Rounds)
	}
	recomputed := Effects(cands, func(m map[string]string) map[string]string { return m })
	if len(recomputed) != len(r.Effects) {
		t.Fatalf("%d effects recomputed, %d in the report", len(recomputed), len(r.Effects))
	}
	byKey := map[string]Effect{}
	for i, e := range recomputed {
		want := r.Effects[i]
		if e.Knob != want.Knob || e.Value != want.Value || e.Objective != want.Objective || e.Pairs != want.Pairs ||
			math.Abs(e.Ratio-want.Ratio) > 1e-9 || math.Abs(e.Low-want.Low) > 1e-9 || math.Abs(e.High-want.High) > 1e-9 {
			t.Errorf("effect %d recomputed %+v, report %+v", i, e, want)
		}
		byKey[e.Objective+" "+e.Knob+" "+e.Value] = e
	}
	if e := byKey["decode_tps OLLAMA_FLASH_ATTENTION 1"]; !e.Significant || e.Low <= 1 {
		t.Errorf("flash attention on decode: %+v, want significantly faster", e)
	}
	for _, kv := range []string{"q8_0", "q4_0"} {
		if e := byKey["decode_tps OLLAMA_KV_CACHE_TYPE "+kv]; !e.Significant || e.High >= 1 {
			t.Errorf("KV cache %s on decode: %+v, want significantly slower", kv, e)
		}
	}
}
