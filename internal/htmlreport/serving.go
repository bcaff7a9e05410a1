package htmlreport

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/serving"
)

// # Serving CSVs
//
// A serving run (`serving_<stack>_<TS>.csv`, one row per concurrency level of a configuration)
// is read by its header names, so that the report follows the serving schema without
// depending on its column order. ServingColumns lists the names read; a column that is absent
// leaves its cell and chart out. Latency columns are <metric>_p<q>[_<unit>]: metric ttft, itl,
// tpot or e2e, q 50, 90, 95 or 99, unit ms (also without a suffix), us, ns or s.
//
// A row with an offered_rate is an open-loop level (fuze's REQUEST_RATE_SET): its x is the
// offered request rate, and its concurrency column is the cap on requests in flight, not a
// level. Open-loop levels are their own configurations (the cap and burstiness in the name)
// and get their own charts against the offered rate; closed-loop charts stay by concurrency.

// ServingColumns are the serving CSV header names the report reads, the first present of
// each list.
var ServingColumns = map[string][]string{
	"concurrency": {"concurrency", "max_concurrency", "level"},
	"stack":       {"stack"}, // else the file name: serving_<stack>_<TS>.csv
	"model":       {"base_model", "model"},
	"gpu_label":   {"gpu_label"},
	"gpu_name":    {"gpu_name"},
	"output_tps":  {"output_tps", "output_tokens_per_sec", "aggregate_output_tps", "output_throughput", "throughput_tps"},
	"request_tps": {"request_throughput", "requests_per_sec", "req_per_sec", "request_rate"}, // fuze's own: completed requests per second (peers' request_rate, an offered rate, comes after their request_throughput)
	"completed":   {"completed", "requests_completed"},
	"failed":      {"failed", "requests_failed"},
	"energy":      {EnergyField},
	// Open loop: a non-empty offered rate (requests/s, inf: every request at once) makes the
	// row an open-loop level.
	"offered_rate": {"offered_rate"},
	"burstiness":   {"burstiness"},
	"capped":       {"capped"},
	// The configuration: each present column is shown as name=value (config as it is).
	"config": {"config", "configuration", "num_parallel", "ollama_num_parallel", "parallel", "max_num_seqs", "num_gpu"},
}

var latencyColumn = regexp.MustCompile(`^(ttft|itl|tpot|e2e)_p(50|90|95|99)(?:_(ms|us|ns|s))?$`)

// latencyColumnUnitFirst is fuze's own serving CSV spelling: <metric>_<unit>_p<q> (ttft_ms_p99).
var latencyColumnUnitFirst = regexp.MustCompile(`^(ttft|itl|tpot|e2e)_(ms|us|ns|s)_p(50|90|95|99)$`)

// servingLevel is one row of a serving CSV.
type servingLevel struct {
	Source, Stack, Model, GPU, Config string
	Concurrency                       float64
	OutputTPS, RequestTPS             *float64
	Completed, Failed                 *float64
	JPerToken                         *float64
	Latency                           map[string]float64 // "ttft_p99" → ms
	// OfferedRate is an open-loop level's offered rate as the CSV writes it ("4", "inf"); ""
	// for a closed loop. Rate is its value (+Inf for inf); Capped the arrivals that waited
	// for the cap (nil: none did).
	OfferedRate string
	Rate        float64
	Capped      *float64
}

func (l servingLevel) open() bool { return l.OfferedRate != "" }

// x is the level's place on its axis: the offered rate of an open loop, else the concurrency.
func (l servingLevel) x() float64 {
	if l.open() {
		return l.Rate
	}
	return l.Concurrency
}

// readServing reads serving CSVs; a file or row that cannot be read is a warning.
func readServing(paths []string) ([]servingLevel, []string) {
	var out []servingLevel
	var warnings []string
	for _, p := range paths {
		ls, err := readServingFile(p)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v; serving data left out", p, err))
			continue
		}
		out = append(out, ls...)
	}
	return out, warnings
}

func readServingFile(path string) ([]servingLevel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("no rows")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	first := func(field string) (int, bool) {
		for _, n := range ServingColumns[field] {
			if i, ok := col[n]; ok {
				return i, true
			}
		}
		return 0, false
	}
	ci, ok := first("concurrency")
	if !ok {
		return nil, fmt.Errorf("no concurrency column (one of %s)", strings.Join(ServingColumns["concurrency"], ", "))
	}
	stack := ""
	if name := strings.TrimPrefix(baseName(path), "serving_"); name != baseName(path) {
		prefix, _, _ := strings.Cut(name, "_")
		stack, _ = results.CanonicalStack(prefix)
	}
	var out []servingLevel
	for _, rec := range recs[1:] {
		get := func(field string) string {
			if i, ok := first(field); ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		num := func(field string) *float64 {
			v, err := strconv.ParseFloat(get(field), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil
			}
			return ptr(v)
		}
		c := num("concurrency")
		if c == nil || ci >= len(rec) {
			continue
		}
		l := servingLevel{
			Source: baseName(path), Stack: get("stack"), Model: get("model"), Concurrency: *c,
			OutputTPS: num("output_tps"), RequestTPS: num("request_tps"),
			Completed: num("completed"), Failed: num("failed"), Latency: map[string]float64{},
		}
		if l.Stack == "" {
			l.Stack = stack
		} else if s, ok := results.CanonicalStack(l.Stack); ok {
			l.Stack = s
		}
		if e := num("energy"); e != nil && *e > 0 {
			l.JPerToken = e
		}
		l.GPU = get("gpu_label")
		if n := get("gpu_name"); n != "" && l.GPU != "" {
			l.GPU = n + " (" + l.GPU + ")"
		}
		if l.GPU == "" {
			l.GPU = "CPU / unknown GPU"
		}
		var cfg []string
		for _, n := range ServingColumns["config"] {
			if i, ok := col[n]; ok && i < len(rec) && strings.TrimSpace(rec[i]) != "" {
				if n == "config" || n == "configuration" {
					cfg = append(cfg, strings.TrimSpace(rec[i]))
				} else {
					cfg = append(cfg, n+"="+strings.TrimSpace(rec[i]))
				}
			}
		}
		if rate := get("offered_rate"); rate != "" {
			r, ok := serving.ParseRate(rate)
			if !ok || r == 0 {
				continue // not a rate: neither a closed-loop level nor a place on the rate axis
			}
			l.OfferedRate, l.Rate = serving.FormatRate(r), r
			if c := num("capped"); c != nil && *c > 0 {
				l.Capped = c
			}
			cfg = append(cfg, openLoopName(get("burstiness"), l.Concurrency))
		}
		l.Config = strings.Join(cfg, " ")
		for name, i := range col {
			m := latencyColumn.FindStringSubmatch(name)
			if u := latencyColumnUnitFirst.FindStringSubmatch(name); u != nil {
				m = []string{u[0], u[1], u[3], u[2]}
			}
			if m == nil || i >= len(rec) {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			scale := map[string]float64{"": 1, "ms": 1, "us": 1e-3, "ns": 1e-6, "s": 1e3}[m[3]]
			l.Latency[m[1]+"_p"+m[2]] = round(v*scale, 3)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no row with a concurrency")
	}
	return out, nil
}

// openLoopName names an open loop's arrivals and cap, which make it a configuration of its own.
func openLoopName(burstiness string, capN float64) string {
	arrivals := "Poisson"
	if b, err := strconv.ParseFloat(burstiness, 64); err == nil && b != 1 {
		arrivals = "gamma burstiness " + burstiness
	}
	capText := "no cap"
	if capN > 0 {
		capText = "cap " + strconv.FormatFloat(capN, 'f', -1, 64)
	}
	return "open loop (" + arrivals + ", " + capText + ")"
}

// ServingRow is one level of one configuration in the serving table: a concurrency, or for
// an open loop an offered rate (Concurrency is then its cap).
type ServingRow struct {
	Stack       string   `json:"stack"`
	GPU         string   `json:"gpu"`
	Config      string   `json:"config"`
	Concurrency float64  `json:"concurrency"`
	OutputTPS   *float64 `json:"output_tps"`
	RequestTPS  *float64 `json:"request_tps"`
	Completed   *float64 `json:"completed"`
	Failed      *float64 `json:"failed"`
	// Latency percentiles in ms (nil: not in the CSV).
	TTFTp50 *float64 `json:"ttft_p50_ms"`
	TTFTp90 *float64 `json:"ttft_p90_ms"`
	TTFTp99 *float64 `json:"ttft_p99_ms"`
	ITLp50  *float64 `json:"itl_p50_ms"`
	ITLp90  *float64 `json:"itl_p90_ms"`
	ITLp99  *float64 `json:"itl_p99_ms"`
	E2Ep99  *float64 `json:"e2e_p99_ms"`
	// JPerToken is energy per output token (nil: not measured).
	JPerToken *float64 `json:"joules_per_token"`
	// Pareto: no other level of the model has both a higher throughput and a lower p99
	// latency (the metric of the serving chart's x axis).
	Pareto bool   `json:"pareto,omitempty"`
	Source string `json:"source"`
	// OfferedRate is an open-loop level's offered requests/s ("inf": all at once), absent for
	// a closed loop; Capped the arrivals that waited for the cap, absent when none did.
	OfferedRate string   `json:"offered_rate,omitempty"`
	Capped      *float64 `json:"capped,omitempty"`
}

func (l servingLevel) lat(k string) *float64 {
	if v, ok := l.Latency[k]; ok {
		return ptr(v)
	}
	return nil
}

// servingXMetric is the p99 latency the serving chart plots throughput against: e2e when the
// CSVs have it, else ITL, else TTFT ("" when none).
func servingXMetric(ls []servingLevel) string {
	for _, m := range []string{"e2e_p99", "itl_p99", "tpot_p99", "ttft_p99"} {
		for _, l := range ls {
			if _, ok := l.Latency[m]; ok {
				return m
			}
		}
	}
	return ""
}

func configKey(l servingLevel) string { return l.Stack + " " + l.Config + " · " + l.GPU }

func sortLevels(ls []servingLevel) {
	sort.SliceStable(ls, func(i, j int) bool {
		if a, b := ls[i].open(), ls[j].open(); a != b {
			return b // closed-loop configurations first, open loops after them
		}
		if a, b := configKey(ls[i]), configKey(ls[j]); a != b {
			return a < b
		}
		return ls[i].x() < ls[j].x()
	})
}

// pareto marks the levels on the throughput / p99-latency front.
func pareto(ls []servingLevel, metric string) map[int]bool {
	front := map[int]bool{}
	for i, a := range ls {
		ax, ok := a.Latency[metric]
		if !ok || a.OutputTPS == nil {
			continue
		}
		dominated := false
		for j, b := range ls {
			bx, ok := b.Latency[metric]
			if i == j || !ok || b.OutputTPS == nil {
				continue
			}
			if bx <= ax && *b.OutputTPS >= *a.OutputTPS && (bx < ax || *b.OutputTPS > *a.OutputTPS) {
				dominated = true
				break
			}
		}
		front[i] = !dominated
	}
	return front
}

func servingRows(ls []servingLevel) []ServingRow {
	ls = append([]servingLevel(nil), ls...)
	sortLevels(ls)
	front := pareto(ls, servingXMetric(ls))
	var out []ServingRow
	for i, l := range ls {
		out = append(out, ServingRow{
			Stack: l.Stack, GPU: l.GPU, Config: l.Config, Concurrency: l.Concurrency,
			OutputTPS: l.OutputTPS, RequestTPS: l.RequestTPS, Completed: l.Completed, Failed: l.Failed,
			TTFTp50: l.lat("ttft_p50"), TTFTp90: l.lat("ttft_p90"), TTFTp99: l.lat("ttft_p99"),
			ITLp50: l.lat("itl_p50"), ITLp90: l.lat("itl_p90"), ITLp99: l.lat("itl_p99"),
			E2Ep99: l.lat("e2e_p99"), JPerToken: l.JPerToken, Pareto: front[i], Source: l.Source,
			OfferedRate: l.OfferedRate, Capped: l.Capped,
		})
	}
	return out
}

// servingCharts: throughput against p99 latency per configuration with the Pareto front;
// closed-loop levels' TTFT and ITL p50 and p99 and energy per token against concurrency;
// open-loop levels' throughput, TTFT, ITL and energy against the offered rate.
func servingCharts(ls []servingLevel) []Chart {
	ls = append([]servingLevel(nil), ls...)
	sortLevels(ls)
	configs, byConfig := byConfigKey(ls)
	var out []Chart

	if metric := servingXMetric(ls); metric != "" {
		ch := Chart{
			Kind: "serving", Title: "Serving: output throughput against " + metric + " latency, one point per concurrency level",
			XLabel: metric + " ms", YLabel: "output tok/s (all streams)",
			Note: "Lines join a configuration's levels in latency order; the dashed line is the Pareto front (no level has both more throughput and less latency).",
		}
		if slices.ContainsFunc(ls, servingLevel.open) {
			ch.Title = "Serving: output throughput against " + metric + " latency, one point per level (a concurrency, or an open loop's offered rate)"
		}
		xs := map[float64]bool{}
		for _, l := range ls {
			if v, ok := l.Latency[metric]; ok && l.OutputTPS != nil {
				xs[v] = true
			}
		}
		ch.X = sortedFloats(xs)
		idx := indexOf(ch.X)
		for i, k := range configs {
			s := Series{Label: k, Color: palette[i%len(palette)], Y: make([]*float64, len(ch.X))}
			for _, l := range byConfig[k] {
				if v, ok := l.Latency[metric]; ok && l.OutputTPS != nil {
					s.Y[idx[v]] = l.OutputTPS
				}
			}
			ch.Series = append(ch.Series, s)
		}
		front := Series{Label: "Pareto front", Color: "#8c6d31", Dash: true, Y: make([]*float64, len(ch.X))}
		for i, on := range pareto(ls, metric) {
			if on {
				front.Y[idx[ls[i].Latency[metric]]] = ls[i].OutputTPS
			}
		}
		ch.Series = append(ch.Series, front)
		if len(ch.X) > 0 {
			out = append(out, ch)
		}
	}

	// Each loop on its own axis: a closed loop's concurrency and an open loop's offered rate
	// are different quantities (the open loop's concurrency column is only its cap).
	var closed, open []servingLevel
	infinite := false
	for _, l := range ls {
		switch {
		case !l.open():
			closed = append(closed, l)
		case math.IsInf(l.Rate, 1):
			infinite = true
		default:
			open = append(open, l)
		}
	}
	out = append(out, levelCharts(closed, levelAxis{
		kind: "", title: "Serving: ", against: "concurrency", label: "concurrent requests",
	})...)
	openAxis := levelAxis{
		kind: "-rate", title: "Serving, open loop: ", against: "offered request rate", label: "offered requests/s",
	}
	if infinite {
		openAxis.note = "Levels offered at rate inf (every request at once) are in the table only: a rate axis has no place for them."
	}
	if len(open) > 0 {
		openConfigs, openBy := byConfigKey(open)
		ch := Chart{Kind: "serving-rate", Title: openAxis.title + "output throughput against offered request rate",
			XLabel: openAxis.label, YLabel: "output tok/s (all streams)", Note: openAxis.note}
		if ch.Note == "" {
			ch.Note = "An open loop offers requests at the rate whatever the server does; throughput that stops rising with the offered rate is the server's capacity."
		}
		fill(&ch, open, openConfigs, openBy, func(l servingLevel) *float64 { return l.OutputTPS })
		if len(ch.Series) > 0 {
			out = append(out, ch)
		}
	}
	out = append(out, levelCharts(open, openAxis)...)
	return out
}

// levelAxis is the x of a set of level charts.
type levelAxis struct {
	kind, title, against, label, note string
}

// levelCharts: TTFT and ITL p50 and p99, and energy per token, against the axis's x (the
// levels' x()), one series per configuration and quantile.
func levelCharts(ls []servingLevel, ax levelAxis) []Chart {
	configs, byConfig := byConfigKey(ls)
	var out []Chart
	for _, m := range []struct{ metric, title string }{{"ttft", "time to first token"}, {"itl", "inter-token latency"}} {
		ch := Chart{
			Kind: "serving" + ax.kind + "-" + m.metric, Title: ax.title + m.title + " p50 and p99 against " + ax.against,
			XLabel: ax.label, YLabel: strings.ToUpper(m.metric) + " ms", Note: ax.note,
		}
		ch.X = levelXs(ls)
		ch.XLog = logScale(ch.X)
		idx := indexOf(ch.X)
		for i, k := range configs {
			for _, q := range []string{"p50", "p99"} {
				s := Series{Label: k + " " + q, Color: palette[i%len(palette)], Dash: q == "p99", Y: make([]*float64, len(ch.X))}
				n := 0
				for _, l := range byConfig[k] {
					if v := l.lat(m.metric + "_" + q); v != nil {
						s.Y[idx[l.x()]] = v
						n++
					}
				}
				if n > 0 {
					ch.Series = append(ch.Series, s)
				}
			}
		}
		if len(ch.Series) > 0 {
			out = append(out, ch)
		}
	}

	ch := Chart{Kind: "energy" + ax.kind, Title: ax.title + "energy per output token against " + ax.against, XLabel: ax.label, YLabel: "J/token", Note: ax.note}
	fill(&ch, ls, configs, byConfig, func(l servingLevel) *float64 { return l.JPerToken })
	if len(ch.Series) > 0 {
		out = append(out, ch)
	}
	return out
}

// fill sets ch's x to the levels' x and adds a series per configuration that has the value.
func fill(ch *Chart, ls []servingLevel, configs []string, byConfig map[string][]servingLevel, value func(servingLevel) *float64) {
	ch.X = levelXs(ls)
	ch.XLog = logScale(ch.X)
	idx := indexOf(ch.X)
	for i, k := range configs {
		s := Series{Label: k, Color: palette[i%len(palette)], Y: make([]*float64, len(ch.X))}
		n := 0
		for _, l := range byConfig[k] {
			if v := value(l); v != nil {
				s.Y[idx[l.x()]] = v
				n++
			}
		}
		if n > 0 {
			ch.Series = append(ch.Series, s)
		}
	}
}

// byConfigKey groups sorted levels by configuration, in their order.
func byConfigKey(ls []servingLevel) ([]string, map[string][]servingLevel) {
	var configs []string
	byConfig := map[string][]servingLevel{}
	for _, l := range ls {
		k := configKey(l)
		if _, ok := byConfig[k]; !ok {
			configs = append(configs, k)
		}
		byConfig[k] = append(byConfig[k], l)
	}
	return configs, byConfig
}

// logScale: a log axis for positive values spanning a factor of 8 or more.
func logScale(xs []float64) bool {
	return len(xs) > 1 && xs[0] > 0 && xs[len(xs)-1]/xs[0] >= 8
}

// levelXs are the levels' distinct x (concurrency, or offered rate), ascending.
func levelXs(ls []servingLevel) []float64 {
	xs := map[float64]bool{}
	for _, l := range ls {
		xs[l.x()] = true
	}
	return sortedFloats(xs)
}

func sortedFloats(m map[float64]bool) []float64 {
	out := make([]float64, 0, len(m))
	for x := range m {
		out = append(out, x)
	}
	sort.Float64s(out)
	return out
}

func indexOf(xs []float64) map[float64]int {
	m := make(map[float64]int, len(xs))
	for i, x := range xs {
		m[x] = i
	}
	return m
}
