package results

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stats"
)

func five(v float64) []float64 { return []float64{v - 2, v - 1, v, v + 1, v + 2} }

// sampleOf is a working sample whose decode rate is the median of reps, carrying reps.
func sampleOf(reps ...float64) *measure.Sample {
	med := stats.Median(reps)
	s := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 100,
		ServerDecodeDuration: time.Duration(100 / med * float64(time.Second))}
	s.RepeatTPS = reps // the engine records every repeat's rate, one for a single request
	return s
}

type scriptedRow struct {
	ep, model, label, ng string
	sample               *measure.Sample // nil: a failed row without a sample
}

// writeScriptedRun writes a run CSV and its JSONL: every row's tokens_per_sec is its sample's rate.
func writeScriptedRun(t *testing.T, dir string, ts time.Time, rows []scriptedRow) string {
	t.Helper()
	w, err := CreateRun(dir, "ollama", ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		gpu := map[string]string{"A": "nvidia-5090", "B": "nvidia-3090ti"}[r.ep]
		row := Row{TS: ts.Add(time.Duration(i) * time.Second), Endpoint: "127.0.0.1:1143" + r.ep, Suffix: r.ep,
			BaseModel: r.model, VariantLabel: r.label, ModelTag: r.model, NumGPU: r.ng, GPULabel: gpu}
		s := r.sample
		if s == nil {
			s = &measure.Sample{Outcome: measure.ErrHTTP, Error: "HTTP 500"}
		}
		row.TokensPerSec = measure.Derive(s).DecodeTPS
		if err := w.Write(row, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.CSVPath()
}

func TestSampleRepeatsAndMeasurementError(t *testing.T) {
	if got := SampleRepeats(sampleOf(10, 12, 11)); !reflect.DeepEqual(got, []float64{10, 12, 11}) {
		t.Errorf("repeats %v", got)
	}
	// Measured once: its own rate is the one repeat.
	if got := SampleRepeats(sampleOf(25)); len(got) != 1 || got[0] < 24.99 || got[0] > 25.01 {
		t.Errorf("single repeat %v", got)
	}
	// A record from before the engine kept repeats (server timer only, no chunk times): no
	// repeats, so nothing is claimed from it.
	if got := SampleRepeats(&measure.Sample{Outcome: measure.OK, ServerOutputTokens: 10, ServerDecodeDuration: time.Second}); got != nil {
		t.Errorf("old record %v", got)
	}
	if SampleRepeats(nil) != nil || SampleRepeats(&measure.Sample{Outcome: measure.ErrTimeout}) != nil {
		t.Error("a missing or failed sample has no repeats")
	}
	if MeasurementError(nil) || MeasurementError(&measure.Sample{RooflineShare: 1}) || !MeasurementError(&measure.Sample{RooflineShare: 1.01}) {
		t.Error("measurement error is RooflineShare > 1")
	}
}

func TestBeatsAndGainCells(t *testing.T) {
	if !Beats(22, five(22), 12, five(12)) || Beats(13, []float64{11, 12, 13, 14, 15}, 12, []float64{10, 11, 12, 13, 14}) {
		t.Error("5 vs 5: separated beats, overlapping does not")
	}
	if Beats(101, []float64{100, 101, 102}, 10, []float64{9, 10, 11}) {
		t.Error("3 vs 3 is never significant")
	}
	if !Beats(12, nil, 10, []float64{9, 10, 11}) || Beats(10, nil, 10, nil) {
		t.Error("without repeats: a strictly higher rate")
	}
	sig := CompareRepeats(five(22), five(12))
	noise := CompareRepeats([]float64{11, 13, 15, 17, 19}, []float64{10, 12, 14, 16, 18})
	worse := CompareRepeats(five(6), five(12))
	for _, c := range []struct {
		g    *Gain
		want string
	}{
		{NewGain(22.0/12, sig, false), "1.83x (p=0.008)"},
		{NewGain(1, noise, true), "~ (p=0.690)"},
		{NewGain(15.0/14, noise, false), "~ (p=0.690)"},
		{NewGain(1, worse, true), "1.00x (default is best, p=0.008)"},
		{NewGain(0.5, worse, false), "0.50x (p=0.008)"},
		{NewGain(1.024, nil, false), "1.02x (n=1)"},
		{nil, "-"},
	} {
		if got := c.g.String(); got != c.want {
			t.Errorf("got %q want %q", got, c.want)
		}
	}
}

// Each model exercises one rule of SummarizeRun on repeats read from the run's JSONL.
func TestSummarizeRunWithRepeats(t *testing.T) {
	dir := t.TempDir()
	flagged := sampleOf(five(52)...)
	flagged.RooflineShare = 1.2
	p := writeScriptedRun(t, dir, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []scriptedRow{
		// sep: 5 vs 5 clearly separated: the tuned configuration replaces the default.
		{"A", "sep", "base-as-is", "default", sampleOf(five(12)...)},
		{"A", "sep", "optimized", "30", sampleOf(five(22)...)},
		// ovl: overlapping, a higher median: the default stays.
		{"A", "ovl", "base-as-is", "default", sampleOf(10, 12, 14, 16, 18)},
		{"A", "ovl", "optimized", "30", sampleOf(11, 13, 15, 17, 19)},
		// r3: 3 vs 3, ten times faster: never significant, the default stays.
		{"A", "r3", "base-as-is", "default", sampleOf(10, 10.5, 11)},
		{"A", "r3", "optimized", "30", sampleOf(100, 101, 102)},
		// n1: measured once each (no RepeatTPS): 1 vs 1, the default stays.
		{"A", "n1", "base-as-is", "default", sampleOf(10)},
		{"A", "n1", "optimized", "30", sampleOf(12)},
		// me: the fastest row is above the roofline: never best.
		{"A", "me", "base-as-is", "default", sampleOf(five(12)...)},
		{"A", "me", "optimized", "30", flagged},
		{"A", "me", "optimized", "20", sampleOf(five(22)...)},
		// xep: the baseline failed on A and worked on B, the tuned one worked on A only: no
		// gain across GPUs (the original showed 50 over B's 40).
		{"A", "xep", "base-as-is", "default", nil},
		{"A", "xep", "optimized", "30", sampleOf(five(50)...)},
		{"B", "xep", "base-as-is", "default", sampleOf(five(40)...)},
	})
	rows, warns, err := SummarizeRun(p, "h")
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	got := map[string]AggRow{}
	for _, r := range rows {
		got[r.Model] = r
	}
	check := func(model, want string, optimum string) {
		t.Helper()
		r := got[model]
		f := r.Fields()
		if line := strings.Join(f[4:12], ","); line != want {
			t.Errorf("%s:\n got %s\nwant %s", model, line, want)
		}
		if r.Evidence == nil || r.Evidence.Optimum != optimum {
			t.Errorf("%s: evidence %+v, want optimum %s", model, r.Evidence, optimum)
		}
	}
	check("sep", "12.00,sep,22.00,127.0.0.1:1143A,127.0.0.1:1143A,nvidia-5090,,30", OptimumTuned)
	check("ovl", "14.00,ovl,14.00,127.0.0.1:1143A,127.0.0.1:1143A,nvidia-5090,,default", OptimumBaseline)
	check("r3", "10.50,r3,10.50,127.0.0.1:1143A,127.0.0.1:1143A,nvidia-5090,,default", OptimumBaseline)
	check("n1", "10.00,n1,10.00,127.0.0.1:1143A,127.0.0.1:1143A,nvidia-5090,,default", OptimumBaseline)
	check("me", "12.00,me,22.00,127.0.0.1:1143A,127.0.0.1:1143A,nvidia-5090,,20", OptimumTuned)
	check("xep", "0.00,xep,50.00,,127.0.0.1:1143A,nvidia-5090,,30", OptimumTuned)
	if ev := got["r3"].Evidence; !reflect.DeepEqual(ev.BaselineRepeats, []float64{10, 10.5, 11}) || ev.TunedTPS != 101 || ev.TunedNumGPU != "30" {
		t.Errorf("r3 evidence %+v", ev)
	}
	if ev := got["n1"].Evidence; len(ev.BaselineRepeats) != 1 || len(ev.TunedRepeats) != 1 {
		t.Errorf("n1 evidence %+v", ev)
	}
}

// Without samples, the baseline of another GPU is not the gain's denominator either, and the
// rows fall back to their rates.
func TestSummarizeRunNoCrossEndpointGain(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ollama_bench_20260102_030405.csv")
	ts := "2026-01-02T03:04:05+00:00"
	content := strings.Join(Header, ",") + "\n" +
		ts + ",127.0.0.1:11435,,A,m,base-as-is,m,default,,,,0.00,nvidia-5090,,GPU-a,\n" +
		ts + ",127.0.0.1:11435,,A,m,optimized,m,30,,,,50.00,nvidia-5090,,GPU-a,\n" +
		ts + ",127.0.0.1:11436,,B,m,base-as-is,m,default,,,,40.00,nvidia-3090ti,,GPU-b,\n" +
		ts + ",127.0.0.1:11436,,B,m,optimized,m,20,,,,45.00,nvidia-3090ti,,GPU-b,\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, _, err := SummarizeRun(p, "h")
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	// A's optimum (50, no baseline there) beats B's (45 over 40): the row is A's, with no
	// baseline — not 50 over B's 40.
	if got := strings.Join(rows[0].Fields()[4:12], ","); got != "0.00,m,50.00,,127.0.0.1:11435,nvidia-5090,,30" {
		t.Errorf("row %s", got)
	}
	if rows[0].Evidence != nil {
		t.Errorf("no samples, no evidence: %+v", rows[0].Evidence)
	}
}

func TestCollectKeepsTheRepeatsBesideTheAggregate(t *testing.T) {
	logDir := t.TempDir()
	run := writeScriptedRun(t, logDir, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []scriptedRow{
		{"A", "sep", "base-as-is", "default", sampleOf(five(12)...)},
		{"A", "sep", "optimized", "30", sampleOf(five(22)...)},
	})
	old := synthRunCSV(t, logDir, "ollama_bench_20250914_030047.csv") // no JSONL
	agg := filepath.Join(t.TempDir(), "benchmarks.csv")
	if _, _, err := Collect(agg, []string{run, old}, "h"); err != nil {
		t.Fatal(err)
	}
	ev := EvidencePath(agg)
	if ev != strings.TrimSuffix(agg, ".csv")+".repeats.jsonl" {
		t.Fatalf("evidence path %s", ev)
	}
	first, err := os.ReadFile(ev)
	if err != nil || strings.Count(string(first), "\n") != 1 || !strings.Contains(string(first), `"optimum":"tuned"`) {
		t.Fatalf("evidence %s %v", first, err)
	}
	// Collecting again adds nothing to either file.
	if _, _, err := Collect(agg, []string{run, old}, "h"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(ev); string(again) != string(first) {
		t.Errorf("evidence changed:\n%s", again)
	}
	rows, warns, err := ReadAggregate(agg)
	if err != nil || len(warns) != 0 || len(rows) != 5 {
		t.Fatal(len(rows), warns, err)
	}
	if e := rows[0].Evidence; rows[0].Model != "sep" || e == nil || !reflect.DeepEqual(e.OptimalRepeats(), five(22)) {
		t.Errorf("row 0 %+v evidence %+v", rows[0], e)
	}
	for _, r := range rows[1:] {
		if r.Evidence != nil {
			t.Errorf("%s has evidence without samples", r.Model)
		}
	}
	// A broken line is a warning, not an error.
	if err := os.WriteFile(ev, append(first, []byte("{not json\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if rows, warns, err := ReadAggregate(agg); err != nil || len(warns) != 1 || !strings.Contains(warns[0], ev+":2:") || rows[0].Evidence == nil {
		t.Errorf("warnings %q err %v", warns, err)
	}
}

func TestBestByAppliesTheRule(t *testing.T) {
	row := func(ts string, opt float64, reps []float64) AggRow {
		r := AggRow{RunTS: ts, Host: "h", Stack: "ollama", Model: "m", OptimalTPS: opt, CSVFile: "/l/" + ts + ".csv"}
		if reps != nil {
			r.Evidence = &AggEvidence{Optimum: OptimumTuned, TunedRepeats: reps}
		}
		return r
	}
	pick := func(rows ...AggRow) string {
		// Every order of the input gives the same answer.
		a := BestByStackModel(rows, Filters{})
		rev := append([]AggRow(nil), rows...)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		b := BestByStackModel(rev, Filters{})
		if len(a) != 1 || len(b) != 1 || a[0].RunTS != b[0].RunTS {
			t.Fatalf("order matters: %+v %+v", a, b)
		}
		return a[0].RunTS
	}
	older := row("20260101_000000", 12, five(12))
	// Overlapping, higher median: the older row stays.
	if got := pick(older, row("20260102_000000", 13, []float64{11, 12, 13, 14, 15})); got != "20260101_000000" {
		t.Errorf("overlapping: %s", got)
	}
	// Clearly separated: the newer row replaces it.
	if got := pick(older, row("20260102_000000", 22, five(22))); got != "20260102_000000" {
		t.Errorf("separated: %s", got)
	}
	// 3 vs 3: never significant.
	if got := pick(row("20260101_000000", 10, []float64{9, 10, 11}), row("20260102_000000", 100, []float64{99, 100, 101})); got != "20260101_000000" {
		t.Errorf("3 vs 3: %s", got)
	}
	// A row without repeats: the old rule, the highest optimal_tokps.
	if got := pick(older, row("20260102_000000", 12.5, nil)); got != "20260102_000000" {
		t.Errorf("without repeats: %s", got)
	}
}
