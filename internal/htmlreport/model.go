// Package htmlreport builds `fuze report`: one self-contained HTML file (uPlot and the data
// embedded, nothing fetched) with, per model, the cross-stack table and charts of the rate
// against GPU offload, the latency percentiles, and — when the inputs carry them — serving
// (throughput against p99 latency per concurrency level), energy per token, and the tuning
// searches (each knob's effect with its confidence interval, from <run>.tuning.json); then where the
// numbers come from (GPU, driver, stack and fuze versions, settings, dates).
//
// The page is rendered from one value, Data, built by Build from what runset.Load read. Data is
// embedded in the page as JSON (the <script id="fuze-data"> element) and the charts are drawn
// from it in the browser; the tables are rendered on the server from the same value, so the
// page reads without JavaScript too. Sections whose data is absent (no serving CSV, no energy
// field) are left out, never shown empty or as zeros.
package htmlreport

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/naming"
	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/stats"
)

// Data is everything the page shows; it is embedded in the page as JSON.
type Data struct {
	Title      string     `json:"title"`
	Generator  string     `json:"generator"` // the fuze that wrote the page: "fuze 0.1.0-dev"
	Inputs     []string   `json:"inputs"`    // base names of the files read
	Provenance Provenance `json:"provenance"`
	Models     []Model    `json:"models"`
	// HasEnergy and HasServing say whether any model has energy or serving data: the page
	// leaves out what no input carries.
	HasEnergy  bool     `json:"has_energy"`
	HasServing bool     `json:"has_serving"`
	HasTuning  bool     `json:"has_tuning,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// KV is one labelled value.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Model is one model's section. Stacks name the same weights differently (Ollama's
// fuze-llama-8b:latest, llama.cpp's llama-8b): Names lists them.
type Model struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Names   []KV         `json:"names"` // stack → the model's name in that stack's rows
	Rows    []Row        `json:"rows"`
	Serving []ServingRow `json:"serving,omitempty"`
	// Tuning are the tuning searches of this model (<run>.tuning.json beside its runs).
	Tuning []Tuning `json:"tuning,omitempty"`
	Charts []Chart  `json:"charts"`
}

// Row is one configuration in the cross-stack table.
type Row struct {
	Stack    string `json:"stack"`
	GPU      string `json:"gpu"`       // "NVIDIA H200 (nvidia-h200)"
	GPULabel string `json:"gpu_label"` // "nvidia-h200"; "cpu" when none
	Config   string `json:"config"`    // "num_gpu=33", "-ngl -1 (33/33 layers)", "default (0/33 layers)"
	Label    string `json:"variant_label"`
	// TPS is the client's decode rate (CSV column 12, the median of the repeats); Min and Max
	// the repeats' range; N the number of repeats (1 without a sample).
	TPS    float64 `json:"tps"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
	Failed bool    `json:"failed,omitempty"`
	Error  string  `json:"error,omitempty"`
	// From the JSONL record; nil when unknown.
	TTFTms        *float64 `json:"ttft_ms"`
	ITLp50ms      *float64 `json:"itl_p50_ms"`
	ITLp90ms      *float64 `json:"itl_p90_ms"`
	ITLp99ms      *float64 `json:"itl_p99_ms"`
	ServerRatio   *float64 `json:"server_client_ratio"` // the server's timer ÷ the client's rate
	JPerToken     *float64 `json:"joules_per_token"`
	RooflineShare *float64 `json:"roofline_share"`
	// Best: the stack's best configuration on this GPU by the significance rule; VsFastest
	// compares it with the fastest stack's best on the GPU ("fastest", "-7.46% (p=0.008)",
	// "~ (p=1.000)"), "" when only one stack ran there.
	Best      bool   `json:"best,omitempty"`
	VsFastest string `json:"vs_fastest,omitempty"`
	// Provenance of the row.
	Source   string `json:"source"`
	TS       string `json:"ts"`
	Endpoint string `json:"endpoint"`
	Settings []KV   `json:"settings,omitempty"`
}

// Options are what the command line adds.
type Options struct {
	Title     string
	Generator string            // "fuze <version>"
	Meta      []KV              // --meta KEY=VALUE, shown in the provenance block
	Aliases   map[string]string // --same-model NAME=GROUP
}

// Build turns what was read into the page's data. Warnings are added to the page.
func Build(set *runset.Set, opts Options) (*Data, []string) {
	d := &Data{Title: opts.Title, Generator: opts.Generator}
	if d.Title == "" {
		d.Title = "FuZe benchmark report"
	}
	for _, f := range append(append(append([]string(nil), set.Files...), set.Serving...), set.Machine...) {
		d.Inputs = append(d.Inputs, baseName(f))
	}
	for _, t := range set.Tuning {
		d.Inputs = append(d.Inputs, baseName(t.Source))
	}
	var warnings []string
	serving, w := readServing(set.Serving)
	warnings = append(warnings, w...)

	cs := append([]runset.Config(nil), set.Configs...)
	runset.SortConfigs(cs)
	group := modelGroups(cs, serving, opts.Aliases)

	byModel := map[string][]*runset.Config{}
	var order []string
	for i := range cs {
		g := group[cs[i].Model]
		if _, ok := byModel[g]; !ok {
			order = append(order, g)
		}
		byModel[g] = append(byModel[g], &cs[i])
	}
	servingBy := map[string][]servingLevel{}
	for _, l := range serving {
		g := group[l.Model]
		if _, ok := byModel[g]; !ok {
			if _, ok := servingBy[g]; !ok {
				order = append(order, g)
			}
		}
		servingBy[g] = append(servingBy[g], l)
	}
	// A tuning report goes with its model's runs; one whose model no row names (a run CSV
	// whose base_model differs from the report's) gets a section of its own.
	tuningBy := map[string][]runset.Tuning{}
	for _, t := range set.Tuning {
		g, ok := group[t.Model]
		if !ok {
			g = strings.TrimSuffix(t.Model, ":latest")
		}
		_, runs := byModel[g]
		_, serves := servingBy[g]
		_, tuned := tuningBy[g]
		if !runs && !serves && !tuned {
			order = append(order, g)
		}
		tuningBy[g] = append(tuningBy[g], t)
	}
	sort.Strings(order)
	ids := map[string]int{}
	for _, name := range order {
		m := buildModel(name, byModel[name], servingBy[name])
		for _, t := range tuningBy[name] {
			tu := newTuning(t)
			m.Tuning = append(m.Tuning, tu)
			m.Charts = append(m.Charts, tuningCharts(tu)...)
		}
		m.ID = uniqueID(ids, name)
		for i := range m.Charts {
			m.Charts[i].ID = m.ID + "-" + m.Charts[i].Kind + strconv.Itoa(i)
		}
		d.Models = append(d.Models, m)
		for _, r := range m.Rows {
			d.HasEnergy = d.HasEnergy || r.JPerToken != nil
		}
		for _, s := range m.Serving {
			d.HasEnergy = d.HasEnergy || s.JPerToken != nil
		}
		d.HasServing = d.HasServing || len(m.Serving) > 0
		d.HasTuning = d.HasTuning || len(m.Tuning) > 0
	}
	prov, w := buildProvenance(cs, serving, set.Machine, opts)
	warnings = append(warnings, w...)
	d.Provenance = prov
	d.Warnings = warnings
	return d, warnings
}

// buildModel makes one model's section.
func buildModel(name string, cs []*runset.Config, serving []servingLevel) Model {
	m := Model{Name: name}
	names := map[string]map[string]bool{}
	note := func(stack, model string) {
		if names[stack] == nil {
			names[stack] = map[string]bool{}
		}
		names[stack][model] = true
	}
	for _, c := range cs {
		note(c.Stack, c.Model)
	}
	for _, l := range serving {
		note(l.Stack, l.Model)
	}
	for _, st := range sortedKeys(names) {
		m.Names = append(m.Names, KV{st, strings.Join(sortedKeys(names[st]), ", ")})
	}

	// Best per (stack, GPU), then each best against the fastest best on its GPU.
	type key struct{ stack, gpu string }
	groups := map[key][]*runset.Config{}
	var keys []key
	for _, c := range cs {
		k := key{c.Stack, gpuName(c)}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	best := map[*runset.Config]bool{}
	bestsOnGPU := map[string][]*runset.Config{}
	for _, k := range keys {
		if b := runset.Best(groups[k]); b != nil {
			best[b] = true
			bestsOnGPU[k.gpu] = append(bestsOnGPU[k.gpu], b)
		}
	}
	vs := map[*runset.Config]string{}
	for _, bs := range bestsOnGPU {
		if len(bs) < 2 {
			continue
		}
		top := bs[0]
		for _, b := range bs[1:] {
			if stats.Median(b.Values()) > stats.Median(top.Values()) {
				top = b
			}
		}
		for _, b := range bs {
			if b == top {
				vs[b] = "fastest"
				continue
			}
			vs[b] = vsCell(b.Values(), top.Values())
		}
	}
	for _, c := range cs {
		r := newRow(c)
		r.Best, r.VsFastest = best[c], vs[c]
		m.Rows = append(m.Rows, r)
	}
	sort.SliceStable(m.Rows, func(i, j int) bool { return m.Rows[i].GPU < m.Rows[j].GPU })

	m.Charts = append(m.Charts, offloadCharts(cs, rateOf, "client decode tok/s", "offload", true)...)
	if c, ok := itlChart(cs); ok {
		m.Charts = append(m.Charts, c)
	}
	m.Charts = append(m.Charts, offloadCharts(cs, energyOf, "J/token", "energy", false)...)
	if len(serving) > 0 {
		m.Serving = servingRows(serving)
		m.Charts = append(m.Charts, servingCharts(serving)...)
	}
	return m
}

// vsCell compares a stack's best with the fastest one's, benchstat style.
func vsCell(vals, top []float64) string {
	if len(vals) == 0 || len(top) == 0 {
		return "-"
	}
	c := stats.Compare(vals, top, stats.DefaultAlpha)
	if c.NCandidate < 2 || c.NIncumbent < 2 {
		return fmt.Sprintf("%+.2f%% (n=1)", (c.Ratio-1)*100)
	}
	if !c.Significant {
		return fmt.Sprintf("~ (p=%.3f)", c.P)
	}
	return fmt.Sprintf("%+.2f%% (p=%.3f)", (c.Ratio-1)*100, c.P)
}

func newRow(c *runset.Config) Row {
	r := Row{
		Stack: c.Stack, GPU: gpuName(c), GPULabel: gpuLabel(c), Config: configText(c), Label: c.Label, TPS: c.TPS,
		Failed: c.Failed, Error: c.Error, Source: c.Source, TS: humanTS(c.TS), Endpoint: c.Endpoint,
	}
	if v := c.Values(); len(v) > 0 {
		r.Min, r.Max, r.N = stats.Min(v), stats.Max(v), len(v)
	}
	if rec := c.Record; rec != nil {
		if rec.TTFT > 0 {
			r.TTFTms = ptr(round(ms(rec.TTFT), 3))
		}
		if rec.ServerClientRatio > 0 {
			r.ServerRatio = ptr(round(rec.ServerClientRatio, 3))
		}
		if s := rec.Sample; s != nil {
			if s.RooflineShare > 0 {
				r.RooflineShare = ptr(round(s.RooflineShare, 4))
			}
			if gaps := itlGaps(s.ChunkTimes); len(gaps) > 0 {
				r.ITLp50ms = ptr(round(stats.Quantile(gaps, 0.50), 3))
				r.ITLp90ms = ptr(round(stats.Quantile(gaps, 0.90), 3))
				r.ITLp99ms = ptr(round(stats.Quantile(gaps, 0.99), 3))
			}
			for _, k := range sortedKeys(s.Settings) {
				r.Settings = append(r.Settings, KV{k, s.Settings[k]})
			}
		}
	}
	r.JPerToken = energyOf(c)
	return r
}

// itlGaps are the inter-token latencies of one request in milliseconds: for each chunk after
// the first, the time since the previous chunk divided among the tokens it carried (chunk
// times hold one entry per token, a chunk of k tokens k equal entries).
func itlGaps(times []time.Duration) []float64 {
	var out []float64
	for i := 1; i < len(times); {
		j := i
		for j < len(times) && times[j] == times[i] {
			j++
		}
		k := j - i
		gap := ms(times[i]-times[i-1]) / float64(k)
		for range k {
			out = append(out, gap)
		}
		i = j
	}
	return out
}

// configText is how a table names a configuration.
func configText(c *runset.Config) string {
	name := "num_gpu"
	if c.Stack == "llama.cpp" {
		name = "-ngl"
	}
	s := name + " " + c.NumGPU
	if c.Label == naming.LabelBaseline {
		s = "default"
		if c.NumGPU != "" && c.NumGPU != "default" {
			s += " (" + name + " " + c.NumGPU + ")"
		}
	}
	if c.Layers >= 0 && c.TotalLayers > 0 {
		s += fmt.Sprintf(" (%d/%d layers)", c.Layers, c.TotalLayers)
	}
	if c.Label == naming.LabelPublished {
		s += " published " + c.ModelTag
	}
	return s
}

// gpuName is the GPU a configuration ran on: "NVIDIA H200 (nvidia-h200)", the label alone,
// or "CPU / unknown GPU".
func gpuName(c *runset.Config) string {
	switch {
	case c.GPUName != "" && c.GPULabel != "":
		return c.GPUName + " (" + c.GPULabel + ")"
	case c.GPUName != "":
		return c.GPUName
	case c.GPULabel != "":
		return c.GPULabel
	}
	return "CPU / unknown GPU"
}

// EnergyField is the JSONL field energy per token is read from, wherever it sits in a
// record (at the top, or in a nested object such as the sample or its telemetry).
const EnergyField = "joules_per_token"

func energyOf(c *runset.Config) *float64 {
	if len(c.Raw) == 0 || c.Failed {
		return nil
	}
	var v any
	if err := json.Unmarshal(c.Raw, &v); err != nil {
		return nil
	}
	if f, ok := findNumber(v, EnergyField); ok {
		return ptr(round(f, 4))
	}
	return nil
}

// findNumber looks for a positive finite number under key in a decoded JSON value, the
// shallowest first.
func findNumber(v any, key string) (float64, bool) {
	queue := []any{v}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		obj, ok := cur.(map[string]any)
		if !ok {
			continue
		}
		if f, ok := obj[key].(float64); ok && f > 0 && !math.IsInf(f, 0) {
			return f, true
		}
		for _, k := range sortedKeys(obj) {
			if _, isObj := obj[k].(map[string]any); isObj {
				queue = append(queue, obj[k])
			}
		}
	}
	return 0, false
}

func rateOf(c *runset.Config) *float64 {
	if c.Failed || c.TPS <= 0 {
		return nil
	}
	return ptr(c.TPS)
}

// modelGroups maps every model name to the section it is shown in. Names are grouped when
// aliases say so (NAME=GROUP); otherwise a name without its ":latest" tag is the group, and two
// names one of which ends in "-" + the other (Ollama's fuze-llama-8b and llama.cpp's llama-8b)
// share the shorter name's group when their JSONL samples read the same number of weight bytes
// per token (the same GGUF), so that the stacks serving one model are compared in one table.
func modelGroups(cs []runset.Config, serving []servingLevel, aliases map[string]string) map[string]string {
	bytesOf := map[string]int64{}
	var names []string
	add := func(name string) {
		if _, ok := bytesOf[name]; !ok {
			bytesOf[name] = 0
			names = append(names, name)
		}
	}
	for _, c := range cs {
		add(c.Model)
		if s := c.Sample(); s != nil && s.ModelBytes > 0 {
			bytesOf[c.Model] = s.ModelBytes
		}
	}
	for _, l := range serving {
		add(l.Model)
	}
	out := map[string]string{}
	for _, n := range names {
		if g, ok := aliases[n]; ok {
			out[n] = g
			continue
		}
		out[n] = strings.TrimSuffix(n, ":latest")
	}
	for _, a := range names {
		for _, b := range names {
			ga, gb := out[a], out[b]
			_, aliasA := aliases[a]
			_, aliasB := aliases[b]
			if aliasA || aliasB || ga == gb || !strings.HasSuffix(gb, "-"+ga) {
				continue
			}
			if bytesOf[a] > 0 && bytesOf[a] == bytesOf[b] {
				for n, g := range out {
					if g == gb {
						out[n] = ga
					}
				}
			}
		}
	}
	return out
}

var idUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

func uniqueID(seen map[string]int, name string) string {
	id := strings.Trim(idUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if id == "" {
		id = "model"
	}
	seen[id]++
	if n := seen[id]; n > 1 {
		id += "-" + strconv.Itoa(n)
	}
	return id
}

func humanTS(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.Format("2006-01-02 15:04:05 -07:00")
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ptr(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
