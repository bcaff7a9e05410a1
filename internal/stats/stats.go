// Package stats holds the summary statistics and the significance test that FuZe
// uses wherever it reports a measurement or says that one configuration beats
// another.
//
// # Summaries
//
// Median is the middle value; for an even number of values it is the mean of the
// two middle ones (numpy.median). Quantile is the sample quantile "type 7" of
// Hyndman and Fan (1996), the default of numpy.quantile / numpy.percentile and of
// R's quantile(): for n sorted values x[0..n-1] and 0 ≤ q ≤ 1,
//
//	h = (n-1)·q,  Quantile = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])
//
// It interpolates linearly between order statistics, returns the minimum at q=0
// and the maximum at q=1, and agrees with numpy, so that a p90 computed here can
// be checked against a notebook. (Type 7 at q=0.5 is the median.)
//
// # Comparisons
//
// Compare decides whether a candidate configuration's repeated measurements differ
// from an incumbent's with a two-sided Mann–Whitney U test, computed by
// golang.org/x/perf/benchmath (AssumeNothing) exactly as benchstat does. The test
// is non-parametric: it assumes nothing about the shape of the distributions,
// only that repeats are independent. Benchmark timings are not normal (they are
// skewed, with outliers from a busy machine or a cold cache), so a t-test would be
// misleading; the U test compares ranks, and one wild repeat cannot make a
// difference look significant on its own.
//
// The price is that small samples can never be significant, however far apart
// they are. The smallest two-sided p-value of n repeats against n, reached when
// every value of one sample beats every value of the other, is 2/C(2n, n):
//
//	n vs n:  1 → 1   2 → 0.333   3 → 0.100   4 → 0.029   5 → 0.0079   6 → 0.0022
//
// At the default alpha of 0.05, 3 repeats or fewer per side can never show a
// difference ("~" whatever the numbers), and 4 only when the samples do not
// overlap at all (one swapped pair gives p = 0.057). With BENCH_REPEAT=5 a clear
// difference is significant: p = 0.0079 for separated samples, and up to two
// swapped pairs still give p ≤ 0.032. Compare reports under-powered comparisons
// as not significant and says why in Comparison.Note; RepeatsNeeded and MinP give
// the numbers.
package stats

import (
	"math"
	"slices"
)

// Median returns the median of xs: the middle value of the sorted values, or the
// mean of the two middle values when len(xs) is even (as numpy.median). It returns
// NaN for an empty slice or when xs contains a NaN. xs is not modified.
func Median(xs []float64) float64 {
	s, ok := sorted(xs)
	if !ok {
		return math.NaN()
	}
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Quantile returns the q-quantile of xs (0 ≤ q ≤ 1) by linear interpolation
// between order statistics: type 7 of Hyndman and Fan, the default of
// numpy.quantile and R (see the package documentation). Quantile(xs, 0.9) is the
// p90. It returns NaN for an empty slice, when xs contains a NaN, or when q is
// outside [0, 1]. xs is not modified.
func Quantile(xs []float64, q float64) float64 {
	if !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	s, ok := sorted(xs)
	if !ok {
		return math.NaN()
	}
	h := float64(len(s)-1) * q
	lo := math.Floor(h)
	i := int(lo)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	a, b, t := s[i], s[i+1], h-lo
	switch {
	case a == b || t == 0:
		return a
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		// Between a finite value and ±Inf the interpolation is that infinity (numpy's
		// formula gives NaN); between -Inf and +Inf it is NaN.
		return a + b
	}
	// numpy's _lerp: interpolate from the nearer end, so that t=1 gives b exactly.
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

// Min returns the smallest value of xs; NaN for an empty slice or when xs contains a NaN.
func Min(xs []float64) float64 {
	return extreme(xs, func(x, m float64) bool { return x < m })
}

// Max returns the largest value of xs; NaN for an empty slice or when xs contains a NaN.
func Max(xs []float64) float64 {
	return extreme(xs, func(x, m float64) bool { return x > m })
}

func extreme(xs []float64, better func(x, m float64) bool) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs {
		if math.IsNaN(x) {
			return math.NaN()
		}
		if better(x, m) {
			m = x
		}
	}
	return m
}

// sorted returns a sorted copy of xs, or false when xs is empty or holds a NaN.
func sorted(xs []float64) ([]float64, bool) {
	if len(xs) == 0 {
		return nil, false
	}
	s := slices.Clone(xs)
	for _, x := range s {
		if math.IsNaN(x) {
			return nil, false
		}
	}
	slices.Sort(s)
	return s, true
}
