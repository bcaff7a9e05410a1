package serving

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// The gaps have mean 1/rate and the coefficient of variation of a gamma of shape B (1/√B):
// B = 1 is Poisson (exponential gaps, CV 1). The same seed draws the same gaps.
func TestArrivalsAreGammaWithTheRatesMean(t *testing.T) {
	for _, b := range []float64{1, 0.25, 4} {
		a := NewArrivals(20, b, 7)
		const n = 200000
		var sum, sq float64
		for range n {
			x := a.Next().Seconds()
			sum += x
			sq += x * x
		}
		mean := sum / n
		cv := math.Sqrt(sq/n-mean*mean) / mean
		if math.Abs(mean-0.05)/0.05 > 0.01 || math.Abs(cv-1/math.Sqrt(b)) > 0.02/math.Sqrt(b) {
			t.Errorf("burstiness %g: mean gap %.5f s (want 0.05), CV %.3f (want %.3f)", b, mean, cv, 1/math.Sqrt(b))
		}
	}
	x, y := NewArrivals(3, 0.5, 42), NewArrivals(3, 0.5, 42)
	z := NewArrivals(3, 0.5, 43)
	same, differ := true, false
	for range 100 {
		gx, gy, gz := x.Next(), y.Next(), z.Next()
		same = same && gx == gy
		differ = differ || gx != gz
	}
	if !same || !differ {
		t.Errorf("seeded schedules: same seed equal %v, other seed differs %v", same, differ)
	}
	if g := NewArrivals(math.Inf(1), 1, 0).Next(); g != 0 {
		t.Errorf("inf: gap %s", g)
	}
}

func TestRateTextAndJSON(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "inf": math.Inf(1), "INF": math.Inf(1), "2.5": 2.5} {
		if v, ok := ParseRate(in); !ok || v != want {
			t.Errorf("ParseRate(%q) = %v %v", in, v, ok)
		}
	}
	for _, bad := range []string{"0", "-1", "x", "nan"} {
		if _, ok := ParseRate(bad); ok {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	b, err := json.Marshal(OpenLoop{Rate: Rate(math.Inf(1)), Burstiness: 1})
	if err != nil || !strings.Contains(string(b), `"rate":"inf"`) {
		t.Fatalf("%s %v", b, err)
	}
	var o OpenLoop
	if err := json.Unmarshal(b, &o); err != nil || !math.IsInf(float64(o.Rate), 1) {
		t.Errorf("%+v %v", o, err)
	}
	l := Level{Concurrency: 8, Open: &OpenLoop{Rate: 2.5, Burstiness: 0.5, Seed: 9, MaxConcurrency: 8, Capped: 3, MaxInFlight: 8}}
	if l.Name() != "rate=2.5/s, cap 8, burstiness 0.5" {
		t.Errorf("name %q", l.Name())
	}
	f := l.Fields(time.Unix(0, 0))
	if got := strings.Join(f[52:], ","); got != "2.5,0.5,9,3,8" {
		t.Errorf("open-loop columns %q", got)
	}
	if got := strings.Join((&Level{Concurrency: 4}).Fields(time.Unix(0, 0))[52:], ","); got != ",,,," {
		t.Errorf("closed-loop open columns %q", got)
	}
}

// Goodput of an open loop is the highest offered rate that met the SLO.
func TestGoodputOfAnOpenLoopIsTheHighestRate(t *testing.T) {
	ls := []Level{
		{SLOMet: true, Open: &OpenLoop{Rate: 8}},
		{SLOMet: true, Open: &OpenLoop{Rate: 2}},
		{SLOMet: false, Open: &OpenLoop{Rate: 16}},
	}
	if g := Goodput(ls); g == nil || g.Open.Rate != 8 {
		t.Errorf("goodput %+v", g)
	}
}

// Files of the 52-column schema (before the open-loop columns) still read, their new columns
// empty: the committed GPU runs and one written here.
func TestReadCSVReadsTheEarlierSchema(t *testing.T) {
	for _, name := range []string{"serving_ollama_llama8b.csv", "serving_llamacpp_llama8b.csv"} {
		rows, err := ReadCSV(testfixture.Repo(t, "results", "gpu", name))
		if err != nil || len(rows) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range rows {
			if r["concurrency"] == "" || r["output_tps"] == "" || r["offered_rate"] != "" || len(r) != len(Header) {
				t.Errorf("%s: %v", name, r)
			}
		}
	}
	old := strings.Join(Header[:headerV1], ",") + "\n" + strings.Repeat("x,", headerV1-1) + "x\n"
	path := filepath.Join(t.TempDir(), "serving_vllm_old.csv")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if rows, err := ReadCSV(path); err != nil || len(rows) != 1 || rows[0]["power_mean_w"] != "x" || rows[0]["seed"] != "" {
		t.Errorf("%v %v", rows, err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(Header[:40], ",")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCSV(path); err == nil {
		t.Error("a 40-column header read as a serving CSV")
	}
}
