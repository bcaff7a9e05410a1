package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stats"
)

func five(v float64) []float64 { return []float64{v - 2, v - 1, v, v + 1, v + 2} }

func TestSummaryGainFollowsTheRule(t *testing.T) {
	ev := func(base, tuned []float64, optimum string) *results.AggEvidence {
		return &results.AggEvidence{BaselineRepeats: base, TunedRepeats: tuned, TunedTPS: stats.Median(tuned), Optimum: optimum}
	}
	row := func(model string, base, opt float64, e *results.AggEvidence) results.AggRow {
		return results.AggRow{RunTS: "20260102_030405", Host: "h", Stack: "ollama", Model: model, BaselineTPS: base, OptimalTPS: opt,
			OptimalVariant: model, BaselineEndpoint: "e", OptimalEndpoint: "e", CSVFile: "/l/" + model + ".csv", Evidence: e}
	}
	rows := []results.AggRow{
		row("a-sig", 12, 22, ev(five(12), five(22), results.OptimumTuned)),
		row("b-noise", 14, 14, ev([]float64{10, 12, 14, 16, 18}, []float64{11, 13, 15, 17, 19}, results.OptimumBaseline)),
		row("c-worse", 12, 12, ev(five(12), five(6), results.OptimumBaseline)),
		row("d-three", 10, 10, ev([]float64{9, 10, 11}, []float64{99, 100, 101}, results.OptimumBaseline)),
		row("e-alone", 12, 12, &results.AggEvidence{BaselineRepeats: five(12), Optimum: results.OptimumBaseline}),
		row("f-old", 10, 12, nil),
		row("g-nobase", 0, 12, ev(nil, five(12), results.OptimumTuned)),
	}
	rep := Summary(rows, SummaryOptions{OnlyGlobal: true})
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a-sig": "1.83x (p=0.008)", "b-noise": "~ (p=0.690)", "c-worse": "1.00x (default is best, p=0.008)",
		"d-three": "~ (p=0.100)", "e-alone": "1.00x", "f-old": "1.20x (n=1)", "g-nobase": "-",
	}
	tb := rep.Sections[0].table()
	checkAligned(t, tb)
	for _, cells := range tb.rows {
		if got := cells[9]; got != want[cells[1]] {
			t.Errorf("%s: x %q, want %q\n%s", cells[1], got, want[cells[1]], buf.String())
		}
	}
}

// Rows of two runs of the same (stack, model): the older stays best unless the newer one's
// repeats are significantly faster.
func TestSummaryBestAcrossRunsFollowsTheRule(t *testing.T) {
	row := func(ts string, opt float64, reps []float64) results.AggRow {
		return results.AggRow{RunTS: ts, Host: "h", Stack: "ollama", Model: "m", BaselineTPS: 10, OptimalTPS: opt, CSVFile: "/l/" + ts + ".csv",
			Evidence: &results.AggEvidence{BaselineRepeats: five(10), TunedRepeats: reps, TunedTPS: opt, Optimum: results.OptimumTuned}}
	}
	old := row("20260101_000000", 20, five(20))
	for _, c := range []struct {
		newer results.AggRow
		want  string
	}{
		{row("20260102_000000", 21, []float64{18, 20, 21, 22, 23}), "20260101_000000"},
		{row("20260102_000000", 30, five(30)), "20260102_000000"},
	} {
		for _, s := range Summary([]results.AggRow{c.newer, old}, SummaryOptions{}).Sections {
			if len(s.Rows) != 1 || s.Rows[0].RunTS != c.want {
				t.Errorf("%s: %+v, want the row of %s", s.ID, s.Rows, c.want)
			}
		}
	}
}

// analyzeRun writes one run with its JSONL and analyses it.
func analyzeRun(t *testing.T, rows []struct {
	ep, label, ng string
	reps          []float64
	share         float64
}) Analysis {
	t.Helper()
	dir := t.TempDir()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := results.CreateRun(dir, "ollama", ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		s := &measure.Sample{Outcome: measure.OK, ServerOutputTokens: 100,
			ServerDecodeDuration: time.Duration(100 / stats.Median(r.reps) * float64(time.Second)), RepeatTPS: r.reps, RooflineShare: r.share}
		row := results.Row{TS: ts.Add(time.Duration(i) * time.Second), Endpoint: r.ep, BaseModel: "m", VariantLabel: r.label,
			ModelTag: "m", NumGPU: r.ng, TokensPerSec: measure.Derive(s).DecodeTPS, GPULabel: "gpu-" + r.ep}
		if err := w.Write(row, s); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	run, warns, err := LoadRun(w.CSVPath(), "")
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	a := Analyze([]Run{run}, AnalyzeOptions{Top: 10})
	for _, tb := range a.tables() {
		checkAligned(t, tb)
	}
	return a
}

func TestAnalyzeGainFollowsTheRule(t *testing.T) {
	a := analyzeRun(t, []struct {
		ep, label, ng string
		reps          []float64
		share         float64
	}{
		// A: 5 vs 5 separated, and a faster row above the roofline that is never best.
		{"A", "base-as-is", "default", five(12), 0.1},
		{"A", "optimized", "30", five(22), 0.2},
		{"A", "optimized", "20", five(40), 1.3},
		// B: a faster baseline; the tuned row overlaps it (higher median, not significant).
		{"B", "base-as-is", "default", []float64{26, 28, 30, 32, 34}, 0.3},
		{"B", "optimized", "30", []float64{27, 29, 31, 33, 35}, 0.3},
	})
	if len(a.PerEndpoint) != 2 || len(a.PerModel) != 1 {
		t.Fatalf("%+v", a)
	}
	ea, eb := a.PerEndpoint[0], a.PerEndpoint[1]
	if ea.Best.NumGPU != "30" || ea.Gain.String() != "1.83x (p=0.008)" {
		t.Errorf("A: best %+v gain %s", ea.Best, ea.Gain)
	}
	if eb.Gain.String() != "~ (p=0.690)" {
		t.Errorf("B: gain %s", eb.Gain)
	}
	// Per model: B's optimum is its default (30), significantly faster than A's 22: B is
	// chosen, with B's own baseline, and its gain stays "~".
	m := a.PerModel[0]
	if m.Endpoint != "B" || m.Baseline.TPS != 30 || m.Gain.String() != "~ (p=0.690)" {
		t.Errorf("per model %+v", m)
	}
	var buf bytes.Buffer
	if err := a.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1.83x (p=0.008)", "~ (p=0.690)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	// The flagged row is ranked in Top N (it was measured) but flagged.
	if top := a.Top[0]; top.NumGPU != "20" || !top.MeasurementError {
		t.Errorf("top %+v", top)
	}
}

func TestAnalyzeThreeRepeatsNeverClaimAGain(t *testing.T) {
	a := analyzeRun(t, []struct {
		ep, label, ng string
		reps          []float64
		share         float64
	}{
		{"A", "base-as-is", "default", []float64{9, 10, 11}, 0},
		{"A", "optimized", "30", []float64{99, 100, 101}, 0},
	})
	if g := a.PerEndpoint[0].Gain; g.String() != "~ (p=0.100)" || !strings.Contains(g.Note, "not enough repeats") {
		t.Errorf("gain %+v", g)
	}
}
