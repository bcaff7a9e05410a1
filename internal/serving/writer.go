package serving

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
)

// Schema documents serving_<stack>_<TS>.csv: one row per (configuration, concurrency level),
// written and flushed as each level ends. Times are milliseconds on the engine's clock; every
// percentile is QuantileDefinition over the n in its *_n column. Header lists the columns.
const Schema = `serving_<stack>_<TS>.csv — one row per configuration and concurrency level
 1 ts                     when the level ended (RFC 3339)
 2 stack                  canonical stack name
 3 endpoint               host:port of the server
 4 gpu_label              normalised GPU label, or cpu
 5 model                  base model
 6 model_tag              what was requested
 7 label                  configuration label (base-as-is: the server's defaults besides parallel)
 8 parallel               the server's concurrency setting (OLLAMA_NUM_PARALLEL, llama-server --parallel, vLLM --max-num-seqs); default: the server's own
 9 server_settings        every server-level setting, name=value, space-separated, sorted
10 concurrency            requests in flight (closed loop: each finished request is replaced at once); open loop (offered_rate set): the cap on them, SERVING_MAX_CONCURRENCY (0: none)
11 requests               requests the level was asked for (0: as many as SERVING_DURATION_SECS allowed)
12 sent                   measured requests sent (warm-ups not counted) = completed + failed + canceled
13 completed              requests that returned every output token asked for
14 failed                 requests that did not (see failure_reasons)
15 canceled               requests cut by Ctrl-C
16 failure_reasons        failed requests by reason: outcome, or http_<status>, e.g. "http_429=3 timeout=1"
17 span_s                 first measured request's start to the last one's end, seconds
18 request_rate           completed requests per second of span
19 output_tps             aggregate output tokens per second of span (completed requests)
20 stream_decode_tps_p50  median of the completed requests' client-side decode rates (tokens after the first chunk / first-to-last chunk time)
21 input_tokens_target    prompt tokens asked for (0: the stack's prompt as it is)
22 input_tokens_mean      prompt tokens the server reported, mean over completed requests (0: not reported)
23 input_tokens_min       … smallest
24 input_tokens_max       … largest
25 output_tokens_mean     output tokens per completed request
26-29 ttft_ms_p50 ttft_ms_p90 ttft_ms_p99 ttft_n    time to first token, per completed request
30-33 itl_ms_p50 itl_ms_p90 itl_ms_p99 itl_n        inter-token latency: gaps between consecutive token arrivals pooled over completed requests (k tokens that arrived together: k values summing to the gap before them, even up to k steps at the stream's median pace, a longer gap's excess to the first as a stall)
34-37 tpot_ms_p50 tpot_ms_p90 tpot_ms_p99 tpot_n    (e2e − ttft) / (output tokens − 1), per completed request of ≥ 2 tokens
38-41 e2e_ms_p50 e2e_ms_p90 e2e_ms_p99 e2e_n        whole request, per completed request
42 quantile               percentile definition: hf7 = Hyndman & Fan type 7 (numpy/R default)
43 slo_ttft_ms            SLO_TTFT_MS
44 slo_itl_ms             SLO_ITL_MS
45 slo_met                1: every request completed and p99 TTFT ≤ slo_ttft_ms and p99 ITL ≤ slo_itl_ms; goodput is the highest concurrency of a configuration with 1 here
46 physics_limit_tps      concurrency × the configuration's concurrency-1 stream_decode_tps_p50, when that level was measured before this one (0: none; CONCURRENCY_SET starts with 1 by default)
47 physics_flag           non-empty: a figure above what physics allows (aggregate above physics_limit_tps by more than 3%, a stream above the memory-bandwidth roofline): a measurement error, never a result
48 interrupted            1: Ctrl-C cut the level; its figures are what completed
49 error                  non-empty: the configuration could not be served (server start, load or warm-up failed; outcome: message); nothing was sent
50 joules_per_token       the level's energy (one telemetry window over its measured requests) ÷ the completed requests' output tokens; n/a when not measured (no NVIDIA GPU, no RAPL, TELEMETRY=0)
51 energy_source          where the energy comes from: power-integral (nvidia-smi power samples), nvml-energy (NVML's counter), rapl; n/a
52 power_mean_w           mean power over the level's window; n/a
53 offered_rate           open loop (REQUEST_RATE_SET): requests offered per second, inf = every request at once; empty: closed loop
54 burstiness             open loop: gamma shape of the gaps between arrivals (SERVING_BURSTINESS; 1 = Poisson); empty: closed loop
55 seed                   open loop: the seed the gaps were drawn from (SERVING_SEED); empty: closed loop
56 capped                 open loop: requests that arrived with the cap in flight and waited for a request to end before they were sent (their clock starts when sent); empty: closed loop
57 max_in_flight          open loop: the most measured requests in flight at once; empty: closed loop
Files written before columns 53-57 existed have 52 columns; ReadCSV reads them with those empty.
`

// Header is the CSV header (Schema's column names, in order).
var Header = []string{
	"ts", "stack", "endpoint", "gpu_label", "model", "model_tag", "label", "parallel", "server_settings",
	"concurrency", "requests", "sent", "completed", "failed", "canceled", "failure_reasons",
	"span_s", "request_rate", "output_tps", "stream_decode_tps_p50",
	"input_tokens_target", "input_tokens_mean", "input_tokens_min", "input_tokens_max", "output_tokens_mean",
	"ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "ttft_n",
	"itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "itl_n",
	"tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99", "tpot_n",
	"e2e_ms_p50", "e2e_ms_p90", "e2e_ms_p99", "e2e_n",
	"quantile", "slo_ttft_ms", "slo_itl_ms", "slo_met", "physics_limit_tps", "physics_flag", "interrupted", "error",
	"joules_per_token", "energy_source", "power_mean_w",
	"offered_rate", "burstiness", "seed", "capped", "max_in_flight",
}

// headerV1 is how many columns serving CSVs had before the open-loop columns: ReadCSV still
// reads those files.
const headerV1 = 52

func f2(v float64) string { return strconv.FormatFloat(finite(v), 'f', 2, 64) }
func f3(v float64) string { return strconv.FormatFloat(finite(v), 'f', 3, 64) }
func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (d Dist) fields() []string { return []string{f3(d.P50), f3(d.P90), f3(d.P99), strconv.Itoa(d.N)} }

// Fields is the level's CSV row; ended is the ts column.
func (l *Level) Fields(ended time.Time) []string {
	row := []string{
		ended.Format(time.RFC3339), l.Stack, l.Endpoint, l.GPULabel, l.Model, l.ModelTag, l.Label, l.Parallel, l.ServerSettings,
		strconv.Itoa(l.Concurrency), strconv.Itoa(l.Requests), strconv.Itoa(l.Sent), strconv.Itoa(l.Completed),
		strconv.Itoa(l.Failed), strconv.Itoa(l.Canceled), l.FailureSummary(),
		f3(l.Span.Seconds()), f3(l.RequestRate), f2(l.OutputTPS), f2(l.StreamDecodeTPS),
		strconv.Itoa(l.InputTokens), f2(l.InputTokensMean), strconv.Itoa(l.InputTokensMin), strconv.Itoa(l.InputTokensMax), f2(l.OutputTokensMean),
	}
	for _, d := range []Dist{l.TTFT, l.ITL, l.TPOT, l.E2E} {
		row = append(row, d.fields()...)
	}
	jt, src, pw := "n/a", "n/a", "n/a"
	if l.JoulesPerToken != nil {
		jt = strconv.FormatFloat(*l.JoulesPerToken, 'f', 4, 64)
	}
	if t := l.Telemetry; t != nil {
		if t.Source != "" {
			src = t.Source
		}
		if t.PowerMeanW != nil {
			pw = f2(*t.PowerMeanW)
		}
	}
	row = append(row, QuantileDefinition, f3(ms(l.SLO.TTFT)), f3(ms(l.SLO.ITL)), b01(l.SLOMet),
		f2(l.PhysicsLimitTPS), l.PhysicsFlag, b01(l.Interrupted), l.Error, jt, src, pw)
	if o := l.Open; o != nil {
		return append(row, FormatRate(float64(o.Rate)), strconv.FormatFloat(o.Burstiness, 'f', -1, 64),
			strconv.FormatUint(o.Seed, 10), strconv.Itoa(o.Capped), strconv.Itoa(o.MaxInFlight))
	}
	return append(row, "", "", "", "", "")
}

// RequestRecord is one JSONL line per request, warm-ups included ("type": "request").
type RequestRecord struct {
	Type        string          `json:"type"`
	Config      string          `json:"config"` // Config.Key of its configuration
	Concurrency int             `json:"concurrency"`
	Warmup      bool            `json:"warmup"`
	Index       int             `json:"index"` // order of issue in its level's phase, from 0
	Sample      *measure.Sample `json:"sample"`
	measure.Metrics
	TPOT   time.Duration `json:"tpot_ns,omitempty"`
	Reason string        `json:"reason,omitempty"` // failure reason (Reason), for failed requests
}

// LevelRecord is the JSONL line of a level ("type": "level"), after its requests.
type LevelRecord struct {
	Type   string `json:"type"`
	Config string `json:"config"`
	Level
	SLOTTFTms float64 `json:"slo_ttft_ms"`
	SLOITLms  float64 `json:"slo_itl_ms"`
	Quantile  string  `json:"quantile"`
}

// GoodputRecord is the JSONL line closing a configuration ("type": "goodput"): the highest
// concurrency that met the SLO (0: none did).
type GoodputRecord struct {
	Type        string `json:"type"`
	Config      string `json:"config"`
	Concurrency int    `json:"goodput_concurrency"`
	// OfferedRate is the goodput of an open loop: the highest offered rate that met the SLO.
	OfferedRate Rate    `json:"goodput_offered_rate,omitempty"`
	RequestRate float64 `json:"goodput_request_rate,omitempty"`
	OutputTPS   float64 `json:"goodput_output_tps,omitempty"`
	SLOTTFTms   float64 `json:"slo_ttft_ms"`
	SLOITLms    float64 `json:"slo_itl_ms"`
	Levels      []int   `json:"levels"` // the concurrencies measured
}

// Writer writes one serving run: serving_<prefix>_<TS>.csv and .jsonl beside it. It is safe
// for concurrent use; every write reaches the operating system before it returns.
type Writer struct {
	*results.Pair
}

// Create creates <logDir>/serving_<prefix>_<TS>.csv (header written) and .jsonl; a run of the
// same second gets _2, _3… as run CSVs do. stack is any spelling results.FilePrefix accepts.
func Create(logDir, stack string, ts time.Time) (*Writer, error) {
	prefix, ok := results.FilePrefix(stack)
	if !ok {
		return nil, fmt.Errorf("serving: unknown stack %q", stack)
	}
	p, err := results.CreatePair(logDir, "serving_"+prefix+"_"+ts.Format(results.RunTSLayout), Header)
	if err != nil {
		return nil, err
	}
	return &Writer{p}, nil
}

// Request is one request's record for WriteLevel.
type Request struct {
	Sample *measure.Sample
	Warmup bool
	Index  int
}

// WriteLevel appends the level's requests and its level record to the JSONL, then its row to
// the CSV.
func (w *Writer) WriteLevel(l *Level, reqs []Request, ended time.Time) error {
	key := l.Key()
	var buf []byte
	for _, r := range reqs {
		rec := RequestRecord{Type: "request", Config: key, Concurrency: l.Concurrency, Warmup: r.Warmup, Index: r.Index,
			Sample: r.Sample, Metrics: measure.Derive(r.Sample)}
		if t, ok := TPOT(r.Sample); ok && !r.Sample.Failed() {
			rec.TPOT = t
		}
		if r.Sample.Failed() {
			rec.Reason = Reason(r.Sample)
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("serving: encode request record: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	b, err := json.Marshal(LevelRecord{Type: "level", Config: key, Level: *l, SLOTTFTms: ms(l.SLO.TTFT), SLOITLms: ms(l.SLO.ITL), Quantile: QuantileDefinition})
	if err != nil {
		return fmt.Errorf("serving: encode level record: %w", err)
	}
	buf = append(append(buf, b...), '\n')
	return w.Append(l.Fields(ended), buf)
}

// WriteGoodput appends a configuration's goodput record to the JSONL.
func (w *Writer) WriteGoodput(levels []Level) error {
	if len(levels) == 0 {
		return nil
	}
	rec := GoodputRecord{Type: "goodput", Config: levels[0].Key(), SLOTTFTms: ms(levels[0].SLO.TTFT), SLOITLms: ms(levels[0].SLO.ITL)}
	for _, l := range levels {
		rec.Levels = append(rec.Levels, l.Concurrency)
	}
	if g := Goodput(levels); g != nil {
		rec.Concurrency, rec.RequestRate, rec.OutputTPS = g.Concurrency, g.RequestRate, g.OutputTPS
		if g.Open != nil {
			rec.OfferedRate = g.Open.Rate
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return w.Append(nil, append(b, '\n'))
}

// IsHeader reports whether h is a serving CSV's header: this schema's or the earlier one's (the
// first 52 columns), whatever the file is called.
func IsHeader(h []string) bool {
	n := len(h)
	return (n == len(Header) || n == headerV1) && slices.Equal(h, Header[:n])
}

// ReadCSV reads a serving CSV's rows by column name (for tests and reports): every column of
// Header is a key; those a file of an earlier schema lacks (52 columns) are "".
func ReadCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || !IsHeader(recs[0]) {
		return nil, fmt.Errorf("serving: %s: not a serving CSV", path)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := make(map[string]string, len(Header))
		for i, h := range Header {
			if i < len(r) {
				m[h] = r[i]
			} else {
				m[h] = ""
			}
		}
		out = append(out, m)
	}
	return out, nil
}
