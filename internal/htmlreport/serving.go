package htmlreport

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/results"
)

// # Serving CSVs
//
// A serving run (`serving_<stack>_<TS>.csv`, one row per concurrency level of a configuration)
// is read by its header names, so that the report follows the serving schema without
// depending on its column order. ServingColumns lists the names read; a column that is absent
// leaves its cell and chart out. Latency columns are <metric>_p<q>[_<unit>]: metric ttft, itl,
// tpot or e2e, q 50, 90, 95 or 99, unit ms (also without a suffix), us, ns or s.

// ServingColumns are the serving CSV header names the report reads, the first present of
// each list.
var ServingColumns = map[string][]string{
	"concurrency": {"concurrency", "max_concurrency", "level"},
	"stack":       {"stack"}, // else the file name: serving_<stack>_<TS>.csv
	"model":       {"base_model", "model"},
	"gpu_label":   {"gpu_label"},
	"gpu_name":    {"gpu_name"},
	"output_tps":  {"output_tps", "output_tokens_per_sec", "aggregate_output_tps", "output_throughput", "throughput_tps"},
	"request_tps": {"request_throughput", "requests_per_sec", "req_per_sec"},
	"completed":   {"completed", "requests_completed"},
	"failed":      {"failed", "requests_failed"},
	"energy":      {EnergyField},
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

// ServingRow is one concurrency level of one configuration in the serving table.
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
		if a, b := configKey(ls[i]), configKey(ls[j]); a != b {
			return a < b
		}
		return ls[i].Concurrency < ls[j].Concurrency
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
		})
	}
	return out
}

// servingCharts: throughput against p99 latency per configuration with the Pareto front;
// TTFT and ITL p50 and p99 against concurrency; energy per token against concurrency.
func servingCharts(ls []servingLevel) []Chart {
	ls = append([]servingLevel(nil), ls...)
	sortLevels(ls)
	var configs []string
	byConfig := map[string][]servingLevel{}
	for _, l := range ls {
		k := configKey(l)
		if _, ok := byConfig[k]; !ok {
			configs = append(configs, k)
		}
		byConfig[k] = append(byConfig[k], l)
	}
	var out []Chart

	if metric := servingXMetric(ls); metric != "" {
		ch := Chart{
			Kind: "serving", Title: "Serving: output throughput against " + metric + " latency, one point per concurrency level",
			XLabel: metric + " ms", YLabel: "output tok/s (all streams)",
			Note: "Lines join a configuration's levels in latency order; the dashed line is the Pareto front (no level has both more throughput and less latency).",
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

	for _, m := range []struct{ metric, title string }{{"ttft", "Serving: time to first token"}, {"itl", "Serving: inter-token latency"}} {
		ch := Chart{
			Kind: "serving-" + m.metric, Title: m.title + " p50 and p99 against concurrency",
			XLabel: "concurrent requests", YLabel: strings.ToUpper(m.metric) + " ms",
		}
		ch.X = concurrencies(ls)
		ch.XLog = logScale(ch.X)
		idx := indexOf(ch.X)
		for i, k := range configs {
			for _, q := range []string{"p50", "p99"} {
				s := Series{Label: k + " " + q, Color: palette[i%len(palette)], Dash: q == "p99", Y: make([]*float64, len(ch.X))}
				n := 0
				for _, l := range byConfig[k] {
					if v := l.lat(m.metric + "_" + q); v != nil {
						s.Y[idx[l.Concurrency]] = v
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

	ch := Chart{Kind: "energy", Title: "Serving: energy per output token against concurrency", XLabel: "concurrent requests", YLabel: "J/token"}
	ch.X = concurrencies(ls)
	ch.XLog = logScale(ch.X)
	idx := indexOf(ch.X)
	for i, k := range configs {
		s := Series{Label: k, Color: palette[i%len(palette)], Y: make([]*float64, len(ch.X))}
		n := 0
		for _, l := range byConfig[k] {
			if l.JPerToken != nil {
				s.Y[idx[l.Concurrency]] = l.JPerToken
				n++
			}
		}
		if n > 0 {
			ch.Series = append(ch.Series, s)
		}
	}
	if len(ch.Series) > 0 {
		out = append(out, ch)
	}
	return out
}

// logScale: a log axis for positive values spanning a factor of 8 or more.
func logScale(xs []float64) bool {
	return len(xs) > 1 && xs[0] > 0 && xs[len(xs)-1]/xs[0] >= 8
}

func concurrencies(ls []servingLevel) []float64 {
	xs := map[float64]bool{}
	for _, l := range ls {
		xs[l.Concurrency] = true
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
