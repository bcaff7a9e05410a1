// Package serving computes and writes the figures of a serving benchmark: for one
// configuration of a server, at each concurrency level, what the requests the engine timed
// add up to (throughput, latency percentiles, failures by reason), whether the level meets the
// latency objective, the goodput (the highest concurrency that does) and whether a figure is
// above what physics allows. The engine (internal/engine, Serve) runs the levels; every figure
// here comes from the requests' measure.Sample records, per request through measure.Derive.
package serving

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stats"
)

// QuantileDefinition is how every percentile here is computed (stats.Quantile).
const QuantileDefinition = "hf7"

// QuantileDefinitionText says what QuantileDefinition means.
const QuantileDefinitionText = "Hyndman & Fan type 7: linear interpolation between order statistics, h = (n-1)q (numpy.quantile and R's default)"

// PhysicsTolerance is how far a level's aggregate output rate may exceed concurrency × the
// single-stream decode rate before it is flagged (timer resolution and noise, not a gain).
const PhysicsTolerance = 0.03

// SLO is the latency objective a level must meet to count for goodput.
type SLO struct {
	TTFT time.Duration // p99 time to first token at most this
	ITL  time.Duration // p99 inter-token latency at most this
}

// Dist is a latency distribution: the percentiles in milliseconds over N values.
type Dist struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	N   int     `json:"n"`
}

// NewDist is the distribution of values given in milliseconds (zeros when there are none).
func NewDist(ms []float64) Dist {
	if len(ms) == 0 {
		return Dist{}
	}
	return Dist{P50: stats.Quantile(ms, 0.50), P90: stats.Quantile(ms, 0.90), P99: stats.Quantile(ms, 0.99), N: len(ms)}
}

// Config identifies the configuration a level belongs to.
type Config struct {
	Stack          string            `json:"stack"`
	Endpoint       string            `json:"endpoint"`
	GPULabel       string            `json:"gpu_label"`
	Model          string            `json:"model"`
	Alias          string            `json:"alias"`
	Label          string            `json:"label"`
	ModelTag       string            `json:"model_tag"`
	Parallel       string            `json:"parallel"`        // the server's concurrency setting ("default": its own)
	ServerSettings string            `json:"server_settings"` // every server-level setting, name=value sorted
	Settings       map[string]string `json:"settings"`        // every setting, and what Prepare reported
	InputTokens    int               `json:"input_tokens"`    // tokens asked per prompt (0: the stack's prompt as it is)
	OutputTokens   int               `json:"output_tokens"`   // tokens asked per answer
	// RooflineTPS is the memory-bandwidth bound of one stream's decode rate (0: unknown).
	RooflineTPS float64 `json:"roofline_tps,omitempty"`
}

// Key is the configuration's identity in the JSONL records.
func (c Config) Key() string {
	return strings.Join([]string{c.Endpoint, c.ModelTag, c.Label, c.ServerSettings}, "|")
}

// Level is what one concurrency level of one configuration measured.
type Level struct {
	Config
	// Concurrency is the requests in flight of a closed loop; for an open loop (Open set) the
	// cap on them, SERVING_MAX_CONCURRENCY (0: none).
	Concurrency int `json:"concurrency"`
	// Open is the open loop's arrivals; nil for a closed loop.
	Open  *OpenLoop `json:"open_loop,omitempty"`
	Start time.Time `json:"start"`
	// Requests is the count the level was asked for (0: as many as its duration allows).
	Requests int `json:"requests"`
	// Sent, Completed, Failed and Canceled count the measured requests (warm-ups not
	// included): Sent = Completed + Failed + Canceled. Canceled ones were cut by Ctrl-C.
	Sent      int `json:"sent"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Canceled  int `json:"canceled"`
	// Failures counts failed requests by reason (measure outcome, HTTP status when there is
	// one: "http_429", "connect", "timeout", "short"…); FailureExamples has the first
	// message of each.
	Failures        map[string]int    `json:"failures,omitempty"`
	FailureExamples map[string]string `json:"failure_examples,omitempty"`
	// Span is the level's measured time: from the first measured request's start to the last
	// one's end, on the engine's clock.
	Span time.Duration `json:"span_ns"`
	// RequestRate is completed requests per second of Span; OutputTPS the output tokens of the
	// completed requests per second of Span (the aggregate rate).
	RequestRate float64 `json:"request_rate"`
	OutputTPS   float64 `json:"output_tps"`
	// StreamDecodeTPS is the median over completed requests of each one's decode rate as the
	// client saw it (measure.Metrics.StreamDecodeTPS).
	StreamDecodeTPS float64 `json:"stream_decode_tps_p50"`
	// InputTokens* are the prompt tokens the server reported for the completed requests
	// (0 when it reports none).
	InputTokensMean float64 `json:"input_tokens_mean"`
	InputTokensMin  int     `json:"input_tokens_min"`
	InputTokensMax  int     `json:"input_tokens_max"`
	// OutputTokensMean is the mean output tokens of the completed requests.
	OutputTokensMean float64 `json:"output_tokens_mean"`
	// TTFT: first token's arrival since the request started, per completed request. ITL: the
	// gaps between a request's consecutive token arrivals, pooled over the completed
	// requests, as ITLs shares a gap among tokens that arrived together. TPOT:
	// (e2e − TTFT) / (output tokens − 1) per completed request of 2 tokens or more. E2E: the
	// whole request, per completed request.
	TTFT Dist `json:"ttft"`
	ITL  Dist `json:"itl"`
	TPOT Dist `json:"tpot"`
	E2E  Dist `json:"e2e"`
	// SLO is the objective the level was judged by; SLOMet says whether every measured
	// request completed and the p99 TTFT and p99 ITL are within it.
	SLO    SLO  `json:"-"`
	SLOMet bool `json:"slo_met"`
	// PhysicsLimitTPS is concurrency × the configuration's single-stream decode rate (its
	// concurrency-1 level's StreamDecodeTPS; 0: no such level); PhysicsFlag says why a figure
	// is not believable (aggregate above that limit, a stream above the roofline), or "".
	PhysicsLimitTPS float64 `json:"physics_limit_tps"`
	PhysicsFlag     string  `json:"physics_flag,omitempty"`
	// Interrupted: the level was cut short by Ctrl-C; its figures are what completed.
	Interrupted bool `json:"interrupted"`
	// Telemetry is the endpoint's hardware over the level's measured requests (one window:
	// they overlap); JoulesPerToken its energy over the completed requests' output tokens
	// (nil: not measured, shown as n/a).
	Telemetry      *measure.Telemetry `json:"telemetry,omitempty"`
	JoulesPerToken *float64           `json:"joules_per_token,omitempty"`
	// Error: the configuration could not be served at all (its server did not start, load
	// or warm up); no request was sent.
	Error string `json:"error,omitempty"`
	// Notes: what else the level or its configuration's preparation said.
	Notes []string `json:"notes,omitempty"`
}

// OpenLoop is how an open-loop level's requests arrived: at Rate a second on average, the
// gaps gamma-distributed with shape Burstiness (1: Poisson) drawn from Seed (Arrivals), at most
// MaxConcurrency in flight (0: no cap).
type OpenLoop struct {
	Rate           Rate    `json:"rate"`
	Burstiness     float64 `json:"burstiness"`
	Seed           uint64  `json:"seed"`
	MaxConcurrency int     `json:"max_concurrency"`
	// Capped counts the requests that arrived while MaxConcurrency were in flight: each waited
	// for one to end before it was sent (as vLLM's --max-concurrency does), and its clock
	// started when it was sent, so its TTFT does not include that wait.
	Capped int `json:"capped"`
	// MaxInFlight is the most measured requests that were in flight at once.
	MaxInFlight int `json:"max_in_flight"`
}

// Rate is an offered request rate: requests per second, +Inf for every request at once. JSON
// has no infinity, so it is written "inf" there (a number otherwise).
type Rate float64

func (r Rate) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(r), 1) {
		return []byte(`"inf"`), nil
	}
	return strconv.AppendFloat(nil, finite(float64(r)), 'f', -1, 64), nil
}

func (r *Rate) UnmarshalJSON(b []byte) error {
	v, ok := ParseRate(strings.Trim(string(b), `"`))
	if !ok {
		return fmt.Errorf("serving: rate %s: want a number > 0 or \"inf\"", b)
	}
	*r = Rate(v)
	return nil
}

// goodputKey orders the levels of one configuration for Goodput: the offered rate of an open
// loop, the concurrency of a closed one.
func (l *Level) goodputKey() float64 {
	if l.Open != nil {
		return float64(l.Open.Rate)
	}
	return float64(l.Concurrency)
}

var httpStatus = regexp.MustCompile(`HTTP (\d{3})\b|answered HTTP (\d{3})\b|status (\d{3})\b`)

// Reason is the failure reason a failed sample is counted under: its outcome, or the HTTP
// status when the error is an HTTP answer that names one ("http_429"; llama-server's 503,
// which the driver classifies as a load failure, included).
func Reason(s *measure.Sample) string {
	if s.Outcome == measure.ErrHTTP || s.Outcome == measure.ErrLoad {
		if m := httpStatus.FindStringSubmatch(s.Error); m != nil {
			for _, g := range m[1:] {
				if g != "" {
					return "http_" + g
				}
			}
		}
	}
	return s.Outcome
}

// OutputTokens is a request's output tokens: the server's count, or the client's when the
// server gives none (as the engine checks a request's length).
func OutputTokens(s *measure.Sample) int {
	if s.ServerOutputTokens > 0 {
		return s.ServerOutputTokens
	}
	return len(s.ChunkTimes)
}

// ITLs appends s's inter-token latencies in milliseconds to dst: one value per token after the
// first, so that a request of n tokens always gives n−1 values, whose sum is the span from the
// first token to the last. Tokens that came with the first (in one read: they share its kernel
// stamp) had no gap: 0 each.
//
// Tokens that share a later arrival time (a chunk carrying k tokens, or k events taken in one
// read, of which the kernel keeps only the latest stamp) share the gap g before them; how is not
// known, but the stream's pace is: p, the median of the request's gaps each spread evenly over its
// tokens. The later k−1 tokens get min(p, g/k) each and the first the rest. A gap of up to k
// steps at the stream's pace is so split evenly (a server that sends k tokens an event is timed
// at its per-token pace), and what a longer gap holds beyond that is a stall before the first
// of its tokens, after which the others came at the stream's pace (a reader late after a stall
// takes the stalled token and the next one together). Split evenly, a stall would be shared
// with the on-time tokens behind it, and the tail a p99 ITL is asked about would shrink.
func ITLs(dst []float64, s *measure.Sample) []float64 {
	t := s.ChunkTimes
	i := 1
	for i < len(t) && t[i] == t[0] {
		dst = append(dst, 0) // came with the first token
		i++
	}
	type group struct {
		gap float64 // ms since the previous arrival
		k   int     // tokens that arrived at this time
	}
	var groups []group
	even := make([]float64, 0, max(len(t)-i, 0))
	for i < len(t) {
		j := i + 1
		for j < len(t) && t[j] == t[i] {
			j++
		}
		g := group{gap: float64(t[i]-t[i-1]) / 1e6, k: j - i}
		groups = append(groups, g)
		for range g.k {
			even = append(even, g.gap/float64(g.k))
		}
		i = j
	}
	if len(even) == 0 {
		return dst
	}
	slices.Sort(even)
	pace := even[len(even)/2]
	for _, g := range groups {
		later := min(pace, g.gap/float64(g.k))
		dst = append(dst, g.gap-float64(g.k-1)*later)
		for range g.k - 1 {
			dst = append(dst, later)
		}
	}
	return dst
}

// TPOT is (e2e − TTFT) / (output tokens − 1), vLLM's time per output token; false for a
// request of fewer than 2 tokens.
func TPOT(s *measure.Sample) (time.Duration, bool) {
	n := OutputTokens(s)
	if n < 2 || s.End <= s.FirstToken {
		return 0, false
	}
	return (s.End - s.FirstToken) / time.Duration(n-1), true
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Summarize computes a level's figures from its measured requests (warm-ups excluded).
// requests is the count the level was asked for (0: a duration); slo judges it.
func Summarize(cfg Config, concurrency, requests int, samples []*measure.Sample, slo SLO, interrupted bool) Level {
	l := Level{Config: cfg, Concurrency: concurrency, Requests: requests, SLO: slo, Interrupted: interrupted}
	var first time.Time
	var last time.Time
	var ttft, itl, tpot, e2e, decode []float64
	var outTokens, inTokens, inN int
	for _, s := range samples {
		if s == nil {
			continue
		}
		l.Sent++
		if !s.Start.IsZero() {
			if first.IsZero() || s.Start.Before(first) {
				first = s.Start
			}
			if end := s.Start.Add(s.End); end.After(last) {
				last = end
			}
		}
		switch {
		case s.Outcome == measure.ErrCanceled:
			l.Canceled++
			continue
		case s.Failed():
			l.Failed++
			r := Reason(s)
			if l.Failures == nil {
				l.Failures, l.FailureExamples = map[string]int{}, map[string]string{}
			}
			if l.Failures[r] == 0 {
				l.FailureExamples[r] = s.Error
			}
			l.Failures[r]++
			continue
		}
		l.Completed++
		m := measure.Derive(s)
		ttft = append(ttft, ms(m.TTFT))
		e2e = append(e2e, ms(m.E2E))
		if t, ok := TPOT(s); ok {
			tpot = append(tpot, ms(t))
		}
		itl = ITLs(itl, s)
		if m.StreamDecodeTPS > 0 {
			decode = append(decode, m.StreamDecodeTPS)
		}
		outTokens += OutputTokens(s)
		if s.ServerPromptTokens > 0 {
			if inN == 0 || s.ServerPromptTokens < l.InputTokensMin {
				l.InputTokensMin = s.ServerPromptTokens
			}
			l.InputTokensMax = max(l.InputTokensMax, s.ServerPromptTokens)
			inTokens += s.ServerPromptTokens
			inN++
		}
	}
	l.Start = first
	if !first.IsZero() {
		l.Span = last.Sub(first)
	}
	if l.Span > 0 {
		l.RequestRate = float64(l.Completed) / l.Span.Seconds()
		l.OutputTPS = float64(outTokens) / l.Span.Seconds()
	}
	if l.Completed > 0 {
		l.OutputTokensMean = float64(outTokens) / float64(l.Completed)
	}
	if inN > 0 {
		l.InputTokensMean = float64(inTokens) / float64(inN)
	}
	if len(decode) > 0 {
		l.StreamDecodeTPS = stats.Median(decode)
	}
	l.TTFT, l.ITL, l.TPOT, l.E2E = NewDist(ttft), NewDist(itl), NewDist(tpot), NewDist(e2e)
	l.SLOMet = l.Sent > 0 && l.Completed == l.Sent && !interrupted && l.ITL.N > 0 &&
		l.TTFT.P99 <= ms(slo.TTFT) && l.ITL.P99 <= ms(slo.ITL)
	return l
}

// CheckPhysics flags what physics does not allow: an aggregate output rate above concurrency ×
// the single-stream decode rate singleTPS (0: unknown, not checked) beyond PhysicsTolerance,
// and a median stream decode rate above the memory-bandwidth roofline. The single-stream rate
// counts the n−1 tokens after each request's first over their interval while the aggregate
// counts all n, so the limit is scaled by n/(n−1): short outputs would be flagged otherwise.
func (l *Level) CheckPhysics(singleTPS float64) {
	var flags []string
	if singleTPS > 0 {
		l.PhysicsLimitTPS = float64(l.Concurrency) * singleTPS
		if n := l.OutputTokensMean; n > 1 {
			l.PhysicsLimitTPS *= n / (n - 1)
		}
		if l.OutputTPS > l.PhysicsLimitTPS*(1+PhysicsTolerance) {
			flags = append(flags, fmt.Sprintf("measurement error: aggregate %.2f tok/s is above %d × the single-stream %.2f tok/s = %.2f", l.OutputTPS, l.Concurrency, singleTPS, l.PhysicsLimitTPS))
		}
	}
	if l.RooflineTPS > 0 && l.StreamDecodeTPS > l.RooflineTPS {
		flags = append(flags, fmt.Sprintf("measurement error: stream decode %.2f tok/s is above the memory-bandwidth roofline of %.2f tok/s", l.StreamDecodeTPS, l.RooflineTPS))
	}
	l.PhysicsFlag = strings.Join(flags, "; ")
}

// Goodput is the level of highest concurrency (of an open loop: highest offered rate) that
// met the SLO and is not flagged by CheckPhysics; nil when none did.
func Goodput(levels []Level) *Level {
	var best *Level
	for i := range levels {
		l := &levels[i]
		if l.SLOMet && l.PhysicsFlag == "" && (best == nil || l.goodputKey() > best.goodputKey()) {
			best = l
		}
	}
	return best
}

// FailureSummary is "http_429=3 timeout=1" (reasons sorted), or "".
func (l *Level) FailureSummary() string {
	keys := make([]string, 0, len(l.Failures))
	for k := range l.Failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, l.Failures[k])
	}
	return strings.Join(parts, " ")
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// SetTelemetry records the level's telemetry window and its energy per output token.
func (l *Level) SetTelemetry(t *measure.Telemetry) {
	l.Telemetry = t
	tokens := l.OutputTokensMean * float64(l.Completed)
	if t != nil && t.EnergyJ != nil && tokens > 0 {
		jt := *t.EnergyJ / tokens
		l.JoulesPerToken = &jt
	}
}
