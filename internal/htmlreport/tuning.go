package htmlreport

import (
	"fmt"
	"strings"

	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/tune"
)

// Tuning is one tuning search (a <run>.tuning.json beside a run CSV) for one stack, model and
// GPU: what it cost, the best configuration per objective against the server's default, and
// each knob's effect with its bootstrap confidence interval — what the console, <run>.tuning.md
// and `fuze analyze` show, so that the report does not claim less or more than they do.
type Tuning struct {
	Stack    string `json:"stack"`
	Model    string `json:"model"`
	GPU      string `json:"gpu"` // the GPU label the search ran on; "CPU / unknown GPU" when none
	Endpoint string `json:"endpoint"`
	Source   string `json:"source"` // base name of the report file
	// Search is the one-line account of the search's cost against the full grid.
	Search      string         `json:"search"`
	Knobs       []string       `json:"knobs"`
	Best        []TuningBest   `json:"best"`
	Effects     []TuningEffect `json:"effects"`
	Limitations []string       `json:"limitations,omitempty"`
}

// TuningBest is the best configuration for one objective against the default's repeats.
// HasDefault is false when the default was not measured (no median, ratio or p then).
type TuningBest struct {
	Objective   string  `json:"objective"`
	Settings    string  `json:"settings"`
	Median      float64 `json:"median"`
	Default     float64 `json:"default_median"`
	Ratio       float64 `json:"ratio"`
	P           float64 `json:"p"`
	HasDefault  bool    `json:"has_default"`
	Significant bool    `json:"significant"`
	Note        string  `json:"note,omitempty"`
}

// TuningEffect is one knob's effect on one objective: the median ratio (to ÷ from) over the
// pairs of configurations differing in that knob only, with its 95% interval. Better: the
// interval excludes 1 on the objective's good side.
type TuningEffect struct {
	Objective   string  `json:"objective"`
	Knob        string  `json:"knob"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	Ratio       float64 `json:"ratio"`
	Low         float64 `json:"ci_low"`
	High        float64 `json:"ci_high"`
	Pairs       int     `json:"pairs"`
	Significant bool    `json:"significant"`
	Better      bool    `json:"better,omitempty"`
}

// newTuning is the page's view of one tuning report. Figures are rounded as the page shows
// them, so that the embedded data reads like the tables.
func newTuning(t runset.Tuning) Tuning {
	r := t.Report
	gpu := r.GPULabel
	if gpu == "" {
		gpu = "CPU / unknown GPU"
	}
	out := Tuning{
		Stack: r.Stack, Model: r.Model, GPU: gpu, Endpoint: r.Endpoint, Source: baseName(t.Source),
		Search: searchLine(r), Knobs: r.Knobs, Limitations: r.Limitations,
	}
	for _, b := range r.Best {
		out.Best = append(out.Best, TuningBest{
			Objective: b.Objective, Settings: tune.SettingsText(b.Settings), Median: round(b.Median, 4),
			Default: round(b.BaselineMedian, 4), Ratio: round(b.Ratio, 4), P: round(b.P, 4),
			HasDefault: b.BaselineMedian > 0, Significant: b.Significant, Note: b.Note,
		})
	}
	for _, e := range r.Effects {
		out.Effects = append(out.Effects, TuningEffect{
			Objective: e.Objective, Knob: e.Knob, From: e.Reference, To: e.Value, Ratio: round(e.Ratio, 4),
			Low: round(e.Low, 4), High: round(e.High, 4), Pairs: e.Pairs, Significant: e.Significant, Better: e.Better,
		})
	}
	return out
}

// searchLine says what the search measured against what the full grid would have: rounds,
// repeats, measurements and server starts. The full grid's cost is left out when the report
// does not record it (0), rather than shown as a grid of nothing.
func searchLine(r tune.Report) string {
	search := r.Search
	if search == "" {
		search = "tuning"
	}
	s := fmt.Sprintf("%s search over %s: %d rounds", search, strings.Join(r.Knobs, ", "), r.Rounds)
	if r.Repeat > 0 {
		s += fmt.Sprintf(" of %d repeats", r.Repeat)
	}
	s += fmt.Sprintf(", %d measurements, %d server starts", r.Measured, r.Starts)
	if r.GridMeas > 0 {
		s += fmt.Sprintf("; the full grid: %d measurements, %d server starts in the planner's order (%d grouped)",
			r.GridMeas, r.GridStart, r.GroupedGS)
	} else {
		s += "; the full grid's cost is not in the report"
	}
	return s
}

// objDigits is how many decimals an objective's values are shown with: J/token is a few
// joules, rates and milliseconds are tens to hundreds.
func objDigits(objective string) int {
	if objective == "joules_per_token" {
		return 3
	}
	return 2
}

// objectiveColors color a tuning chart's effects by objective.
var objectiveColors = map[string]string{"decode_tps": "#1f77b4", "ttft_ms": "#ff7f0e", "joules_per_token": "#2ca02c"}

// tuningCharts are, per objective with effects, each knob change's ratio with its 95% interval
// as whiskers and a dashed line at 1 (no effect): the effects table drawn, so that an interval
// that covers 1 is seen at a glance.
func tuningCharts(t Tuning) []Chart {
	var out []Chart
	for i, obj := range tune.Objectives {
		var effects []TuningEffect
		for _, e := range t.Effects {
			if e.Objective == obj.Name {
				effects = append(effects, e)
			}
		}
		if len(effects) == 0 {
			continue
		}
		better := "lower is better"
		if obj.HigherBetter {
			better = "higher is better"
		}
		color, ok := objectiveColors[obj.Name]
		if !ok {
			color = palette[(i+4)%len(palette)]
		}
		c := Chart{
			Kind:  "tuning",
			Title: fmt.Sprintf("Knob effects on %s — %s on %s", obj.Name, t.Stack, t.GPU),
			Note: fmt.Sprintf("Points: the median ratio (to ÷ from) over the pairs differing in that knob only; "+
				"whiskers: the 95%% bootstrap interval; dashed: no effect (1). For %s %s.", obj.Name, better),
			XLabel: "knob change", YLabel: "ratio (to ÷ from)", Horizontal: true, YRef: ptr(1),
		}
		effect := Series{Label: obj.Name + " effect (95% CI)", Color: color, Points: true}
		none := Series{Label: "no effect (1)", Color: "#7f7f7f", Dash: true, Ref: ptr(1)}
		for k, e := range effects {
			c.X = append(c.X, float64(k))
			c.XTicks = append(c.XTicks, e.Knob+" "+e.From+" → "+e.To)
			effect.Y = append(effect.Y, ptr(e.Ratio))
			effect.Low = append(effect.Low, ptr(e.Low))
			effect.High = append(effect.High, ptr(e.High))
			none.Y = append(none.Y, ptr(1))
		}
		c.Series = []Series{effect, none}
		out = append(out, c)
	}
	return out
}
