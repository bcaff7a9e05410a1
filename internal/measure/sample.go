// Package measure defines the one record every benchmark attempt produces, whatever the
// stack: what was asked, what the server reported, what the client saw, and the outcome.
// Rates are derived from it in one place so that all stacks are computed the same way.
package measure

import (
	"time"
)

// Outcome kinds of an attempt. A failed attempt is data (a 0.00 row), not an exception.
const (
	OK           = "ok"
	ErrTimeout   = "timeout"     // the request or readiness deadline passed
	ErrHTTP      = "http_status" // the server answered an HTTP error
	ErrMalformed = "malformed"   // the answer was not the documented protocol
	ErrLoad      = "load_failed" // the model did not load (incl. out of memory)
	ErrExited    = "server_exit" // the server process died
	ErrConnect   = "connect"     // nothing listening / connection reset
	ErrCanceled  = "canceled"    // the user interrupted the run
	ErrShort     = "short"       // the output was shorter than the tokens asked for
	ErrRepeats   = "repeats"     // some repeats of a configuration failed
	ErrOther     = "error"
)

// Sample is one measured attempt. Durations are in nanoseconds in JSON (Go's time.Duration).
type Sample struct {
	// Identity of the attempt.
	Stack        string            `json:"stack"`
	Endpoint     string            `json:"endpoint"`
	Model        string            `json:"model"`     // base model (e.g. an Ollama tag)
	ModelTag     string            `json:"model_tag"` // what was actually requested
	Label        string            `json:"label"`     // base-as-is | optimized | published
	Settings     map[string]string `json:"settings"`  // candidate settings, e.g. num_gpu=28
	PromptTokens int               `json:"prompt_tokens_requested,omitempty"`
	MaxTokens    int               `json:"max_tokens_requested"`

	// What the server reported (its own counters and timers: cross-checks of the client's
	// clock, and the only source of prompt and load times). See ServerCounters.
	ServerPromptTokens   int           `json:"server_prompt_tokens"`
	ServerOutputTokens   int           `json:"server_output_tokens"`
	ServerPromptDuration time.Duration `json:"server_prompt_duration_ns"`
	ServerDecodeDuration time.Duration `json:"server_decode_duration_ns"`
	ServerLoadDuration   time.Duration `json:"server_load_duration_ns"`
	ServerTotalDuration  time.Duration `json:"server_total_duration_ns"`
	StopReason           string        `json:"stop_reason,omitempty"`

	// What the client saw.
	Start      time.Time       `json:"start"`
	FirstByte  time.Duration   `json:"first_byte_ns"`            // since Start
	FirstToken time.Duration   `json:"first_token_ns"`           // since Start
	End        time.Duration   `json:"end_ns"`                   // since Start
	ChunkTimes []time.Duration `json:"chunk_times_ns,omitempty"` // one entry per output token: a chunk carrying k tokens adds k
	// KernelStamped is how many of the stream's chunks are timed at the kernel's receipt of
	// their bytes (SO_TIMESTAMPNS, Linux, TCP); the others at the client's clock when it read
	// them (internal/arrival).
	KernelStamped int `json:"kernel_stamped_chunks,omitempty"`

	// Repeats: decode tokens/sec of every measured request of this configuration when it was
	// measured several times (BENCH_REPEAT); this sample is the median one.
	RepeatTPS []float64 `json:"repeat_tps,omitempty"`
	// RepeatTTFTms and RepeatJPerToken are the same repeats' times to first token (ms) and
	// joules per output token (absent without telemetry): the tuning search's other objectives.
	RepeatTTFTms    []float64 `json:"repeat_ttft_ms,omitempty"`
	RepeatJPerToken []float64 `json:"repeat_joules_per_token,omitempty"`

	// Roofline: decode reads every weight once per token, so a GPU cannot decode faster than
	// its memory bandwidth over the model's weight bytes. Zero when unknown (CPU, GPU not in
	// the bandwidth table, model size unknown).
	ModelBytes    int64   `json:"model_bytes,omitempty"`
	RooflineTPS   float64 `json:"roofline_tps,omitempty"`
	RooflineShare float64 `json:"roofline_share,omitempty"` // decode rate / RooflineTPS

	// Telemetry is what the endpoint's GPU (or CPU) did during this request's window: energy,
	// power, clocks, memory, throttling (nil when no sampler ran).
	Telemetry *Telemetry `json:"telemetry,omitempty"`

	// Outcome.
	Outcome string   `json:"outcome"`
	Error   string   `json:"error,omitempty"`
	Notes   []string `json:"notes,omitempty"` // e.g. output length differs from requested
}

// ServerCounters are what a server reports about one request. The client side of a driver
// returns them; the engine keeps them beside what its own clock saw.
type ServerCounters struct {
	PromptTokens, OutputTokens                                  int
	PromptDuration, DecodeDuration, LoadDuration, TotalDuration time.Duration
	StopReason                                                  string
	// Notes are the driver's remarks on the answer (e.g. a prompt cache reused).
	Notes []string
	// Extra are further values the server reported, kept in the sample's settings (e.g. its
	// own tokens/sec figure as it printed it).
	Extra map[string]string
}

// SetServer records what the server reported on s. A zero load duration keeps the one the
// server side recorded when it loaded the model.
func (s *Sample) SetServer(c ServerCounters) {
	s.ServerPromptTokens, s.ServerOutputTokens = c.PromptTokens, c.OutputTokens
	s.ServerPromptDuration, s.ServerDecodeDuration = c.PromptDuration, c.DecodeDuration
	if c.LoadDuration != 0 {
		s.ServerLoadDuration = c.LoadDuration
	}
	s.ServerTotalDuration, s.StopReason = c.TotalDuration, c.StopReason
}

// Failed reports whether the attempt did not produce a measurement.
func (s *Sample) Failed() bool { return s.Outcome != OK }

// DecodeTokensPerSec is CSV column 12 (Metrics.DecodeTPS).
func (s *Sample) DecodeTokensPerSec() float64 { return Derive(s).DecodeTPS }

// StreamDecodeTokensPerSec is the client-side decode rate (Metrics.StreamDecodeTPS).
func (s *Sample) StreamDecodeTokensPerSec() float64 { return Derive(s).StreamDecodeTPS }

// PrefillTokensPerSec is the server-reported prompt processing rate (Metrics.PrefillTPS).
func (s *Sample) PrefillTokensPerSec() float64 { return Derive(s).PrefillTPS }

// EndToEndTokensPerSec is output tokens over the client-side request time (Metrics.E2ETPS).
func (s *Sample) EndToEndTokensPerSec() float64 { return Derive(s).E2ETPS }

// Spread returns the smallest and largest of the repeats' rates (both the sample's own rate
// when it was measured once).
func (s *Sample) Spread() (lo, hi float64) {
	if len(s.RepeatTPS) == 0 {
		r := s.DecodeTokensPerSec()
		return r, r
	}
	lo, hi = s.RepeatTPS[0], s.RepeatTPS[0]
	for _, r := range s.RepeatTPS[1:] {
		lo, hi = min(lo, r), max(hi, r)
	}
	return lo, hi
}

// Arrived records a stream chunk that arrived since after Start carrying tokens output tokens
// (0 for a chunk without text): the first byte, the first token, and one chunk time per token,
// the same way for every stack.
func (s *Sample) Arrived(since time.Duration, tokens int) {
	if s.FirstByte == 0 {
		s.FirstByte = since
	}
	if tokens <= 0 {
		return
	}
	if s.FirstToken == 0 {
		s.FirstToken = since
	}
	for range tokens {
		s.ChunkTimes = append(s.ChunkTimes, since)
	}
}
