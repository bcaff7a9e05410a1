package report

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/serving"
)

// ServingTitle is the title of the serving view.
const ServingTitle = "Serving: best configuration per (model, gpu, stack) under its SLO (goodput):"

// ServingRow is one line of the serving view: of every serving configuration measured for a
// model on a GPU with a stack (a configuration is one server setting of one run file), the one
// whose goodput level — its highest concurrency, or offered rate for an open loop, that met the
// SLO with every request completed, no physics flag and no interruption — has the highest
// aggregate output rate. Parallel and Goodput are empty when no configuration met its SLO.
type ServingRow struct {
	Alias    string `json:"alias"`
	Model    string `json:"model"`
	GPULabel string `json:"gpu_label"`
	Stack    string `json:"stack"`
	Endpoint string `json:"endpoint,omitempty"`
	ModelTag string `json:"model_tag,omitempty"`
	Parallel string `json:"parallel,omitempty"` // the best configuration's server concurrency setting
	// Settings is the best configuration's server settings among those its group's
	// configurations differ in, but the concurrency setting ("OLLAMA_FLASH_ATTENTION=1
	// OLLAMA_KV_CACHE_TYPE=q8_0" when serving crossed tuning sets); "" when only that differs.
	Settings string `json:"settings,omitempty"`
	// Goodput is the goodput level: "8" (concurrency) or "rate=4/s" (open loop, with its cap).
	Goodput     string   `json:"goodput,omitempty"`
	Concurrency int      `json:"goodput_concurrency,omitempty"`
	OfferedRate string   `json:"goodput_offered_rate,omitempty"`
	OutputTPS   float64  `json:"output_tps,omitempty"`
	RequestRate float64  `json:"request_rate,omitempty"`
	TTFTP99ms   float64  `json:"ttft_ms_p99,omitempty"`
	ITLP99ms    float64  `json:"itl_ms_p99,omitempty"`
	JoulesPerTk *float64 `json:"joules_per_token"` // null: not measured (n/a)
	SLO         string   `json:"slo"`              // "TTFT≤1000 ITL≤50 ms", the goodput level's (else the first row's)
	Configs     int      `json:"configs"`          // configurations compared
	Time        string   `json:"time"`             // when the goodput level ended
	File        string   `json:"file"`
}

// ServingView is the serving view of serving CSVs.
type ServingView struct {
	Files []string     `json:"files"`
	Rows  []ServingRow `json:"rows"`
}

// FindServingCSVs lists the serving CSVs (serving_*.csv) in dir, sorted by name; none when
// dir does not exist.
func FindServingCSVs(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "serving_*.csv"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

type servingCand struct {
	file, key string
	rows      []map[string]string
	best      map[string]string // the goodput level (nil: none)
}

func rowNum(r map[string]string, col string) float64 {
	v, _ := strconv.ParseFloat(r[col], 64)
	return v
}

// goodputKey orders a configuration's levels for goodput, as serving.Goodput does.
func goodputKey(r map[string]string) float64 {
	if rate, ok := serving.ParseRate(r["offered_rate"]); ok && rate > 0 {
		return rate
	}
	return rowNum(r, "concurrency")
}

// BuildServingView reads the serving CSVs at paths (a file that cannot be read is a warning,
// left out) and keeps, per (model, gpu, stack), the best configuration under the SLO. f's
// MODEL_RE, STACK_RE and GPU_RE apply; aliases as the summaries write them.
func BuildServingView(paths []string, f results.Filters, prefix, suffix string) (ServingView, []string) {
	var view ServingView
	var warnings []string
	cands := map[string][]*servingCand{} // by model|gpu|stack
	byKey := map[string]*servingCand{}
	for _, p := range paths {
		rows, err := serving.ReadCSV(p)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v; left out of the serving view", p, err))
			continue
		}
		view.Files = append(view.Files, p)
		for _, r := range rows {
			ag := results.AggRow{Model: r["model"], Stack: r["stack"], GPULabel: r["gpu_label"]}
			if !f.Match(ag) {
				continue
			}
			group := strings.Join([]string{r["model"], r["gpu_label"], r["stack"]}, "|")
			key := strings.Join([]string{p, r["endpoint"], r["model_tag"], r["label"], r["server_settings"]}, "|")
			c := byKey[key]
			if c == nil {
				c = &servingCand{file: p, key: key}
				byKey[key] = c
				cands[group] = append(cands[group], c)
			}
			c.rows = append(c.rows, r)
			met := r["slo_met"] == "1" && r["physics_flag"] == "" && r["error"] == "" && r["interrupted"] != "1"
			if met && (c.best == nil || goodputKey(r) > goodputKey(c.best)) {
				c.best = r
			}
		}
	}
	groups := make([]string, 0, len(cands))
	for g := range cands {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		cs := cands[g]
		// Best: the highest output rate at goodput; then the higher goodput level, the newer
		// level, the smaller file and configuration (a total order: input order never decides).
		sort.SliceStable(cs, func(i, j int) bool {
			a, b := cs[i].best, cs[j].best
			if (a == nil) != (b == nil) {
				return a != nil
			}
			if a != nil {
				if x, y := rowNum(a, "output_tps"), rowNum(b, "output_tps"); x != y {
					return x > y
				}
				if x, y := goodputKey(a), goodputKey(b); x != y {
					return x > y
				}
				if a["ts"] != b["ts"] {
					return a["ts"] > b["ts"]
				}
			}
			return cs[i].key < cs[j].key
		})
		top := cs[0]
		r := top.best
		if r == nil {
			r = top.rows[0]
		}
		row := ServingRow{
			Alias: naming.Alias(r["model"], prefix, suffix), Model: r["model"], GPULabel: r["gpu_label"], Stack: r["stack"],
			SLO:     fmt.Sprintf("TTFT≤%s ITL≤%s ms", trimNum(r["slo_ttft_ms"]), trimNum(r["slo_itl_ms"])),
			Configs: len(cs), File: filepath.Base(top.file),
		}
		if b := top.best; b != nil {
			row.Endpoint, row.ModelTag, row.Parallel = b["endpoint"], b["model_tag"], b["parallel"]
			row.Settings = differingSettings(cs, b["server_settings"])
			row.Concurrency = int(rowNum(b, "concurrency"))
			row.Goodput = b["concurrency"]
			if b["offered_rate"] != "" {
				row.OfferedRate = b["offered_rate"]
				row.Goodput = "rate=" + b["offered_rate"] + "/s"
				if row.Concurrency > 0 {
					row.Goodput += " cap " + b["concurrency"]
				}
			}
			row.OutputTPS, row.RequestRate = round2(rowNum(b, "output_tps")), rowNum(b, "request_rate")
			row.TTFTP99ms, row.ITLP99ms = rowNum(b, "ttft_ms_p99"), rowNum(b, "itl_ms_p99")
			if j, err := strconv.ParseFloat(b["joules_per_token"], 64); err == nil {
				row.JoulesPerTk = &j
			}
			row.Time = HumanTime(b["ts"])
		}
		view.Rows = append(view.Rows, row)
	}
	sort.SliceStable(view.Rows, func(i, j int) bool {
		a, b := view.Rows[i], view.Rows[j]
		if a.Alias != b.Alias {
			return a.Alias < b.Alias
		}
		if a.GPULabel != b.GPULabel {
			return a.GPULabel < b.GPULabel
		}
		return a.Stack < b.Stack
	})
	return view, warnings
}

// differingSettings is best's server settings ("k=v" words) whose keys take more than one
// value among the configurations cs at one concurrency setting: what the configurations were
// crossed over (serving with tuning sets). Settings that follow the concurrency setting (its
// own names, llama.cpp's --ctx-size of N slots) are the parallel column's already.
func differingSettings(cs []*servingCand, best string) string {
	byParallel := map[string]map[string]map[string]bool{} // key → parallel → values
	for _, c := range cs {
		r := c.rows[0]
		for _, kv := range strings.Fields(r["server_settings"]) {
			k, v, _ := strings.Cut(kv, "=")
			if byParallel[k] == nil {
				byParallel[k] = map[string]map[string]bool{}
			}
			if byParallel[k][r["parallel"]] == nil {
				byParallel[k][r["parallel"]] = map[string]bool{}
			}
			byParallel[k][r["parallel"]][v] = true
		}
	}
	var out []string
	for _, kv := range strings.Fields(best) {
		k, _, _ := strings.Cut(kv, "=")
		for _, values := range byParallel[k] {
			if len(values) > 1 {
				out = append(out, kv)
				break
			}
		}
	}
	return strings.Join(out, " ")
}

func trimNum(s string) string {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

var (
	servingHeader = []string{"model", "gpu", "stack", "parallel", "goodput", "tok/s", "req/s", "ttft p99 ms", "itl p99 ms", "J/tok", "slo", "configs", "file"}
	servingRight  = []bool{false, false, false, true, true, true, true, true, true, true, false, true, false}
)

// WriteText prints the view's table after a blank line and its title; "(none)" when no serving
// CSV had a row. A line whose configurations all missed the SLO says "none met" in goodput.
func (v ServingView) WriteText(w io.Writer) error {
	t := table{title: ServingTitle, header: servingHeader, right: servingRight}
	for _, r := range v.Rows {
		if r.Goodput == "" {
			t.rows = append(t.rows, []string{cell(r.Alias), cell(r.GPULabel), cell(r.Stack), "-", "none met",
				"-", "-", "-", "-", "-", r.SLO, strconv.Itoa(r.Configs), r.File})
			continue
		}
		t.rows = append(t.rows, []string{cell(r.Alias), cell(r.GPULabel), cell(r.Stack), cell(r.Parallel), r.Goodput,
			tpsCell(r.OutputTPS), fmt.Sprintf("%.2f", r.RequestRate), fmt.Sprintf("%.1f", r.TTFTP99ms), fmt.Sprintf("%.1f", r.ITLP99ms),
			joulesCell(r.JoulesPerTk), r.SLO, strconv.Itoa(r.Configs), r.File})
	}
	if err := t.write(w); err != nil {
		return err
	}
	// The settings a best configuration won with, when serving crossed tuning sets: below the
	// table, one line per row, so the table keeps its width.
	for _, r := range v.Rows {
		if r.Settings != "" {
			if _, err := fmt.Fprintf(w, "   best of %s on %s (%s, parallel %s): %s\n", r.Alias, r.GPULabel, r.Stack, r.Parallel, r.Settings); err != nil {
				return err
			}
		}
	}
	return nil
}

// ServingViewOfDir is BuildServingView over the serving CSVs in dir; ok is false when there
// are none (no section to print).
func ServingViewOfDir(dir string, f results.Filters, prefix, suffix string) (view ServingView, warnings []string, ok bool) {
	paths, err := FindServingCSVs(dir)
	if err != nil || len(paths) == 0 {
		return view, nil, false
	}
	view, warnings = BuildServingView(paths, f, prefix, suffix)
	return view, warnings, true
}
