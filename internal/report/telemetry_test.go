package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
)

// The summaries show the optimum's J/token from the aggregate's evidence, "n/a" where it was
// not measured (a run without energy, the original's CSVs), never 0; JSON has null.
func TestSummaryJoulesPerToken(t *testing.T) {
	row := func(model string, e *results.AggEvidence) results.AggRow {
		return results.AggRow{RunTS: "20260102_030405", Host: "h", Stack: "ollama", Model: model, BaselineTPS: 10, OptimalTPS: 12,
			OptimalVariant: model, BaselineEndpoint: "e", OptimalEndpoint: "e", CSVFile: "/l/" + model + ".csv", Evidence: e}
	}
	rows := []results.AggRow{
		row("a-energy", &results.AggEvidence{BaselineRepeats: five(10), TunedRepeats: five(12), Optimum: results.OptimumTuned,
			OptimalJoulesPerToken: measure.F(0.0964), OptimalJoulesPerTokenAboveIdle: measure.F(0.051), OptimalEnergySource: measure.SourceNVMLEnergy}),
		row("b-no-energy", &results.AggEvidence{BaselineRepeats: five(10), TunedRepeats: five(12), Optimum: results.OptimumTuned}),
		row("c-old", nil),
	}
	rep := Summary(rows, SummaryOptions{OnlyGlobal: true})
	tb := rep.Sections[0].table()
	checkAligned(t, tb)
	want := map[string]string{"a-energy": "0.0964", "b-no-energy": "n/a", "c-old": "n/a"}
	for _, cells := range tb.rows {
		if got := cells[10]; got != want[cells[1]] {
			t.Errorf("%s: J/tok %q, want %q", cells[1], got, want[cells[1]])
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"joules_per_token": 0.0964,`, `"joules_per_token_above_idle": 0.051,`, `"energy_source": "nvml-energy"`, `"joules_per_token": null,`} {
		if !strings.Contains(js.String(), w) {
			t.Errorf("JSON lacks %s:\n%s", w, js.String())
		}
	}
	if strings.Contains(js.String(), `"joules_per_token": 0,`) {
		t.Error("an unmeasured J/token written as 0")
	}
}
