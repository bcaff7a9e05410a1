package stats

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"golang.org/x/perf/benchmath"
)

// DefaultAlpha is the significance level of comparisons: a difference is reported
// when its p-value is at most DefaultAlpha (benchstat's default).
const DefaultAlpha = 0.05

// maxRepeatsSearched bounds RepeatsNeeded: beyond 50 repeats per side the U test
// leaves its exact distribution, and 50 vs 50 already reaches p ≈ 2e-29.
const maxRepeatsSearched = 50

// Comparison is the outcome of Compare: whether a candidate's samples differ
// significantly from an incumbent's, and by how much their medians differ.
// Higher values are taken to be better (tokens per second); for a lower-is-better
// metric (latency) read Worse as the improvement, or swap the arguments.
type Comparison struct {
	// NCandidate and NIncumbent are the sample sizes used (NaN values are dropped).
	NCandidate, NIncumbent int
	// CandidateMedian and IncumbentMedian are the samples' medians (NaN when empty).
	CandidateMedian, IncumbentMedian float64
	// Ratio is CandidateMedian / IncumbentMedian: 1.123 means the candidate's median
	// is 12.3% higher. It is 1 when the medians are equal (also both 0) and ±Inf
	// when only the incumbent's is 0.
	Ratio float64
	// P is the two-sided Mann–Whitney U p-value of the hypothesis that both samples
	// come from the same distribution. It is 1 when the test cannot run (an empty
	// sample, or every value in both samples equal).
	P float64
	// Alpha is the significance level used.
	Alpha float64
	// MinP is the smallest p-value the test can give for these sample sizes (for
	// completely separated samples): 2/C(n1+n2, n1), e.g. 0.0079 for 5 vs 5.
	MinP float64
	// Significant reports P ≤ Alpha (benchstat's rule).
	Significant bool
	// Better reports a significant difference with the candidate's median higher.
	Better bool
	// Worse reports a significant difference with the candidate's median lower.
	Worse bool
	// Underpowered reports that the sample sizes are too small for any difference
	// to be significant (MinP > Alpha); Note then says how many repeats are needed.
	Underpowered bool
	// Note explains a result that is not significant for a reason other than the
	// data, e.g. "not enough repeats: 3 vs 3 can never reach p ≤ 0.05 (the smallest
	// possible p is 0.100); needs ≥ 4 of each", "no candidate samples" or "all
	// samples are equal". It is "" otherwise.
	Note string
}

// Compare tests whether candidate differs from incumbent (two-sided Mann–Whitney U
// test, golang.org/x/perf/benchmath.AssumeNothing, as benchstat) at significance
// level alpha. An alpha outside (0, 1), 0 included, selects DefaultAlpha. NaN
// values are dropped; the inputs are not modified.
//
// A configuration "beats" another exactly when Compare(its samples, the other's,
// alpha).Better: the medians differ in its favour and P ≤ alpha.
func Compare(candidate, incumbent []float64, alpha float64) Comparison {
	if !(alpha > 0 && alpha < 1) {
		alpha = DefaultAlpha
	}
	cand, inc := withoutNaN(candidate), withoutNaN(incumbent)
	c := Comparison{
		NCandidate: len(cand), NIncumbent: len(inc),
		CandidateMedian: Median(cand), IncumbentMedian: Median(inc),
		P: 1, Alpha: alpha, MinP: MinP(len(cand), len(inc)),
	}
	c.Underpowered = c.MinP > alpha
	switch {
	case c.CandidateMedian == c.IncumbentMedian:
		c.Ratio = 1
	default:
		c.Ratio = c.CandidateMedian / c.IncumbentMedian
	}
	switch {
	case len(cand) == 0 && len(inc) == 0:
		c.Note = "no samples"
		return c
	case len(cand) == 0:
		c.Note = "no candidate samples"
		return c
	case len(inc) == 0:
		c.Note = "no incumbent samples"
		return c
	}

	th := &benchmath.Thresholds{CompareAlpha: alpha}
	// benchstat compares old (incumbent) with new (candidate); the test is symmetric.
	// NewSample sorts in place: cand and inc are copies.
	bc := benchmath.AssumeNothing.Compare(benchmath.NewSample(inc, th), benchmath.NewSample(cand, th))
	c.P = bc.P
	c.Significant = !(bc.P > bc.Alpha) // benchmath.Comparison.FormatDelta prints "~" iff P > Alpha
	c.Better = c.Significant && c.CandidateMedian > c.IncumbentMedian
	c.Worse = c.Significant && c.CandidateMedian < c.IncumbentMedian
	switch {
	case c.Underpowered:
		c.Note = fmt.Sprintf("not enough repeats: %d vs %d can never reach p ≤ %g (the smallest possible p is %.3f); needs ≥ %d of each",
			c.NCandidate, c.NIncumbent, alpha, c.MinP, RepeatsNeeded(alpha))
	case len(bc.Warnings) > 0:
		c.Note = errors.Join(bc.Warnings...).Error()
	}
	return c
}

// Delta is the table cell for the difference of the medians, benchstat style:
// "~" when not significant, otherwise the relative change of the candidate's
// median over the incumbent's, e.g. "+12.3%" or "-4.0%" ("0.0%" for equal medians,
// "?" when the incumbent's median is 0).
func (c Comparison) Delta() string {
	switch {
	case !c.Significant:
		return "~"
	case c.CandidateMedian == c.IncumbentMedian:
		return "0.0%"
	case c.IncumbentMedian == 0 || math.IsInf(c.Ratio, 0) || math.IsNaN(c.Ratio):
		return "?"
	}
	return fmt.Sprintf("%+.1f%%", (c.Ratio-1)*100)
}

// String is the table cell for the comparison, benchstat style: Delta and the
// p-value, e.g. "~ (p=0.310)" or "+12.3% (p=0.008)". Note is not included; show it
// beside the table (as benchstat prints its warnings) when it is not empty.
func (c Comparison) String() string {
	return fmt.Sprintf("%s (p=%.3f)", c.Delta(), c.P)
}

// minPCache maps [2]int{n1, n2} to MinP(n1, n2).
var minPCache sync.Map

// MinP returns the smallest p-value the two-sided Mann–Whitney U test (as run by
// Compare) can produce for samples of n1 and n2 values, reached when every value
// of one sample is below every value of the other: 2/C(n1+n2, n1) for small
// samples. It is 1 when n1 or n2 is 0 (no test possible). Unless MinP ≤ alpha,
// no difference can be significant, however large.
func MinP(n1, n2 int) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	if n1 > n2 {
		n1, n2 = n2, n1 // symmetric
	}
	key := [2]int{n1, n2}
	if p, ok := minPCache.Load(key); ok {
		return p.(float64)
	}
	a, b := make([]float64, n1), make([]float64, n2)
	for i := range a {
		a[i] = float64(i)
	}
	for i := range b {
		b[i] = float64(n1 + i)
	}
	th := &benchmath.Thresholds{CompareAlpha: DefaultAlpha}
	p := benchmath.AssumeNothing.Compare(benchmath.NewSample(a, th), benchmath.NewSample(b, th)).P
	minPCache.Store(key, p)
	return p
}

// RepeatsNeeded returns the smallest number of repeats n such that n vs n samples
// can reach significance at alpha (MinP(n, n) ≤ alpha): 4 for alpha = 0.05, 5 for
// 0.01, 6 for 0.005. An alpha outside (0, 1) selects DefaultAlpha. It searches up to
// 50 repeats (MinP(50, 50) ≈ 2e-29) and returns 51 for a smaller alpha.
func RepeatsNeeded(alpha float64) int {
	if !(alpha > 0 && alpha < 1) {
		alpha = DefaultAlpha
	}
	for n := 1; n <= maxRepeatsSearched; n++ {
		if MinP(n, n) <= alpha {
			return n
		}
	}
	return maxRepeatsSearched + 1
}

// withoutNaN returns a copy of xs without its NaN values.
func withoutNaN(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}
