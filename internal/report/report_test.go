package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/testfixture"
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
		t.Errorf("%s differs from the golden file; see %s.got (go test -update accepts it)\n%s", path, path, got)
	} else {
		os.Remove(path + ".got")
	}
}

func fixtureRows(t *testing.T) []results.AggRow {
	t.Helper()
	// The original's aggregate (testdata/original/benchmarks.csv).
	rows, warnings, err := results.ReadAggregate(testfixture.Original(t, "benchmarks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "1 duplicate rows") {
		t.Errorf("warnings %q, want one about the duplicated row", warnings)
	}
	return rows
}

var cellSplit = regexp.MustCompile(`\S+(?: \S+)*`)

// checkAligned verifies that every row of a table has one cell per header column, that each
// left-aligned cell starts where its header starts and each right-aligned cell ends where its
// header ends, and that the cells are the table's data.
func checkAligned(t *testing.T, tb table) {
	t.Helper()
	lines := tb.lines()
	head := cellSplit.FindAllStringIndex(lines[0], -1)
	if len(head) != len(tb.header) {
		t.Fatalf("%s: header %q has %d cells, want %d", tb.title, lines[0], len(head), len(tb.header))
	}
	if len(tb.rows) == 0 {
		if len(lines) != 2 || strings.TrimSpace(lines[1]) != "(none)" {
			t.Errorf("%s: empty table renders %q", tb.title, lines)
		}
		return
	}
	for i, line := range lines[1:] {
		// Byte offsets equal column offsets only for ASCII; the reports use ASCII only.
		for _, r := range line {
			if r > 127 {
				t.Fatalf("%s: non-ASCII %q in %q", tb.title, r, line)
			}
		}
		cells := cellSplit.FindAllStringIndex(line, -1)
		if len(cells) != len(head) {
			t.Errorf("%s: row %q has %d cells, want %d", tb.title, line, len(cells), len(head))
			continue
		}
		for c := range cells {
			var ok bool
			if tb.right[c] {
				ok = cells[c][1] == head[c][1]
			} else {
				ok = cells[c][0] == head[c][0]
			}
			if !ok {
				t.Errorf("%s: column %q of row %q is at %v, header at %v", tb.title, tb.header[c], line, cells[c], head[c])
			}
			if got := line[cells[c][0]:cells[c][1]]; got != tb.rows[i][c] {
				t.Errorf("%s: cell %d of row %d is %q, want %q", tb.title, c, i, got, tb.rows[i][c])
			}
		}
	}
}

func TestSummaryFixtureGolden(t *testing.T) {
	rows := fixtureRows(t)
	rep := Summary(rows, SummaryOptions{Source: "benchmarks.csv", Top: 5, Prefix: "LLM-FuZe-"})
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden", buf.Bytes())
	for _, s := range rep.Sections {
		checkAligned(t, s.table())
	}
	if got := rep.Sections[len(rep.Sections)-1].Title; got != "Global best per model (across hosts & stacks, alias names):" {
		t.Errorf("global title %q", got)
	}
	for _, bad := range []string{"\x01", "\b", "i^A", "LLM-FuZe-LLM-FuZe-"} {
		if strings.Contains(buf.String(), bad) {
			t.Errorf("summary contains %q", bad)
		}
	}

	// JSON carries the same numbers as the text.
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back SummaryReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, js.Bytes())
	}
	if len(back.Sections) != len(rep.Sections) {
		t.Fatalf("JSON has %d sections, text %d", len(back.Sections), len(rep.Sections))
	}
	for i, s := range back.Sections {
		tb := rep.Sections[i].table()
		if s.ID != rep.Sections[i].ID || len(s.Rows) != len(tb.rows) {
			t.Fatalf("section %d: JSON %s/%d rows, text %s/%d", i, s.ID, len(s.Rows), rep.Sections[i].ID, len(tb.rows))
		}
		for j, r := range s.Rows {
			cells := tb.rows[j]
			if fmt.Sprintf("%.2f", r.OptimalTPS) != cells[7] || tpsCell(r.BaselineTPS) != cells[8] || gainCell(r.Gain, r.Ratio) != cells[9] || r.Alias != cells[1] {
				t.Errorf("section %s row %d: JSON %+v, text %q", s.ID, j, r, cells)
			}
		}
	}
}

func TestSummaryOptions(t *testing.T) {
	rows := fixtureRows(t)
	ids := func(o SummaryOptions) string {
		var out []string
		for _, s := range Summary(rows, o).Sections {
			out = append(out, s.ID)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		opts SummaryOptions
		want string
	}{
		{SummaryOptions{Top: 3}, "top stack_model stack_model_gpu host_model global"},
		{SummaryOptions{Top: 3, OnlyTop: true}, "top global"},
		{SummaryOptions{Top: 3, OnlyGlobal: true}, "global"},
		{SummaryOptions{Top: 0}, "stack_model stack_model_gpu host_model global"},
	} {
		if got := ids(tc.opts); got != tc.want {
			t.Errorf("%+v: sections %q, want %q", tc.opts, got, tc.want)
		}
	}
	rep := Summary(rows, SummaryOptions{Top: 3})
	if n := len(rep.Sections[0].Rows); n != 3 {
		t.Errorf("Top 3 has %d rows", n)
	}
	top := rep.Sections[0].Rows[0]
	if top.OptimalTPS != 151.41 || top.RunTS != "20250914_044723" || top.Ratio == nil || *top.Ratio != 1.12 {
		t.Errorf("top row %+v", top)
	}
	// The all-failed model has no working row: it is in no table.
	for _, s := range rep.Sections {
		for _, r := range s.Rows {
			if r.Model == "gpt-oss:20b" {
				t.Errorf("%s lists the all-failed model", s.ID)
			}
		}
	}
	// Filters.
	f := results.Filters{Model: regexp.MustCompile(`^gpt`)}
	for _, s := range Summary(rows, SummaryOptions{Top: 3, Filters: f}).Sections {
		if len(s.Rows) != 0 {
			t.Errorf("MODEL_RE=^gpt: %s has rows", s.ID)
		}
	}
}

func TestSummaryRowsAndOrder(t *testing.T) {
	rows := []results.AggRow{
		{RunTS: "20250914_010000", Host: "h2", Stack: "vLLM", Model: "llama4:16x17b", OptimalVariant: "m", OptimalTPS: 40, BaselineTPS: 40, OptimalEndpoint: "127.0.0.1:11436", GPULabel: "nvidia-3090ti", CSVFile: "/l/vllm_bench_20250914_010000.csv"},
		{RunTS: "2025-09-14T03:00:47+00:00", Host: "h1", Stack: "ollama", Model: "gemma3:4b-it-fp16", OptimalTPS: 150, BaselineTPS: 0, OptimalEndpoint: "127.0.0.1:11435", NumGPU: "28", GPULabel: "nvidia-5090", CSVFile: "/l/a.csv"},
		{RunTS: "20250914_020000", Host: "h1", Stack: "ollama", Model: "gemma3:4b-it-fp16", OptimalTPS: 150, BaselineTPS: 100, BaselineEndpoint: "127.0.0.1:11436", CSVFile: "/l/b.csv"},
	}
	rep := Summary(rows, SummaryOptions{Top: 10, Prefix: "P-", Suffix: "-explore"})
	top := rep.Sections[0]
	if len(top.Rows) != 3 {
		t.Fatalf("top: %d rows", len(top.Rows))
	}
	// Ties on tok/s: the newer run first; the ISO run_ts sorts as a string, so the compact
	// 20250914_020000 ranks above 2025-09-14T…; what matters is a stable, total order.
	if top.Rows[0].CSVFile != "/l/b.csv" || top.Rows[1].CSVFile != "/l/a.csv" || top.Rows[2].Model != "llama4:16x17b" {
		t.Errorf("top order: %+v", top.Rows)
	}
	r := top.Rows[1]
	if r.Time != "2025-09-14 03:00:47" || r.Ratio != nil || r.Alias != "P-gemma3-4b-i-f16-explore" {
		t.Errorf("row %+v", r)
	}
	if b := top.Rows[0]; b.Endpoint != "127.0.0.1:11436" || *b.Ratio != 1.5 {
		t.Errorf("baseline endpoint fallback / ratio: %+v", b)
	}
	tb := top.table()
	checkAligned(t, tb)
	if got := tb.rows[1][8]; got != "-" {
		t.Errorf("no baseline shows %q", got)
	}
	if got := tb.rows[1][9]; got != "-" {
		t.Errorf("no baseline ratio shows %q", got)
	}
	// Input order does not change anything.
	rev := []results.AggRow{rows[2], rows[1], rows[0]}
	a, _ := json.Marshal(Summary(rows, SummaryOptions{Top: 10}))
	b, _ := json.Marshal(Summary(rev, SummaryOptions{Top: 10}))
	if !bytes.Equal(a, b) {
		t.Errorf("summary depends on the input order:\n%s\n%s", a, b)
	}
	checkAligned(t, SummarySection{Title: "empty"}.table())
}

func TestHumanTime(t *testing.T) {
	for in, want := range map[string]string{
		"20250914_045417":           "2025-09-14 04:54:17",
		"2025-09-14T03:00:47+00:00": "2025-09-14 03:00:47",
		"2025-09-14T05:00:47+02:00": "2025-09-14 05:00:47",
		"2025-09-14T03:00:47Z":      "2025-09-14 03:00:47",
		"2025-09-14T03:00:47+0000":  "2025-09-14 03:00:47",
		"2025-09-14T03:00:47.5Z":    "2025-09-14 03:00:47",
		"":                          "-",
		"yesterday":                 "yesterday",
		"20250914":                  "20250914",
	} {
		if got := HumanTime(in); got != want {
			t.Errorf("HumanTime(%q) = %q, want %q", in, got, want)
		}
	}
}

// synthRuns writes two run CSVs in dir: an Ollama run with its JSONL (two endpoints,
// failures, a published row, repeats, roofline) and a llama.cpp run without a JSONL that
// shares an endpoint address with it.
func synthRuns(t *testing.T, dir string) (ollamaCSV, llamaCSV string) {
	t.Helper()
	w, err := results.CreateRun(dir, "ollama", time.Date(2025, 9, 14, 3, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return time.Date(2025, 9, 14, 3, 0, sec, 0, time.UTC) }
	epA := results.Row{Endpoint: "127.0.0.1:11435", Unit: "ollama-test-a.service", Suffix: "A", GPULabel: "nvidia-5090", GPUName: "NVIDIA GeForce RTX 5090", GPUUUID: "GPU-a", GPUMemMiB: 32607}
	epB := results.Row{Endpoint: "127.0.0.1:11436", Unit: "ollama-test-b.service", Suffix: "B", GPULabel: "nvidia-3090ti", GPUName: "NVIDIA GeForce RTX 3090 Ti", GPUUUID: "GPU-b", GPUMemMiB: 24564}
	ok := func(tps float64, ttft time.Duration, repeats []float64, share float64) *measure.Sample {
		return &measure.Sample{
			Outcome: measure.OK, ServerOutputTokens: int(tps * 2), ServerDecodeDuration: 2 * time.Second,
			ServerPromptTokens: 100, ServerPromptDuration: 50 * time.Millisecond,
			FirstToken: ttft, RepeatTPS: repeats, RooflineShare: share,
		}
	}
	fail := func(outcome, msg string) *measure.Sample {
		return &measure.Sample{Outcome: outcome, Error: msg}
	}
	const gemma, llama = "gemma3:4b-it-fp16", "llama3.2:1b"
	rows := []struct {
		ep        results.Row
		model     string
		label, ng string
		tag       string
		tps       float64
		s         *measure.Sample
	}{
		{epA, gemma, "base-as-is", "", gemma, 100, ok(100, 120*time.Millisecond, []float64{99.5, 100, 101.25}, 0.41)},
		{epA, gemma, "optimized", "28", gemma, 110, ok(110, 110*time.Millisecond, []float64{109, 110, 111}, 0.45)},
		{epA, gemma, "optimized", "20", gemma, 0, fail(measure.ErrTimeout, "context deadline exceeded (Client.Timeout exceeded while awaiting headers)")},
		{epA, gemma, "published", "28", "LLM-FuZe-gemma3-4b-i-f16-nvidia-5090-ng28:latest", 112.5, ok(112.5, 105*time.Millisecond, nil, 1.07)},
		{epB, gemma, "base-as-is", "", gemma, 0, fail(measure.ErrLoad, "model requires more system memory")},
		{epB, gemma, "optimized", "35", gemma, 80, ok(80, 200*time.Millisecond, []float64{79, 80, 80.5}, 0.5)},
		{epA, llama, "base-as-is", "", llama, 200, ok(200, 50*time.Millisecond, nil, 0)},
		{epA, llama, "optimized", "16", llama, 0, fail(measure.ErrHTTP, "HTTP 500: llama runner process has terminated")},
	}
	// Telemetry: the optimized row measured 440 J over its 2 s window (220 tokens: 2 J/token;
	// above the idle 100 W: 240 J, 1.091 J/token); the baseline's energy was n/a.
	mem := 9000
	rows[1].s.Telemetry = &measure.Telemetry{Source: measure.SourcePowerIntegral, Device: "GPU-a", Window: 2 * time.Second,
		EnergyJ: measure.F(440), PowerMeanW: measure.F(220), IdlePowerW: measure.F(100), MemPeakMiB: &mem}
	rows[0].s.Telemetry = &measure.Telemetry{Device: "GPU-a", NA: "nvidia-smi exited"}
	for i, r := range rows {
		row := r.ep
		row.TS, row.BaseModel, row.VariantLabel, row.NumGPU, row.ModelTag, row.TokensPerSec = at(i), r.model, r.label, r.ng, r.tag, r.tps
		if err := w.Write(row, r.s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	llamaCSV = filepath.Join(dir, "llamacpp_bench_20250914_031000.csv")
	content := strings.Join(results.Header, ",") + "\n" +
		"2025-09-14T03:10:00+00:00,127.0.0.1:11435,proc,A,gemma3:4b-it-fp16,base-as-is,gemma3-4b-it-fp16,default,4096,512,64,90.00,nvidia-5090,,,,\n" +
		"2025-09-14T03:10:05+00:00,127.0.0.1:11435,proc,A,gemma3:4b-it-fp16,optimized,gemma3-4b-it-fp16-nvidia-5090-ngl99,99,4096,512,64,130.25,nvidia-5090,,,,\n" +
		"2025-09-14T03:10:09+00:00,127.0.0.1:11435,proc,A,gemma3:4b-it-fp16,optimized,gemma3-4b-it-fp16-nvidia-5090-ngl50,50,4096,512,64,0.00,nvidia-5090,,,,\n"
	if err := os.WriteFile(llamaCSV, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return w.CSVPath(), llamaCSV
}

func loadSynth(t *testing.T) []Run {
	t.Helper()
	dir := t.TempDir()
	a, b := synthRuns(t, dir)
	var runs []Run
	for _, p := range []string{a, b} {
		run, warnings, err := LoadRun(p, "")
		if err != nil || len(warnings) != 0 {
			t.Fatalf("LoadRun(%s): %v %q", p, err, warnings)
		}
		run.CSV = filepath.Base(p) // stable output
		runs = append(runs, run)
	}
	if runs[0].Records == nil || runs[1].Records != nil {
		t.Fatalf("JSONL: ollama %d records, llama.cpp %v", len(runs[0].Records), runs[1].Records)
	}
	return runs
}

func TestAnalyzeGolden(t *testing.T) {
	runs := loadSynth(t)
	a := Analyze(runs, AnalyzeOptions{Top: 5, Prefix: "LLM-FuZe-"})
	var buf bytes.Buffer
	if err := a.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "analyze.golden", buf.Bytes())
	for _, tb := range a.tables() {
		checkAligned(t, tb)
	}

	if a.Rows != 11 || a.Models != 2 {
		t.Errorf("rows %d models %d", a.Rows, a.Models)
	}
	// The two stacks share 127.0.0.1:11435 but are separate keys.
	if len(a.PerEndpoint) != 4 {
		t.Fatalf("%d per-endpoint results, want 4: %+v", len(a.PerEndpoint), a.PerEndpoint)
	}
	find := func(st, ep, model string) EndpointResult {
		for _, e := range a.PerEndpoint {
			if e.Stack == st && e.Endpoint == ep && e.Model == model {
				return e
			}
		}
		t.Fatalf("no result for %s %s %s", st, ep, model)
		return EndpointResult{}
	}
	// The published row (112.50) is above the roofline (107%): a measurement error, never
	// the best (it used to be, at 1.13x). The optimized row's 3 repeats against the
	// baseline's 3 cannot be significant: "~".
	oa := find("ollama", "127.0.0.1:11435", "gemma3:4b-it-fp16")
	if oa.Baseline.TPS != 100 || oa.Best.TPS != 110 || oa.Best.Label != "optimized" || *oa.Ratio != 1.1 || oa.TunedAttempts != 3 {
		t.Errorf("ollama A gemma: %+v", oa)
	}
	if g := oa.Gain; g == nil || !g.Tested || g.Significant || g.String() != "~ (p=0.100)" || g.NTuned != 3 || g.NDefault != 3 {
		t.Errorf("ollama A gemma gain: %+v", g)
	}
	if oa.Best.RooflineShare != 0.45 || oa.Baseline.TTFT != int64(120*time.Millisecond) || len(oa.Baseline.RepeatTPS) != 3 || oa.Baseline.PrefillTPS != 2000 {
		t.Errorf("samples not attached: base %+v best %+v", oa.Baseline, oa.Best)
	}
	if j := oa.Best.JoulesPerToken; j == nil || *j != 2 || math.Abs(*oa.Best.JoulesPerTokenAboveIdle-240.0/220) > 1e-12 ||
		oa.Best.EnergySource != measure.SourcePowerIntegral || *oa.Best.MemPeakMiB != 9000 || *oa.Best.PowerMeanW != 220 {
		t.Errorf("best's telemetry: %+v", oa.Best)
	}
	if oa.Baseline.JoulesPerToken != nil || oa.Baseline.EnergySource != "" || oa.Baseline.PowerMeanW != nil {
		t.Errorf("the baseline's energy was n/a: %+v", oa.Baseline)
	}
	for _, top := range a.Top {
		if top.Label == "published" && (!top.MeasurementError || top.RooflineShare != 1.07) {
			t.Errorf("published row not flagged: %+v", top)
		}
	}
	ob := find("ollama", "127.0.0.1:11436", "gemma3:4b-it-fp16")
	if ob.Baseline != nil || ob.BaselineAttempts != 1 || ob.Ratio != nil || ob.Best.TPS != 80 {
		t.Errorf("ollama B gemma: %+v", ob)
	}
	lc := find("llama.cpp", "127.0.0.1:11435", "gemma3:4b-it-fp16")
	if lc.Best.TPS != 130.25 || lc.Best.HasSample || *lc.Ratio != 1.45 || lc.Gain.Tested || lc.Gain.String() != "1.45x (n=1)" {
		t.Errorf("llama.cpp: %+v", lc)
	}
	var gemma ModelResult
	for _, m := range a.PerModel {
		if m.Model == "gemma3:4b-it-fp16" {
			gemma = m
		}
	}
	// Across endpoints the gain is the chosen endpoint's own: llama.cpp's 130.25 over its
	// baseline 90 (the old table divided by ollama's 100, on another server: 1.30x).
	if gemma.Baseline.TPS != 90 || gemma.Best.TPS != 130.25 || gemma.Stack != "llama.cpp" || gemma.Best.Stack != "llama.cpp" || *gemma.Ratio != 1.45 ||
		gemma.BaselineAttempts != 3 || gemma.TunedAttempts != 6 {
		t.Errorf("per model gemma: %+v", gemma)
	}

	// JSON parses and carries the same numbers.
	var js bytes.Buffer
	if err := a.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Analysis
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON: %v\n%s", err, js.Bytes())
	}
	for _, key := range []string{`"joules_per_token": 2,`, `"energy_source": "power-integral"`, `"mem_peak_mib": 9000`, `"roofline_share": 1.07`, `"repeat_tps": [`, `"ttft_ns": 120000000`, `"prefill_tps": 2000`, `"outcome": "timeout"`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if len(back.PerEndpoint) != len(a.PerEndpoint) || len(back.Top) != len(a.Top) || len(back.Outcomes) != len(a.Outcomes) {
		t.Fatalf("JSON sections differ in length")
	}
	tbs := back.tables()
	for i, tb := range a.tables() {
		if fmt.Sprint(tb.rows) != fmt.Sprint(tbs[i].rows) {
			t.Errorf("%s: JSON renders\n%q\ntext\n%q", tb.title, tbs[i].rows, tb.rows)
		}
	}
}

func TestAnalyzeModelFilterAndTop(t *testing.T) {
	runs := loadSynth(t)
	a := Analyze(runs, AnalyzeOptions{Model: regexp.MustCompile(`^llama`), Top: 1})
	if a.Rows != 11 || a.Models != 2 {
		t.Errorf("counts are taken before the filter: rows %d models %d", a.Rows, a.Models)
	}
	if len(a.PerModel) != 1 || a.PerModel[0].Model != "llama3.2:1b" || a.PerModel[0].Best != nil || a.PerModel[0].TunedAttempts != 1 {
		t.Errorf("per model: %+v", a.PerModel)
	}
	if len(a.Top) != 1 || a.Top[0].TPS != 200 || *a.Top[0].Ratio != 1 {
		t.Errorf("top: %+v", a.Top)
	}
	var buf bytes.Buffer
	if err := a.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Model RE: ^llama") || !strings.Contains(buf.String(), "failed") {
		t.Errorf("text:\n%s", buf.String())
	}
	none := Analyze(runs, AnalyzeOptions{Model: regexp.MustCompile(`nothing`)})
	for _, tb := range none.tables() {
		checkAligned(t, tb)
	}
	if b, _ := json.Marshal(Analyze(nil, AnalyzeOptions{})); !strings.Contains(string(b), `"csvs":[]`) {
		t.Errorf("empty analysis JSON %s", b)
	}
}
