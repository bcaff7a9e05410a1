package measure

import (
	"github.com/fuze-ai/fuze/internal/stats"
	"math"
	"time"
)

// Metrics are every figure derived from one Sample. Derive is the only place they are
// computed: the CSV writer, the JSONL records, the console and the reports all read them, so
// a new metric is one field here plus a column where it is shown.
type Metrics struct {
	// DecodeTPS is CSV column 12: the decode rate fuze's client saw, the same way for every
	// stack (StreamDecodeTPS); for a configuration measured several times, the median of its
	// repeats' rates (the mean of the two middle ones for an even count). Server timers are
	// cross-checks (ServerDecodeTPS).
	DecodeTPS float64 `json:"decode_tps"`
	// PrefillTPS is the server-reported prompt processing rate.
	PrefillTPS float64 `json:"prefill_tps"`
	// E2ETPS is output tokens over the whole client-side request time.
	E2ETPS float64 `json:"e2e_tps"`
	// StreamDecodeTPS is the client's decode rate: the tokens that arrived after the first
	// chunk over the span from the first chunk's arrival to the last one's. A chunk carrying k
	// tokens counts k, and the first chunk's tokens are not counted (they end the interval's
	// start, not its work), so chunks of several tokens do not bias the rate.
	StreamDecodeTPS float64 `json:"stream_decode_tps"`
	// TTFT is the client's time to the first token.
	TTFT time.Duration `json:"ttft_ns"`
	// ServerDecodeTPS is the server's own decode rate (0 when it reports none), and
	// ServerClientRatio ServerDecodeTPS ÷ StreamDecodeTPS: how far the server's timer is from
	// what a client receives.
	ServerDecodeTPS   float64 `json:"server_decode_tps,omitempty"`
	ServerClientRatio float64 `json:"server_client_ratio,omitempty"`
	// TimerDisagrees: the server's timer and the client's clock differ by more than
	// RatioTolerance.
	TimerDisagrees bool `json:"timer_disagrees,omitempty"`
	// ITLMean is the mean gap between consecutive token arrivals at the client.
	ITLMean time.Duration `json:"itl_mean_ns,omitempty"`
	// E2E is the whole request as the client saw it.
	E2E time.Duration `json:"e2e_ns,omitempty"`
	// RooflineShare is DecodeTPS over the sample's memory-bandwidth roofline (0: unknown).
	RooflineShare float64 `json:"-"`
	// JoulesPerToken is the request window's energy (Sample.Telemetry) over its output tokens;
	// JoulesPerTokenAboveIdle the same with the idle power over the window taken away. Absent
	// (nil: "n/a") without a measured energy, never 0.
	JoulesPerToken          *float64 `json:"joules_per_token,omitempty"`
	JoulesPerTokenAboveIdle *float64 `json:"joules_per_token_above_idle,omitempty"`
}

// Derive computes the metrics of s. A failed sample has zero rates.
func Derive(s *Sample) Metrics {
	if s == nil {
		return Metrics{}
	}
	m := Metrics{PrefillTPS: finite(s.prefillTPS()), TTFT: s.FirstToken}
	if s.Failed() {
		return m
	}
	m.StreamDecodeTPS = finite(s.streamDecodeTPS())
	m.ServerDecodeTPS = finite(s.serverDecodeTPS())
	m.DecodeTPS = m.StreamDecodeTPS
	if len(s.RepeatTPS) > 0 {
		m.DecodeTPS = finite(stats.Median(s.RepeatTPS))
	}
	if m.ServerDecodeTPS > 0 && m.StreamDecodeTPS > 0 {
		m.ServerClientRatio = m.ServerDecodeTPS / m.StreamDecodeTPS
		m.TimerDisagrees = math.Abs(1-m.ServerClientRatio) > RatioTolerance
	}
	if s.End > 0 && s.ServerOutputTokens > 0 {
		m.E2ETPS = finite(float64(s.ServerOutputTokens) / s.End.Seconds())
	}
	if n := len(s.ChunkTimes); n > 1 {
		m.ITLMean = (s.ChunkTimes[n-1] - s.ChunkTimes[0]) / time.Duration(n-1)
	}
	m.E2E = s.End
	if s.RooflineTPS > 0 {
		m.RooflineShare = m.DecodeTPS / s.RooflineTPS
	}
	m.joulesPerToken(s)
	return m
}

func (s *Sample) serverDecodeTPS() float64 {
	if s.ServerOutputTokens > 0 && s.ServerDecodeDuration > 0 {
		return float64(s.ServerOutputTokens) / s.ServerDecodeDuration.Seconds()
	}
	return 0
}

// RatioTolerance is how far a server's own decode rate may be from the client's before the
// row says the two disagree.
const RatioTolerance = 0.03

func (s *Sample) streamDecodeTPS() float64 {
	n := len(s.ChunkTimes)
	if n < 2 {
		return 0
	}
	first := 1 // tokens the first chunk carried: they share its arrival time
	for first < n && s.ChunkTimes[first] == s.ChunkTimes[0] {
		first++
	}
	span := s.ChunkTimes[n-1] - s.ChunkTimes[0]
	if span <= 0 || n-first < 1 {
		return 0
	}
	return float64(n-first) / span.Seconds()
}

func (s *Sample) prefillTPS() float64 {
	if s.ServerPromptTokens <= 0 || s.ServerPromptDuration <= 0 {
		return 0
	}
	return float64(s.ServerPromptTokens) / s.ServerPromptDuration.Seconds()
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
