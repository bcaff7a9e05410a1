package results

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The three best files are derived from the aggregate and rewritten as a whole every time:
//
//	file                               key            columns
//	benchmarks.best.csv                stack, model   BestByStackModelHeader
//	benchmarks.best.by_host_model.csv  host, model    BestByHostModelHeader
//	benchmarks.best.by_model.csv       model          BestByModelHeader
//
// Only rows with optimal_tokps > 0 count. Per key one row is kept by the significance rule
// (BestBy): the oldest row is the incumbent and a later one replaces it only when its
// optimum's repeats are significantly faster; rows without repeats fall back to Better (the
// highest optimal_tokps, ties going to the newest run_ts, then to the smaller csv_file; the
// original kept the first row seen). Rows are sorted by key; numbers are %.2f.

// Columns of the three best files.
var (
	BestByStackModelHeader = []string{"stack", "model", "host", "optimal_tokps", "baseline_tokps", "optimal_variant", "gpu_label", "gpu_name", "num_gpu", "run_ts", "csv_file"}
	BestByHostModelHeader  = []string{"host", "model", "stack", "optimal_tokps", "baseline_tokps", "optimal_variant", "gpu_label", "gpu_name", "num_gpu", "run_ts", "csv_file"}
	BestByModelHeader      = []string{"model", "stack", "host", "optimal_tokps", "baseline_tokps", "optimal_variant", "gpu_label", "gpu_name", "num_gpu", "run_ts", "csv_file"}
)

// Filters restrict the rows the best files and summaries consider; a nil field matches
// everything. They are the STACK_RE, MODEL_RE, HOST_RE and GPU_RE knobs.
type Filters struct {
	Stack *regexp.Regexp // on the stack column
	Model *regexp.Regexp // on the model column
	Host  *regexp.Regexp // on the host column
	GPU   *regexp.Regexp // on gpu_label or gpu_name
}

// Match reports whether r passes every filter.
func (f Filters) Match(r AggRow) bool {
	return f.matchModelGPU(r) &&
		(f.Stack == nil || f.Stack.MatchString(r.Stack)) &&
		(f.Host == nil || f.Host.MatchString(r.Host))
}

// matchModelGPU applies MODEL_RE and GPU_RE only, as the by-model file does.
func (f Filters) matchModelGPU(r AggRow) bool {
	return (f.Model == nil || f.Model.MatchString(r.Model)) &&
		(f.GPU == nil || f.GPU.MatchString(r.GPULabel) || f.GPU.MatchString(r.GPUName))
}

// Better reports whether a ranks before b: higher optimal_tokps, then newer run_ts, then the
// smaller csv_file, host, stack, model, and the remaining columns — a total order, so the
// choice of a best row never depends on the order of the input.
func Better(a, b AggRow) bool {
	if a.OptimalTPS != b.OptimalTPS {
		return a.OptimalTPS > b.OptimalTPS
	}
	if a.RunTS != b.RunTS {
		return a.RunTS > b.RunTS
	}
	af, bf := a.Fields(), b.Fields()
	for _, i := range []int{12, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11} {
		if af[i] != bf[i] {
			return af[i] < bf[i]
		}
	}
	return false
}

// Beats reports whether aggregate row a replaces the incumbent b as the best configuration:
// when both rows have the repeats of their optimum (Evidence), exactly when a's are
// significantly faster (the U test, CompareRepeats); otherwise, without repeats to test, when
// a ranks before b under Better.
func (a AggRow) Beats(b AggRow) bool {
	if c := CompareRepeats(a.Evidence.OptimalRepeats(), b.Evidence.OptimalRepeats()); c != nil {
		return c.Better
	}
	return Better(a, b)
}

// chronological reports whether a was measured before b: older run_ts, then the smaller
// csv_file and the remaining columns — a total order, the order in which BestBy meets rows.
func chronological(a, b AggRow) bool {
	if a.RunTS != b.RunTS {
		return a.RunTS < b.RunTS
	}
	af, bf := a.Fields(), b.Fields()
	for _, i := range []int{12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11} {
		if af[i] != bf[i] {
			return af[i] < bf[i]
		}
	}
	return false
}

// BestBy keeps, for every distinct key, one row with optimal_tokps > 0 and returns them
// sorted by key. Rows are met oldest first (chronological): the first is the best, and a
// later row replaces it only when it Beats it — significantly faster repeats, or without
// repeats the old rule, Better. The result does not depend on the order of rows.
func BestBy(rows []AggRow, key func(AggRow) []string) []AggRow {
	sorted := make([]AggRow, 0, len(rows))
	for _, r := range rows {
		if r.OptimalTPS > 0 {
			sorted = append(sorted, r)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return chronological(sorted[i], sorted[j]) })
	best := map[string]AggRow{}
	keys := map[string][]string{}
	for _, r := range sorted {
		k := key(r)
		ks := strings.Join(k, "\x00")
		if cur, ok := best[ks]; !ok || r.Beats(cur) {
			best[ks] = r
			keys[ks] = k
		}
	}
	order := make([]string, 0, len(best))
	for ks := range best {
		order = append(order, ks)
	}
	sort.Slice(order, func(i, j int) bool { return lessKey(keys[order[i]], keys[order[j]]) })
	out := make([]AggRow, len(order))
	for i, ks := range order {
		out[i] = best[ks]
	}
	return out
}

func lessKey(a, b []string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func filtered(rows []AggRow, match func(AggRow) bool) []AggRow {
	var out []AggRow
	for _, r := range rows {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// BestByStackModel is the content of benchmarks.best.csv: the best row per (stack, model).
func BestByStackModel(rows []AggRow, f Filters) []AggRow {
	return BestBy(filtered(rows, f.Match), func(r AggRow) []string { return []string{r.Stack, r.Model} })
}

// BestByHostModel is the content of benchmarks.best.by_host_model.csv: the best row per
// (host, model), across stacks.
func BestByHostModel(rows []AggRow, f Filters) []AggRow {
	return BestBy(filtered(rows, f.Match), func(r AggRow) []string { return []string{r.Host, r.Model} })
}

// BestByModel is the content of benchmarks.best.by_model.csv: the best row per model across
// hosts and stacks. As in the original, STACK_RE and HOST_RE do not apply to it.
func BestByModel(rows []AggRow, f Filters) []AggRow {
	return BestBy(filtered(rows, f.matchModelGPU), func(r AggRow) []string { return []string{r.Model} })
}

// BestPaths are the three best files of an aggregate.
type BestPaths struct {
	ByStackModel string `json:"by_stack_model"` // benchmarks.best.csv
	ByHostModel  string `json:"by_host_model"`  // benchmarks.best.by_host_model.csv
	ByModel      string `json:"by_model"`       // benchmarks.best.by_model.csv
}

// BestFilePaths names the best files beside the aggregate: for <dir>/benchmarks.csv,
// <dir>/benchmarks.best.csv, <dir>/benchmarks.best.by_host_model.csv and
// <dir>/benchmarks.best.by_model.csv (another aggregate name keeps its own stem).
func BestFilePaths(aggPath string) BestPaths {
	stem := strings.TrimSuffix(aggPath, filepath.Ext(aggPath))
	return BestPaths{
		ByStackModel: stem + ".best.csv",
		ByHostModel:  stem + ".best.by_host_model.csv",
		ByModel:      stem + ".best.by_model.csv",
	}
}

// bestFields orders a row's fields for one of the best files.
func bestFields(r AggRow, header []string) []string {
	byName := map[string]string{}
	for i, v := range r.Fields() {
		byName[AggHeader[i]] = v
	}
	out := make([]string, len(header))
	for i, h := range header {
		out[i] = byName[h]
	}
	return out
}

// EncodeBest renders one best file: header and rows, %.2f numbers.
func EncodeBest(header []string, rows []AggRow) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if err := w.Write(bestFields(r, header)); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// WriteBests rewrites the three best files beside aggPath from rows (the aggregate's), each
// one atomically (temporary file and rename).
func WriteBests(aggPath string, rows []AggRow, f Filters) (BestPaths, error) {
	p := BestFilePaths(aggPath)
	for _, file := range []struct {
		path   string
		header []string
		rows   []AggRow
	}{
		{p.ByStackModel, BestByStackModelHeader, BestByStackModel(rows, f)},
		{p.ByHostModel, BestByHostModelHeader, BestByHostModel(rows, f)},
		{p.ByModel, BestByModelHeader, BestByModel(rows, f)},
	} {
		data, err := EncodeBest(file.header, file.rows)
		if err != nil {
			return p, fmt.Errorf("results: %s: %w", file.path, err)
		}
		if err := WriteFileAtomic(file.path, data, 0o644); err != nil {
			return p, err
		}
	}
	return p, nil
}
