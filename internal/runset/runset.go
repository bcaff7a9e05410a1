// Package runset reads what `fuze report` and `fuze compare` take as input — run CSVs (with
// the JSONL beside them), run JSONLs on their own, aggregates (benchmarks.csv with the repeats
// kept beside it) and folders holding any of these — into one list of measured
// configurations, each with the repeats a comparison uses; and the tuning reports
// (<run>.tuning.json) beside the run CSVs read.
//
// A folder is read one level deep: its run CSVs, the JSONLs that have no CSV beside them, its
// aggregates, and the files the report reads as they are (serving_*.csv, machine.txt); other
// files in it are left alone. A file named on the command line must be one of these.
package runset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/tune"
)

// Config is one measured configuration: a run CSV row with its JSONL record, or one side
// (baseline or optimum) of an aggregate row whose run files are not at hand.
type Config struct {
	Source   string `json:"source"` // base name of the file it was read from
	Stack    string `json:"stack"`  // canonical stack name, "unknown" when nothing says
	Model    string `json:"model"`  // base_model
	Label    string `json:"variant_label"`
	ModelTag string `json:"model_tag"`
	NumGPU   string `json:"num_gpu"` // as written: "default", "33", "-1"…
	// Layers is the number of layers on the GPU when known (llama.cpp's offloaded_layers
	// setting "33/33", or a numeric num_gpu ≥ 0), else -1; TotalLayers the model's (0: unknown).
	Layers      int    `json:"gpu_layers"`
	TotalLayers int    `json:"total_layers,omitempty"`
	NumCtx      string `json:"num_ctx,omitempty"`
	Batch       string `json:"batch,omitempty"`
	NumPredict  string `json:"num_predict,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	GPULabel    string `json:"gpu_label,omitempty"`
	GPUName     string `json:"gpu_name,omitempty"`
	GPUUUID     string `json:"gpu_uuid,omitempty"`
	GPUMemMiB   int    `json:"gpu_mem_mib,omitempty"`
	TS          string `json:"ts,omitempty"` // RFC 3339 as in the CSV
	// TPS is CSV column 12: the client's decode rate (median of the repeats), 0 for a failure.
	TPS float64 `json:"tokens_per_sec"`
	// Repeats are the rates comparisons use (results.SampleRepeats); nil for a row without a
	// sample, which then counts as one value (TPS) and claims nothing.
	Repeats []float64 `json:"repeats,omitempty"`
	Failed  bool      `json:"failed,omitempty"`
	Error   string    `json:"error,omitempty"`

	// Record is the row's JSONL record (nil without one) and Raw that line as written, so that
	// fields this package does not know (telemetry) can still be read from it.
	Record *results.Record `json:"-"`
	Raw    json.RawMessage `json:"-"`
}

// Offload is how the configuration placed the model: "default" for the server's own choice
// (a base-as-is row), else the layers on the GPU when known ("33": Ollama num_gpu 33 and
// llama.cpp -ngl -1 on a 33-layer model are the same placement), else num_gpu as written.
func (c Config) Offload() string {
	switch {
	case c.Label == naming.LabelBaseline:
		return "default"
	case c.Layers >= 0:
		return strconv.Itoa(c.Layers)
	}
	return c.NumGPU
}

// Values is the rates a comparison of this configuration uses: its repeats, or its CSV rate
// as one value when it has none (nil for a failure).
func (c Config) Values() []float64 {
	switch {
	case c.Failed:
		return nil
	case len(c.Repeats) > 0:
		return c.Repeats
	case c.TPS > 0:
		return []float64{c.TPS}
	}
	return nil
}

// Sample is the configuration's measure.Sample (nil without a record).
func (c Config) Sample() *measure.Sample {
	if c.Record == nil {
		return nil
	}
	return c.Record.Sample
}

// Set is everything read from the inputs.
type Set struct {
	Configs []Config
	// Files are the run files and aggregates read, as named (folders expanded).
	Files []string
	// Serving are serving CSVs (serving_*.csv) and Machine machine.txt files found: the report
	// reads them itself.
	Serving []string
	Machine []string
	// Tuning are the tuning searches' reports (<run>.tuning.json, tune.Path) found beside the
	// run CSVs read, in the order the runs were read: the search's effects are only in them,
	// not in the run's rows.
	Tuning []Tuning
}

// Tuning is one tuning report with the file it was read from.
type Tuning struct {
	Source string // the report file's path, as found beside the run CSV
	tune.Report
}

// Kinds of input file.
const (
	kindRun       = "run CSV"
	kindJSONL     = "run JSONL"
	kindAggregate = "aggregate"
	kindServing   = "serving CSV"
	kindMachine   = "machine description"
)

// Load reads paths (files or folders) into a Set. Warnings are the readers' "file:line: …"
// lines and the files a folder held that are none of the inputs; an input named on the
// command line that is not one of them, or cannot be read, is an error.
func Load(paths []string) (*Set, []string, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("no input files")
	}
	type input struct{ path, kind string }
	var inputs []input
	var warnings []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !st.IsDir() {
			k, err := classify(p, nil)
			if err != nil {
				return nil, nil, err
			}
			inputs = append(inputs, input{p, k})
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, nil, err
		}
		names := map[string]bool{}
		for _, e := range entries {
			names[e.Name()] = true
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			k, err := classify(filepath.Join(p, e.Name()), names)
			switch {
			case err != nil:
				continue // not an input: a folder of results holds transcripts, env files, logs
			case k == "":
				continue // a JSONL read with its CSV, an aggregate's repeats
			}
			inputs = append(inputs, input{filepath.Join(p, e.Name()), k})
		}
	}

	set := &Set{}
	seen := map[string]bool{}
	for _, in := range inputs {
		abs, _ := filepath.Abs(in.path)
		if seen[abs] {
			continue
		}
		seen[abs] = true
		var cs []Config
		var w []string
		var err error
		switch in.kind {
		case kindServing:
			set.Serving = append(set.Serving, in.path)
			continue
		case kindMachine:
			set.Machine = append(set.Machine, in.path)
			continue
		case kindRun:
			cs, w, err = readRunCSV(in.path)
			if err == nil {
				set.Tuning = append(set.Tuning, tuningOf(in.path, &w)...)
			}
		case kindJSONL:
			cs, w, err = readJSONLOnly(in.path)
		case kindAggregate:
			cs, w, err = readAggregate(in.path, seen)
		}
		warnings = append(warnings, w...)
		if err != nil {
			return nil, warnings, err
		}
		set.Files = append(set.Files, in.path)
		set.Configs = append(set.Configs, cs...)
	}
	if len(set.Configs) == 0 && len(set.Serving) == 0 {
		return set, warnings, fmt.Errorf("no measured configurations in %s", strings.Join(paths, ", "))
	}
	return set, warnings, nil
}

// classify says what kind of input path is. dir, when the file was found in a folder, holds
// the names beside it: a JSONL with its CSV beside it and an aggregate's .repeats.jsonl are
// read with those ("" and no error).
func classify(path string, dir map[string]bool) (string, error) {
	base := filepath.Base(path)
	switch {
	case base == "machine.txt":
		return kindMachine, nil
	case strings.HasSuffix(base, ".repeats.jsonl"):
		if dir != nil {
			return "", nil
		}
		return "", fmt.Errorf("%s: an aggregate's repeats; name the aggregate (.csv) instead", path)
	case strings.HasSuffix(base, ".jsonl"):
		if dir != nil && dir[strings.TrimSuffix(base, ".jsonl")+".csv"] {
			return "", nil
		}
		return kindJSONL, nil
	case strings.HasSuffix(base, ".csv"):
		if strings.HasPrefix(base, "serving_") {
			return kindServing, nil
		}
		head, err := csvHeader(path)
		if err != nil {
			return "", err
		}
		if serving.IsHeader(head) { // a serving CSV renamed or kept under another name
			return kindServing, nil
		}
		switch strings.Join(head, ",") {
		case strings.Join(results.Header, ","):
			return kindRun, nil
		case strings.Join(results.AggHeader, ","):
			return kindAggregate, nil
		}
		return "", fmt.Errorf("%s: neither a run CSV nor an aggregate (header %q)", path, strings.Join(head, ","))
	}
	return "", fmt.Errorf("%s: not a run CSV, run JSONL, aggregate or serving CSV", path)
}

// csvHeader is a CSV's first record, trimmed as the results readers accept it.
func csvHeader(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	h, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range h {
		h[i] = strings.TrimSpace(strings.TrimPrefix(h[i], "\ufeff"))
	}
	if n := len(h); n > 0 && h[n-1] == "" {
		h = h[:n-1]
	}
	return h, nil
}

// readRunCSV reads a run CSV and the JSONL beside it.
func readRunCSV(path string) ([]Config, []string, error) {
	rows, warnings, err := results.ReadRunCSV(path)
	if err != nil {
		return nil, warnings, err
	}
	var recs []results.Record
	var raws []json.RawMessage
	if p := results.RunJSONLPath(path); p != "" {
		var w []string
		recs, raws, w, err = readJSONL(p)
		warnings = append(warnings, w...)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			warnings = append(warnings, fmt.Sprintf("%s: %v; read without samples", p, err))
		}
	}
	matched := results.MatchRecords(rows, recs)
	index := make(map[*results.Record]int, len(recs))
	for i := range recs {
		index[&recs[i]] = i
	}
	out := make([]Config, 0, len(rows))
	for i, r := range rows {
		var raw json.RawMessage
		if m := matched[i]; m != nil {
			raw = raws[index[m]]
		}
		out = append(out, newConfig(path, results.NewRecord(r, nil).Row, matched[i], raw))
	}
	return out, warnings, nil
}

// tuningOf reads the tuning report beside a run CSV (none when there is none). One that does
// not decode is a warning, not an error: the run's rows are still worth a report.
func tuningOf(csvPath string, warnings *[]string) []Tuning {
	reps, err := tune.ReportsOf(csvPath)
	if err != nil {
		*warnings = append(*warnings, fmt.Sprintf("%v; the run is read without its tuning report", err))
		return nil
	}
	out := make([]Tuning, 0, len(reps))
	for _, r := range reps {
		out = append(out, Tuning{Source: tune.Path(csvPath), Report: r})
	}
	return out
}

// readJSONLOnly reads a run JSONL without its CSV: each record is a row.
func readJSONLOnly(path string) ([]Config, []string, error) {
	recs, raws, warnings, err := readJSONL(path)
	if err != nil {
		return nil, warnings, err
	}
	out := make([]Config, 0, len(recs))
	for i := range recs {
		out = append(out, newConfig(path, recs[i].Row, &recs[i], raws[i]))
	}
	return out, warnings, nil
}

// readJSONL reads a run JSONL's records and each line as written. A line that does not decode
// is skipped with a warning "file:line: …", as results.ReadRunJSONL does.
func readJSONL(path string) ([]results.Record, []json.RawMessage, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	var recs []results.Record
	var raws []json.RawMessage
	var warnings []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		if results.IsRunSummary(b) {
			continue
		}
		var rec results.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; line skipped", path, n, err))
			continue
		}
		recs = append(recs, rec)
		raws = append(raws, append(json.RawMessage(nil), b...))
	}
	if err := sc.Err(); err != nil {
		return recs, raws, warnings, fmt.Errorf("%s: %w", path, err)
	}
	return recs, raws, warnings, nil
}

// newConfig builds the configuration of one row read from path.
func newConfig(path string, r results.JSONRow, rec *results.Record, raw json.RawMessage) Config {
	c := Config{
		Source: filepath.Base(path), Stack: stackOf(path, rec), Model: r.BaseModel,
		Label: r.VariantLabel, ModelTag: r.ModelTag, NumGPU: r.NumGPU, Layers: -1,
		NumCtx: r.NumCtx, Batch: r.Batch, NumPredict: r.NumPredict, Endpoint: r.Endpoint,
		GPULabel: r.GPULabel, GPUName: r.GPUName, GPUUUID: r.GPUUUID, GPUMemMiB: r.GPUMemMiB,
		TS: r.TS, TPS: r.TokensPerSec, Record: rec, Raw: raw,
	}
	var s *measure.Sample
	if rec != nil {
		s = rec.Sample
	}
	c.Failed = !(c.TPS > 0) || (s != nil && s.Failed())
	if s != nil {
		c.Error = s.Error
		if !c.Failed && !results.MeasurementError(s) {
			c.Repeats = results.SampleRepeats(s)
		}
	}
	c.Layers, c.TotalLayers = layersOf(c.NumGPU, s)
	return c
}

// layersOf reads the layers on the GPU: llama.cpp's "offloaded_layers" setting ("33/33"), else
// a numeric num_gpu ≥ 0 (Ollama's num_gpu and llama.cpp's -ngl count layers); -1 otherwise.
func layersOf(numGPU string, s *measure.Sample) (int, int) {
	if s != nil {
		if v, ok := s.Settings["offloaded_layers"]; ok {
			k, n, _ := strings.Cut(v, "/")
			ki, err1 := strconv.Atoi(strings.TrimSpace(k))
			ni, err2 := strconv.Atoi(strings.TrimSpace(n))
			if err1 == nil && ki >= 0 {
				if err2 != nil {
					ni = 0
				}
				return ki, ni
			}
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(numGPU)); err == nil && n >= 0 {
		return n, 0
	}
	return -1, 0
}

// stackOf is the record's stack, else the one the file name says (ollama_bench_….csv, or any
// name starting with a stack's file prefix and "_": llamacpp_llama-8b.csv), else "unknown".
func stackOf(path string, rec *results.Record) string {
	if rec != nil && rec.Sample != nil {
		if s, ok := results.CanonicalStack(rec.Sample.Stack); ok {
			return s
		}
	}
	return stackFromName(path)
}

func stackFromName(path string) string {
	if s, ok := results.StackFromFileName(strings.TrimSuffix(path, ".jsonl") + ".csv"); ok {
		return s
	}
	prefix, _, _ := strings.Cut(filepath.Base(path), "_")
	if s, ok := results.CanonicalStack(prefix); ok {
		return s
	}
	return "unknown"
}

// readAggregate reads an aggregate: the runs it lists are read from their own files when they
// are still there (and not read already); the other rows give their baseline and optimum as
// configurations measured with the repeats kept beside the aggregate.
func readAggregate(path string, seen map[string]bool) ([]Config, []string, error) {
	rows, warnings, err := results.ReadAggregate(path)
	if err != nil {
		return nil, warnings, err
	}
	var out []Config
	read := map[string]bool{}
	for _, r := range rows {
		if r.CSVFile != "" {
			if _, err := os.Stat(r.CSVFile); err == nil {
				abs, _ := filepath.Abs(r.CSVFile)
				if !read[abs] && !seen[abs] {
					cs, w, err := readRunCSV(r.CSVFile)
					warnings = append(warnings, w...)
					if err == nil {
						read[abs], seen[abs] = true, true
						out = append(out, cs...)
						continue
					}
				}
				if read[abs] || seen[abs] {
					continue
				}
			}
		}
		out = append(out, aggConfigs(path, r)...)
	}
	return out, warnings, nil
}

// aggConfigs are an aggregate row's baseline and, when a tuned configuration is its optimum,
// that optimum.
func aggConfigs(path string, r results.AggRow) []Config {
	base := Config{
		Source: filepath.Base(path), Stack: r.Stack, Model: r.Model, Label: naming.LabelBaseline,
		NumGPU: "default", Layers: -1, Endpoint: r.BaselineEndpoint, GPULabel: r.GPULabel,
		GPUName: r.GPUName, TS: runTS(r.RunTS), TPS: r.BaselineTPS,
	}
	ev := r.Evidence
	if ev != nil {
		base.Repeats = ev.BaselineRepeats
	}
	base.Failed = !(base.TPS > 0)
	out := []Config{base}
	if r.OptimalVariant == "" || (ev != nil && ev.Optimum != results.OptimumTuned) ||
		(ev == nil && r.OptimalTPS == r.BaselineTPS && r.NumGPU == "default") {
		return out
	}
	opt := base
	opt.Label, opt.ModelTag, opt.NumGPU, opt.Endpoint = naming.LabelOptimized, r.OptimalVariant, r.NumGPU, r.OptimalEndpoint
	opt.TPS, opt.Repeats, opt.Failed = r.OptimalTPS, nil, !(r.OptimalTPS > 0)
	if ev != nil {
		opt.Repeats = ev.TunedRepeats
	}
	opt.Layers, _ = layersOf(r.NumGPU, nil)
	return append(out, opt)
}

// runTS turns an aggregate's run_ts (YYYYmmdd_HHMMSS, local time) into RFC 3339.
func runTS(s string) string {
	t, err := time.ParseInLocation(results.RunTSLayout, s, time.Local)
	if err != nil {
		return s
	}
	return t.Format(results.TimeLayout)
}

// SortConfigs orders configurations by model, stack, GPU, then offload (default first,
// layers ascending), then source and time: a deterministic order for tables.
func SortConfigs(cs []Config) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		for _, p := range [][2]string{{a.Model, b.Model}, {a.Stack, b.Stack}, {a.GPULabel, b.GPULabel}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		if oa, ob := offloadOrder(a), offloadOrder(b); oa != ob {
			return oa < ob
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.TS < b.TS
	})
}

func offloadOrder(c Config) float64 {
	switch {
	case c.Label == naming.LabelBaseline:
		return -2
	case c.Layers >= 0:
		return float64(c.Layers)
	}
	return math.MaxInt32
}
