package tune

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Report is what `<run>.tuning.json` holds for one (model, endpoint): the search's cost,
// every configuration with its repeats and fate, the best per objective against the
// baseline, and each knob's effect with its confidence interval.
type Report struct {
	Stack     string          `json:"stack"`
	Model     string          `json:"model"`
	Endpoint  string          `json:"endpoint"`
	GPULabel  string          `json:"gpu_label"`
	Knobs     []string        `json:"knobs"`
	Search    string          `json:"search"` // halving | exhaustive
	Rounds    int             `json:"rounds"`
	Repeat    int             `json:"repeat_per_round"`
	Summary   string          `json:"summary"`
	Starts    int             `json:"server_starts"`
	GridStart int             `json:"grid_server_starts"`
	GroupedGS int             `json:"grouped_grid_server_starts"`
	Measured  int             `json:"measurements"`
	GridMeas  int             `json:"grid_measurements"`
	Configs   []ConfigResult  `json:"configs"`
	Best      []ObjectiveBest `json:"best"`
	Effects   []Effect        `json:"effects"`
	// Limitations says what the report does not cover.
	Limitations []string `json:"limitations"`
}

// ConfigResult is one configuration of the search.
type ConfigResult struct {
	Settings    map[string]string `json:"settings"`
	Server      string            `json:"server"`
	Rounds      int               `json:"rounds"`
	DecodeTPS   []float64         `json:"decode_tps"`
	TTFTms      []float64         `json:"ttft_ms"`
	JPerToken   []float64         `json:"joules_per_token,omitempty"`
	Median      float64           `json:"median_decode_tps"`
	Error       string            `json:"error,omitempty"`
	Invalid     string            `json:"invalid,omitempty"`
	PrunedRound int               `json:"pruned_round,omitempty"`
	PrunedP     float64           `json:"pruned_p,omitempty"`
	PrunedRatio float64           `json:"pruned_ratio,omitempty"`
}

// ObjectiveBest is the best configuration for one objective, against the baseline's repeats.
type ObjectiveBest struct {
	Objective      string            `json:"objective"`
	Settings       map[string]string `json:"settings"`
	Median         float64           `json:"median"`
	BaselineMedian float64           `json:"baseline_median"`
	Ratio          float64           `json:"ratio_vs_baseline"`
	P              float64           `json:"p_value"`
	Significant    bool              `json:"significant"`
	Note           string            `json:"note,omitempty"`
}

// SettingsText is settings as sorted name=value words.
func SettingsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// Path is the tuning report's path beside a run CSV: <run>.tuning.json.
func Path(csvPath string) string {
	return strings.TrimSuffix(csvPath, ".csv") + ".tuning.json"
}

// WriteText prints the best per objective, the knob effects and the search's cost.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "=== Tuning result for %s on %s (%s) ===\n", r.Model, r.Endpoint, r.GPULabel)
	for _, b := range r.Best {
		line := fmt.Sprintf("   best %-16s %s: %.2f", b.Objective, SettingsText(b.Settings), b.Median)
		if b.BaselineMedian > 0 {
			verdict := "within noise"
			if b.Significant {
				verdict = "significant"
			}
			line += fmt.Sprintf(" vs default %.2f (%.3fx, p=%.4f, %s)", b.BaselineMedian, b.Ratio, b.P, verdict)
		}
		fmt.Fprintln(w, line)
	}
	if len(r.Effects) == 0 {
		fmt.Fprintln(w, "   knob effects: no pair of configurations differing in one knob was measured")
	}
	found := false
	for _, e := range r.Effects {
		mark := "~ (interval covers 1: no effect found)"
		if e.Significant {
			mark = "significant"
			found = true
		}
		fmt.Fprintf(w, "   effect on %-16s %s %s→%s: %.3fx [95%% CI %.3f–%.3f] over %d pairs, %s\n",
			e.Objective, e.Knob, e.Reference, e.Value, e.Ratio, e.Low, e.High, e.Pairs, mark)
	}
	if len(r.Effects) > 0 && !found {
		fmt.Fprintln(w, "   no knob had a significant effect on this machine")
	}
	fmt.Fprintf(w, "   search: %s\n", r.Summary)
}

// ReportsOf reads a run's tuning report (nil when the run has none).
func ReportsOf(csvPath string) ([]Report, error) {
	out, err := ReadReports(Path(csvPath))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return out, err
}

// ReadReports reads a tuning report file (<run>.tuning.json).
func ReadReports(path string) ([]Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Report
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// BestDecode is the report's best configuration by decode rate (nil when none worked).
func (r Report) BestDecode() *ObjectiveBest {
	for i := range r.Best {
		if r.Best[i].Objective == "decode_tps" {
			return &r.Best[i]
		}
	}
	return nil
}

// MarkdownPath is the markdown tables' path beside a run CSV: <run>.tuning.md.
func MarkdownPath(csvPath string) string {
	return strings.TrimSuffix(csvPath, ".csv") + ".tuning.md"
}

// WriteMarkdown writes the reports as markdown tables: per (model, endpoint) the search's
// cost, the best per objective against the default, every knob effect with its interval, and
// every configuration with its fate.
func WriteMarkdown(w io.Writer, reports []Report) {
	for _, r := range reports {
		fmt.Fprintf(w, "## %s on %s (%s, %s)\n\n", r.Model, r.Endpoint, r.GPULabel, r.Stack)
		fmt.Fprintf(w, "Search: %s (%s).\n\n", r.Search, r.Summary)
		fmt.Fprintf(w, "| objective | best configuration | median | default | ratio | p |\n|---|---|---:|---:|---:|---:|\n")
		for _, b := range r.Best {
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.3f | %.4f |\n", b.Objective, SettingsText(b.Settings), b.Median, b.BaselineMedian, b.Ratio, b.P)
		}
		fmt.Fprintf(w, "\n| objective | knob | from → to | ratio | 95%% CI | pairs | |\n|---|---|---|---:|---|---:|---|\n")
		for _, e := range r.Effects {
			mark := "~"
			if e.Significant {
				mark = "significant"
			}
			fmt.Fprintf(w, "| %s | %s | %s → %s | %.3f | %.3f–%.3f | %d | %s |\n", e.Objective, e.Knob, e.Reference, e.Value, e.Ratio, e.Low, e.High, e.Pairs, mark)
		}
		fmt.Fprintf(w, "\n| configuration | rounds | median tok/s | fate |\n|---|---:|---:|---|\n")
		for _, c := range r.Configs {
			fate := "survived"
			switch {
			case c.Error != "":
				fate = "failed: " + c.Error
			case c.Invalid != "":
				fate = "invalid: " + c.Invalid
			case c.PrunedRound > 0:
				fate = fmt.Sprintf("pruned after round %d (%.3fx of the leader, p=%.4f)", c.PrunedRound, c.PrunedRatio, c.PrunedP)
			}
			fmt.Fprintf(w, "| %s | %d | %.2f | %s |\n", SettingsText(c.Settings), c.Rounds, c.Median, strings.ReplaceAll(fate, "|", "/"))
		}
		for _, l := range r.Limitations {
			fmt.Fprintf(w, "\n- %s", l)
		}
		fmt.Fprint(w, "\n\n")
	}
}
