package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/runset"
	"github.com/fuze-ai/fuze/internal/stats"
)

func loadSide(t *testing.T, path string) []runset.Config {
	t.Helper()
	set, _, err := runset.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	return set.Configs
}

// TestCompareCommittedRuns compares the committed llama.cpp and Ollama runs of the 8B: the
// stack, the model names and the batch differ throughout each side, so they are what is
// compared; the configurations match by placement (Ollama num_gpu 33 = llama.cpp -ngl -1 on
// the 33-layer model). Every repeat of Ollama is above every repeat of llama.cpp at 33 layers
// and at the stacks' defaults: p = 2/C(10,5) = 0.0079 both times.
func TestCompareCommittedRuns(t *testing.T) {
	old := loadSide(t, filepath.Join("..", "..", "results", "gpu", "llamacpp_llama-8b.csv"))
	new := loadSide(t, filepath.Join("..", "..", "results", "gpu", "ollama_llama-8b.csv"))
	rc := CompareRuns("llamacpp_llama-8b.csv", old, "ollama_llama-8b.csv", new)
	var text bytes.Buffer
	if err := rc.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := `old: llamacpp_llama-8b.csv (stack=llama.cpp model=llama-8b batch=32)
new: ollama_llama-8b.csv (stack=ollama model=fuze-llama-8b:latest batch=default)

client decode tok/s: median [min–max], n repeats; delta = new vs old, "~" when p > 0.05 (two-sided Mann–Whitney U, as benchstat)
  offload                       old  n                     new  n      delta      p
  default          6.15 [5.30–7.38]  5  166.22 [163.53–168.59]  5  +2603.55%  0.008
  33 layers  153.80 [145.10–154.81]  5  164.65 [161.06–166.58]  5     +7.06%  0.008
  best       153.80 [145.10–154.81]  5  166.22 [163.53–168.59]  5     +8.07%  0.008

  best: old num_gpu=-1 (33/33 layers) in llamacpp_llama-8b.csv; new num_gpu=default in ollama_llama-8b.csv
`
	if text.String() != want {
		t.Errorf("got\n%s\nwant\n%s", text.String(), want)
	}
	for _, r := range rc.Rows {
		if math.Abs(r.P-2.0/252) > 1e-12 || !r.Significant {
			t.Errorf("%v: p = %v, want 2/252", r.Key, r.P)
		}
	}
	var js bytes.Buffer
	if err := rc.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back RunComparison
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != 3 || back.Rows[1].Delta != "+7.06%" ||
		back.OldLevel["stack"] != "llama.cpp" || back.Rows[1].New.N != 5 || len(back.Rows[1].Old.Values) != 5 {
		t.Errorf("JSON %s (%v)", js.String(), err)
	}
}

// TestCompareOnlyInOneSide: configurations of one side only, failures and rows without
// repeats (which claim nothing).
func TestCompareOnlyInOneSide(t *testing.T) {
	c := func(ng string, tps float64, repeats ...float64) runset.Config {
		return runset.Config{Stack: "ollama", Model: "m", Label: "optimized", NumGPU: ng, Layers: atoi(ng), TPS: tps, Repeats: repeats, Failed: tps == 0}
	}
	old := []runset.Config{c("10", 50, 49, 50, 51, 50.5, 49.5), c("20", 80), c("30", 0)}
	new := []runset.Config{c("10", 52, 51, 52, 53, 52.5, 51.5), c("20", 90), c("40", 99, 98, 99, 100)}
	rc := CompareRuns("a", old, "b", new)
	got := map[string]CompareRow{}
	for _, r := range rc.Rows {
		got[r.Key["offload"]] = r
	}
	if r := got["10"]; r.Delta != "+4.00%" || !r.Significant {
		t.Errorf("10: %+v", r)
	}
	if r := got["20"]; r.Delta != "~" || r.Significant || r.Note == "" {
		t.Errorf("20 (one value a side): %+v", r)
	}
	if r := got["30"]; r.New != nil || !r.Old.Failed || r.Tested {
		t.Errorf("30 (failed, only in old): %+v", r)
	}
	if r := got["40"]; r.Old != nil || r.New.N != 3 {
		t.Errorf("40 (only in new): %+v", r)
	}
	var text bytes.Buffer
	if err := rc.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"only in old", "only in new", "failed", "not enough repeats"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("the table does not say %q:\n%s", s, text.String())
		}
	}
}

// pairs are samples compared against benchstat: the committed GPU runs' repeats, ties, small
// and unequal samples.
var pairs = []struct {
	name     string
	old, new []float64
}{
	{"8b-llamacpp-33-vs-ollama-33", []float64{154.01762555877625, 154.81184632633037, 153.8018278053846, 153.17072771493545, 145.10016469451378},
		[]float64{161.05974777663042, 166.57924513555255, 166.0468482119529, 162.36040072167944, 164.65369080887322}},
	{"8b-ollama-default-vs-33", []float64{166.2163977879105, 163.93095483759635, 168.59072289404097, 166.75756529637354, 163.53471188760284},
		[]float64{161.05974777663042, 166.57924513555255, 166.0468482119529, 162.36040072167944, 164.65369080887322}},
	{"1b-ollama-17-vs-llamacpp-all", []float64{422.48302287733924, 401.84038339293556, 401.1744251784095, 403.4170850178604, 415.470370985664},
		[]float64{397.63358796264566, 397.31042988243945, 404.27994818951913, 443.1740725887237, 441.44820608640356}},
	{"ties", []float64{10, 11, 11, 12, 13}, []float64{11, 12, 12, 14, 15}},
	{"three-vs-three", []float64{1, 2, 3}, []float64{4, 5, 6}},
	{"five-vs-four", []float64{20, 21, 22, 23, 24}, []float64{24.5, 25, 26, 27}},
	{"overlap", []float64{100, 102, 104, 106, 108}, []float64{101, 103, 105, 107, 109}},
}

// TestCompareAgainstIndependentPValues: the p-values of CompareRuns are those of the exact
// two-sided Mann–Whitney U test, computed here by enumerating every assignment of the pooled
// (mid-)ranks to the two samples: p = 2·P(U ≤ min(U₁, U₂)), 1 when U₁ = U₂ (the rule of
// go-moremath's MannWhitneyUTest that benchstat uses).
func TestCompareAgainstIndependentPValues(t *testing.T) {
	rc := comparePairs()
	for i, p := range pairs {
		r := rc.Rows[i]
		want := exactUTestP(p.old, p.new)
		if math.Abs(r.P-want) > 1e-12 {
			t.Errorf("%s: p = %.15f, enumeration %.15f", p.name, r.P, want)
		}
		if wantSig := want <= stats.DefaultAlpha; r.Significant != wantSig {
			t.Errorf("%s: significant %v at p %.4f", p.name, r.Significant, want)
		}
		ratio := stats.Median(p.new) / stats.Median(p.old)
		wantDelta := "~"
		if r.Significant {
			wantDelta = fmt.Sprintf("%+.2f%%", (ratio-1)*100)
		}
		if r.Delta != wantDelta {
			t.Errorf("%s: delta %q, want %q", p.name, r.Delta, wantDelta)
		}
	}
}

// TestCompareAgainstBenchstat runs benchstat (golang.org/x/perf/cmd/benchstat at the version
// in go.mod, from the module cache, offline) on the same samples and checks that it prints the
// same delta and p-value as fuze compare for every pair.
func TestCompareAgainstBenchstat(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		skipOrFail(t, "no go command to run benchstat with; the p-values are checked by TestCompareAgainstIndependentPValues")
	}
	dir := t.TempDir()
	var oldTxt, newTxt strings.Builder
	for i, p := range pairs {
		for _, v := range p.old {
			fmt.Fprintf(&oldTxt, "BenchmarkPair%d 1 %v tok/s\n", i, v)
		}
		for _, v := range p.new {
			fmt.Fprintf(&newTxt, "BenchmarkPair%d 1 %v tok/s\n", i, v)
		}
	}
	oldPath, newPath := filepath.Join(dir, "old.txt"), filepath.Join(dir, "new.txt")
	if err := os.WriteFile(oldPath, []byte(oldTxt.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newPath, []byte(newTxt.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "run", "golang.org/x/perf/cmd/benchstat", oldPath, newPath)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod -buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		skipOrFail(t, fmt.Sprintf("benchstat does not run offline from the module cache (%v: %s); the p-values are checked by TestCompareAgainstIndependentPValues", err, out))
	}
	row := regexp.MustCompile(`(?m)^Pair(\d+)\s.*\s(~|[+-][0-9.]+%) \(p=([0-9.]+) n=([0-9+]+)\)`)
	matches := row.FindAllStringSubmatch(string(out), -1)
	if len(matches) != len(pairs) {
		t.Fatalf("%d rows in benchstat's output, want %d:\n%s", len(matches), len(pairs), out)
	}
	rc := comparePairs()
	for _, m := range matches {
		var i int
		fmt.Sscan(m[1], &i)
		r := rc.Rows[i]
		if got := fmt.Sprintf("%.3f", r.P); got != m[3] || r.Delta != m[2] {
			t.Errorf("%s: fuze compare %s (p=%s), benchstat %s (p=%s)", pairs[i].name, r.Delta, got, m[2], m[3])
		}
	}
	t.Logf("benchstat agrees on %d pairs:\n%s", len(matches), out)
}

// comparePairs compares every pair as one configuration of a model named by its index, so
// that the rows come back in the order of pairs.
func comparePairs() RunComparison {
	var old, new []runset.Config
	for i, p := range pairs {
		model := fmt.Sprintf("pair%02d", i)
		old = append(old, runset.Config{Stack: "s", Model: model, Label: "optimized", Layers: 1, TPS: stats.Median(p.old), Repeats: p.old})
		new = append(new, runset.Config{Stack: "s", Model: model, Label: "optimized", Layers: 1, TPS: stats.Median(p.new), Repeats: p.new})
	}
	rc := CompareRuns("old", old, "new", new)
	sort.SliceStable(rc.Rows, func(i, j int) bool { return rc.Rows[i].Key["model"] < rc.Rows[j].Key["model"] })
	return rc
}

// exactUTestP is the two-sided p-value of the exact Mann–Whitney U test of x1 against x2,
// by enumeration of all C(n1+n2, n1) assignments of the pooled mid-ranks.
func exactUTestP(x1, x2 []float64) float64 {
	pooled := append(append([]float64(nil), x1...), x2...)
	n1, n := len(x1), len(pooled)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return pooled[idx[a]] < pooled[idx[b]] })
	rank := make([]float64, n)
	for i := 0; i < n; {
		j := i
		for j < n && pooled[idx[j]] == pooled[idx[i]] {
			j++
		}
		for k := i; k < j; k++ {
			rank[idx[k]] = float64(i+j+1) / 2 // ranks i+1 … j, averaged
		}
		i = j
	}
	u := func(members []int) float64 {
		r := 0.0
		for _, m := range members {
			r += rank[m]
		}
		return r - float64(n1*(n1+1))/2
	}
	first := make([]int, n1)
	for i := range first {
		first[i] = i
	}
	u1 := u(first)
	u2 := float64(n1*(n-n1)) - u1
	if u1 == u2 {
		return 1
	}
	small := math.Min(u1, u2)
	var below, total int
	var choose func(start int, picked []int)
	choose = func(start int, picked []int) {
		if len(picked) == n1 {
			total++
			if u(picked) <= small+1e-9 {
				below++
			}
			return
		}
		for i := start; i <= n-(n1-len(picked)); i++ {
			choose(i+1, append(picked, i))
		}
	}
	choose(0, nil)
	return 2 * float64(below) / float64(total)
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// skipOrFail skips when a tool is missing, unless FUZE_REQUIRE_BUILD_TOOLS=1 (make test) asks
// for every test to run.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("FUZE_REQUIRE_BUILD_TOOLS") == "1" {
		t.Fatal(why + " (FUZE_REQUIRE_BUILD_TOOLS=1)")
	}
	t.Skip(why)
}
