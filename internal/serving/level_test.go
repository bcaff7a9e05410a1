package serving

import (
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

const ms1 = time.Millisecond

func sample(start time.Time, chunks []time.Duration, perChunk []int, end time.Duration) *measure.Sample {
	s := &measure.Sample{Outcome: measure.OK, Start: start, End: end}
	for i, at := range chunks {
		s.Arrived(at, perChunk[i])
	}
	return s
}

// A chunk of k tokens at the stream's pace gives each of its tokens 1/k of the gap before it;
// the tokens that came with the first have a gap of 0; n tokens give n−1 values, whose sum is
// the first-to-last span.
func TestITLsShareAGapAmongAChunksTokens(t *testing.T) {
	s := sample(time.Time{}, []time.Duration{100 * ms1, 110 * ms1, 140 * ms1, 150 * ms1}, []int{2, 1, 3, 1}, 150*ms1)
	got := ITLs(nil, s)
	want := []float64{0, 10, 10, 10, 10, 10}
	if !slices.Equal(got, want) {
		t.Fatalf("ITLs = %v, want %v", got, want)
	}
	if tp, ok := TPOT(s); !ok || tp != (150*ms1-100*ms1)/6 {
		t.Errorf("TPOT = %v %v", tp, ok)
	}
}

// Tokens that share an arrival after a gap longer than their count of steps at the stream's
// pace (the median per-token gap): the excess is a stall before the first of them, the others
// came at the pace. A stream whose every event carries k tokens is split evenly.
func TestITLsGiveAStallToTheFirstTokenAfterIt(t *testing.T) {
	// 5 ms a token, then a 15 ms stall: two tokens read together 20 ms after the last.
	s := sample(time.Time{}, []time.Duration{0, 5 * ms1, 10 * ms1, 30 * ms1, 35 * ms1}, []int{1, 1, 1, 2, 1}, 35*ms1)
	if got, want := ITLs(nil, s), []float64{5, 5, 15, 5, 5}; !slices.Equal(got, want) {
		t.Fatalf("ITLs = %v, want %v", got, want)
	}
	// Three tokens an event, 12 ms apart, one gap of 30 ms: the pace is 4 ms a token.
	s = sample(time.Time{}, []time.Duration{0, 12 * ms1, 24 * ms1, 54 * ms1}, []int{3, 3, 3, 3}, 54*ms1)
	if got, want := ITLs(nil, s), []float64{0, 0, 4, 4, 4, 4, 4, 4, 22, 4, 4}; !slices.Equal(got, want) {
		t.Fatalf("ITLs = %v, want %v", got, want)
	}
	// A gap shorter than the pace's k steps is split evenly.
	s = sample(time.Time{}, []time.Duration{0, 10 * ms1, 20 * ms1, 26 * ms1}, []int{1, 1, 1, 2}, 26*ms1)
	if got, want := ITLs(nil, s), []float64{10, 10, 3, 3}; !slices.Equal(got, want) {
		t.Fatalf("ITLs = %v, want %v", got, want)
	}
}

func TestReasonNamesTheHTTPStatus(t *testing.T) {
	for _, c := range []struct {
		outcome, msg, want string
	}{
		{measure.ErrHTTP, "http://x/v1/completions: HTTP 429: rate_limit: slow down", "http_429"},
		{measure.ErrHTTP, "llama-server answered HTTP 503: Loading model (unavailable_error)", "http_503"},
		{measure.ErrHTTP, `ollama: status 500: {"error":"boom"}`, "http_500"},
		{measure.ErrHTTP, "no status here", measure.ErrHTTP},
		{measure.ErrConnect, "HTTP 429 in a connect error", measure.ErrConnect},
	} {
		if got := Reason(&measure.Sample{Outcome: c.outcome, Error: c.msg}); got != c.want {
			t.Errorf("Reason(%s, %q) = %q, want %q", c.outcome, c.msg, got, c.want)
		}
	}
}

// Percentiles are type 7 (numpy.quantile's default): known values.
func TestDistIsType7(t *testing.T) {
	d := NewDist([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	// numpy.quantile(range(1, 11), [0.5, 0.9, 0.99]) = 5.5, 9.1, 9.91
	if math.Abs(d.P50-5.5) > 1e-12 || math.Abs(d.P90-9.1) > 1e-12 || math.Abs(d.P99-9.91) > 1e-12 || d.N != 10 {
		t.Fatalf("%+v", d)
	}
}

func level(c int, ttft99, itl99 float64, met bool) Level {
	return Level{Concurrency: c, TTFT: Dist{P99: ttft99, N: 1}, ITL: Dist{P99: itl99, N: 1}, SLOMet: met}
}

// Goodput is the highest concurrency that met the SLO and is not flagged.
func TestGoodputIsTheHighestLevelMeetingTheSLO(t *testing.T) {
	levels := []Level{level(1, 10, 5, true), level(2, 20, 5, true), level(4, 900, 5, false), level(8, 30, 6, true), level(16, 40, 7, true)}
	levels[4].PhysicsFlag = "measurement error: …"
	if g := Goodput(levels); g == nil || g.Concurrency != 8 {
		t.Fatalf("goodput %+v, want 8", g)
	}
	if g := Goodput([]Level{level(1, 1, 1, false)}); g != nil {
		t.Fatalf("goodput %+v, want none", g)
	}
}

// Summarize judges the SLO on p99 TTFT and p99 ITL, with every request completed.
func TestSummarizeSLOAndFailures(t *testing.T) {
	t0 := time.Unix(0, 0)
	ok := func(i int, ttft time.Duration) *measure.Sample {
		return sample(t0.Add(time.Duration(i)*ms1), []time.Duration{ttft, ttft + 10*ms1, ttft + 20*ms1}, []int{1, 1, 1}, ttft+20*ms1)
	}
	samples := []*measure.Sample{ok(0, 50*ms1), ok(1, 60*ms1), ok(2, 70*ms1)}
	slo := SLO{TTFT: 70 * ms1, ITL: 10 * ms1}
	l := Summarize(Config{}, 3, 3, samples, slo, false)
	if !l.SLOMet || l.Completed != 3 || l.ITL.N != 6 || l.ITL.P99 != 10 || l.Span != 92*ms1 {
		t.Fatalf("%+v", l)
	}
	if l2 := Summarize(Config{}, 3, 3, samples, SLO{TTFT: 69 * ms1, ITL: 10 * ms1}, false); l2.SLOMet {
		t.Errorf("p99 TTFT 69.8 ms met an SLO of 69 ms")
	}
	bad := &measure.Sample{Start: t0, End: 5 * ms1}
	bad.SetFailure(measure.Fail(measure.ErrHTTP, errors.New("HTTP 429: busy")))
	l3 := Summarize(Config{}, 3, 4, append(samples, bad), slo, false)
	if l3.SLOMet || l3.Failed != 1 || l3.FailureSummary() != "http_429=1" || l3.Completed != 3 {
		t.Errorf("%+v", l3)
	}
}

func TestCheckPhysicsFlagsAggregateAboveConcurrencyTimesSingleStream(t *testing.T) {
	l := Level{Concurrency: 4, OutputTPS: 420}
	l.CheckPhysics(100)
	if l.PhysicsLimitTPS != 400 || !strings.Contains(l.PhysicsFlag, "above 4 × the single-stream 100.00") {
		t.Errorf("%+v", l)
	}
	l = Level{Concurrency: 4, OutputTPS: 410} // within 3%
	l.CheckPhysics(100)
	if l.PhysicsFlag != "" {
		t.Errorf("flagged within tolerance: %q", l.PhysicsFlag)
	}
	l = Level{Concurrency: 1, OutputTPS: 50, StreamDecodeTPS: 300, Config: Config{RooflineTPS: 250}}
	l.CheckPhysics(0)
	if !strings.Contains(l.PhysicsFlag, "roofline") {
		t.Errorf("roofline not flagged: %q", l.PhysicsFlag)
	}
}

// The CSV has the schema's columns, in the schema's order, and reads back.
func TestCSVFollowsTheSchema(t *testing.T) {
	if len(Header) != 57 {
		t.Fatalf("%d columns", len(Header))
	}
	// Every column is named in Schema, in order.
	pos := 0
	for _, h := range Header {
		i := strings.Index(Schema[pos:], " "+h)
		if i < 0 {
			t.Fatalf("column %s is not documented in Schema after offset %d", h, pos)
		}
		pos += i + len(h)
	}
	dir := t.TempDir()
	w, err := Create(dir, "llamacpp", time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(w.CSVPath()) != "serving_llamacpp_20250203_040506.csv" || filepath.Base(w.JSONLPath()) != "serving_llamacpp_20250203_040506.jsonl" {
		t.Errorf("paths %s %s", w.CSVPath(), w.JSONLPath())
	}
	l := level(2, 1, 1, true)
	l.Failures = map[string]int{"http_503": 2, "connect": 1}
	if err := w.WriteLevel(&l, nil, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rows, err := ReadCSV(w.CSVPath())
	if err != nil || len(rows) != 1 || rows[0]["failure_reasons"] != "connect=1 http_503=2" || rows[0]["concurrency"] != "2" {
		t.Fatalf("%v %v", rows, err)
	}
	w2, err := Create(dir, "llama.cpp", time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC))
	if err != nil || filepath.Base(w2.CSVPath()) != "serving_llamacpp_20250203_040506_2.csv" {
		t.Fatalf("second run of the same second: %v %v", w2, err)
	}
	w2.Close()
}

// A level's energy per token is its one window's energy over the completed requests' output
// tokens; without telemetry the CSV says n/a, never 0.
func TestLevelJoulesPerToken(t *testing.T) {
	e, p := 880.0, 440.0
	l := Level{Completed: 8, OutputTokensMean: 128}
	l.SetTelemetry(&measure.Telemetry{Source: measure.SourcePowerIntegral, EnergyJ: &e, PowerMeanW: &p})
	if l.JoulesPerToken == nil || *l.JoulesPerToken != 880.0/1024 {
		t.Fatalf("J/token %v", l.JoulesPerToken)
	}
	f := l.Fields(time.Unix(0, 0))
	if got := f[49:52]; got[0] != "0.8594" || got[1] != "power-integral" || got[2] != "440.00" {
		t.Errorf("energy columns %v", got)
	}
	none := Level{Completed: 8, OutputTokensMean: 128}
	none.SetTelemetry(nil)
	f = none.Fields(time.Unix(0, 0))
	if got := f[49:52]; got[0] != "n/a" || got[1] != "n/a" || got[2] != "n/a" {
		t.Errorf("without telemetry %v", got)
	}
}
