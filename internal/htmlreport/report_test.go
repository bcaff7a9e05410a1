package htmlreport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/runset"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name; -update rewrites it, a mismatch writes
// testdata/name.got for diffing.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		if err := os.WriteFile(path+".got", got, 0o644); err != nil {
			t.Log(err)
		}
		t.Errorf("%s differs from the golden file; see %s.got (go test -update accepts it)", path, path)
	} else {
		os.Remove(path + ".got")
	}
}

var fixtureOpts = Options{Title: "Fixture report", Generator: "fuze test", Meta: []KV{{"llama.cpp", "b0000 (fixture)"}, {"note", "made by the tests"}}}

// buildFixture writes the fixture and builds the page's data from its folder.
func buildFixture(t testing.TB) (*Data, string) {
	t.Helper()
	dir := t.TempDir()
	writeFixture(t, dir)
	set, warnings, err := runset.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	d, warnings := Build(set, fixtureOpts)
	if len(warnings) > 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	return d, dir
}

// TestFixtureDataGolden: the data embedded in the page, for inputs with every section.
func TestFixtureDataGolden(t *testing.T) {
	d, _ := buildFixture(t)
	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	_, embedded, err := EmbeddedData(page.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, err := DataJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embedded, want) {
		t.Fatalf("the page embeds other data than Build made")
	}
	golden(t, "fixture.data.json", append(embedded, '\n'))
}

// TestFixtureSections checks what the golden file holds, so that a wrong golden cannot pass.
func TestFixtureSections(t *testing.T) {
	d, _ := buildFixture(t)
	if !d.HasServing || !d.HasEnergy {
		t.Fatalf("HasServing %v HasEnergy %v, want both", d.HasServing, d.HasEnergy)
	}
	if len(d.Models) != 1 || d.Models[0].Name != "tiny" {
		t.Fatalf("models %v: want the Ollama and llama.cpp names of one GGUF in one section \"tiny\"", names(d))
	}
	m := d.Models[0]
	if got := kinds(m.Charts); !slices.Equal(got, []string{"offload", "itl", "energy", "serving", "serving-ttft", "serving-itl", "energy", "tuning", "tuning"}) {
		t.Errorf("chart kinds %v", got)
	}
	if len(m.Rows) != 7 {
		t.Fatalf("%d rows, want 7", len(m.Rows))
	}
	byConfig := map[string]Row{}
	for _, r := range m.Rows {
		byConfig[r.Stack+" "+r.Config] = r
	}
	// Ollama's num_gpu 9 (302.00) does not significantly beat its default (301.00): the default
	// stays best. llama.cpp's -ngl -1 beats its default; it is the fastest stack, and Ollama's
	// best is significantly slower (5 vs 5 separated: p = 2/252).
	for cfg, want := range map[string]struct {
		best bool
		vs   string
		j    float64
	}{
		"ollama default":                 {true, "-9.06% (p=0.008)", 0.91},
		"ollama num_gpu 9":               {false, "", 0.88},
		"llama.cpp -ngl -1 (9/9 layers)": {true, "fastest", 0.8},
		"llama.cpp default (0/9 layers)": {false, "", 4.2},
		"llama.cpp -ngl 4 (4/9 layers)":  {false, "", 2.1},
		"ollama num_gpu 4":               {false, "", 1.52},
		"ollama num_gpu 2":               {false, "", 0},
	} {
		r, ok := byConfig[cfg]
		if !ok {
			t.Errorf("no row %q in %v", cfg, keys(byConfig))
			continue
		}
		if r.Best != want.best || r.VsFastest != want.vs {
			t.Errorf("%s: best %v vs %q, want %v %q", cfg, r.Best, r.VsFastest, want.best, want.vs)
		}
		if (r.JPerToken == nil) != (want.j == 0) || r.JPerToken != nil && *r.JPerToken != want.j {
			t.Errorf("%s: J/token %v, want %v", cfg, r.JPerToken, want.j)
		}
	}
	if r := byConfig["ollama num_gpu 2"]; !r.Failed || r.Error != "context deadline exceeded" {
		t.Errorf("the failure: %+v", r)
	}
	// The offload chart: llama.cpp's three placements as points, Ollama's num_gpu 4 and 9 as
	// points and its default (layers not reported) as a dashed level, and the roofline.
	off := m.Charts[0]
	if !slices.Equal(off.X, []float64{0, 4, 9}) {
		t.Errorf("offload x %v", off.X)
	}
	if got := labels(off.Series); !slices.Equal(got, []string{"llama.cpp", "ollama default (the server's placement)", "ollama",
		"roofline 4800.0 tok/s (memory bandwidth ÷ bytes per token)"}) {
		t.Errorf("offload series %q", got)
	}
	// Serving: the Pareto front holds every level no other level beats on both axes.
	var front []string
	for _, s := range m.Serving {
		if s.Pareto {
			front = append(front, s.Stack+" "+s.Config+" c="+formatNum(s.Concurrency))
		}
	}
	if want := []string{"llama.cpp parallel=8 c=1", "llama.cpp parallel=8 c=2", "llama.cpp parallel=8 c=4", "llama.cpp parallel=8 c=8"}; !slices.Equal(front, want) {
		t.Errorf("Pareto front %q, want %q", front, want)
	}
	p := d.Provenance
	if len(p.GPUs) != 1 || p.GPUs[0].Driver != "580.159.04" || p.GPUs[0].PowerLimit != "700.00 W" {
		t.Errorf("GPUs %+v", p.GPUs)
	}
	if !slices.Equal(p.Stacks, []KV{{"llama.cpp", "b0000 (fixture)"}, {"ollama", "0.17.4"}}) {
		t.Errorf("stacks %+v", p.Stacks)
	}
	if !slices.Equal(p.Fuze, []string{"0.1.0-dev"}) || p.Generator != "fuze test" {
		t.Errorf("fuze %v generator %q", p.Fuze, p.Generator)
	}
	if !slices.Contains(p.Machine, KV{"CUDA (nvcc)", "Cuda compilation tools, release 13.0, V13.0.88"}) ||
		!slices.Contains(p.Machine, KV{"cmake", "cmake version 4.4.3"}) {
		t.Errorf("machine %+v", p.Machine)
	}
	if !slices.Equal(p.Extra, []KV{{"note", "made by the tests"}}) {
		t.Errorf("extra %+v", p.Extra)
	}
	if p.Measured != "2026-12-01 10:00:05 +00:00 – 2026-12-01 10:10:25 +00:00" {
		t.Errorf("measured %q", p.Measured)
	}
}

// TestCommittedServingAndEnergy: the committed GPU runs hold the 8B's serving levels (Ollama
// and llama.cpp, one and eight slots) and energy per token; the 8B's section charts them, the
// 1B (single-stream runs only) has its offload and ITL charts alone.
func TestCommittedServingAndEnergy(t *testing.T) {
	set, _, err := runset.Load([]string{filepath.Join("..", "..", "results", "gpu")})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Build(set, Options{Generator: "fuze test"})
	if !d.HasServing || !d.HasEnergy {
		t.Fatalf("HasServing %v HasEnergy %v", d.HasServing, d.HasEnergy)
	}
	if got := names(d); !slices.Equal(got, []string{"llama-1b", "llama-8b"}) {
		t.Errorf("models %v", got)
	}
	for _, m := range d.Models {
		got := kinds(m.Charts)
		t.Logf("%s: charts %v", m.Name, got)
		if m.Name == "llama-1b" && !slices.Equal(got, []string{"offload", "itl"}) {
			t.Errorf("%s: charts %v", m.Name, got)
		}
		if m.Name == "llama-8b" && len(got) <= 2 {
			t.Errorf("%s: charts %v, want the serving and energy charts too", m.Name, got)
		}
	}
}

// TestSelfContained: the page loads nothing: no external script, style, image or font.
func TestSelfContained(t *testing.T) {
	d, _ := buildFixture(t)
	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, re := range []string{`<script[^>]+src=`, `<link[^>]+href=`, `<img[^>]+src=`, `@import`, `url\(\s*['"]?(https?:)?//`, `<iframe`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("the page loads something: %q", m)
		}
	}
	if !strings.Contains(html, "uPlot v1.6.32") && !strings.Contains(html, "(v1.6.32)") {
		t.Error("uPlot 1.6.32 is not embedded")
	}
}

func TestITLGaps(t *testing.T) {
	ms := time.Millisecond
	// A chunk of 3 tokens 30 ms after the first: three gaps of 10 ms; then one of 5 ms.
	got := itlGaps([]time.Duration{0, 30 * ms, 30 * ms, 30 * ms, 35 * ms})
	if want := []float64{10, 10, 10, 5}; !slices.Equal(got, want) {
		t.Errorf("itlGaps = %v, want %v", got, want)
	}
	if got := itlGaps([]time.Duration{7 * ms}); got != nil {
		t.Errorf("one token: %v", got)
	}
}

func TestModelGroups(t *testing.T) {
	c := func(model string, bytes int64) runset.Config {
		cfg := runset.Config{Model: model}
		if bytes > 0 {
			cfg.Record = recordWithBytes(bytes)
		}
		return cfg
	}
	cs := []runset.Config{
		c("fuze-llama-8b:latest", 15), c("llama-8b", 15), // one GGUF under two names
		c("fuze-llama-1b:latest", 3), c("llama-1b", 4), // different bytes: not merged
		c("qwen:latest", 0), c("my-qwen", 0), // no bytes: not merged
	}
	got := modelGroups(cs, nil, map[string]string{"my-qwen": "qwen"})
	want := map[string]string{
		"fuze-llama-8b:latest": "llama-8b", "llama-8b": "llama-8b",
		"fuze-llama-1b:latest": "fuze-llama-1b", "llama-1b": "llama-1b",
		"qwen:latest": "qwen", "my-qwen": "qwen",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s → %q, want %q", k, got[k], v)
		}
	}
}

func TestReadMachineAndServingErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "serving_vllm_20260101_000000.csv")
	if err := os.WriteFile(p, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ls, warnings := readServing([]string{p})
	if len(ls) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "no concurrency column") {
		t.Errorf("levels %v warnings %q", ls, warnings)
	}
	if err := os.WriteFile(p, []byte("concurrency,output_tps,itl_p99_ns,ttft_p99_s\n4,100,2500000,0.25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ls, warnings = readServing([]string{p})
	if len(ls) != 1 || len(warnings) != 0 {
		t.Fatalf("levels %v warnings %q", ls, warnings)
	}
	if l := ls[0]; l.Stack != "vLLM" || l.Latency["itl_p99"] != 2.5 || l.Latency["ttft_p99"] != 250 || *l.OutputTPS != 100 {
		t.Errorf("level %+v", l)
	}
}

func stripData(html string) string { return embedded.ReplaceAllString(html, "") }

func names(d *Data) []string {
	var out []string
	for _, m := range d.Models {
		out = append(out, m.Name)
	}
	return out
}

func kinds(cs []Chart) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

func labels(ss []Series) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Label)
	}
	return out
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func formatNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func recordWithBytes(n int64) *results.Record {
	return &results.Record{Sample: &measure.Sample{ModelBytes: n}}
}

// TestFixtureTuning: the tuning section of the fixture's page, row by row, from the fixture's
// report: the search line, the best per objective against the default ("within noise" when
// not significant, dashes without a default), each knob's effect with its interval, and the
// settings escaped.
func TestFixtureTuning(t *testing.T) {
	d, _ := buildFixture(t)
	if !d.HasTuning || len(d.Models) != 1 || len(d.Models[0].Tuning) != 1 {
		t.Fatalf("HasTuning %v: want the one report in the model's section", d.HasTuning)
	}
	if !slices.Contains(d.Inputs, "ollama_bench_20261201_100000.tuning.json") {
		t.Errorf("inputs %v lack the tuning report", d.Inputs)
	}
	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	html := stripData(page.String())
	for _, want := range []string{
		"<h3>Tuning search: ollama on nvidia-h200</h3>",
		"halving search over OLLAMA_FLASH_ATTENTION, num_batch: 2 rounds of 3 repeats, 15 measurements, 3 server starts; the full grid: 24 measurements, 4 server starts in the planner&#39;s order (2 grouped). Read from ollama_bench_20261201_100000.tuning.json",
		"Limit: pruning uses the decode rate only.",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(html, "<512&>") {
		t.Error("a setting's value was written unescaped")
	}
	best := tableRows(t, html, "tuning-best")
	wantBest := [][]string{
		{"decode_tps", "OLLAMA_FLASH_ATTENTION=1 num_batch=128", "310.25", "301.00", "1.031", "0.0079", "significant"},
		{"ttft_ms", "OLLAMA_FLASH_ATTENTION=1 num_batch=&lt;512&amp;&gt;", "88.50", "90.00", "0.983", "0.4200", "within noise"},
		{"joules_per_token", "OLLAMA_FLASH_ATTENTION=0 num_batch=128", "0.877", "–", "–", "–", "default not measured; the default&#39;s energy was not read"},
	}
	if !slices.EqualFunc(best, wantBest, slices.Equal) {
		t.Errorf("best rows\n%q\nwant\n%q", best, wantBest)
	}
	effects := tableRows(t, html, "tuning-effects")
	wantEffects := [][]string{
		{"decode_tps", "OLLAMA_FLASH_ATTENTION", "0 → 1", "1.031", "1.011–1.050", "2", "significant, better"},
		{"decode_tps", "num_batch", "&lt;512&amp;&gt; → 128", "0.998", "0.981–1.012", "2", "~"},
		{"ttft_ms", "num_batch", "&lt;512&amp;&gt; → 128", "1.200", "1.050–1.410", "2", "significant, worse"},
	}
	if !slices.EqualFunc(effects, wantEffects, slices.Equal) {
		t.Errorf("effect rows\n%q\nwant\n%q", effects, wantEffects)
	}
	// The charts: per objective with effects, the ratios with their intervals as whiskers and a
	// line at 1.
	var charts []Chart
	for _, c := range d.Models[0].Charts {
		if c.Kind == "tuning" {
			charts = append(charts, c)
		}
	}
	if len(charts) != 2 || !strings.Contains(charts[0].Title, "decode_tps") || !strings.Contains(charts[1].Title, "ttft_ms") {
		t.Fatalf("%d tuning charts, want decode_tps and ttft_ms", len(charts))
	}
	c := charts[0]
	eff, ref := c.Series[0], c.Series[1]
	if !slices.Equal(c.XTicks, []string{"OLLAMA_FLASH_ATTENTION 0 → 1", "num_batch <512&> → 128"}) || !c.Horizontal || c.YRef == nil || *c.YRef != 1 ||
		len(c.Series) != 2 || *eff.Y[0] != 1.0312 || *eff.Low[0] != 1.0106 || *eff.High[1] != 1.012 || ref.Ref == nil || *ref.Ref != 1 || !ref.Dash {
		t.Errorf("decode_tps chart %+v", c)
	}
	// Only the effect that helps is marked as the search's finding.
	if n := strings.Count(html[strings.Index(html, `class="tuning-effects"`):], `<tr class="best">`); n != 1 {
		t.Errorf("%d effect rows marked best, want 1", n)
	}
}

// tableRows are the cells (tags removed, entities kept) of the body rows of the first table
// with class name.
func tableRows(t *testing.T, html, class string) [][]string {
	t.Helper()
	i := strings.Index(html, `<table class="`+class+`">`)
	if i < 0 {
		t.Fatalf("no table %q", class)
	}
	body := html[i:]
	body = body[strings.Index(body, "<tbody>"):strings.Index(body, "</tbody>")]
	cell := regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tag := regexp.MustCompile(`<[^>]+>`)
	var out [][]string
	for _, tr := range strings.Split(body, "</tr>") {
		var row []string
		for _, m := range cell.FindAllStringSubmatch(tr, -1) {
			row = append(row, strings.TrimSpace(tag.ReplaceAllString(m[1], "")))
		}
		if len(row) > 0 {
			out = append(out, row)
		}
	}
	return out
}
