package serving

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// committedLevel is the part of a committed level record these checks read.
type committedLevel struct {
	Type             string  `json:"type"`
	Stack            string  `json:"stack"`
	Parallel         string  `json:"parallel"`
	Concurrency      int     `json:"concurrency"`
	Requests         int     `json:"requests"`
	Sent             int     `json:"sent"`
	Completed        int     `json:"completed"`
	Failed           int     `json:"failed"`
	Canceled         int     `json:"canceled"`
	Interrupted      bool    `json:"interrupted"`
	Error            string  `json:"error"`
	OutputTPS        float64 `json:"output_tps"`
	OutputTokensMean float64 `json:"output_tokens_mean"`
	PhysicsFlag      string  `json:"physics_flag"`
	JoulesPerToken   float64 `json:"joules_per_token"`
	Telemetry        *struct {
		Source         string  `json:"source"`
		EnergyJ        float64 `json:"energy_j"`
		PowerIntegralJ float64 `json:"power_integral_j"`
		MemPeakMiB     float64 `json:"mem_peak_mib"`
	} `json:"telemetry"`
	TTFT struct {
		P50 float64 `json:"p50_ms"`
	} `json:"ttft"`
	E2E struct {
		P50 float64 `json:"p50_ms"`
	} `json:"e2e"`
}

// committedJSONL decodes every line of a committed JSONL file of results/gpu as a T.
func committedJSONL[T any](t *testing.T, name string) []T {
	t.Helper()
	f, err := os.Open(testfixture.Repo(t, "results", "gpu", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func committedLevels(t *testing.T, name string) []committedLevel {
	t.Helper()
	var out []committedLevel
	for _, l := range committedJSONL[committedLevel](t, name) {
		if l.Type == "level" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no level records", name)
	}
	return out
}

// The committed H200 serving runs (docs/gpu-results.md): every request completed, nothing above
// physics, and the server's concurrency setting is what lets throughput scale: with one slot
// eight streams get the single-stream rate (within 15%), with eight slots more than twice it.
func TestCommittedGPUServingResults(t *testing.T) {
	for _, name := range []string{"serving_ollama_llama8b.jsonl", "serving_llamacpp_llama8b.jsonl"} {
		by := map[string]committedLevel{}
		for _, l := range committedLevels(t, name) {
			if l.Failed != 0 || l.Completed == 0 || l.PhysicsFlag != "" {
				t.Errorf("%s parallel %s c=%d: %d completed, %d failed, flag %q", name, l.Parallel, l.Concurrency, l.Completed, l.Failed, l.PhysicsFlag)
			}
			by[l.Parallel+"/"+strconv.Itoa(l.Concurrency)] = l
		}
		one, one8, eight, eight8 := by["1/1"], by["1/8"], by["8/1"], by["8/8"]
		if r := one8.OutputTPS / one.OutputTPS; r < 0.85 || r > 1.15 {
			t.Errorf("%s: one slot, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should be about equal", name, one8.OutputTPS, one.OutputTPS, r)
		}
		if r := eight8.OutputTPS / eight.OutputTPS; r < 2 {
			t.Errorf("%s: eight slots, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should scale", name, eight8.OutputTPS, eight.OutputTPS, r)
		}
	}
}

// The committed energy runs: each level is one NVML energy window, the power samples
// integrated over it agree within 5%, J/token is the window's energy over the completed
// requests' tokens, and eight streams cost less energy per token than one.
func TestCommittedGPUEnergyResults(t *testing.T) {
	for _, name := range []string{"energy-ollama-llama8b.jsonl", "energy-llamacpp-llama8b.jsonl"} {
		var c1, c8 float64
		for _, l := range committedLevels(t, name) {
			tel := l.Telemetry
			if tel == nil || tel.Source != "nvml-energy" || tel.EnergyJ <= 0 {
				t.Fatalf("%s c=%d: telemetry %+v", name, l.Concurrency, tel)
			}
			if d := math.Abs(tel.PowerIntegralJ-tel.EnergyJ) / tel.EnergyJ; d > 0.05 {
				t.Errorf("%s c=%d: power integral %.1f J vs NVML %.1f J (%.1f%%)", name, l.Concurrency, tel.PowerIntegralJ, tel.EnergyJ, 100*d)
			}
			want := tel.EnergyJ / (l.OutputTokensMean * float64(l.Completed))
			if math.Abs(l.JoulesPerToken-want) > 1e-9*want {
				t.Errorf("%s c=%d: %.6f J/token, energy/tokens is %.6f", name, l.Concurrency, l.JoulesPerToken, want)
			}
			switch l.Concurrency {
			case 1:
				c1 = l.JoulesPerToken
			case 8:
				c8 = l.JoulesPerToken
			}
			t.Logf("%s %s c=%d: %.1f tok/s, %.3f J/token, NVML %.1f J, integral %.1f J, mem peak %.0f MiB", name, l.Stack, l.Concurrency, l.OutputTPS, l.JoulesPerToken, tel.EnergyJ, tel.PowerIntegralJ, tel.MemPeakMiB)
		}
		if !(c8 > 0 && c8 < c1) {
			t.Errorf("%s: J/token at 8 streams %.3f, at 1 %.3f", name, c8, c1)
		}
	}
}

// The committed comparison runs (fuze at 8 and 32 streams on eight slots, beside the
// independent client's figures in results/gpu/independent-load-client.txt): 32 requests per
// level, all completed, nothing above physics, and eight slots saturated: 32 streams give no
// more than 1.25 × the throughput of 8.
func TestCommittedGPUServingComparison(t *testing.T) {
	for _, name := range []string{"serving-cmp_ollama_llama8b.jsonl", "serving-cmp_llamacpp_llama8b.jsonl"} {
		by := map[int]committedLevel{}
		for _, l := range committedLevels(t, name) {
			if l.Parallel != "8" || l.Completed != 32 || l.Failed != 0 || l.PhysicsFlag != "" {
				t.Errorf("%s c=%d: parallel %s, %d completed, %d failed, flag %q", name, l.Concurrency, l.Parallel, l.Completed, l.Failed, l.PhysicsFlag)
			}
			by[l.Concurrency] = l
		}
		if len(by) != 2 {
			t.Fatalf("%s: levels %v, want 8 and 32", name, by)
		}
		if r := by[32].OutputTPS / by[8].OutputTPS; r > 1.25 {
			t.Errorf("%s: 32 streams at %.1f tok/s vs 8 at %.1f (ratio %.2f) on eight slots", name, by[32].OutputTPS, by[8].OutputTPS, r)
		}
	}
}

// committedRequest is the part of a committed request record these checks read.
type committedRequest struct {
	Type        string          `json:"type"`
	Concurrency int             `json:"concurrency"`
	Warmup      bool            `json:"warmup"`
	Sample      *measure.Sample `json:"sample"`
}

// committedRequests are a committed serving JSONL's measured requests (warm-ups left out).
func committedRequests(t *testing.T, name string) []committedRequest {
	t.Helper()
	var out []committedRequest
	for _, r := range committedJSONL[committedRequest](t, name) {
		if r.Type == "request" && !r.Warmup {
			if r.Sample == nil {
				t.Fatalf("%s: a request record without its sample", name)
			}
			out = append(out, r)
		}
	}
	return out
}

// checkComplete fails a level that lost a request or flagged a figure, or whose request
// records do not add up to what it says it sent.
func checkComplete(t *testing.T, name string, l committedLevel, reqs []committedRequest) {
	t.Helper()
	n, ok := 0, 0
	for _, r := range reqs {
		if r.Concurrency == l.Concurrency {
			n++
			if !r.Sample.Failed() {
				ok++
			}
		}
	}
	if l.Sent == 0 || l.Completed != l.Sent || l.Failed != 0 || l.Canceled != 0 || l.Interrupted || l.Error != "" || l.PhysicsFlag != "" ||
		n != l.Sent || ok != n {
		t.Errorf("%s parallel %s c=%d: %d sent, %d completed, %d failed, %d canceled, interrupted %v, error %q, flag %q; %d request records, %d ok",
			name, l.Parallel, l.Concurrency, l.Sent, l.Completed, l.Failed, l.Canceled, l.Interrupted, l.Error, l.PhysicsFlag, n, ok)
	}
}

// The committed level runs (serving-levels_<stack>_p<slots>.*, 4 s per level, so each level
// sent as many requests as fit): every request completed, nothing above physics; with eight
// slots throughput scales to eight streams (more than twice one stream's) and more streams
// than slots wait for one (TTFT jumps past 8); with one slot the streams share it: eight get
// the single-stream rate (within 15%) and each added stream waits longer for its first token.
func TestCommittedGPUServingLevels(t *testing.T) {
	for _, tc := range []struct {
		name, parallel string
		levels         []int
	}{
		{"serving-levels_ollama_p8.jsonl", "8", []int{1, 2, 4, 8, 16, 32}},
		{"serving-levels_llamacpp_p8.jsonl", "8", []int{1, 2, 4, 8, 16, 32}},
		{"serving-levels_ollama_p1.jsonl", "1", []int{1, 2, 4, 8, 16}},
		{"serving-levels_llamacpp_p1.jsonl", "1", []int{1, 2, 4, 8, 16}},
	} {
		levels, reqs := committedLevels(t, tc.name), committedRequests(t, tc.name)
		by := map[int]committedLevel{}
		var cs []int
		for _, l := range levels {
			checkComplete(t, tc.name, l, reqs)
			if l.Parallel != tc.parallel || l.Requests != 0 {
				t.Errorf("%s c=%d: parallel %s, %d requests asked; want %s slots and a duration", tc.name, l.Concurrency, l.Parallel, l.Requests, tc.parallel)
			}
			by[l.Concurrency] = l
			cs = append(cs, l.Concurrency)
		}
		if !slices.Equal(cs, tc.levels) {
			t.Fatalf("%s: levels %v, want %v", tc.name, cs, tc.levels)
		}
		r8 := by[8].OutputTPS / by[1].OutputTPS
		switch tc.parallel {
		case "8":
			if r8 < 2 {
				t.Errorf("%s: eight slots, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should scale", tc.name, by[8].OutputTPS, by[1].OutputTPS, r8)
			}
			if by[16].TTFT.P50 < 3*by[8].TTFT.P50 {
				t.Errorf("%s: TTFT p50 %.1f ms at 16 streams, %.1f at 8: with eight slots the other eight should wait", tc.name, by[16].TTFT.P50, by[8].TTFT.P50)
			}
		case "1":
			if r8 < 0.85 || r8 > 1.15 {
				t.Errorf("%s: one slot, 8 streams at %.1f tok/s vs 1 stream at %.1f (ratio %.2f): should be about equal", tc.name, by[8].OutputTPS, by[1].OutputTPS, r8)
			}
			for i := 1; i < len(cs); i++ {
				if a, b := by[cs[i-1]], by[cs[i]]; b.TTFT.P50 <= a.TTFT.P50 {
					t.Errorf("%s: TTFT p50 %.1f ms at %d streams, %.1f at %d: one slot should make each added stream wait longer", tc.name, b.TTFT.P50, b.Concurrency, a.TTFT.P50, a.Concurrency)
				}
			}
		}
	}
}

// ginLine is one request of Ollama's GIN log: when it ended (second resolution, UTC) and how
// long the server took.
type ginLine struct {
	end time.Time
	dur time.Duration
}

// readGIN reads the POST /api/generate lines of a committed GIN log excerpt.
func readGIN(t *testing.T, name string) []ginLine {
	t.Helper()
	b, err := os.ReadFile(testfixture.Repo(t, "results", "gpu", name))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\[GIN\] (\d{4}/\d\d/\d\d - \d\d:\d\d:\d\d) \| (\d{3}) \|\s*(\S+) \|.*\| POST\s+"/api/generate"$`)
	var out []ginLine
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "[GIN] ") {
			continue // the route table's [GIN-debug] line
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: %q is not a POST /api/generate line", name, line)
		}
		end, err1 := time.ParseInLocation("2006/01/02 - 15:04:05", m[1], time.UTC)
		dur, err2 := time.ParseDuration(m[3])
		if err1 != nil || err2 != nil || m[2] != "200" {
			t.Fatalf("%s: %q: status %s, %v %v", name, line, m[2], err1, err2)
		}
		out = append(out, ginLine{end, dur})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no GIN lines", name)
	}
	return out
}

// within1pct says a and b differ by at most 1% of b.
func within1pct(a, b float64) bool { return math.Abs(a-b) <= 0.01*b }

// The committed comparison with the servers' own timing (serving-vs-client/, run 2): fuze's
// serving runs, alternated with an independent client on the same servers, each one level of
// 96 requests at 8 streams on 8 slots, all completed. What fuze's clock says a request took
// agrees with what the server says: per request no client time is shorter than the server's
// total, and the medians agree within 1% — the e2e median with the JSONL's own
// server_total_duration_ns (on llama.cpp its prompt + decode timings), and on Ollama with the
// daemon's GIN log, the lines that ended within the run's requests (the log is independent of
// fuze: the daemon writes it as each request ends).
func TestCommittedServingAgainstServerTimes(t *testing.T) {
	gin := readGIN(t, "serving-vs-client/run2-ollama-daemon-requests.txt")
	for _, name := range []string{
		"serving-vs-client/run2-ollama-fuze-1.jsonl", "serving-vs-client/run2-ollama-fuze-2.jsonl",
		"serving-vs-client/run2-llamacpp-fuze-1.jsonl", "serving-vs-client/run2-llamacpp-fuze-2.jsonl",
	} {
		levels, reqs := committedLevels(t, name), committedRequests(t, name)
		if len(levels) != 1 || levels[0].Concurrency != 8 || levels[0].Sent != 96 {
			t.Fatalf("%s: %d levels, want one of 96 requests at 8 streams", name, len(levels))
		}
		l := levels[0]
		checkComplete(t, name, l, reqs)
		var e2e, server []float64
		var first, last time.Time
		for i, r := range reqs {
			s := r.Sample
			if s.End < s.ServerTotalDuration || s.ServerTotalDuration <= 0 {
				t.Errorf("%s request %d: %v on fuze's clock, %v on the server's", name, i, s.End, s.ServerTotalDuration)
			}
			e2e = append(e2e, float64(s.End))
			server = append(server, float64(s.ServerTotalDuration))
			if end := s.Start.Add(s.End); i == 0 || end.After(last) {
				last = end
			}
			if i == 0 || s.Start.Before(first) {
				first = s.Start
			}
		}
		me := stats.Median(e2e)
		// The level's own e2e p50 is the requests' median (hf7 at 0.5).
		if math.Abs(me/1e6-l.E2E.P50) > 1e-6 {
			t.Errorf("%s: level e2e p50 %.6f ms, the requests' median %.6f", name, l.E2E.P50, me/1e6)
		}
		if ms := stats.Median(server); !within1pct(me, ms) {
			t.Errorf("%s: e2e median %.1f ms vs the server's total %.1f ms", name, me/1e6, ms/1e6)
		}
		if !strings.Contains(name, "ollama") {
			continue
		}
		// GIN stamps a line with the second its request ended: a line of second s ended in
		// [s, s+1), so the run's lines are those with s+1 after the first request's start and s
		// not after the last one's end. The client ran before and after, never alongside: the
		// daemon served exactly fuze's requests then (its warm-ups end before the first start).
		var durs []float64
		for _, g := range gin {
			if g.end.Add(time.Second).After(first) && !g.end.After(last) {
				durs = append(durs, float64(g.dur))
			}
		}
		if len(durs) != len(reqs) {
			t.Errorf("%s: %d GIN lines between %s and %s, %d requests", name, len(durs), first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano), len(reqs))
		}
		if mg := stats.Median(durs); !within1pct(me, mg) {
			t.Errorf("%s: e2e median %.1f ms vs the daemon's %.1f ms", name, me/1e6, mg/1e6)
		}
	}
	// Run 1 (an earlier pass, before the llama.cpp client's keep-alive fix) is kept for the
	// record: its files still parse and each level's requests add up.
	for _, name := range []string{"serving-vs-client/run1-fuze-ollama-c1.jsonl", "serving-vs-client/run1-fuze-ollama-c8-c32.jsonl", "serving-vs-client/run1-fuze-llamacpp-c8-c32.jsonl"} {
		reqs := committedRequests(t, name)
		for _, l := range committedLevels(t, name) {
			n := 0
			for _, r := range reqs {
				if r.Concurrency == l.Concurrency {
					n++
				}
			}
			if l.Sent != l.Completed+l.Failed+l.Canceled || n != l.Sent {
				t.Errorf("%s c=%d: %d sent, %d completed, %d failed, %d canceled, %d request records", name, l.Concurrency, l.Sent, l.Completed, l.Failed, l.Canceled, n)
			}
		}
	}
}

// clientRecord is one request of the independent client's RECORDS.jsonl
// (scripts/crosscheck/serving_client.py).
type clientRecord struct {
	StartUnixS   float64   `json:"start_unix_s"`
	TTFTms       float64   `json:"ttft_ms"`
	ITLms        []float64 `json:"itl_ms"`
	E2Ems        float64   `json:"e2e_ms"`
	OutputTokens int       `json:"output_tokens"`
}

func (c clientRecord) start() time.Time {
	return time.Unix(0, int64(math.Round(c.StartUnixS*1e9))).UTC()
}

func (c clientRecord) end() time.Time {
	return c.start().Add(time.Duration(c.E2Ems * 1e6))
}

// sideFigures are one client's figures over the window both clients were measuring in.
type sideFigures struct {
	requests  int     // started and ended in the window
	sent      int     // started in the window
	tokensPS  float64 // tokens that arrived in the window / its length
	ttft, itl []float64
	// inFlightAtStart: for each of requests, how many requests of both sides were in flight
	// when it started.
	inFlightAtStart []int
}

// fullShare is the share of the requests that started while all of the server's slots were taken.
func (f sideFigures) fullShare(slots int) float64 {
	full := 0
	for _, n := range f.inFlightAtStart {
		if n >= slots {
			full++
		}
	}
	return float64(full) / float64(len(f.inFlightAtStart))
}

// The committed check against an independent client (serving-vs-client/run3-*, run4-*): fuze
// and scripts/crosscheck/serving_client.py (aiohttp, the method of `vllm bench serve`) loading
// one server at the same time, 4 streams each on 8 slots, two rounds per stack (Ollama
// OLLAMA_NUM_PARALLEL=8, llama-server --parallel 8; H200, 8B F16, 128 in / 128 out); run 4 with
// fuze timing chunks at the kernel's receive stamps (every chunk of every request stamped so).
// Both time the same server in the same seconds, so the server's own drift between runs (which
// made the alternating run 2 differ by up to a third) cannot tell them apart. Over the window
// where both were measuring (requests that started and ended inside it), the output throughput
// (tokens that arrived in the window / its length) and the ITL p50, p90 and p99 agree within 5%
// in every round. TTFT is another matter: it depends on how a client's own requests line up
// with the server's steps and with the other client's requests, which differs between the two
// closed loops. In run 3 no round's TTFT distributions differ significantly (Mann–Whitney U,
// p > 0.05) and each stack's pooled TTFT median agrees within 5%; in run 4 two rounds differ
// significantly, in opposite directions (docs/gpu-results.md: the clients' requests started
// alone or together in different shares), so run 4's TTFTs are logged, not held to agree.
// Quantiles are hf7 on both sides (numpy's default, the client's own).
func TestCommittedServingTogetherWithClient(t *testing.T) {
	for _, run := range []string{"run3", "run4"} {
		kernel := run == "run4"
		for _, stack := range []string{"ollama", "llamacpp"} {
			var pooled [2][]float64 // TTFTs of both rounds: fuze's, the client's
			for _, round := range []string{"1", "2"} {
				r := readTogetherRound(t, "serving-vs-client/"+run+"-"+stack+"-"+round, 4, 120, kernel)
				r.log(t)
				r.within5(t, "output tok/s", r.fz.tokensPS, r.cl.tokensPS)
				r.checkITL(t)
				if c := stats.Compare(r.fz.ttft, r.cl.ttft, stats.DefaultAlpha); c.Significant && !kernel {
					t.Errorf("%s: TTFT fuze median %.2f ms, client %.2f: significantly different (p=%.4f)", r.base, c.CandidateMedian, c.IncumbentMedian, c.P)
				}
				pooled = [2][]float64{append(pooled[0], r.fz.ttft...), append(pooled[1], r.cl.ttft...)}
			}
			if a, b := stats.Median(pooled[0]), stats.Median(pooled[1]); !kernel && math.Abs(a-b) > 0.05*b {
				t.Errorf("%s %s: pooled TTFT median fuze %.2f ms, client %.2f: not within 5%%", run, stack, a, b)
			}
		}
	}
}

// The committed open-loop check (serving-vs-client/run5-*): fuze (REQUEST_RATE_SET="1.5",
// SERVING_MAX_CONCURRENCY=8) and the independent client (REQUEST_RATE=1.5, 8 streams) load one
// server with Poisson arrivals at the same time, the server's 8 slots shared, two rounds per
// stack, fuze at the kernel's receive stamps. Random arrivals do not lock into a phase with the
// other client's as two closed loops do, so the two sides meet the server's states in the
// same shares, up to chance. At 3 requests/s in all Ollama's slots were nearly always taken
// (TTFT is then mostly the wait in its queue, seconds) and llama-server's often.
//
// In every round: no TTFT difference is significant (Mann–Whitney U) and ITL p50/p90/p99 agree
// within 5%. Where the two sides had the same load (requests sent in the window within 5% of
// each other, and the shares of requests sent while the server's slots were all taken within 5
// points), the output throughput and TTFT p50/p90/p99 agree within 5% too; at least three of the
// four rounds had it. A round without it is logged: an open loop's throughput is the arrivals
// chance gave it, and a TTFT quantile that falls between the unqueued requests (tens of ms) and
// the queued ones (seconds) moves with the share of each.
func TestCommittedOpenLoopTogetherWithClient(t *testing.T) {
	const slots = 8
	sameLoad := 0
	for _, stack := range []string{"ollama", "llamacpp"} {
		for _, round := range []string{"1", "2"} {
			r := readTogetherRound(t, "serving-vs-client/run5-"+stack+"-"+round, slots, 270, true)
			r.log(t)
			r.checkITL(t)
			if c := stats.Compare(r.fz.ttft, r.cl.ttft, stats.DefaultAlpha); c.Significant {
				t.Errorf("%s: TTFT fuze median %.2f ms, client %.2f: significantly different (p=%.4f)", r.base, c.CandidateMedian, c.IncumbentMedian, c.P)
			}
			fzFull, clFull := r.fz.fullShare(slots), r.cl.fullShare(slots)
			if math.Abs(float64(r.fz.sent-r.cl.sent)) > 0.05*float64(r.cl.sent) || math.Abs(fzFull-clFull) > 0.05 {
				t.Logf("%s: not the same load: %d / %d requests sent in the window, %.3f / %.3f of them into full slots", r.base, r.fz.sent, r.cl.sent, fzFull, clFull)
				continue
			}
			sameLoad++
			r.within5(t, "output tok/s", r.fz.tokensPS, r.cl.tokensPS)
			for _, p := range []float64{0.5, 0.9, 0.99} {
				r.within5(t, "TTFT p"+strconv.Itoa(int(p*100))+" ms", stats.Quantile(r.fz.ttft, p), stats.Quantile(r.cl.ttft, p))
			}
		}
	}
	if sameLoad < 3 {
		t.Errorf("%d of 4 rounds had the same load on both sides: too few to compare TTFT and throughput", sameLoad)
	}
}

// togetherRound is one round of fuze and the independent client loading one server at the same
// time, compared over the window where both were measuring: from the later first start to the
// earlier last end.
type togetherRound struct {
	base   string
	window float64 // seconds
	fz, cl sideFigures
}

// readTogetherRound reads base-fuze.jsonl (one level at concurrency: streams, or the cap of an
// open loop) and base-client.jsonl (clientRequests records), checks that every request
// completed with a chunk a token (kernel: all but one in 10,000 chunks kernel-stamped), and
// computes both sides' figures over the window. A request counts when it started and ended inside the window; the
// throughput is the tokens that arrived in it over its length.
func readTogetherRound(t *testing.T, base string, concurrency, clientRequests int, kernel bool) togetherRound {
	t.Helper()
	levels, reqs := committedLevels(t, base+"-fuze.jsonl"), committedRequests(t, base+"-fuze.jsonl")
	if len(levels) != 1 || levels[0].Concurrency != concurrency {
		t.Fatalf("%s: %d levels, want one at concurrency %d", base, len(levels), concurrency)
	}
	checkComplete(t, base, levels[0], reqs)
	client := committedJSONL[clientRecord](t, base+"-client.jsonl")
	if len(client) != clientRequests {
		t.Fatalf("%s: %d client records, want %d", base, len(client), clientRequests)
	}
	var spans []span // every request of both sides, for the requests in flight at a start
	for _, r := range reqs {
		spans = append(spans, span{r.Sample.Start, r.Sample.Start.Add(r.Sample.End)})
	}
	fuzeSpans := len(spans)
	for _, c := range client {
		spans = append(spans, span{c.start(), c.end()})
	}
	w0, w1 := outer(spans[:fuzeSpans]).intersect(outer(spans[fuzeSpans:]))
	window := w1.Sub(w0).Seconds()
	inside := func(s span) bool { return !s.start.Before(w0) && !s.end.After(w1) }
	arrived := func(at time.Time) bool { return !at.Before(w0) && !at.After(w1) }
	inFlight := func(at time.Time) int {
		n := 0
		for _, s := range spans {
			if s.start.Before(at) && s.end.After(at) {
				n++
			}
		}
		return n
	}
	// count counts a request of f's side and says whether it is measured (inside the window).
	count := func(f *sideFigures, s span) bool {
		if arrived(s.start) {
			f.sent++
		}
		if !inside(s) {
			return false
		}
		f.requests++
		f.inFlightAtStart = append(f.inFlightAtStart, inFlight(s.start))
		return true
	}

	r := togetherRound{base: base, window: window}
	tokens, chunks, stamped := 0, 0, 0
	for _, q := range reqs {
		s := q.Sample
		chunks, stamped = chunks+len(s.ChunkTimes), stamped+s.KernelStamped
		if len(s.ChunkTimes) != s.ServerOutputTokens {
			t.Fatalf("%s: a request of %d chunks for %d tokens: chunks are not tokens here", base, len(s.ChunkTimes), s.ServerOutputTokens)
		}
		for _, c := range s.ChunkTimes {
			if arrived(s.Start.Add(c)) {
				tokens++
			}
		}
		if count(&r.fz, span{s.Start, s.Start.Add(s.End)}) {
			r.fz.ttft = append(r.fz.ttft, float64(s.FirstToken)/1e6)
			r.fz.itl = ITLs(r.fz.itl, s)
		}
	}
	// The engine falls back to its clock for a chunk whose stamp is not between the previous
	// chunk's time and now (a wall clock slewed against the monotonic one): 2 chunks of run 5's
	// 173,000 did.
	if kernel && float64(stamped) < 0.9999*float64(chunks) {
		t.Fatalf("%s: %d of %d chunks kernel-stamped", base, stamped, chunks)
	}
	r.fz.tokensPS = float64(tokens) / window
	tokens = 0
	for _, c := range client {
		if c.OutputTokens != 128 || len(c.ITLms) != 127 {
			t.Fatalf("%s: a client request of %d tokens, %d gaps", base, c.OutputTokens, len(c.ITLms))
		}
		at := c.start().Add(time.Duration(c.TTFTms * 1e6))
		for i := -1; i < len(c.ITLms); i++ {
			if i >= 0 {
				at = at.Add(time.Duration(c.ITLms[i] * 1e6))
			}
			if arrived(at) {
				tokens++
			}
		}
		if count(&r.cl, span{c.start(), c.end()}) {
			r.cl.ttft = append(r.cl.ttft, c.TTFTms)
			r.cl.itl = append(r.cl.itl, c.ITLms...)
		}
	}
	r.cl.tokensPS = float64(tokens) / window
	if window < 50 || r.fz.requests < 100 || r.cl.requests < 100 {
		t.Fatalf("%s: a window of %.1f s with %d fuze and %d client requests: too little overlap to compare", base, window, r.fz.requests, r.cl.requests)
	}
	return r
}

func (r togetherRound) within5(t *testing.T, what string, a, b float64) {
	t.Helper()
	if math.Abs(a-b) > 0.05*b {
		t.Errorf("%s: %s fuze %.2f, client %.2f (%.3f×): not within 5%%", r.base, what, a, b, a/b)
	}
}

// checkITL holds ITL p50, p90 and p99 to within 5% of the client's.
func (r togetherRound) checkITL(t *testing.T) {
	t.Helper()
	for _, p := range []float64{0.5, 0.9, 0.99} {
		r.within5(t, "ITL p"+strconv.Itoa(int(p*100))+" ms", stats.Quantile(r.fz.itl, p), stats.Quantile(r.cl.itl, p))
	}
}

func (r togetherRound) log(t *testing.T) {
	t.Helper()
	q := stats.Quantile
	c := stats.Compare(r.fz.ttft, r.cl.ttft, stats.DefaultAlpha)
	t.Logf("%s: window %.1f s, %d/%d requests; tok/s %.2f/%.2f; TTFT p50 %.2f/%.2f p90 %.2f/%.2f p99 %.2f/%.2f (U test p=%.3f); ITL p50 %.2f/%.2f p90 %.2f/%.2f p99 %.2f/%.2f",
		r.base, r.window, r.fz.requests, r.cl.requests, r.fz.tokensPS, r.cl.tokensPS,
		q(r.fz.ttft, 0.5), q(r.cl.ttft, 0.5), q(r.fz.ttft, 0.9), q(r.cl.ttft, 0.9), q(r.fz.ttft, 0.99), q(r.cl.ttft, 0.99), c.P,
		q(r.fz.itl, 0.5), q(r.cl.itl, 0.5), q(r.fz.itl, 0.9), q(r.cl.itl, 0.9), q(r.fz.itl, 0.99), q(r.cl.itl, 0.99))
}

// span is one request's time on the wire, from its start to its end.
type span struct{ start, end time.Time }

// outer is the span from the earliest start to the latest end.
func outer(spans []span) span {
	o := spans[0]
	for _, s := range spans[1:] {
		o = span{minTime(o.start, s.start), maxTime(o.end, s.end)}
	}
	return o
}

// intersect gives the part of both spans.
func (a span) intersect(b span) (time.Time, time.Time) {
	return maxTime(a.start, b.start), minTime(a.end, b.end)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
