package llamacpp_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp/llamafake"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// recordedFinal is the final event of a recorded stream, as the server sent it.
type recordedFinal struct {
	StopType        string `json:"stop_type"`
	TokensPredicted int    `json:"tokens_predicted"`
	TokensEvaluated int    `json:"tokens_evaluated"`
	Timings         struct {
		PromptN            int     `json:"prompt_n"`
		PromptMS           float64 `json:"prompt_ms"`
		PromptPerSecond    float64 `json:"prompt_per_second"`
		PredictedN         int     `json:"predicted_n"`
		PredictedMS        float64 `json:"predicted_ms"`
		PredictedPerSecond float64 `json:"predicted_per_second"`
	} `json:"timings"`
}

// readRecordedStream returns a recorded completion, its final event and its number of token
// events.
func readRecordedStream(t *testing.T, path string) (llamafake.Exchange, recordedFinal, int) {
	t.Helper()
	ex, err := llamafake.ReadExchange(path)
	if err != nil {
		t.Fatal(err)
	}
	events := strings.Split(strings.TrimSpace(ex.Response.Body), "\n\n")
	var final recordedFinal
	if err := json.Unmarshal([]byte(strings.TrimPrefix(events[len(events)-1], "data: ")), &final); err != nil {
		t.Fatalf("%s: final event: %v", path, err)
	}
	return ex, final, len(events) - 1
}

func ns(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

// The exchanges recorded from real llama-servers (testdata/real), replayed through the whole
// driver: a fake server answers with the recorded /health and /completion responses and prints
// the recorded loader log (the H100 run's; the CPU run's log was not recorded, so the fake
// prints its CPU build's loader lines, which have no offload line). The driver must send the
// request that was recorded, and record what the real server said: its token counts, its
// timings, its own predicted_per_second as the rate, and the offload its log reports.
func TestReplayRealTranscripts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		sel     gpu.Selection
		ctx     int
		ngl     []int
		offload string
	}{
		{"h100", nil, gpu.Selection{A: fakeGPU("GPU-h100")}, 2048, []int{99}, "33/33"},
		{"cpu", []string{"FUZE_FAKE_LLAMA_BUILD=cpu"}, gpu.Selection{}, 1024, []int{0}, llamacpp.NoOffload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix, err := filepath.Abs(filepath.Join("testdata", "real", tc.name+"_"))
			if err != nil {
				t.Fatal(err)
			}
			rec, final, tokenEvents := readRecordedStream(t, prefix+"completion_stream.json")
			tm := final.Timings
			cfg, recPath := fakeConfig(t, "normal", append([]string{"FUZE_FAKE_LLAMA_REPLAY=" + prefix}, tc.env...)...)
			cfg.CtxSize, cfg.NGL = tc.ctx, tc.ngl
			res := run(t, cfg, tc.sel, sweep.Policy{Exhaustive: true}, 1)
			if len(res.rows) != 2 {
				t.Fatalf("%d rows, want the baseline and -ngl %d\n%s", len(res.rows), tc.ngl[0], res.log)
			}
			// The first measured request is the one the transcript recorded.
			_, reqs := readRecords(t, recPath)
			if len(reqs) != 4 { // per server: the warm-up, then the measurement
				t.Fatalf("%d requests, want 4", len(reqs))
			}
			var sent, recorded map[string]any
			json.Unmarshal(reqs[1].Request, &sent)
			json.Unmarshal(rec.Request.Body, &recorded)
			// Attempt numbers run on across the process (every prompt is new); the rest is
			// the recorded request, byte for byte.
			attempt := regexp.MustCompile(`attempt \d+\]`)
			for _, m := range []map[string]any{sent, recorded} {
				if p, ok := m["prompt"].(string); ok {
					m["prompt"] = attempt.ReplaceAllString(p, "attempt N]")
				}
			}
			if !reflect.DeepEqual(sent, recorded) {
				t.Errorf("the driver sent\n%s\nthe transcript's request is\n%s", reqs[1].Request, rec.Request.Body)
			}
			for i, r := range res.rows {
				s := res.recs[i].Sample
				if s.Outcome != measure.OK || s.Error != "" || len(s.Notes) != 0 {
					t.Fatalf("row %d: %s: %s %q\n%s", i, s.Outcome, s.Error, s.Notes, res.log)
				}
				if s.ServerOutputTokens != tm.PredictedN || s.ServerOutputTokens != final.TokensPredicted || s.ServerOutputTokens != cfg.NumPredict ||
					len(s.ChunkTimes) != tokenEvents || s.ServerPromptTokens != tm.PromptN || s.StopReason != final.StopType ||
					s.Settings["tokens_evaluated"] != strconv.Itoa(final.TokensEvaluated) {
					t.Errorf("row %d: %d tokens (%d token events), prompt %d, stop %q, tokens_evaluated %s; the server said %d (%d events), %d, %q, %d",
						i, s.ServerOutputTokens, len(s.ChunkTimes), s.ServerPromptTokens, s.StopReason, s.Settings["tokens_evaluated"],
						tm.PredictedN, tokenEvents, tm.PromptN, final.StopType, final.TokensEvaluated)
				}
				if s.ServerDecodeDuration != ns(tm.PredictedMS) || s.ServerPromptDuration != ns(tm.PromptMS) {
					t.Errorf("row %d: decode %s, prefill %s; the server said %g ms and %g ms", i, s.ServerDecodeDuration, s.ServerPromptDuration, tm.PredictedMS, tm.PromptMS)
				}
				// The server's timer is its predicted_per_second (to the float64 rounding of
				// predicted_n / predicted_ms), in the metrics and the settings; the CSV carries
				// the client's rate (a replay arrives at once, so only its consistency is checked).
				m := res.recs[i].Metrics
				if got := m.ServerDecodeTPS; math.Abs(got-tm.PredictedPerSecond) > 1e-12*tm.PredictedPerSecond ||
					s.Settings["server_predicted_per_second"] != strconv.FormatFloat(tm.PredictedPerSecond, 'f', 4, 64) || math.Abs(r.TokensPerSec-m.DecodeTPS) > 0.006 {
					t.Errorf("row %d: server timer %.12f tok/s (settings %s), CSV %.2f vs client %.2f; the server's predicted_per_second is %.12f",
						i, got, s.Settings["server_predicted_per_second"], r.TokensPerSec, m.DecodeTPS, tm.PredictedPerSecond)
				}
				if got := s.PrefillTokensPerSec(); math.Abs(got-tm.PromptPerSecond) > 1e-12*tm.PromptPerSecond {
					t.Errorf("row %d: prefill %.12f tok/s, the server's prompt_per_second is %.12f", i, got, tm.PromptPerSecond)
				}
				if s.Settings["offloaded_layers"] != tc.offload {
					t.Errorf("row %d: offloaded_layers %q, want %q (from the server's log)", i, s.Settings["offloaded_layers"], tc.offload)
				}
			}
		})
	}
}
