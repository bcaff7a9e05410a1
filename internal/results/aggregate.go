package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

// # Aggregate
//
// factory/LLM/refinery/benchmarks.csv holds one row per (run CSV, base model): the seed's 13
// columns, AggHeader. It is appended to by Collect and read by the best files and the
// summaries. Compared with the original collect-results.sh:
//
//   - Rows are de-duplicated by (csv_file, model): collecting the same run twice adds nothing.
//   - baseline and optimum are measured on the same endpoint (the same GPU of the same host):
//     the original took the best baseline and the best optimum over every endpoint of the run
//     independently, so a baseline that failed on one GPU and worked on another showed a gain
//     that no configuration had. The best configuration is chosen with the significance rule
//     (significance.go) on the repeats of the run's JSONL.
//   - gpu_label and gpu_name describe the row they belong with: the optimal row's GPU when
//     there is an optimal row, else the baseline's (the original always took the baseline's,
//     even when the optimum was measured on the other GPU, and left them empty when only the
//     optimum worked).
//   - A model with an optimal row but no working baseline on its endpoint keeps
//     baseline_tokps 0.00 and an empty baseline_endpoint, as before.
//   - When there is no optimal row, optimal_variant and num_gpu are empty and optimal_tokps /
//     optimal_endpoint repeat the baseline's (the original's convention, which the best files
//     rely on: the best known configuration of such a model is its baseline).
//   - The file is rewritten as a whole through a temporary file and a rename, so an
//     interrupted collect leaves either the old or the new aggregate, never half a row.
//
// The columns stay the seed's 13. What a row's optimum rests on — the repeats of its baseline
// and of the best tuned configuration on its endpoint — is kept beside the aggregate in
// <stem>.repeats.jsonl (EvidencePath), one AggEvidence per row that had samples, so that the
// best files and the summaries can apply the same rule across runs.

// AggHeader is the aggregate's header, the seed's 13 columns.
var AggHeader = []string{
	"run_ts", "host", "stack", "model", "baseline_tokps", "optimal_variant", "optimal_tokps",
	"baseline_endpoint", "optimal_endpoint", "gpu_label", "gpu_name", "num_gpu", "csv_file",
}

// AggColumns is the width of every aggregate row.
const AggColumns = 13

// AggRow is one aggregate row: the outcome of one base model in one run CSV.
type AggRow struct {
	RunTS            string // YYYYmmdd_HHMMSS from the run CSV's file name
	Host             string // short host name of the machine that collected the run
	Stack            string // canonical stack: ollama, vLLM, llama.cpp, Triton
	Model            string // base_model
	BaselineTPS      float64
	OptimalVariant   string // model_tag of the optimal row; empty when there is none
	OptimalTPS       float64
	BaselineEndpoint string
	OptimalEndpoint  string
	GPULabel         string
	GPUName          string
	NumGPU           string // num_gpu of the optimal row
	CSVFile          string // absolute path of the run CSV
	// Evidence is what the optimum rests on, from the run's JSONL (EvidencePath beside the
	// aggregate); nil for rows without samples. It is not an aggregate column.
	Evidence *AggEvidence
}

// AggEvidence is one line of <stem>.repeats.jsonl: the repeats behind an aggregate row
// (csv_file, model), all measured on one endpoint.
type AggEvidence struct {
	CSVFile  string `json:"csv_file"`
	Model    string `json:"model"`
	Endpoint string `json:"endpoint"`
	// BaselineRepeats are the repeats of the endpoint's base-as-is configuration (none: it
	// failed, or its row has no sample).
	BaselineRepeats []float64 `json:"baseline_repeats,omitempty"`
	// The best tuned (optimized or published) configuration on the endpoint, compared with the
	// baseline; empty when none worked.
	TunedVariant string    `json:"tuned_variant,omitempty"`
	TunedNumGPU  string    `json:"tuned_num_gpu,omitempty"`
	TunedTPS     float64   `json:"tuned_tokps,omitempty"`
	TunedRepeats []float64 `json:"tuned_repeats,omitempty"`
	// Optimum is which of the two the row's optimum is: "baseline" or "tuned".
	Optimum string `json:"optimum"`
	// The optimum's energy per output token (measure.Metrics.JoulesPerToken, and above idle)
	// and where its energy came from; absent when its sample has no measured energy.
	OptimalJoulesPerToken          *float64 `json:"optimal_joules_per_token,omitempty"`
	OptimalJoulesPerTokenAboveIdle *float64 `json:"optimal_joules_per_token_above_idle,omitempty"`
	OptimalEnergySource            string   `json:"optimal_energy_source,omitempty"`
}

// Values of AggEvidence.Optimum.
const (
	OptimumBaseline = "baseline"
	OptimumTuned    = "tuned"
)

// OptimalRepeats are the repeats of the row's optimum (nil when unknown).
func (e *AggEvidence) OptimalRepeats() []float64 {
	switch {
	case e == nil:
		return nil
	case e.Optimum == OptimumTuned:
		return e.TunedRepeats
	}
	return e.BaselineRepeats
}

// EvidencePath is the JSONL beside an aggregate that holds its rows' AggEvidence: for
// <dir>/benchmarks.csv, <dir>/benchmarks.repeats.jsonl.
func EvidencePath(aggPath string) string {
	return strings.TrimSuffix(aggPath, filepath.Ext(aggPath)) + ".repeats.jsonl"
}

// Fields returns the row as AggColumns fields in AggHeader order (numbers %.2f).
func (r AggRow) Fields() []string {
	return []string{
		r.RunTS, r.Host, r.Stack, r.Model, formatTPS(r.BaselineTPS), r.OptimalVariant,
		formatTPS(r.OptimalTPS), r.BaselineEndpoint, r.OptimalEndpoint, r.GPULabel, r.GPUName,
		r.NumGPU, r.CSVFile,
	}
}

// aggKey is the de-duplication key of the aggregate.
func aggKey(csvFile, model string) string {
	return filepath.Clean(csvFile) + "\x00" + model
}

// Labels of the run CSV's variant_label column that the aggregate distinguishes.
const (
	labelBaseline  = "base-as-is"
	labelOptimized = "optimized"
	labelPublished = "published"
)

// SummarizeRun reduces one run CSV to one AggRow per base_model, in the order the models
// first appear in the file. The rows of a model are grouped by endpoint (endpoint, gpu_uuid,
// gpu_label): a gain is only ever computed between configurations of one endpoint. Rows at
// 0 tok/s (failed) and rows whose sample is a measurement error (MeasurementError) are never
// chosen. "A beats B" is Beats on the rows' repeats from the run's JSONL (SampleRepeats):
// significantly faster by the U test, or, for rows without samples, a higher tokens_per_sec.
// Per endpoint:
//   - baseline: the first working base-as-is row, replaced by a later one only if it beats it;
//   - tuned: the first working optimized or published row, replaced likewise;
//   - optimum: the tuned one if it beats the baseline (or there is no baseline), else the
//     baseline itself (its model_tag and num_gpu, usually "default");
//
// and the model's row is the endpoint whose optimum beats those of the endpoints before it
// (the first endpoint with an optimum otherwise), with that endpoint's own baseline. A model
// whose rows all failed still gets a row (0.00, empty variant and endpoints). The row's
// Evidence carries the repeats when the run has samples.
//
// The stack and run_ts come from the file name (<prefix>_bench_<YYYYmmdd_HHMMSS>.csv); a name
// without a run timestamp falls back to the first row's ts (or the file's modification time)
// with a warning. csv_file is the absolute path. warnings are the reader's "file:line: …"
// lines for rows that were skipped.
//
// A file that gives no aggregate row is a *NotRunCSVError saying why, checked in this order:
// an empty file or another header (ReadRunCSV), no rows (header only) or no readable rows, a
// name that does not say the stack.
func SummarizeRun(csvPath, host string) ([]AggRow, []string, error) {
	rows, warnings, err := ReadRunCSV(csvPath)
	if err != nil {
		return nil, warnings, err
	}
	if len(rows) == 0 {
		reason := "header only, no rows"
		if len(warnings) > 0 {
			reason = fmt.Sprintf("no readable rows (%d skipped)", len(warnings))
		}
		return nil, warnings, &NotRunCSVError{Path: csvPath, Reason: reason}
	}
	st, ok := StackFromFileName(csvPath)
	if !ok {
		return nil, warnings, &NotRunCSVError{Path: csvPath, Reason: "cannot tell the stack from the file name (want <ollama|vllm|llamacpp|triton>_bench_<YYYYmmdd_HHMMSS>.csv)"}
	}
	abs, err := filepath.Abs(csvPath)
	if err != nil {
		return nil, warnings, fmt.Errorf("results: %w", err)
	}
	runTS, ok := RunTSFromFileName(csvPath)
	if !ok {
		runTS = fallbackRunTS(csvPath, rows)
		warnings = append(warnings, fmt.Sprintf("%s: no YYYYmmdd_HHMMSS in the file name; run_ts %s taken from its contents", csvPath, runTS))
	}

	recs, w := ReadRunSamples(csvPath, rows)
	warnings = append(warnings, w...)

	type model struct {
		groups []*endpointConfigs
		index  map[string]*endpointConfigs
	}
	var order []string
	byModel := map[string]*model{}
	for i := range rows {
		r := &rows[i]
		if r.BaseModel == "" {
			warnings = append(warnings, fmt.Sprintf("%s: a row without base_model (ts %s, endpoint %s) ignored", csvPath, formatTS(r.TS), r.Endpoint))
			continue
		}
		m := byModel[r.BaseModel]
		if m == nil {
			m = &model{index: map[string]*endpointConfigs{}}
			byModel[r.BaseModel] = m
			order = append(order, r.BaseModel)
		}
		k := r.Endpoint + "\x00" + r.GPUUUID + "\x00" + r.GPULabel
		g := m.index[k]
		if g == nil {
			g = &endpointConfigs{}
			m.index[k] = g
			m.groups = append(m.groups, g)
		}
		var sample *measure.Sample
		if recs[i] != nil {
			sample = recs[i].Sample
		}
		if r.TokensPerSec <= 0 || MeasurementError(sample) {
			continue
		}
		c := &config{row: r, repeats: SampleRepeats(sample), sample: sample}
		switch r.VariantLabel {
		case labelBaseline:
			if g.base == nil || c.beats(g.base) {
				g.base = c
			}
		case labelOptimized, labelPublished:
			if g.tuned == nil || c.beats(g.tuned) {
				g.tuned = c
			}
		}
	}

	out := make([]AggRow, 0, len(order))
	for _, name := range order {
		var best *endpointConfigs
		for _, g := range byModel[name].groups {
			if opt := g.optimum(); opt != nil && (best == nil || opt.beats(best.optimum())) {
				best = g
			}
		}
		ar := AggRow{RunTS: runTS, Host: host, Stack: st, Model: name, CSVFile: abs}
		if best != nil {
			best.fill(&ar)
		}
		// The values the CSV carries: two decimals.
		ar.BaselineTPS = round2(ar.BaselineTPS)
		ar.OptimalTPS = round2(ar.OptimalTPS)
		out = append(out, ar)
	}
	return out, warnings, nil
}

// config is a working row of a run with the repeats of its sample (nil without one).
type config struct {
	row     *Row
	repeats []float64
	sample  *measure.Sample // nil without one
}

// beats is Beats: c replaces the incumbent inc.
func (c *config) beats(inc *config) bool {
	return Beats(c.row.TokensPerSec, c.repeats, inc.row.TokensPerSec, inc.repeats)
}

// endpointConfigs are the chosen configurations of one model on one endpoint of a run.
type endpointConfigs struct {
	base, tuned *config
}

// tunedWins reports whether the tuned configuration is the endpoint's optimum.
func (g *endpointConfigs) tunedWins() bool {
	return g.tuned != nil && (g.base == nil || g.tuned.beats(g.base))
}

// optimum is the endpoint's best configuration; nil when nothing worked there.
func (g *endpointConfigs) optimum() *config {
	if g.tunedWins() {
		return g.tuned
	}
	return g.base
}

// fill sets the aggregate columns and the evidence of an endpoint's result.
func (g *endpointConfigs) fill(ar *AggRow) {
	ev := &AggEvidence{CSVFile: ar.CSVFile, Model: ar.Model, Optimum: OptimumBaseline}
	if b := g.base; b != nil {
		ar.BaselineTPS, ar.BaselineEndpoint = b.row.TokensPerSec, b.row.Endpoint
		ar.GPULabel, ar.GPUName = b.row.GPULabel, b.row.GPUName
		ar.OptimalTPS, ar.OptimalEndpoint = ar.BaselineTPS, ar.BaselineEndpoint
		ev.Endpoint, ev.BaselineRepeats = b.row.Endpoint, b.repeats
	}
	if t := g.tuned; t != nil {
		ev.TunedVariant, ev.TunedNumGPU, ev.TunedTPS, ev.TunedRepeats = t.row.ModelTag, t.row.NumGPU, round2(t.row.TokensPerSec), t.repeats
		ev.Endpoint = t.row.Endpoint
	}
	switch {
	case g.tunedWins():
		t := g.tuned.row
		ar.OptimalVariant, ar.OptimalTPS, ar.OptimalEndpoint, ar.NumGPU = t.ModelTag, t.TokensPerSec, t.Endpoint, t.NumGPU
		ar.GPULabel, ar.GPUName = t.GPULabel, t.GPUName
		ev.Optimum = OptimumTuned
	case g.tuned != nil:
		// No tuned setting beat the server's own defaults: the best configuration is the
		// baseline, and recommending another num_gpu would claim a gain nobody measured.
		ar.OptimalVariant, ar.NumGPU = g.base.row.ModelTag, g.base.row.NumGPU
	}
	if opt := g.optimum(); opt != nil && opt.sample != nil {
		m := measure.Derive(opt.sample)
		ev.OptimalJoulesPerToken, ev.OptimalJoulesPerTokenAboveIdle = m.JoulesPerToken, m.JoulesPerTokenAboveIdle
		if m.JoulesPerToken != nil {
			ev.OptimalEnergySource = opt.sample.Telemetry.Source
		}
	}
	if ev.BaselineRepeats != nil || ev.TunedRepeats != nil {
		ar.Evidence = ev
	}
}

func round2(v float64) float64 {
	f, _ := strconv.ParseFloat(formatTPS(v), 64)
	return f
}

// fallbackRunTS is the run timestamp of a run CSV whose name carries none.
func fallbackRunTS(path string, rows []Row) string {
	for _, r := range rows {
		if !r.TS.IsZero() {
			return r.TS.In(time.Local).Format(RunTSLayout)
		}
	}
	if st, err := os.Stat(path); err == nil {
		return st.ModTime().Format(RunTSLayout)
	}
	return ""
}

// ReadAggregate reads an aggregate written by this program or by the original scripts.
// A row that is not exactly AggColumns fields, or whose tokps fields are not numbers, is
// skipped with a warning "file:line: …" — never mapped onto the wrong columns. Rows that repeat
// an earlier row's (csv_file, model) — the original appended the same run several times —
// are dropped, keeping the first, with one warning listing their lines. The header must be
// AggHeader (a BOM and a trailing empty header field are tolerated).
func ReadAggregate(path string) ([]AggRow, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	rows, lines, warnings, err := parseAggregate(path, data)
	if err != nil {
		return nil, warnings, err
	}
	seen := map[string]int{}
	var dups []string
	out := rows[:0]
	for i, r := range rows {
		k := aggKey(r.CSVFile, r.Model)
		if first, dup := seen[k]; dup && r.CSVFile != "" {
			dups = append(dups, fmt.Sprintf("%d (= line %d)", lines[i], first))
			continue
		}
		seen[k] = lines[i]
		out = append(out, r)
	}
	if len(dups) > 0 {
		shown := dups
		more := ""
		if len(shown) > 10 {
			shown, more = shown[:10], fmt.Sprintf(" and %d more", len(dups)-10)
		}
		warnings = append(warnings, fmt.Sprintf("%s: %d duplicate rows (same csv_file and model as an earlier row) ignored: lines %s%s",
			path, len(dups), strings.Join(shown, ", "), more))
	}
	evidence, w, err := readEvidence(EvidencePath(path))
	warnings = append(warnings, w...)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("%v; rows read without their repeats", err))
	}
	for i := range out {
		out[i].Evidence = evidence[aggKey(out[i].CSVFile, out[i].Model)]
	}
	return out, warnings, nil
}

// readEvidence reads an aggregate's <stem>.repeats.jsonl by (csv_file, model); the last line
// of a key wins. A missing file is no evidence; a line that does not decode is skipped with a
// warning "file:line: …".
func readEvidence(path string) (map[string]*AggEvidence, []string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	out := map[string]*AggEvidence{}
	var warnings []string
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev AggEvidence
		if err := json.Unmarshal(line, &ev); err != nil || ev.CSVFile == "" {
			if err == nil {
				err = errors.New("no csv_file")
			}
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; line skipped", path, n+1, err))
			continue
		}
		out[aggKey(ev.CSVFile, ev.Model)] = &ev
	}
	return out, warnings, nil
}

// appendEvidence adds the evidence of rows to the aggregate's <stem>.repeats.jsonl (through a
// temporary file and a rename, as the aggregate); nothing when no row has any.
func appendEvidence(aggPath string, rows []AggRow) error {
	var add bytes.Buffer
	for _, r := range rows {
		if r.Evidence == nil {
			continue
		}
		line, err := json.Marshal(r.Evidence)
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		add.Write(line)
		add.WriteByte('\n')
	}
	if add.Len() == 0 {
		return nil
	}
	path := EvidencePath(aggPath)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("results: %w", err)
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	return WriteFileAtomic(path, append(old, add.Bytes()...), 0o644)
}

// parseAggregate parses aggregate bytes, returning every readable row and its line number.
func parseAggregate(path string, data []byte) (rows []AggRow, lines []int, warnings []string, err error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	head, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, nil, nil // an empty file: no rows yet
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("results: %s: header: %w", path, err)
	}
	if !isAggHeader(head) {
		return nil, nil, nil, fmt.Errorf("results: %s: not an aggregate CSV: header %q, want %q",
			path, strings.Join(head, ","), strings.Join(AggHeader, ","))
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				warnings = append(warnings, fmt.Sprintf("%s:%d: %v; row skipped", path, pe.StartLine, pe.Err))
				continue
			}
			return rows, lines, warnings, fmt.Errorf("results: %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		row, err := parseAggRecord(rec)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; row skipped", path, line, err))
			continue
		}
		rows = append(rows, row)
		lines = append(lines, line)
	}
	return rows, lines, warnings, nil
}

func isAggHeader(h []string) bool { return matchesHeader(h, AggHeader) }

func parseAggRecord(rec []string) (AggRow, error) {
	if len(rec) != AggColumns {
		return AggRow{}, fmt.Errorf("%d fields, want %d", len(rec), AggColumns)
	}
	num := func(col int) (float64, error) {
		s := strings.TrimSpace(rec[col])
		if s == "" {
			return 0, nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || finite(v) != v || v < 0 {
			return 0, fmt.Errorf("%s %q is not a number", AggHeader[col], rec[col])
		}
		return v, nil
	}
	base, err := num(4)
	if err != nil {
		return AggRow{}, err
	}
	opt, err := num(6)
	if err != nil {
		return AggRow{}, err
	}
	return AggRow{
		RunTS: strings.TrimSpace(rec[0]), Host: rec[1], Stack: rec[2], Model: rec[3],
		BaselineTPS: base, OptimalVariant: rec[5], OptimalTPS: opt,
		BaselineEndpoint: rec[7], OptimalEndpoint: rec[8], GPULabel: rec[9], GPUName: rec[10],
		NumGPU: strings.TrimSpace(rec[11]), CSVFile: rec[12],
	}, nil
}

// CollectResult is what Collect did.
type CollectResult struct {
	Added     int      // aggregate rows appended
	Collected int      // files read as run CSVs: their rows are in the aggregate now (added now or before)
	Skipped   []string // one "FILE: why" per file that is not a run CSV with rows (see NotRunCSVError)
}

// Collect appends to the aggregate at aggPath one row per (run CSV, base model) of runCSVs,
// skipping every (csv_file, model) already in the aggregate or already added by this call, so
// collecting the same runs again changes nothing. A missing aggregate is created with the
// header (also when there is nothing to add). Existing lines are kept byte for byte; rows
// that cannot be read are reported and left in place.
//
// A file that is not a run CSV with rows (empty, header only, another header such as the
// original's legacy llm_bench_*_ALL.csv, a name that does not say the stack) is skipped and
// listed in Skipped with the reason; the others are collected. Any other error (a file that
// cannot be read, an aggregate that is not one) writes nothing. The new file is written beside
// the old one and renamed over it, so a crash leaves the old or the new aggregate, never a
// partial one. host is the host column. The repeats behind the new rows (AggEvidence, for runs
// with a JSONL) are appended to EvidencePath(aggPath) the same way, before the aggregate.
func Collect(aggPath string, runCSVs []string, host string) (res CollectResult, warnings []string, err error) {
	old, err := os.ReadFile(aggPath)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, nil, fmt.Errorf("results: %w", err)
	}
	var existing []AggRow
	if exists {
		var w []string
		existing, _, w, err = parseAggregate(aggPath, old)
		warnings = append(warnings, w...)
		if err != nil {
			return res, warnings, err
		}
	}
	seen := map[string]bool{}
	for _, r := range existing {
		seen[aggKey(r.CSVFile, r.Model)] = true
	}
	var fresh []AggRow
	for _, p := range runCSVs {
		rows, w, err := SummarizeRun(p, host)
		warnings = append(warnings, w...)
		var notRun *NotRunCSVError
		if errors.As(err, &notRun) {
			res.Skipped = append(res.Skipped, notRun.Path+": "+notRun.Reason)
			continue
		}
		if err != nil {
			return CollectResult{}, warnings, err
		}
		res.Collected++
		for _, r := range rows {
			k := aggKey(r.CSVFile, r.Model)
			if seen[k] {
				continue
			}
			seen[k] = true
			fresh = append(fresh, r)
		}
	}
	if exists && len(fresh) == 0 {
		return res, warnings, nil
	}

	var buf bytes.Buffer
	if exists && len(bytes.TrimSpace(old)) > 0 {
		buf.Write(old)
		if old[len(old)-1] != '\n' {
			buf.WriteByte('\n')
		}
	} else {
		buf.WriteString(strings.Join(AggHeader, ",") + "\n")
	}
	cw := csv.NewWriter(&buf)
	for _, r := range fresh {
		if err := cw.Write(r.Fields()); err != nil {
			return CollectResult{}, warnings, fmt.Errorf("results: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return CollectResult{}, warnings, fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(aggPath), 0o755); err != nil {
		return CollectResult{}, warnings, fmt.Errorf("results: %w", err)
	}
	// The repeats first: a row of the aggregate is never without the evidence it was chosen
	// on (an interrupted collect may leave evidence for rows not added yet; adding them later
	// writes the same evidence again, and the last line of a key wins).
	if err := appendEvidence(aggPath, fresh); err != nil {
		return CollectResult{}, warnings, err
	}
	if err := WriteFileAtomic(aggPath, buf.Bytes(), 0o644); err != nil {
		return CollectResult{}, warnings, err
	}
	res.Added = len(fresh)
	return res, warnings, nil
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the same directory,
// syncs it, renames it over path and syncs the directory. A file being replaced keeps its
// permission bits and, where the process may set them, its owner and group (so a run under
// sudo does not turn a user's file into root's). perm applies to a new file.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	var owner *syscall.Stat_t
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owner = sys
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if owner != nil && (int(owner.Uid) != os.Getuid() || int(owner.Gid) != os.Getgid()) {
		_ = tmp.Chown(int(owner.Uid), int(owner.Gid)) // best effort: only root may give files away
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not every file system supports it
		d.Close()
	}
	return nil
}

// FindRunCSVs lists the run CSVs in logDir, newest first: by the run timestamp in the file
// name, then by the _N suffix of runs started in the same second. stack (any spelling
// CanonicalStack accepts) keeps one stack's files; "" keeps every stack's.
func FindRunCSVs(logDir, stack string) ([]string, error) {
	want := ""
	if stack != "" {
		c, ok := CanonicalStack(stack)
		if !ok {
			return nil, fmt.Errorf("results: unknown stack %q (want ollama, vLLM, llama.cpp or Triton)", stack)
		}
		want = c
	}
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	type cand struct {
		path, ts string
		n        int
	}
	var cs []cand
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		m := runFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		st, ok := StackFromFileName(e.Name())
		if !ok || (want != "" && st != want) {
			continue
		}
		n := 1
		stem := strings.TrimSuffix(e.Name(), ".csv")
		if i := strings.LastIndexByte(stem, '_'); i >= 0 && len(stem)-i-1 < 6 {
			if v, err := strconv.Atoi(stem[i+1:]); err == nil {
				n = v
			}
		}
		cs = append(cs, cand{filepath.Join(logDir, e.Name()), m[2], n})
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.ts != b.ts {
			return a.ts > b.ts
		}
		if a.n != b.n {
			return a.n > b.n
		}
		return a.path < b.path
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.path
	}
	return out, nil
}

// StrayBenchCSVs lists, sorted, the CSVs in logDir that look like benchmark output
// (*_bench_*.csv, the original's glob) but whose name says no known stack — the original's
// legacy llm_bench_*_ALL.csv files among them. FindRunCSVs never returns them; collect --all
// passes them to Collect, which skips each with a warning saying why.
func StrayBenchCSVs(logDir string) ([]string, error) {
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".csv") || !strings.Contains(n, "_bench_") {
			continue
		}
		if _, ok := StackFromFileName(n); !ok {
			out = append(out, filepath.Join(logDir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}
