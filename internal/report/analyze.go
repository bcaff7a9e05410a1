package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/tune"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
)

// Run is one run CSV to analyse, with the records of its JSONL when there is one.
type Run struct {
	CSV     string
	Stack   string // canonical stack name
	Rows    []results.Row
	Records []results.Record // nil without a JSONL
	// Tuning is the run's tuning search reports (<run>.tuning.json; nil without one).
	Tuning []tune.Report
}

// LoadRun reads a run CSV and the JSONL of the same base name beside it, if present. stack
// names the run's stack; "" takes it from the file name ("unknown" when the name does not
// say). Warnings are the readers' "file:line: …" lines for skipped rows.
func LoadRun(csvPath, stackName string) (Run, []string, error) {
	run := Run{CSV: csvPath, Stack: stackName}
	if run.Stack == "" {
		if s, ok := results.StackFromFileName(csvPath); ok {
			run.Stack = s
		} else {
			run.Stack = "unknown"
		}
	}
	rows, warnings, err := results.ReadRunCSV(csvPath)
	if err != nil {
		return run, warnings, err
	}
	run.Rows = rows
	if run.Tuning, err = tune.ReportsOf(csvPath); err != nil {
		warnings = append(warnings, fmt.Sprintf("%v; analysed without the tuning report", err))
	}
	jsonl := strings.TrimSuffix(csvPath, ".csv") + ".jsonl"
	if jsonl != csvPath {
		recs, w, err := results.ReadRunJSONL(jsonl)
		warnings = append(warnings, w...)
		switch {
		case err == nil:
			run.Records = recs
			if run.Records == nil {
				run.Records = []results.Record{}
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			warnings = append(warnings, fmt.Sprintf("%s: %v; analysed without samples", jsonl, err))
		}
	}
	return run, warnings, nil
}

// AnalyzeOptions select what an analysis shows.
type AnalyzeOptions struct {
	Model  *regexp.Regexp // only base models matching it (counts are taken before)
	Top    int            // rows of "Top N by tokens/sec"; <= 0 leaves the section out
	Prefix string         // ALIAS_PREFIX
	Suffix string         // ALIAS_SUFFIX
}

// Attempt is one CSV row, with what its JSONL sample adds when there is one.
type Attempt struct {
	Time      string  `json:"time"`
	CSV       string  `json:"csv"`
	Stack     string  `json:"stack"`
	Endpoint  string  `json:"endpoint"`
	GPULabel  string  `json:"gpu_label"`
	Model     string  `json:"model"`
	Alias     string  `json:"alias"`
	Label     string  `json:"variant_label"`
	ModelTag  string  `json:"model_tag"`
	NumGPU    string  `json:"num_gpu"`
	TPS       float64 `json:"tokens_per_sec"`
	Outcome   string  `json:"outcome"` // the sample's; without one "ok" (tok/s > 0) or "failed"
	Error     string  `json:"error,omitempty"`
	HasSample bool    `json:"has_sample"`
	// From the JSONL record (zero when unknown).
	TTFT          int64     `json:"ttft_ns,omitempty"`
	PrefillTPS    float64   `json:"prefill_tps,omitempty"`
	RepeatTPS     []float64 `json:"repeat_tps,omitempty"`
	RooflineShare float64   `json:"roofline_share,omitempty"` // decode rate ÷ roofline, 2 decimals
	// MeasurementError: the rate is above the roofline; the attempt is never chosen as best.
	MeasurementError bool `json:"measurement_error,omitempty"`
	// From the sample's telemetry: energy per output token (also above the idle power), where
	// the energy came from, mean power and peak memory; absent ("n/a") when not measured.
	JoulesPerToken          *float64 `json:"joules_per_token,omitempty"`
	JoulesPerTokenAboveIdle *float64 `json:"joules_per_token_above_idle,omitempty"`
	EnergySource            string   `json:"energy_source,omitempty"`
	PowerMeanW              *float64 `json:"power_mean_w,omitempty"`
	MemPeakMiB              *int     `json:"mem_peak_mib,omitempty"`

	repeats []float64 // what comparisons use (results.SampleRepeats); nil without a sample
}

// TopAttempt is a row of "Top N by tokens/sec".
type TopAttempt struct {
	Attempt
	Ratio *float64 `json:"ratio"` // ÷ the baseline of the same (stack, endpoint, model)
	// Gain is the attempt against that baseline (nil for the baseline itself or without one).
	Gain *results.Gain `json:"gain,omitempty"`
}

// EndpointResult is baseline vs optimized for one (stack, endpoint, model).
type EndpointResult struct {
	Stack            string   `json:"stack"`
	Endpoint         string   `json:"endpoint"`
	GPULabel         string   `json:"gpu_label"`
	Model            string   `json:"model"`
	Alias            string   `json:"alias"`
	BaselineAttempts int      `json:"baseline_attempts"`
	TunedAttempts    int      `json:"tuned_attempts"` // optimized and published rows
	Baseline         *Attempt `json:"baseline"`       // the chosen base-as-is row; null if none worked
	Best             *Attempt `json:"best"`           // the chosen optimized or published row
	Ratio            *float64 `json:"ratio"`
	// Gain is Best against Baseline: significant or "~" (null without both).
	Gain *results.Gain `json:"gain"`
}

// ModelResult is the best (stack, endpoint) of one model across endpoints and stacks, with
// that endpoint's own baseline: a gain is never a rate on one GPU over a baseline on another.
type ModelResult struct {
	Model            string        `json:"model"`
	Alias            string        `json:"alias"`
	BaselineAttempts int           `json:"baseline_attempts"` // over every endpoint
	TunedAttempts    int           `json:"tuned_attempts"`    // over every endpoint
	Stack            string        `json:"stack,omitempty"`   // of the chosen endpoint
	Endpoint         string        `json:"endpoint,omitempty"`
	GPULabel         string        `json:"gpu_label,omitempty"`
	Baseline         *Attempt      `json:"baseline"`
	Best             *Attempt      `json:"best"`
	Ratio            *float64      `json:"ratio"`
	Gain             *results.Gain `json:"gain"`
}

// OutcomeCount counts the attempts of one (stack, model) that ended one way.
type OutcomeCount struct {
	Stack    string `json:"stack"`
	Model    string `json:"model"`
	Alias    string `json:"alias"`
	Outcome  string `json:"outcome"`
	Attempts int    `json:"attempts"`
	Error    string `json:"first_error,omitempty"`
}

// Analysis is the analysis of the run CSVs of one run.
type Analysis struct {
	CSVs        []string         `json:"csvs"`
	ModelRE     string           `json:"model_re,omitempty"`
	Rows        int              `json:"rows"`   // data rows, before the model filter
	Models      int              `json:"models"` // distinct base models, before the model filter
	TopN        int              `json:"top_n"`
	Top         []TopAttempt     `json:"top"`
	PerEndpoint []EndpointResult `json:"per_endpoint"`
	PerModel    []ModelResult    `json:"per_model"`
	Outcomes    []OutcomeCount   `json:"outcomes"`
	HasSamples  bool             `json:"has_samples"` // some run had a JSONL
	// Tuning is every run's tuning search: best per objective, knob effects, cost.
	Tuning []tune.Report `json:"tuning,omitempty"`
}

// Analyze builds the analysis of runs with the significance rule (results.Beats): per (stack,
// endpoint, model) the baseline is the first working base-as-is row and the best the first
// working optimized or published row, each replaced only by a later row that beats it
// (significantly faster repeats; rows without samples: a higher rate); rows above the
// roofline are never chosen; the gain is the best against its own endpoint's baseline. Per
// model the chosen endpoint is the one whose optimum (best if it beats the baseline, else the
// baseline) beats those met before it. Keys include the stack, since stacks share endpoint
// addresses.
func Analyze(runs []Run, opts AnalyzeOptions) Analysis {
	a := Analysis{TopN: opts.Top}
	for _, r := range runs {
		a.Tuning = append(a.Tuning, r.Tuning...)
	}
	if opts.Model != nil {
		a.ModelRE = opts.Model.String()
	}
	models := map[string]bool{}
	var atts []Attempt
	for i := range runs {
		run := &runs[i]
		a.CSVs = append(a.CSVs, run.CSV)
		a.Rows += len(run.Rows)
		if run.Records != nil {
			a.HasSamples = true
		}
		recs := results.MatchRecords(run.Rows, run.Records)
		for j, r := range run.Rows {
			models[r.BaseModel] = true
			if opts.Model != nil && !opts.Model.MatchString(r.BaseModel) {
				continue
			}
			atts = append(atts, newAttempt(run, r, recs[j], opts))
		}
	}
	a.Models = len(models)

	// Per (stack, endpoint, model), in first-seen order, then sorted.
	epIndex := map[string]int{}
	for i := range atts {
		at := &atts[i]
		k := at.Stack + "\x00" + at.Endpoint + "\x00" + at.Model
		n, ok := epIndex[k]
		if !ok {
			n = len(a.PerEndpoint)
			epIndex[k] = n
			a.PerEndpoint = append(a.PerEndpoint, EndpointResult{Stack: at.Stack, Endpoint: at.Endpoint, Model: at.Model, Alias: at.Alias})
		}
		e := &a.PerEndpoint[n]
		if e.GPULabel == "" {
			e.GPULabel = at.GPULabel
		}
		countAndPick(at, &e.BaselineAttempts, &e.TunedAttempts, &e.Baseline, &e.Best)
	}
	for i := range a.PerEndpoint {
		e := &a.PerEndpoint[i]
		e.Ratio = ratioOf(e.Best, e.Baseline)
		e.Gain = gainOf(e.Best, e.Baseline)
	}

	// Per model: the endpoint whose optimum beats those met before it (first-seen order).
	mIndex := map[string]int{}
	var chosen []*EndpointResult
	for i := range a.PerEndpoint {
		e := &a.PerEndpoint[i]
		n, ok := mIndex[e.Model]
		if !ok {
			n = len(a.PerModel)
			mIndex[e.Model] = n
			a.PerModel = append(a.PerModel, ModelResult{Model: e.Model, Alias: e.Alias})
			chosen = append(chosen, nil)
		}
		m := &a.PerModel[n]
		m.BaselineAttempts += e.BaselineAttempts
		m.TunedAttempts += e.TunedAttempts
		if opt := e.optimum(); opt != nil && (chosen[n] == nil || beats(opt, chosen[n].optimum())) {
			chosen[n] = e
		}
	}
	for i, e := range chosen {
		if e == nil {
			continue
		}
		m := &a.PerModel[i]
		m.Stack, m.Endpoint, m.GPULabel = e.Stack, e.Endpoint, e.GPULabel
		m.Baseline, m.Best, m.Ratio, m.Gain = e.Baseline, e.Best, e.Ratio, e.Gain
	}
	sort.SliceStable(a.PerModel, func(i, j int) bool { return a.PerModel[i].Model < a.PerModel[j].Model })
	sort.SliceStable(a.PerEndpoint, func(i, j int) bool {
		x, y := a.PerEndpoint[i], a.PerEndpoint[j]
		return lessKey([]string{x.Model, x.Stack, x.Endpoint}, []string{y.Model, y.Stack, y.Endpoint})
	})

	// Top N by tok/s, each compared with its own endpoint's baseline.
	if opts.Top > 0 {
		baseOf := map[string]*Attempt{}
		for _, e := range a.PerEndpoint {
			baseOf[e.Stack+"\x00"+e.Endpoint+"\x00"+e.Model] = e.Baseline
		}
		var top []TopAttempt
		for i := range atts {
			at := &atts[i]
			if at.TPS <= 0 {
				continue
			}
			t := TopAttempt{Attempt: *at}
			if b := baseOf[at.Stack+"\x00"+at.Endpoint+"\x00"+at.Model]; b != nil {
				t.Ratio = ratio(at.TPS, b.TPS)
				if b != at {
					t.Gain = gainOf(at, b)
				}
			}
			top = append(top, t)
		}
		sort.SliceStable(top, func(i, j int) bool { return top[i].TPS > top[j].TPS })
		if len(top) > opts.Top {
			top = top[:opts.Top]
		}
		a.Top = top
	}

	// Outcomes per (stack, model).
	oIndex := map[string]int{}
	for _, at := range atts {
		k := at.Stack + "\x00" + at.Model + "\x00" + at.Outcome
		n, ok := oIndex[k]
		if !ok {
			n = len(a.Outcomes)
			oIndex[k] = n
			a.Outcomes = append(a.Outcomes, OutcomeCount{Stack: at.Stack, Model: at.Model, Alias: at.Alias, Outcome: at.Outcome})
		}
		o := &a.Outcomes[n]
		o.Attempts++
		if o.Error == "" {
			o.Error = at.Error
		}
	}
	sort.SliceStable(a.Outcomes, func(i, j int) bool {
		x, y := a.Outcomes[i], a.Outcomes[j]
		return lessKey([]string{x.Stack, x.Model, x.Outcome}, []string{y.Stack, y.Model, y.Outcome})
	})
	if a.CSVs == nil {
		a.CSVs = []string{}
	}
	return a
}

// countAndPick counts an attempt and keeps it as baseline or best when it is the first working
// one, or beats the one kept so far. An attempt above the roofline is never kept.
func countAndPick(at *Attempt, nBase, nTuned *int, base, best **Attempt) {
	var keep **Attempt
	switch at.Label {
	case naming.LabelBaseline:
		*nBase++
		keep = base
	case naming.LabelOptimized, naming.LabelPublished:
		*nTuned++
		keep = best
	default:
		return
	}
	if at.TPS > 0 && !at.MeasurementError && (*keep == nil || beats(at, *keep)) {
		*keep = at
	}
}

// beats is results.Beats on two attempts: significantly faster repeats, or, when either has
// no sample, a higher rate.
func beats(a, b *Attempt) bool { return results.Beats(a.TPS, a.repeats, b.TPS, b.repeats) }

// optimum is the endpoint's best configuration: the tuned one if it beats the baseline (or
// there is no baseline), else the baseline; nil when nothing worked.
func (e *EndpointResult) optimum() *Attempt {
	if e.Best != nil && (e.Baseline == nil || beats(e.Best, e.Baseline)) {
		return e.Best
	}
	return e.Baseline
}

func ratioOf(best, base *Attempt) *float64 {
	if best == nil || base == nil {
		return nil
	}
	return ratio(best.TPS, base.TPS)
}

// gainOf is at against the baseline base of its endpoint (nil without both).
func gainOf(at, base *Attempt) *results.Gain {
	if at == nil || base == nil || base.TPS <= 0 {
		return nil
	}
	return results.NewGain(at.TPS/base.TPS, results.CompareRepeats(at.repeats, base.repeats), false)
}

func lessKey(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func newAttempt(run *Run, r results.Row, rec *results.Record, opts AnalyzeOptions) Attempt {
	at := Attempt{
		Time: humanTS(r.TS), CSV: run.CSV, Stack: run.Stack, Endpoint: r.Endpoint,
		GPULabel: r.GPULabel, Model: r.BaseModel, Alias: naming.Alias(r.BaseModel, opts.Prefix, opts.Suffix),
		Label: r.VariantLabel, ModelTag: r.ModelTag, NumGPU: r.NumGPU, TPS: round2(r.TokensPerSec),
		Outcome: measure.OK,
	}
	if at.TPS <= 0 {
		at.Outcome = "failed"
	}
	if rec == nil || rec.Sample == nil {
		return at
	}
	s := rec.Sample
	at.HasSample = true
	if s.Outcome != "" {
		at.Outcome = s.Outcome
	}
	at.Error = shorten(s.Error, 60)
	at.TTFT = int64(rec.TTFT)
	at.PrefillTPS = round2(rec.PrefillTPS)
	for _, v := range s.RepeatTPS {
		at.RepeatTPS = append(at.RepeatTPS, round2(v))
	}
	at.RooflineShare = round2(s.RooflineShare)
	at.MeasurementError = results.MeasurementError(s)
	at.repeats = results.SampleRepeats(s)
	if t := s.Telemetry; t != nil {
		m := measure.Derive(s)
		at.JoulesPerToken, at.JoulesPerTokenAboveIdle = m.JoulesPerToken, m.JoulesPerTokenAboveIdle
		if m.JoulesPerToken != nil {
			at.EnergySource = t.Source
		}
		at.PowerMeanW, at.MemPeakMiB = t.PowerMeanW, t.MemPeakMiB
	}
	return at
}

// shorten keeps a message on one line and at most n runes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// WriteText prints the analysis: the header lines, then its tables.
func (a Analysis) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range a.CSVs {
		fmt.Fprintf(&b, "CSV     : %s\n", c)
	}
	if a.ModelRE != "" {
		fmt.Fprintf(&b, "Model RE: %s\n", a.ModelRE)
	}
	fmt.Fprintf(&b, "Rows    : %d\nModels  : %d\n", a.Rows, a.Models)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, t := range a.tables() {
		if err := t.write(w); err != nil {
			return err
		}
	}
	for _, r := range a.Tuning {
		fmt.Fprintln(w)
		r.WriteText(w)
	}
	return nil
}

// WriteJSON prints the analysis as one indented JSON object.
func (a Analysis) WriteJSON(w io.Writer) error { return writeJSON(w, a) }

func attemptCell(at *Attempt, attempts int) string {
	switch {
	case at != nil:
		return tpsCell(at.TPS)
	case attempts > 0:
		return "failed"
	default:
		return "-"
	}
}

func (a Analysis) tables() []table {
	var ts []table
	if a.TopN > 0 {
		t := table{
			title:  fmt.Sprintf("Top %d by tokens/sec:", a.TopN),
			header: []string{"timestamp", "model", "stack", "endpoint", "gpu", "label", "num_gpu", "tok/s", "x"},
			right:  []bool{false, false, false, false, false, false, true, true, true},
		}
		for _, r := range a.Top {
			t.rows = append(t.rows, []string{cell(r.Time), cell(r.Alias), cell(r.Stack), cell(r.Endpoint),
				cell(r.GPULabel), cell(r.Label), cell(r.NumGPU), tpsCell(r.TPS), gainCell(r.Gain, r.Ratio)})
		}
		ts = append(ts, t)
	}

	pe := table{
		title:  "Baseline vs optimized per (endpoint, model):",
		header: []string{"model", "stack", "endpoint", "gpu", "base_t/s", "best_t/s", "label", "num_gpu", "x"},
		right:  []bool{false, false, false, false, true, true, false, true, true},
	}
	for _, e := range a.PerEndpoint {
		label, ng := "-", "-"
		if e.Best != nil {
			label, ng = cell(e.Best.Label), cell(e.Best.NumGPU)
		}
		pe.rows = append(pe.rows, []string{cell(e.Alias), cell(e.Stack), cell(e.Endpoint), cell(e.GPULabel),
			attemptCell(e.Baseline, e.BaselineAttempts), attemptCell(e.Best, e.TunedAttempts), label, ng, gainCell(e.Gain, e.Ratio)})
	}
	ts = append(ts, pe)

	pm := table{
		title:  "Best across endpoints (per model):",
		header: []string{"model", "base_t/s", "best_t/s", "stack", "endpoint", "gpu", "label", "num_gpu", "x"},
		right:  []bool{false, true, true, false, false, false, false, true, true},
	}
	for _, m := range a.PerModel {
		label, ng := "-", "-"
		if m.Best != nil {
			label, ng = cell(m.Best.Label), cell(m.Best.NumGPU)
		}
		pm.rows = append(pm.rows, []string{cell(m.Alias), attemptCell(m.Baseline, m.BaselineAttempts),
			attemptCell(m.Best, m.TunedAttempts), cell(m.Stack), cell(m.Endpoint), cell(m.GPULabel), label, ng, gainCell(m.Gain, m.Ratio)})
	}
	ts = append(ts, pm)

	if a.HasSamples {
		sm := table{
			title:  "Baseline and best in detail (JSONL samples):",
			header: []string{"model", "stack", "endpoint", "label", "num_gpu", "tok/s", "repeats", "ttft_ms", "prefill_t/s", "roofline", "J/tok", "J/tok>idle", "power_W", "mem_MiB"},
			right:  []bool{false, false, false, false, true, true, false, true, true, true, true, true, true, true},
		}
		for _, e := range a.PerEndpoint {
			for _, at := range []*Attempt{e.Baseline, e.Best} {
				if at == nil || !at.HasSample {
					continue
				}
				sm.rows = append(sm.rows, []string{cell(at.Alias), cell(at.Stack), cell(at.Endpoint), cell(at.Label),
					cell(at.NumGPU), tpsCell(at.TPS), repeatsCell(at.RepeatTPS), ttftCell(at.TTFT),
					tpsCell(at.PrefillTPS), rooflineCell(at.RooflineShare), joulesCell(at.JoulesPerToken),
					joulesCell(at.JoulesPerTokenAboveIdle), wattsCell(at.PowerMeanW), mibCell(at.MemPeakMiB)})
			}
		}
		ts = append(ts, sm)
	}

	oc := table{
		title:  "Attempts by outcome:",
		header: []string{"stack", "model", "outcome", "attempts", "first_error"},
		right:  []bool{false, false, false, true, false},
	}
	for _, o := range a.Outcomes {
		oc.rows = append(oc.rows, []string{cell(o.Stack), cell(o.Alias), cell(o.Outcome), fmt.Sprint(o.Attempts), cell(o.Error)})
	}
	ts = append(ts, oc)
	return ts
}

// repeatsCell is the range of the repeated measurements: "lo..hi (n=3)".
func repeatsCell(v []float64) string {
	if len(v) < 2 {
		return "-"
	}
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.2f..%.2f (n=%d)", lo, hi, len(v))
}

func ttftCell(ns int64) string {
	if ns <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(ns)/1e6)
}

// rooflineCell is the share of the memory-bandwidth bound; above 100% is a measurement error.
func rooflineCell(share float64) string {
	if share <= 0 {
		return "-"
	}
	s := fmt.Sprintf("%.0f%%", share*100)
	if share > 1 {
		s += " (!)"
	}
	return s
}

// joulesCell is an energy per token, "n/a" when it was not measured (never 0).
func joulesCell(j *float64) string {
	if j == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4g", *j)
}

func wattsCell(w *float64) string {
	if w == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", *w)
}

func mibCell(m *int) string {
	if m == nil {
		return "n/a"
	}
	return fmt.Sprint(*m)
}
