package report

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/stats"
)

// # Comparing two runs, benchstat style
//
// CompareRuns matches the configurations of OLD and NEW by (stack, model, GPU, offload,
// num_ctx, batch, num_predict); offload is "default" for the server's own choice and the layers
// on the GPU otherwise, so Ollama num_gpu 33 and llama.cpp -ngl -1 on a 33-layer model are one
// configuration. As benchstat treats what differs between its input files as the thing
// compared, an attribute with one value throughout OLD and another throughout NEW (the stack
// when OLD is a llama.cpp run and NEW an Ollama one, the model names the stacks give the same
// GGUF) is taken out of the key and shown in the header. Repeats of the same key (several runs
// in one side) are pooled, as benchstat pools the runs of a benchmark.
//
// Each matched configuration gives the two medians, the delta of NEW over OLD and the two-sided
// Mann–Whitney U p-value of stats.Compare (golang.org/x/perf/benchmath, as benchstat), with "~"
// when p > α. Rows without repeats count as one value each. Per (stack, model, GPU) a "best"
// row also compares each side's best configuration (runset.Best, the significance rule).

// compareKeys are the attributes configurations are matched on, in the order shown.
var compareKeys = []struct {
	name string
	get  func(c *runset.Config) string
}{
	{"stack", func(c *runset.Config) string { return c.Stack }},
	{"model", func(c *runset.Config) string { return c.Model }},
	{"gpu", func(c *runset.Config) string { return c.GPULabel }},
	{"offload", func(c *runset.Config) string { return c.Offload() }},
	{"num_ctx", func(c *runset.Config) string { return c.NumCtx }},
	{"batch", func(c *runset.Config) string { return c.Batch }},
	{"num_predict", func(c *runset.Config) string { return c.NumPredict }},
}

const offloadKey = 3 // index of "offload" in compareKeys

// CompareSide is one side of a compared row.
type CompareSide struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	N      int       `json:"n"`
	Values []float64 `json:"values"`
	// Configs say which configurations the values come from ("num_gpu=33 in ollama_….csv").
	Configs []string `json:"configs"`
	Failed  bool     `json:"failed,omitempty"` // every configuration of the key failed
}

// CompareRow is one configuration (or one "best" pair) in both runs.
type CompareRow struct {
	// Key holds the matched attributes that are not file-level (name → value).
	Key  map[string]string `json:"key"`
	Best bool              `json:"best,omitempty"` // each side's best configuration
	Old  *CompareSide      `json:"old"`            // nil: not in OLD
	New  *CompareSide      `json:"new"`            // nil: not in NEW
	// Delta is "~" when not significant, else NEW's median over OLD's ("+7.05%"), as
	// benchstat prints it; "" when a side is missing.
	Delta       string  `json:"delta"`
	Ratio       float64 `json:"ratio,omitempty"` // NEW median ÷ OLD median
	P           float64 `json:"p,omitempty"`
	Tested      bool    `json:"tested"` // both sides had values and the U test ran
	Significant bool    `json:"significant"`
	Note        string  `json:"note,omitempty"`
}

// RunComparison is `fuze compare OLD NEW`.
type RunComparison struct {
	Old   string  `json:"old"`
	New   string  `json:"new"`
	Alpha float64 `json:"alpha"`
	// OldLevel and NewLevel are the file-level attributes (one value per side, taken out of
	// the key), e.g. stack=llama.cpp against stack=ollama.
	OldLevel map[string]string `json:"old_level,omitempty"`
	NewLevel map[string]string `json:"new_level,omitempty"`
	Columns  []string          `json:"columns"` // the key attributes shown, in order
	Rows     []CompareRow      `json:"rows"`
}

// CompareRuns compares the configurations of two inputs (see above). oldName and newName are
// how the inputs are shown.
func CompareRuns(oldName string, old []runset.Config, newName string, new []runset.Config) RunComparison {
	rc := RunComparison{Old: oldName, New: newName, Alpha: stats.DefaultAlpha}
	drop := make([]bool, len(compareKeys))
	for i, k := range compareKeys {
		ov, oOne := single(old, k.get)
		nv, nOne := single(new, k.get)
		if oOne && nOne && ov != nv && i != offloadKey {
			drop[i] = true
			if rc.OldLevel == nil {
				rc.OldLevel, rc.NewLevel = map[string]string{}, map[string]string{}
			}
			rc.OldLevel[k.name], rc.NewLevel[k.name] = ov, nv
		}
	}
	// Columns: the kept attributes that vary somewhere (a value shared by every row is in the
	// header instead).
	for i, k := range compareKeys {
		if drop[i] {
			continue
		}
		if _, one := single(append(append([]runset.Config(nil), old...), new...), k.get); one && i != offloadKey {
			continue
		}
		rc.Columns = append(rc.Columns, k.name)
	}

	keyOf := func(c *runset.Config, withOffload bool) (string, map[string]string) {
		var parts []string
		m := map[string]string{}
		for i, k := range compareKeys {
			if drop[i] || (i == offloadKey && !withOffload) {
				continue
			}
			v := k.get(c)
			parts = append(parts, v)
			m[k.name] = v
		}
		return strings.Join(parts, "\x00"), m
	}
	type group struct {
		key      map[string]string
		old, new []*runset.Config
	}
	collect := func(withOffload bool) ([]string, map[string]*group) {
		var order []string
		gs := map[string]*group{}
		add := func(cs []runset.Config, isOld bool) {
			for i := range cs {
				k, m := keyOf(&cs[i], withOffload)
				g := gs[k]
				if g == nil {
					g = &group{key: m}
					gs[k] = g
					order = append(order, k)
				}
				if isOld {
					g.old = append(g.old, &cs[i])
				} else {
					g.new = append(g.new, &cs[i])
				}
			}
		}
		add(old, true)
		add(new, false)
		return order, gs
	}

	order, groups := collect(true)
	for _, k := range order {
		g := groups[k]
		rc.Rows = append(rc.Rows, compareRow(g.key, g.old, g.new, false, rc.Alpha))
	}
	order, groups = collect(false)
	for _, k := range order {
		g := groups[k]
		if len(g.old) < 2 && len(g.new) < 2 {
			continue // one configuration a side: its row above is the comparison
		}
		var ob, nb []*runset.Config
		if b := runset.Best(g.old); b != nil {
			ob = []*runset.Config{b}
		}
		if b := runset.Best(g.new); b != nil {
			nb = []*runset.Config{b}
		}
		row := compareRow(g.key, ob, nb, true, rc.Alpha)
		row.Key["offload"] = "best"
		rc.Rows = append(rc.Rows, row)
	}
	sortCompareRows(rc.Rows)
	return rc
}

// single reports whether every configuration of cs has the same value of get, and which.
func single(cs []runset.Config, get func(*runset.Config) string) (string, bool) {
	if len(cs) == 0 {
		return "", false
	}
	v := get(&cs[0])
	for i := range cs[1:] {
		if get(&cs[i+1]) != v {
			return "", false
		}
	}
	return v, true
}

func compareRow(key map[string]string, old, new []*runset.Config, best bool, alpha float64) CompareRow {
	row := CompareRow{Key: key, Best: best, Old: side(old), New: side(new)}
	if row.Old == nil || row.New == nil || len(row.Old.Values) == 0 || len(row.New.Values) == 0 {
		return row
	}
	c := stats.Compare(row.New.Values, row.Old.Values, alpha)
	row.Tested, row.P, row.Significant, row.Note = true, c.P, c.Significant, c.Note
	row.Ratio = c.Ratio
	row.Delta = BenchstatDelta(c)
	return row
}

// BenchstatDelta is benchstat's delta cell: "~" when the difference is not significant, else
// the relative change of the candidate's median over the incumbent's with two decimals
// ("+7.05%", "-4.00%"; "0.00%" for equal medians, "?" when the incumbent's median is 0).
func BenchstatDelta(c stats.Comparison) string {
	switch {
	case !c.Significant:
		return "~"
	case c.CandidateMedian == c.IncumbentMedian:
		return "0.00%"
	case c.IncumbentMedian == 0 || math.IsInf(c.Ratio, 0) || math.IsNaN(c.Ratio):
		return "?"
	}
	return fmt.Sprintf("%+.2f%%", (c.Ratio-1)*100)
}

// side pools the values of the configurations of one key on one side.
func side(cs []*runset.Config) *CompareSide {
	if len(cs) == 0 {
		return nil
	}
	s := &CompareSide{Failed: true}
	for _, c := range cs {
		s.Values = append(s.Values, c.Values()...)
		if !c.Failed {
			s.Failed = false
		}
		s.Configs = append(s.Configs, configName(c))
	}
	if len(s.Values) > 0 {
		s.Median, s.Min, s.Max = stats.Median(s.Values), stats.Min(s.Values), stats.Max(s.Values)
		s.N = len(s.Values)
	}
	return s
}

// configName says which configuration a value came from: "num_gpu=33 (33 layers) in f.csv".
func configName(c *runset.Config) string {
	setting := "num_gpu=" + c.NumGPU
	if c.Layers >= 0 && c.TotalLayers > 0 {
		setting += fmt.Sprintf(" (%d/%d layers)", c.Layers, c.TotalLayers)
	}
	if c.Failed {
		setting += " failed"
	}
	return setting + " in " + c.Source
}

func sortCompareRows(rows []CompareRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		for _, k := range compareKeys {
			if k.name == "offload" {
				continue
			}
			if a.Key[k.name] != b.Key[k.name] {
				return a.Key[k.name] < b.Key[k.name]
			}
		}
		return offloadRank(a) < offloadRank(b)
	})
}

func offloadRank(r CompareRow) float64 {
	v := r.Key["offload"]
	switch v {
	case "default":
		return -1
	case "best":
		return math.MaxFloat64
	}
	var n float64
	if _, err := fmt.Sscanf(v, "%g", &n); err == nil {
		return n
	}
	return math.MaxFloat64 / 2
}

// WriteText prints the comparison: what OLD and NEW are, then one table of client decode
// tok/s with a row per configuration, benchstat style, and the notes of comparisons that could
// not be significant.
func (rc RunComparison) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "old: %s%s\n", rc.Old, levelText(rc.OldLevel))
	fmt.Fprintf(&b, "new: %s%s\n", rc.New, levelText(rc.NewLevel))
	t := table{
		title: fmt.Sprintf("client decode tok/s: median [min–max], n repeats; delta = new vs old, \"~\" when p > %g (two-sided Mann–Whitney U, as benchstat)", rc.Alpha),
	}
	for _, c := range rc.Columns {
		t.header = append(t.header, c)
		t.right = append(t.right, false)
	}
	t.header = append(t.header, "old", "n", "new", "n", "delta", "p")
	t.right = append(t.right, true, true, true, true, true, true)
	var notes []string
	for _, r := range rc.Rows {
		var cells []string
		for _, c := range rc.Columns {
			v := r.Key[c]
			if c == "offload" && v != "default" && v != "best" && v != "" && strings.Trim(v, "0123456789") == "" {
				v += " layers"
			}
			cells = append(cells, cell(v))
		}
		ov, on := sideCells(r.Old)
		nv, nn := sideCells(r.New)
		delta, p := cell(r.Delta), "-"
		switch {
		case r.Old == nil:
			delta = "only in new"
		case r.New == nil:
			delta = "only in old"
		case r.Tested:
			p = fmt.Sprintf("%.3f", r.P)
		}
		cells = append(cells, ov, on, nv, nn, delta, p)
		t.rows = append(t.rows, cells)
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s: %s", strings.Join(cells[:len(rc.Columns)], " "), r.Note))
		}
		if r.Best {
			var where []string
			for _, c := range rc.Columns {
				if c != "offload" {
					where = append(where, r.Key[c])
				}
			}
			notes = append(notes, "  "+strings.TrimSpace(fmt.Sprintf("%s best: old %s; new %s",
				strings.Join(where, " "), sideConfigs(r.Old), sideConfigs(r.New))))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := t.write(w); err != nil {
		return err
	}
	if len(notes) > 0 {
		_, err := io.WriteString(w, "\n"+strings.Join(notes, "\n")+"\n")
		return err
	}
	return nil
}

// WriteJSON prints the comparison as one indented JSON object.
func (rc RunComparison) WriteJSON(w io.Writer) error { return writeJSON(w, rc) }

func levelText(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range compareKeys {
		if v, ok := m[k.name]; ok {
			parts = append(parts, k.name+"="+v)
		}
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func sideCells(s *CompareSide) (string, string) {
	switch {
	case s == nil:
		return "-", "-"
	case s.N == 0:
		return "failed", "0"
	case s.N == 1:
		return fmt.Sprintf("%.2f", s.Median), "1"
	}
	return fmt.Sprintf("%.2f [%.2f–%.2f]", s.Median, s.Min, s.Max), fmt.Sprint(s.N)
}

func sideConfigs(s *CompareSide) string {
	if s == nil || len(s.Configs) == 0 {
		return "-"
	}
	return strings.Join(s.Configs, ", ")
}
