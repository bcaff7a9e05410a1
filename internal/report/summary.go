package report

import (
	"encoding/json"
	"fmt"
	"github.com/fuze-ai/fuze/internal/naming"
	"io"
	"sort"

	"github.com/fuze-ai/fuze/internal/results"
)

// SummaryOptions select the sections of a summary and how names are shown.
type SummaryOptions struct {
	Source     string // aggregate path shown as "Data: <path>"; empty: no such line
	Top        int    // rows of "Top N overall"; <= 0 leaves the section out
	OnlyTop    bool   // only Top N and the global best
	OnlyGlobal bool   // only the global best
	Prefix     string // ALIAS_PREFIX
	Suffix     string // ALIAS_SUFFIX
	Filters    results.Filters
}

// SummaryRow is one row of a summary table.
type SummaryRow struct {
	Time           string   `json:"time"` // YYYY-mm-dd HH:MM:SS of run_ts
	RunTS          string   `json:"run_ts"`
	Alias          string   `json:"alias"`
	Model          string   `json:"model"`
	Stack          string   `json:"stack"`
	Host           string   `json:"host"`
	Endpoint       string   `json:"endpoint"` // the optimal's, else the baseline's
	GPULabel       string   `json:"gpu_label"`
	GPUName        string   `json:"gpu_name"`
	NumGPU         string   `json:"num_gpu"`
	OptimalVariant string   `json:"optimal_variant"`
	OptimalTPS     float64  `json:"optimal_tokps"`
	BaselineTPS    float64  `json:"baseline_tokps"`
	Ratio          *float64 `json:"ratio"` // optimal ÷ baseline, 2 decimals; null without a baseline
	// Gain is the row's optimum against its baseline under the significance rule (null
	// without a baseline, or when no tuned configuration worked: then the ratio is shown).
	Gain *results.Gain `json:"gain,omitempty"`
	// JoulesPerToken is the optimum's energy per output token (results.AggEvidence), also
	// above the idle power; null ("n/a") when it was not measured, never 0.
	JoulesPerToken          *float64 `json:"joules_per_token"`
	JoulesPerTokenAboveIdle *float64 `json:"joules_per_token_above_idle"`
	EnergySource            string   `json:"energy_source,omitempty"`
	CSVFile                 string   `json:"csv_file"`
}

// SummarySection is one table of a summary.
type SummarySection struct {
	ID    string       `json:"id"` // top, stack_model, stack_model_gpu, host_model, global
	Title string       `json:"title"`
	Rows  []SummaryRow `json:"rows"`
}

// SummaryReport is the summary of an aggregate.
type SummaryReport struct {
	Source   string           `json:"csv,omitempty"`
	Sections []SummarySection `json:"sections"`
	// BestFiles are the best CSVs written with the summary, when the caller sets them.
	BestFiles *results.BestPaths `json:"best_files,omitempty"`
	// Serving is the serving view of the serving CSVs in LOG_DIR, when the caller sets it: the
	// aggregate has no serving rows (their figures are per level, not per run).
	Serving *ServingView `json:"serving,omitempty"`
}

// GlobalTitle is the title of the global-best section, as the original printed it.
const GlobalTitle = "Global best per model (across hosts & stacks, alias names):"

// Summary builds the summary of aggregate rows: "Top N overall" (optimal_tokps > 0, highest
// first), the best row per (stack, model), per (stack, model, gpu_label) and per (host, model)
// (each sorted by its key, chosen by the significance rule: results.BestBy), and the global
// best per model (sorted by alias). The x column is each row's gain over its own endpoint's
// baseline (rowGain). The filters apply
// as to the best files (the global section, like the by-model file, ignores STACK_RE and
// HOST_RE). Pass the rows of results.ReadAggregate, which drops duplicated rows.
func Summary(agg []results.AggRow, opts SummaryOptions) SummaryReport {
	rep := SummaryReport{Source: opts.Source}
	f := opts.Filters
	conv := func(rows []results.AggRow) []SummaryRow {
		out := make([]SummaryRow, 0, len(rows))
		for _, r := range rows {
			out = append(out, summaryRow(r, opts))
		}
		return out
	}
	if !opts.OnlyGlobal && opts.Top > 0 {
		var top []results.AggRow
		for _, r := range agg {
			if r.OptimalTPS > 0 && f.Match(r) {
				top = append(top, r)
			}
		}
		sort.SliceStable(top, func(i, j int) bool { return results.Better(top[i], top[j]) })
		if len(top) > opts.Top {
			top = top[:opts.Top]
		}
		rep.Sections = append(rep.Sections, SummarySection{"top", fmt.Sprintf("Top %d overall:", opts.Top), conv(top)})
	}
	if !opts.OnlyGlobal && !opts.OnlyTop {
		var matching []results.AggRow
		for _, r := range agg {
			if f.Match(r) {
				matching = append(matching, r)
			}
		}
		rep.Sections = append(rep.Sections,
			SummarySection{"stack_model", "Best per (stack, model):", conv(results.BestByStackModel(agg, f))},
			SummarySection{"stack_model_gpu", "Best per (stack, model, gpu):", conv(results.BestBy(matching,
				func(r results.AggRow) []string { return []string{r.Stack, r.Model, r.GPULabel} }))},
			SummarySection{"host_model", "Best per (host, model) across stacks:", conv(results.BestByHostModel(agg, f))},
		)
	}
	global := conv(results.BestByModel(agg, f))
	sort.SliceStable(global, func(i, j int) bool {
		a, b := global[i], global[j]
		if a.Alias != b.Alias {
			return a.Alias < b.Alias
		}
		if a.OptimalTPS != b.OptimalTPS {
			return a.OptimalTPS > b.OptimalTPS
		}
		return a.Model < b.Model
	})
	rep.Sections = append(rep.Sections, SummarySection{"global", GlobalTitle, global})
	return rep
}

func summaryRow(r results.AggRow, opts SummaryOptions) SummaryRow {
	ep := r.OptimalEndpoint
	if ep == "" {
		ep = r.BaselineEndpoint
	}
	row := SummaryRow{
		Time: HumanTime(r.RunTS), RunTS: r.RunTS,
		Alias: naming.Alias(r.Model, opts.Prefix, opts.Suffix), Model: r.Model,
		Stack: r.Stack, Host: r.Host, Endpoint: ep, GPULabel: r.GPULabel, GPUName: r.GPUName,
		NumGPU: r.NumGPU, OptimalVariant: r.OptimalVariant,
		OptimalTPS: round2(r.OptimalTPS), BaselineTPS: round2(r.BaselineTPS),
		Ratio: ratio(r.OptimalTPS, r.BaselineTPS), Gain: rowGain(r), CSVFile: r.CSVFile,
	}
	if ev := r.Evidence; ev != nil && r.OptimalTPS > 0 {
		row.JoulesPerToken, row.JoulesPerTokenAboveIdle = ev.OptimalJoulesPerToken, ev.OptimalJoulesPerTokenAboveIdle
		row.EnergySource = ev.OptimalEnergySource
	}
	return row
}

// rowGain is an aggregate row's gain: its tuned configuration against the baseline of the same
// endpoint, tested on the repeats kept beside the aggregate (AggRow.Evidence). "~ (p=…)" when
// the default stayed best because the difference was not significant; "n=1" for rows without
// repeats (the original's, or runs without a JSONL), which claim no difference.
func rowGain(r results.AggRow) *results.Gain {
	if r.BaselineTPS <= 0 || r.OptimalTPS <= 0 {
		return nil
	}
	ev := r.Evidence
	if ev == nil {
		return results.NewGain(r.OptimalTPS/r.BaselineTPS, nil, false)
	}
	if len(ev.TunedRepeats) == 0 && ev.TunedTPS <= 0 {
		return nil // no tuned configuration worked: the default against itself
	}
	return results.NewGain(r.OptimalTPS/r.BaselineTPS, results.CompareRepeats(ev.TunedRepeats, ev.BaselineRepeats), ev.Optimum == results.OptimumBaseline)
}

// summaryColumns are the columns of every summary table.
var (
	summaryHeader = []string{"timestamp", "model", "stack", "host", "endpoint", "gpu", "num_gpu", "tok/s", "base_t/s", "x", "J/tok"}
	summaryRight  = []bool{false, false, false, false, false, false, true, true, true, true, true}
)

func (s SummarySection) table() table {
	t := table{title: s.Title, header: summaryHeader, right: summaryRight}
	for _, r := range s.Rows {
		t.rows = append(t.rows, []string{
			cell(r.Time), cell(r.Alias), cell(r.Stack), cell(r.Host), cell(r.Endpoint),
			cell(r.GPULabel), cell(r.NumGPU), tpsCell(r.OptimalTPS), tpsCell(r.BaselineTPS), gainCell(r.Gain, r.Ratio),
			joulesCell(r.JoulesPerToken),
		})
	}
	return t
}

// WriteText prints the summary: "Data: <csv>" when Source is set, then each section after a
// blank line.
func (r SummaryReport) WriteText(w io.Writer) error {
	if r.Source != "" {
		if _, err := fmt.Fprintf(w, "Data: %s\n", r.Source); err != nil {
			return err
		}
	}
	for _, s := range r.Sections {
		if err := s.table().write(w); err != nil {
			return err
		}
	}
	if r.Serving != nil {
		return r.Serving.WriteText(w)
	}
	return nil
}

// WriteJSON prints the summary as one indented JSON object.
func (r SummaryReport) WriteJSON(w io.Writer) error {
	return writeJSON(w, r)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
