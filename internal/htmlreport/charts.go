package htmlreport

import (
	"fmt"
	"math"
	"sort"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/stats"
)

// Chart is one chart: uPlot's aligned data (one X array, one Y array per series, null where
// a series has no point) and how to draw it. The page draws every chart of Data from this
// alone; the browser test checks that each one drew len(Series) series.
type Chart struct {
	ID     string    `json:"id"`
	Kind   string    `json:"kind"` // offload, itl, energy, serving, serving-ttft, serving-itl, tuning
	Title  string    `json:"title"`
	Note   string    `json:"note,omitempty"`
	XLabel string    `json:"x_label"`
	YLabel string    `json:"y_label"`
	XLog   bool      `json:"x_log,omitempty"` // logarithmic x (concurrency 1, 2, 4 … 32)
	YLog   bool      `json:"y_log,omitempty"`
	X      []float64 `json:"x"`
	Series []Series  `json:"series"`
	// XTicks name the x values 0, 1, … of a chart of categories (a tuning search's knob
	// changes); Horizontal draws that axis on the left, one row per category, so that long
	// names stay readable. YRef is a value the y scale spans instead of 0 (a ratio's 1).
	XTicks     []string `json:"x_ticks,omitempty"`
	Horizontal bool     `json:"horizontal,omitempty"`
	YRef       *float64 `json:"y_ref,omitempty"`
}

// Series is one line or set of points.
type Series struct {
	Label  string     `json:"label"`
	Color  string     `json:"color"`
	Y      []*float64 `json:"y"`
	Dash   bool       `json:"dash,omitempty"`   // a reference line (a default, the roofline)
	Points bool       `json:"points,omitempty"` // points only, no line
	// Low and High, when present, are whiskers (a confidence interval) drawn at each point
	// instead of a line.
	Low  []*float64 `json:"low,omitempty"`
	High []*float64 `json:"high,omitempty"`
	// Ref, when set, draws the series as a line across the whole chart at that y (no effect:
	// 1), since a chart of one category would give its line no length.
	Ref *float64 `json:"ref,omitempty"`
}

// stackColors are the colors of the stacks in every chart.
var stackColors = map[string]string{
	"ollama": "#1f77b4", "llama.cpp": "#d62728", "vLLM": "#2ca02c", "Triton": "#9467bd",
}

// palette colors the series of charts with one series per configuration.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

func stackColor(stack string, i int) string {
	if c, ok := stackColors[stack]; ok {
		return c
	}
	return palette[(i+4)%len(palette)]
}

// offloadCharts are, per GPU, a value (the decode rate or J/token) against the layers on the
// GPU: one series of points per stack at the configurations whose layer count is known, a
// dashed line per stack at its default when the server chose the placement itself, and — for
// the rate — the memory-bandwidth roofline. Nothing when no configuration has the value and a
// known layer count.
func offloadCharts(cs []*runset.Config, value func(*runset.Config) *float64, yLabel, kind string, roofline bool) []Chart {
	byGPU := map[string][]*runset.Config{}
	var gpus []string
	for _, c := range cs {
		g := gpuName(c)
		if _, ok := byGPU[g]; !ok {
			gpus = append(gpus, g)
		}
		byGPU[g] = append(byGPU[g], c)
	}
	sort.Strings(gpus)
	var out []Chart
	for _, g := range gpus {
		xs := map[float64]bool{}
		placedAny := false
		roof := 0.0
		for _, c := range byGPU[g] {
			if value(c) == nil {
				continue
			}
			if placed(c) {
				xs[float64(c.Layers)] = true
				placedAny = true
			}
			if c.TotalLayers > 0 {
				xs[float64(c.TotalLayers)] = true
			}
			if s := c.Sample(); s != nil && s.RooflineTPS > 0 {
				roof = s.RooflineTPS
			}
		}
		if !placedAny {
			continue
		}
		xs[0] = true
		ch := Chart{
			Kind: kind, XLabel: "layers on the GPU (num_gpu / -ngl)", YLabel: yLabel,
			Title: fmt.Sprintf("%s against GPU offload — %s", yLabel, g),
		}
		for x := range xs {
			ch.X = append(ch.X, x)
		}
		sort.Float64s(ch.X)
		idx := map[float64]int{}
		for i, x := range ch.X {
			idx[x] = i
		}
		var stacks []string
		perStack := map[string][]*runset.Config{}
		for _, c := range byGPU[g] {
			if _, ok := perStack[c.Stack]; !ok {
				stacks = append(stacks, c.Stack)
			}
			perStack[c.Stack] = append(perStack[c.Stack], c)
		}
		sort.Strings(stacks)
		for i, st := range stacks {
			pts := Series{Label: st, Color: stackColor(st, i), Y: make([]*float64, len(ch.X))}
			n := 0
			for _, c := range perStack[st] {
				v := value(c)
				if v == nil {
					continue
				}
				if placed(c) {
					pts.Y[idx[float64(c.Layers)]] = v
					n++
					continue
				}
				// The server's own placement, layer count unknown: a dashed level.
				line := Series{Label: st + " " + configText(c) + " (the server's placement)", Color: stackColor(st, i), Dash: true, Y: make([]*float64, len(ch.X))}
				for j := range line.Y {
					line.Y[j] = v
				}
				ch.Series = append(ch.Series, line)
			}
			if n > 0 {
				ch.Series = append(ch.Series, pts)
			}
		}
		if roofline && roof > 0 {
			line := Series{Label: fmt.Sprintf("roofline %.1f tok/s (memory bandwidth ÷ bytes per token)", roof), Color: "#7f7f7f", Dash: true, Y: make([]*float64, len(ch.X))}
			for j := range line.Y {
				line.Y[j] = ptr(round(roof, 2))
			}
			ch.Series = append(ch.Series, line)
		}
		ch.Note = "Points: configurations whose layer count on the GPU is known; dashed: the server's own placement (layers not reported)."
		out = append(out, ch)
	}
	return out
}

// placed reports whether a configuration's layers on the GPU are known: a tuned
// configuration's num_gpu / -ngl, or a default whose server reported the layers it offloaded.
func placed(c *runset.Config) bool {
	return c.Layers >= 0 && (c.Label != naming.LabelBaseline || c.TotalLayers > 0)
}

// itlPercentiles are the x values of the inter-token latency chart.
var itlPercentiles = []float64{1, 5, 10, 25, 50, 75, 90, 95, 99}

// itlChart is, per configuration with chunk times, its inter-token latency at each
// percentile of itlPercentiles (type-7 quantiles of the recorded request's gaps).
func itlChart(cs []*runset.Config) (Chart, bool) {
	ch := Chart{
		Kind: "itl", Title: "Inter-token latency percentiles (one recorded request per configuration)",
		XLabel: "percentile", YLabel: "ITL ms", X: itlPercentiles,
		Note: "From the chunk arrival times of the configuration's median request; a chunk of k tokens counts k gaps of its interval ÷ k.",
	}
	lo, hi := math.Inf(1), 0.0
	gpus := map[string]bool{}
	for _, c := range cs {
		gpus[gpuLabel(c)] = true
	}
	for _, c := range cs {
		s := c.Sample()
		if c.Failed || s == nil {
			continue
		}
		gaps := itlGaps(s.ChunkTimes)
		if len(gaps) < 2 {
			continue
		}
		label := c.Stack + " " + configText(c)
		if len(gpus) > 1 {
			label += " · " + gpuLabel(c)
		}
		se := Series{Label: label, Color: palette[len(ch.Series)%len(palette)]}
		for _, p := range itlPercentiles {
			v := round(stats.Quantile(gaps, p/100), 3)
			se.Y = append(se.Y, ptr(v))
			if v > 0 {
				lo = math.Min(lo, v)
			}
			hi = math.Max(hi, v)
		}
		ch.Series = append(ch.Series, se)
	}
	ch.YLog = lo > 0 && hi/lo > 20
	return ch, len(ch.Series) > 0
}

func gpuLabel(c *runset.Config) string {
	if c.GPULabel != "" {
		return c.GPULabel
	}
	return "cpu"
}
