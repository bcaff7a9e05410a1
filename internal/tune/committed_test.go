package tune

import (
	"math"
	"testing"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// The committed tuning searches of the 8B F16 on one H200 (docs/gpu-results.md), on Ollama and
// on llama.cpp: each has at least 12 configurations measured, its cost as the report states it
// (measurements, fewer server starts than the full grid's), every knob effect in the report
// recomputed from the configurations' own repeats, and the best decode configuration's
// comparison with the default recomputed from the default's repeats in the run JSONL. Then
// what each says: on Ollama flash attention is significantly faster and a quantized KV cache
// significantly slower on decode; on llama.cpp no knob has a significant effect, yet the best
// configuration beats the default (whose batch size is llama-server's 32 here).
func TestCommittedGPUTuning(t *testing.T) {
	for _, tc := range []struct {
		run string
		// servers is how many daemon configurations the knobs make. A quantized KV cache with
		// flash attention off is skipped by the planner (Ollama would silently use f16,
		// llama-server refuses it). On Ollama flash attention and the KV cache type are the
		// daemon's environment (2 × 3, less those 2), num_batch and num_ctx request options; on
		// llama.cpp every knob is a llama-server flag (2 × 3 × 2 × 2, less those 8).
		servers int
		check   func(t *testing.T, effects map[string]Effect, best stats.Comparison)
	}{
		{"tune-ollama-llama8b", 4, func(t *testing.T, byKey map[string]Effect, _ stats.Comparison) {
			if e := byKey["decode_tps OLLAMA_FLASH_ATTENTION 1"]; !e.Significant || e.Low <= 1 {
				t.Errorf("flash attention on decode: %+v, want significantly faster", e)
			}
			for _, kv := range []string{"q8_0", "q4_0"} {
				if e := byKey["decode_tps OLLAMA_KV_CACHE_TYPE "+kv]; !e.Significant || e.High >= 1 {
					t.Errorf("KV cache %s on decode: %+v, want significantly slower", kv, e)
				}
			}
		}},
		{"tune-llamacpp-llama8b", 16, func(t *testing.T, byKey map[string]Effect, best stats.Comparison) {
			for k, e := range byKey {
				if e.Significant {
					t.Errorf("%s: %+v; no knob was found to matter on llama.cpp", k, e)
				}
			}
			if !best.Better || best.P >= stats.DefaultAlpha {
				t.Errorf("best decode configuration vs the default: %.3fx, p=%.4f; want significantly faster", best.Ratio, best.P)
			}
		}},
	} {
		t.Run(tc.run, func(t *testing.T) {
			reports, err := ReadReports(testfixture.Repo(t, "results", "gpu", tc.run+".tuning.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) != 1 {
				t.Fatalf("%d reports, want 1", len(reports))
			}
			r := reports[0]
			var cands []Candidate[map[string]string]
			servers := map[string]bool{}
			rounds := 0
			for _, c := range r.Configs {
				rounds += c.Rounds
				if len(c.DecodeTPS) == 0 {
					continue
				}
				servers[c.Server] = true
				cands = append(cands, Candidate[map[string]string]{C: c.Settings, Server: c.Server, Decode: c.DecodeTPS, TTFTms: c.TTFTms, JPerToken: c.JPerToken})
			}
			if len(cands) < 12 {
				t.Fatalf("%d configurations measured, want at least 12", len(cands))
			}
			// Every measurement is one configuration's round: the report's count is theirs, and the
			// full grid measures every configuration every round.
			if r.Measured != rounds || r.GridMeas != len(r.Configs)*r.Rounds || r.Measured >= r.GridMeas {
				t.Errorf("%d measurements (the configurations' rounds add up to %d), grid %d for %d configurations over %d rounds",
					r.Measured, rounds, r.GridMeas, len(r.Configs), r.Rounds)
			}
			// The full grid starts a server at every change of daemon configuration in the
			// planner's order: each one at least once per round. The search prunes, so it starts
			// fewer, and it cannot start fewer than one per daemon configuration.
			if len(servers) != tc.servers || r.GridStart < len(servers)*r.Rounds || r.Starts >= r.GridStart || r.Starts < len(servers) {
				t.Errorf("%d server starts (grid %d) for %d daemon configurations over %d rounds", r.Starts, r.GridStart, len(servers), r.Rounds)
			}
			recomputed := Effects(cands, func(m map[string]string) map[string]string { return m })
			if len(recomputed) != len(r.Effects) {
				t.Fatalf("%d effects recomputed, %d in the report", len(recomputed), len(r.Effects))
			}
			byKey := map[string]Effect{}
			for i, e := range recomputed {
				want := r.Effects[i]
				if e.Knob != want.Knob || e.Value != want.Value || e.Objective != want.Objective || e.Pairs != want.Pairs ||
					math.Abs(e.Ratio-want.Ratio) > 1e-9 || math.Abs(e.Low-want.Low) > 1e-9 || math.Abs(e.High-want.High) > 1e-9 ||
					e.Significant != want.Significant {
					t.Errorf("effect %d recomputed %+v, report %+v", i, e, want)
				}
				byKey[e.Objective+" "+e.Knob+" "+e.Value] = e
			}

			// The best by decode rate, recomputed, against the default's repeats: the run JSONL's
			// base-as-is record (the report keeps only the default's median).
			bi := BestBy(cands, Objectives[0])
			rb := r.BestDecode()
			if bi < 0 || rb == nil || SettingsText(cands[bi].C) != SettingsText(rb.Settings) {
				t.Fatalf("best decode configuration recomputed %d, report %+v", bi, rb)
			}
			recs, warnings, err := results.ReadRunJSONL(testfixture.Repo(t, "results", "gpu", tc.run+".jsonl"))
			if err != nil || len(warnings) > 0 {
				t.Fatalf("%v %q", err, warnings)
			}
			var base []float64
			for _, rec := range recs {
				if rec.Row.VariantLabel == "base-as-is" {
					if base != nil {
						t.Fatal("two default rows")
					}
					base = results.SampleRepeats(rec.Sample)
				}
			}
			if len(base) < 3 {
				t.Fatalf("the default's repeats %v", base)
			}
			cmp := stats.Compare(cands[bi].Decode, base, stats.DefaultAlpha)
			if math.Abs(cmp.IncumbentMedian-rb.BaselineMedian) > 1e-9 || math.Abs(cmp.Ratio-rb.Ratio) > 1e-9 ||
				math.Abs(cmp.P-rb.P) > 1e-12 || cmp.Significant != rb.Significant {
				t.Errorf("best vs default recomputed %.4fx p=%.4f (default median %.2f), report %.4fx p=%.4f (%.2f)",
					cmp.Ratio, cmp.P, cmp.IncumbentMedian, rb.Ratio, rb.P, rb.BaselineMedian)
			}
			tc.check(t, byKey, cmp)
		})
	}
}
