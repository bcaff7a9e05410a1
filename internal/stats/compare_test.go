package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// 2/C(10, 5): every candidate repeat beats every incumbent repeat, 5 vs 5.
const p5v5 = 2.0 / 252

func TestCompareIdentical(t *testing.T) {
	xs := []float64{101.2, 99.8, 100.5, 100.1, 100.9}
	c := Compare(xs, slices.Clone(xs), DefaultAlpha)
	if c.Significant || c.Better || c.Worse || c.Underpowered {
		t.Errorf("identical samples: %+v", c)
	}
	if c.P != 1 || c.Ratio != 1 || c.String() != "~ (p=1.000)" || c.Delta() != "~" {
		t.Errorf("identical samples: P=%v Ratio=%v String=%q", c.P, c.Ratio, c)
	}

	// All ten values equal: the U test refuses to run, and says so.
	flat := []float64{50, 50, 50, 50, 50}
	c = Compare(flat, flat, DefaultAlpha)
	if c.Significant || c.P != 1 || c.String() != "~ (p=1.000)" || c.Note != "all samples are equal" {
		t.Errorf("constant samples: %+v", c)
	}
}

func TestCompareSeparated5v5(t *testing.T) {
	cand := []float64{24, 20, 22, 21, 23} // median 22
	inc := []float64{12, 14, 10, 13, 11}  // median 12
	candIn, incIn := slices.Clone(cand), slices.Clone(inc)
	c := Compare(cand, inc, DefaultAlpha)
	if !slices.Equal(cand, candIn) || !slices.Equal(inc, incIn) {
		t.Errorf("Compare modified its inputs: %v %v", cand, inc)
	}
	if !approx(c.P, p5v5) || !approx(c.MinP, p5v5) {
		t.Errorf("P = %v, MinP = %v, want %v", c.P, c.MinP, p5v5)
	}
	if !c.Significant || !c.Better || c.Worse || c.Underpowered || c.Note != "" {
		t.Errorf("separated 5 vs 5: %+v", c)
	}
	if c.NCandidate != 5 || c.NIncumbent != 5 || c.CandidateMedian != 22 || c.IncumbentMedian != 12 || !approx(c.Ratio, 22.0/12) {
		t.Errorf("separated 5 vs 5: %+v", c)
	}
	if got, want := c.String(), "+83.3% (p=0.008)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}

	// The other way round: the same p, a loss.
	c = Compare(inc, cand, DefaultAlpha)
	if !approx(c.P, p5v5) || !c.Significant || c.Better || !c.Worse {
		t.Errorf("reversed: %+v", c)
	}
	if got, want := c.String(), "-45.5% (p=0.008)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// A small but consistent gain (every repeat of the candidate above every repeat of
// the incumbent) is significant; the size of the gap does not matter, only ranks.
func TestCompareSmallConsistentGain(t *testing.T) {
	c := Compare([]float64{100.6, 100.7, 100.8, 100.9, 101.0}, []float64{100.0, 100.1, 100.2, 100.3, 100.4}, DefaultAlpha)
	if !c.Better || !approx(c.P, p5v5) || c.String() != "+0.6% (p=0.008)" {
		t.Errorf("small consistent gain: %v %+v", c, c)
	}
}

func TestCompareOverlapping(t *testing.T) {
	for _, tc := range []struct {
		cand, inc []float64
		str       string
	}{
		// A higher median, but the samples interleave.
		{[]float64{100, 104, 108, 101, 107}, []float64{99, 103, 102, 106, 105}, "~ (p=0.690)"},
		// Shifted by one, with ties.
		{[]float64{11, 12, 13, 14, 15}, []float64{10, 11, 12, 13, 14}, "~ (p=0.444)"},
		// One wild repeat does not make a difference significant.
		{[]float64{100, 101, 99, 100.5, 250}, []float64{100.2, 99.5, 100.8, 101.1, 99.9}, "~ (p=0.841)"},
	} {
		c := Compare(tc.cand, tc.inc, DefaultAlpha)
		if c.Significant || c.Better || c.Worse || c.Underpowered || c.P <= DefaultAlpha || c.Note != "" {
			t.Errorf("Compare(%v, %v) = %+v, want not significant", tc.cand, tc.inc, c)
		}
		if c.String() != tc.str {
			t.Errorf("Compare(%v, %v) = %q, want %q", tc.cand, tc.inc, c, tc.str)
		}
	}
}

// One swapped pair: 4 vs 4 is then no longer significant, 5 vs 5 still is (the
// numbers in the package documentation).
func TestCompareOneInversion(t *testing.T) {
	c := Compare([]float64{3, 5, 6, 7}, []float64{1, 2, 4, 0}, DefaultAlpha)
	if c.Significant || !approx(c.P, 4.0/70) || c.Underpowered {
		t.Errorf("4 vs 4 with one inversion: %+v", c)
	}
	c = Compare([]float64{3, 6, 7, 8, 9}, []float64{0, 1, 2, 4, 5}, DefaultAlpha)
	if !c.Better || !approx(c.P, 8.0/252) { // U=2: two inversions
		t.Errorf("5 vs 5 with two inversions: %+v", c)
	}
	c = Compare([]float64{0, 1, 2, 3}, []float64{4, 5, 6, 7}, DefaultAlpha)
	if !c.Worse || !approx(c.P, 2.0/70) {
		t.Errorf("separated 4 vs 4: %+v", c)
	}
}

func TestCompareTooFewSamples(t *testing.T) {
	for _, tc := range []struct {
		cand, inc []float64
		minP      float64
		note      string
	}{
		{[]float64{200}, []float64{100}, 1,
			"not enough repeats: 1 vs 1 can never reach p ≤ 0.05 (the smallest possible p is 1.000); needs ≥ 4 of each"},
		{[]float64{200, 201}, []float64{100, 101}, 1.0 / 3,
			"not enough repeats: 2 vs 2 can never reach p ≤ 0.05 (the smallest possible p is 0.333); needs ≥ 4 of each"},
		{[]float64{200, 201, 202}, []float64{100, 101, 102}, 0.1,
			"not enough repeats: 3 vs 3 can never reach p ≤ 0.05 (the smallest possible p is 0.100); needs ≥ 4 of each"},
		{[]float64{200}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2.0 / 11,
			"not enough repeats: 1 vs 10 can never reach p ≤ 0.05 (the smallest possible p is 0.182); needs ≥ 4 of each"},
	} {
		c := Compare(tc.cand, tc.inc, DefaultAlpha)
		if c.Significant || c.Better || !c.Underpowered || !approx(c.MinP, tc.minP) || c.P < c.MinP || c.Delta() != "~" {
			t.Errorf("Compare(%v, %v) = %+v", tc.cand, tc.inc, c)
		}
		if c.Note != tc.note {
			t.Errorf("Note = %q\nwant   %q", c.Note, tc.note)
		}
	}
	c := Compare([]float64{200}, []float64{100}, DefaultAlpha)
	if c.String() != "~ (p=1.000)" || c.Ratio != 2 {
		t.Errorf("1 vs 1: %q %+v", c, c)
	}
}

func TestCompareEmptyAndNaN(t *testing.T) {
	for _, tc := range []struct {
		cand, inc []float64
		note      string
	}{
		{nil, nil, "no samples"},
		{nil, []float64{1, 2, 3, 4, 5}, "no candidate samples"},
		{[]float64{1, 2, 3, 4, 5}, []float64{math.NaN()}, "no incumbent samples"},
	} {
		c := Compare(tc.cand, tc.inc, DefaultAlpha)
		if c.Significant || c.P != 1 || c.Note != tc.note || c.String() != "~ (p=1.000)" || !c.Underpowered || c.MinP != 1 {
			t.Errorf("Compare(%v, %v) = %+v", tc.cand, tc.inc, c)
		}
	}
	// NaN values are dropped.
	c := Compare([]float64{20, math.NaN(), 21, 22, 23, 24}, []float64{10, 11, 12, 13, 14, math.NaN()}, DefaultAlpha)
	if c.NCandidate != 5 || c.NIncumbent != 5 || !c.Better || !approx(c.P, p5v5) || c.CandidateMedian != 22 {
		t.Errorf("with NaNs: %+v", c)
	}
}

func TestCompareAlpha(t *testing.T) {
	cand, inc := []float64{3, 5, 6, 7}, []float64{0, 1, 2, 4} // p = 4/70 = 0.057
	for _, alpha := range []float64{0, -1, 1, 2, math.NaN()} {
		if c := Compare(cand, inc, alpha); c.Alpha != DefaultAlpha || c.Significant {
			t.Errorf("alpha %v: %+v", alpha, c)
		}
	}
	if c := Compare(cand, inc, 0.1); c.Alpha != 0.1 || !c.Better || c.String() != "+266.7% (p=0.057)" {
		t.Errorf("alpha 0.1: %q %+v", c, c)
	}
	// P = Alpha is significant (benchstat prints "~" only for P > Alpha). 3 vs 3
	// separated gives 2/20, computed one ulp above 0.1: not significant at 0.1.
	if c := Compare([]float64{4, 5, 6}, []float64{1, 2, 3}, 0.1); !approx(c.P, 0.1) || c.Significant || !c.Underpowered {
		t.Errorf("3 vs 3 at alpha 0.1: %+v", c)
	}
	if c := Compare([]float64{4, 5, 6}, []float64{1, 2, 3}, MinP(3, 3)); c.P != c.Alpha || !c.Significant || c.Underpowered {
		t.Errorf("P = alpha: %+v", c)
	}
	if c := Compare([]float64{4, 5, 6, 7, 8}, []float64{1, 2, 3, 4.5, 4.6}, 0.01); c.Significant || c.Underpowered || c.Note != "" {
		t.Errorf("alpha 0.01, p = 8/252: %+v", c)
	}
}

func TestCompareZeroIncumbent(t *testing.T) {
	c := Compare([]float64{1, 2, 3, 4, 5}, []float64{0, 0, 0, 0, 0}, DefaultAlpha)
	if !c.Better || !math.IsInf(c.Ratio, 1) || c.Delta() != "?" {
		t.Errorf("zero incumbent: %q %+v", c, c)
	}
	// Significant with equal medians: the distributions differ, the medians do not.
	c = Compare([]float64{5, 5, 5, 5, 5, 9, 9, 9, 9}, []float64{1, 1, 1, 1, 5, 5, 5, 5, 5}, DefaultAlpha)
	if !c.Significant || c.Better || c.Worse || c.Ratio != 1 || c.Delta() != "0.0%" {
		t.Errorf("equal medians: %q %+v", c, c)
	}
}

func TestMinP(t *testing.T) {
	for _, tc := range []struct {
		n1, n2 int
		want   float64
	}{
		{0, 0, 1}, {0, 5, 1}, {5, -1, 1},
		{1, 1, 1}, {2, 2, 1.0 / 3}, {3, 3, 0.1}, {4, 4, 2.0 / 70}, {5, 5, p5v5}, {6, 6, 2.0 / 924},
		{1, 10, 2.0 / 11}, {10, 1, 2.0 / 11}, {3, 5, 2.0 / 56}, {2, 40, 2.0 / 861},
	} {
		if got := MinP(tc.n1, tc.n2); !approx(got, tc.want) {
			t.Errorf("MinP(%d, %d) = %v, want %v", tc.n1, tc.n2, got, tc.want)
		}
	}
	if p := MinP(60, 60); !(p > 0 && p < 1e-20) { // normal approximation beyond 50
		t.Errorf("MinP(60, 60) = %v", p)
	}
}

func TestRepeatsNeeded(t *testing.T) {
	for _, tc := range []struct {
		alpha float64
		want  int
	}{
		{DefaultAlpha, 4}, {0, 4}, {0.11, 3}, {0.1, 4} /* 2/20 computes a hair above 0.1 */, {0.34, 2}, {0.01, 5}, {0.005, 6}, {0.001, 7}, {1e-40, 51},
	} {
		if got := RepeatsNeeded(tc.alpha); got != tc.want {
			t.Errorf("RepeatsNeeded(%v) = %d, want %d", tc.alpha, got, tc.want)
		}
	}
}

// Compare's P is the exact two-sided permutation p-value of the U statistic for
// samples without ties: checked against a brute-force enumeration of every way to
// split the ranks between the two samples.
func TestComparePermutationP(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 60; trial++ {
		n1, n2 := 1+rng.IntN(7), 1+rng.IntN(7)
		vals := rng.Perm(n1 + n2) // distinct values: no ties
		cand, inc := make([]float64, n1), make([]float64, n2)
		for i, v := range vals {
			if i < n1 {
				cand[i] = float64(v)
			} else {
				inc[i-n1] = float64(v)
			}
		}
		c := Compare(cand, inc, DefaultAlpha)
		if want := bruteP(cand, inc); !approx(c.P, want) {
			t.Errorf("Compare(%v, %v).P = %v, permutation p = %v", cand, inc, c.P, want)
		}
		if c.Significant != (c.P <= DefaultAlpha) || c.Underpowered != (c.MinP > DefaultAlpha) {
			t.Errorf("Compare(%v, %v) = %+v", cand, inc, c)
		}
		if c.Underpowered && c.Significant {
			t.Errorf("under-powered yet significant: %+v", c)
		}
	}
}

// bruteP is the two-sided exact p-value of the Mann–Whitney U test for tie-free
// samples: the share of the C(n1+n2, n1) rank splits whose U is at least as far
// from n1·n2/2 as the observed one.
func bruteP(x1, x2 []float64) float64 {
	u := func(a, b []float64) int {
		n := 0
		for _, x := range a {
			for _, y := range b {
				if x > y {
					n++
				}
			}
		}
		return n
	}
	n1, n2 := len(x1), len(x2)
	dev := func(u int) float64 { return math.Abs(float64(u) - float64(n1*n2)/2) }
	obs := dev(u(x1, x2))
	if obs == 0 {
		return 1
	}
	all := slices.Concat(x1, x2)
	var total, extreme int
	for mask := 0; mask < 1<<len(all); mask++ {
		var a, b []float64
		for i, v := range all {
			if mask&(1<<i) != 0 {
				a = append(a, v)
			} else {
				b = append(b, v)
			}
		}
		if len(a) != n1 {
			continue
		}
		total++
		if dev(u(a, b)) >= obs {
			extreme++
		}
	}
	return float64(extreme) / float64(total)
}

func TestNoteMentionsRepeats(t *testing.T) {
	c := Compare([]float64{9, 10}, []float64{1, 2}, DefaultAlpha)
	if !strings.Contains(c.Note, "needs ≥ 4") {
		t.Errorf("Note = %q", c.Note)
	}
}
