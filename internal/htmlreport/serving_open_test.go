package htmlreport

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/serving"
)

// writeOpenLoopFixture writes two serving CSVs of one model in fuze's own schema (the 57
// columns of serving.Header): a closed loop at concurrency 1 and 2, and an open loop offered
// 1, 4 and inf requests/s under a cap of 8 in flight, so that a chart keyed by the concurrency
// column would put every open-loop level at 8.
func writeOpenLoopFixture(t testing.TB, dir string) {
	t.Helper()
	write := func(name string, rows []map[string]string) {
		var b strings.Builder
		b.WriteString(strings.Join(serving.Header, ",") + "\n")
		for _, r := range rows {
			cells := make([]string, len(serving.Header))
			for i, h := range serving.Header {
				cells[i] = r[h]
			}
			b.WriteString(strings.Join(cells, ",") + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// e2e p99 is ten times TTFT p99 (ttft+"0"): distinct latencies, a Pareto front to draw.
	level := func(concurrency, tps, ttft, itl, energy string) map[string]string {
		return map[string]string{"ts": "2026-12-01T11:00:00Z", "stack": "llama.cpp", "endpoint": "127.0.0.1:11435", "gpu_label": "nvidia-h200",
			"model": "tiny", "label": "optimized", "parallel": "8", "concurrency": concurrency, "completed": "32", "failed": "0",
			"request_rate": "1.5", "output_tps": tps, "ttft_ms_p50": ttft, "ttft_ms_p90": ttft, "ttft_ms_p99": ttft,
			"itl_ms_p50": itl, "itl_ms_p90": itl, "itl_ms_p99": itl, "e2e_ms_p99": ttft + "0", "joules_per_token": energy}
	}
	write("serving_llamacpp_20261201_110000.csv", []map[string]string{
		level("1", "320", "14", "3.1", "0.9"), level("2", "600", "16", "3.3", "0.6"),
	})
	open := func(rate, capped, tps, ttft, itl string) map[string]string {
		r := level("8", tps, ttft, itl, "0.5")
		r["offered_rate"], r["burstiness"], r["seed"], r["capped"], r["max_in_flight"] = rate, "1", "0", capped, "8"
		return r
	}
	write("serving_llamacpp_20261201_111000.csv", []map[string]string{
		open("1", "0", "120", "15", "3.2"), open("4", "0", "480", "20", "3.6"), open("inf", "24", "1500", "900", "5.5"),
	})
}

func buildOpenLoop(t testing.TB) *Data {
	t.Helper()
	dir := t.TempDir()
	writeOpenLoopFixture(t, dir)
	set, warnings, err := runset.Load([]string{dir})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("%v %q", err, warnings)
	}
	d, warnings := Build(set, fixtureOpts)
	if len(warnings) > 0 || len(d.Models) != 1 {
		t.Fatalf("warnings %q, models %v", warnings, names(d))
	}
	return d
}

// Open-loop levels are keyed by their offered rate: their own configuration, rows in rate
// order (inf last), charts against the offered rate (inf left to the table); the closed loop's
// charts keep concurrency, without the open loop's cap of 8 on that axis.
func TestServingOpenLoopByOfferedRate(t *testing.T) {
	d := buildOpenLoop(t)
	m := d.Models[0]
	var rows []string
	for _, r := range m.Serving {
		rows = append(rows, r.Config+" c="+formatNum(r.Concurrency)+" rate="+r.OfferedRate)
	}
	want := []string{"parallel=8 c=1 rate=", "parallel=8 c=2 rate=",
		"parallel=8 open loop (Poisson, cap 8) c=8 rate=1", "parallel=8 open loop (Poisson, cap 8) c=8 rate=4", "parallel=8 open loop (Poisson, cap 8) c=8 rate=inf"}
	if !slices.Equal(rows, want) {
		t.Fatalf("serving rows\n%q\nwant\n%q", rows, want)
	}
	if c := m.Serving[4].Capped; c == nil || *c != 24 || m.Serving[2].Capped != nil {
		t.Errorf("capped %v %v", m.Serving[4].Capped, m.Serving[2].Capped)
	}
	wantKinds := []string{"serving", "serving-ttft", "serving-itl", "energy", "serving-rate", "serving-rate-ttft", "serving-rate-itl", "energy-rate"}
	if got := kinds(m.Charts); !slices.Equal(got, wantKinds) {
		t.Fatalf("chart kinds %v, want %v", got, wantKinds)
	}
	closedLabel, openLabel := "llama.cpp parallel=8 · nvidia-h200", "llama.cpp parallel=8 open loop (Poisson, cap 8) · nvidia-h200"
	for _, ch := range m.Charts[1:] {
		open := strings.Contains(ch.Kind, "rate")
		wantX, label := []float64{1, 2}, closedLabel
		if open {
			wantX, label = []float64{1, 4}, openLabel
		}
		if !slices.Equal(ch.X, wantX) {
			t.Errorf("%s: x %v, want %v", ch.Kind, ch.X, wantX)
		}
		for _, s := range ch.Series {
			if !strings.HasPrefix(s.Label, label) || strings.HasPrefix(s.Label, openLabel) != open {
				t.Errorf("%s: series %q, want %q's", ch.Kind, s.Label, label)
			}
		}
		if open != strings.Contains(ch.Note, "rate inf") {
			t.Errorf("%s: note %q", ch.Kind, ch.Note)
		}
	}
	rate := m.Charts[4]
	if len(rate.Series) != 1 || *rate.Series[0].Y[0] != 120 || *rate.Series[0].Y[1] != 480 || !strings.Contains(rate.XLabel, "offered") {
		t.Errorf("throughput against offered rate: %+v", rate)
	}
	ttft := m.Charts[5]
	if len(ttft.Series) != 2 || *ttft.Series[1].Y[1] != 20 || !ttft.Series[1].Dash {
		t.Errorf("TTFT against offered rate: %+v", ttft)
	}

	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	for _, cell := range []string{">4 req/s offered<", ">inf req/s offered, 24 waited for the cap<", `<td class="num">2</td>`} {
		if !strings.Contains(page.String(), cell) {
			t.Errorf("the serving table lacks %q", cell)
		}
	}
}

// fuze's own serving CSV names the achieved request rate request_rate: the report reads it
// (it showed "–" before), from the committed H200 run's first level (24 requests in 21.124 s).
func TestServingRequestRateFromFuzeCSV(t *testing.T) {
	ls, err := readServingFile(filepath.Join("..", "..", "results", "gpu", "serving_ollama_llama8b.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 || ls[0].RequestTPS == nil || *ls[0].RequestTPS != 1.136 {
		t.Fatalf("first level's request rate %v, want 1.136", ls[0].RequestTPS)
	}
}
