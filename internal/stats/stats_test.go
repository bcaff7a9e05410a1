package stats

import (
	"math"
	"slices"
	"testing"
)

func approx(a, b float64) bool {
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{1, 2, 3, 4}, 2.5}, // even n: mean of the two middle values
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 20}, 15},
		{[]float64{5, 5, 5, 6}, 5},
		{[]float64{-1, 1}, 0},
		{[]float64{1, 2, 3, 4, 5, 1000}, 3.5},
		{[]float64{math.Inf(-1), 1, 2}, 1},
	} {
		in := slices.Clone(tc.xs)
		if got := Median(in); !approx(got, tc.want) {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
		if !slices.Equal(in, tc.xs) {
			t.Errorf("Median modified its input: %v, was %v", in, tc.xs)
		}
	}
	for _, xs := range [][]float64{nil, {}, {1, math.NaN(), 3}} {
		if got := Median(xs); !math.IsNaN(got) {
			t.Errorf("Median(%v) = %v, want NaN", xs, got)
		}
	}
}

// Expected values are numpy.quantile(xs, q) (default method "linear", type 7).
func TestQuantile(t *testing.T) {
	tenToEighteenAndHundred := []float64{100, 10, 11, 12, 13, 14, 15, 16, 17, 18}
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{tenToEighteenAndHundred, 0.9, 26.2}, // 18 + 0.1·(100-18)
		{tenToEighteenAndHundred, 0.5, 14.5},
		{tenToEighteenAndHundred, 0.99, 92.62},
		{tenToEighteenAndHundred, 0, 10},
		{tenToEighteenAndHundred, 1, 100},
		{[]float64{1, 2, 3, 4}, 0.25, 1.75},
		{[]float64{1, 2, 3, 4}, 0.75, 3.25},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{15, 20, 35, 40, 50}, 0.4, 29},
		{[]float64{15, 20, 35, 40, 50}, 0.05, 16},
		{[]float64{1, 2, 3, 4, 5}, 0.1, 1.4},
		{[]float64{1, 2, 3, 4, 5}, 0.95, 4.8},
		{[]float64{42}, 0, 42},
		{[]float64{42}, 0.37, 42},
		{[]float64{42}, 1, 42},
		{[]float64{2, 2, 2}, 0.3, 2},
		{[]float64{1, math.Inf(1)}, 0.5, math.Inf(1)},
		{[]float64{math.Inf(1), math.Inf(1)}, 0.5, math.Inf(1)},
	} {
		in := slices.Clone(tc.xs)
		if got := Quantile(in, tc.q); !approx(got, tc.want) {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.xs, tc.q, got, tc.want)
		}
		if !slices.Equal(in, tc.xs) {
			t.Errorf("Quantile modified its input: %v, was %v", in, tc.xs)
		}
	}
	for _, tc := range []struct {
		xs []float64
		q  float64
	}{
		{nil, 0.5}, {[]float64{1, math.NaN()}, 0.5},
		{[]float64{1, 2}, -0.1}, {[]float64{1, 2}, 1.1}, {[]float64{1, 2}, math.NaN()},
	} {
		if got := Quantile(tc.xs, tc.q); !math.IsNaN(got) {
			t.Errorf("Quantile(%v, %v) = %v, want NaN", tc.xs, tc.q, got)
		}
	}
}

// Quantile is monotone in q, spans [Min, Max] and matches Median at 0.5.
func TestQuantileProperties(t *testing.T) {
	xs := []float64{3.5, -2, 8, 8, 0.25, 13, 1e6, 4, 4, 7}
	if got, want := Quantile(xs, 0.5), Median(xs); !approx(got, want) {
		t.Errorf("Quantile(0.5) = %v, Median = %v", got, want)
	}
	if Quantile(xs, 0) != Min(xs) || Quantile(xs, 1) != Max(xs) {
		t.Errorf("Quantile(0), Quantile(1) = %v, %v; Min, Max = %v, %v", Quantile(xs, 0), Quantile(xs, 1), Min(xs), Max(xs))
	}
	prev := math.Inf(-1)
	for i := 0; i <= 1000; i++ {
		q := Quantile(xs, float64(i)/1000)
		if q < prev {
			t.Fatalf("Quantile(%v) = %v < Quantile at the previous q = %v", float64(i)/1000, q, prev)
		}
		prev = q
	}
}

func TestMinMax(t *testing.T) {
	xs := []float64{3, -7.5, 12, 0, 12, -7.5}
	if got := Min(xs); got != -7.5 {
		t.Errorf("Min = %v", got)
	}
	if got := Max(xs); got != 12 {
		t.Errorf("Max = %v", got)
	}
	if got := Max([]float64{math.Inf(-1)}); !math.IsInf(got, -1) {
		t.Errorf("Max(-Inf) = %v", got)
	}
	for _, xs := range [][]float64{nil, {1, math.NaN()}, {math.NaN(), 1}} {
		if !math.IsNaN(Min(xs)) || !math.IsNaN(Max(xs)) {
			t.Errorf("Min, Max(%v) = %v, %v, want NaN", xs, Min(xs), Max(xs))
		}
	}
}

func TestQuantileInfinities(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{math.Inf(-1), 1}, 0.5, math.Inf(-1)},
		{[]float64{math.Inf(-1), 1}, 1, 1},
		{[]float64{1, math.Inf(1)}, 0, 1},
		{[]float64{1, math.Inf(1)}, 0.9, math.Inf(1)},
	} {
		if got := Quantile(tc.xs, tc.q); got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.xs, tc.q, got, tc.want)
		}
	}
	if got := Quantile([]float64{math.Inf(-1), math.Inf(1)}, 0.5); !math.IsNaN(got) {
		t.Errorf("Quantile(-Inf, +Inf; 0.5) = %v, want NaN", got)
	}
}
