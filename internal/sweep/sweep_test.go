package sweep

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestPercentOfLayers(t *testing.T) {
	// The spec's example: 35 layers with the explore set.
	explore := []float64{100, 95, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 35, 30, 25, 20, 15, 10}
	want := []int{35, 34, 32, 30, 28, 27, 25, 23, 21, 20, 18, 16, 14, 13, 11, 9, 7, 6, 4}
	if got := PercentOfLayers(35, explore); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if got := PercentOfLayers(3, []float64{100, 90, 50, 10}); !reflect.DeepEqual(got, []int{3, 2, 1}) {
		t.Fatalf("small model: got %v", got)
	}
}

// run sweeps candidates measured once each: tps[i] is candidate i's only repeat (0: failed).
func run(t *testing.T, p Policy, tps []float64) Result[int] {
	t.Helper()
	reps := make([][]float64, len(tps))
	for i, v := range tps {
		if v != 0 {
			reps[i] = []float64{v}
		}
	}
	return runRepeats(t, p, reps, nil)
}

// runRepeats sweeps candidates whose repeats are scripted: reps[i] are candidate i's rates
// (empty: failed); invalid[i] flags candidate i as a measurement error.
func runRepeats(t *testing.T, p Policy, reps [][]float64, invalid map[int]bool) Result[int] {
	t.Helper()
	idx := make([]int, len(reps))
	for i := range idx {
		idx[i] = i
	}
	res, err := Run(context.Background(), p, idx, func(_ context.Context, i int) Measurement {
		m := Measurement{Repeats: reps[i]}
		if invalid[i] {
			m.Invalid = "above the roofline"
		}
		return m
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// five returns five repeats around v, spread over ±0.2.
func five(v float64) []float64 { return []float64{v - 0.2, v - 0.1, v, v + 0.1, v + 0.2} }

func TestFirstWorkingStopsAtFirstNonZero(t *testing.T) {
	res := run(t, Policy{}, []float64{0, 0, 12.5, 20})
	if len(res.Attempts) != 3 || res.Best == nil || res.Best.Candidate != 2 {
		t.Fatalf("attempts=%v best=%v", res.Attempts, res.Best)
	}
	if !strings.Contains(res.StopReason, "first working") {
		t.Fatalf("reason %q", res.StopReason)
	}
}

func TestFirstWorkingAllFail(t *testing.T) {
	res := run(t, Policy{}, []float64{0, 0, 0})
	if len(res.Attempts) != 3 || res.Best != nil || res.StopReason != "" {
		t.Fatalf("%+v", res)
	}
}

func TestExhaustiveZeroBreak(t *testing.T) {
	res := run(t, Policy{Exhaustive: true, ZeroBreak: 3, NoImproveLimit: 5}, []float64{10, 0, 0, 0, 50})
	if len(res.Attempts) != 4 || res.Best.Candidate != 0 || !strings.Contains(res.StopReason, "ZERO_TOKPS_BREAK=3") {
		t.Fatalf("%+v", res)
	}
}

func TestExhaustiveNoImprove(t *testing.T) {
	// 5 repeats each, clearly separated: 12 beats 10, then 11 and 11.5 do not beat 12.
	res := runRepeats(t, Policy{Exhaustive: true, ZeroBreak: 3, NoImproveLimit: 2},
		[][]float64{five(10), five(12), five(11), five(11.5), five(99)}, nil)
	if len(res.Attempts) != 4 || res.Best.Candidate != 1 || !strings.Contains(res.StopReason, "best=12.00") ||
		!strings.Contains(res.StopReason, "2 trials not significantly better") {
		t.Fatalf("%+v", res)
	}
	if v := res.Attempts[1].Versus; v == nil || !v.Better || v.P > 0.01 {
		t.Fatalf("candidate 1 vs 0: %+v", v)
	}
}

// Measured once each, a faster candidate is never significantly faster: the first working one
// stays best and every later one counts against NO_IMPROVE_LIMIT (the old rule kept the
// highest single rate, 12, and stopped after 11.5).
func TestSingleRepeatsNeverReplaceTheBest(t *testing.T) {
	res := run(t, Policy{Exhaustive: true, ZeroBreak: 3, NoImproveLimit: 2}, []float64{10, 12, 11, 11.5, 99})
	if len(res.Attempts) != 3 || res.Best.Candidate != 0 || !strings.Contains(res.StopReason, "best=10.00") {
		t.Fatalf("%+v", res)
	}
	if v := res.Attempts[1].Versus; v == nil || v.Significant || v.String() != "~ (p=1.000)" {
		t.Fatalf("1 vs 1: %+v", v)
	}
}

func TestFiveVersusFiveSeparatedReplaces(t *testing.T) {
	res := runRepeats(t, Policy{Exhaustive: true}, [][]float64{{10, 11, 12, 13, 14}, {20, 21, 22, 23, 24}}, nil)
	if res.Best == nil || res.Best.Candidate != 1 || res.Best.TokensPerSec != 22 {
		t.Fatalf("best %+v", res.Best)
	}
	if got := res.Attempts[1].Versus.String(); got != "+83.3% (p=0.008)" {
		t.Fatalf("comparison %q", got)
	}
}

func TestOverlappingRepeatsKeepTheEarlierBest(t *testing.T) {
	// The later candidate's median is higher (15 > 14) but the samples interleave.
	res := runRepeats(t, Policy{Exhaustive: true, NoImproveLimit: 1},
		[][]float64{{10, 12, 14, 16, 18}, {11, 13, 15, 17, 19}, five(50)}, nil)
	if len(res.Attempts) != 2 || res.Best.Candidate != 0 {
		t.Fatalf("best %+v after %d attempts", res.Best, len(res.Attempts))
	}
	if got := res.Attempts[1].Versus.String(); !strings.HasPrefix(got, "~ (p=0.") {
		t.Fatalf("comparison %q", got)
	}
}

func TestThreeVersusThreeIsNeverSignificant(t *testing.T) {
	// Ten times faster on every repeat, but 3 vs 3 cannot reach p ≤ 0.05 (min p = 0.1).
	res := runRepeats(t, Policy{Exhaustive: true}, [][]float64{{10, 10.5, 11}, {100, 101, 102}}, nil)
	if res.Best.Candidate != 0 {
		t.Fatalf("best %+v", res.Best)
	}
	v := res.Attempts[1].Versus
	if v.Significant || !v.Underpowered || v.String() != "~ (p=0.100)" {
		t.Fatalf("comparison %+v", v)
	}
}

func TestNoImproveLimitCountsNonSignificantGains(t *testing.T) {
	// Each candidate has a higher median than the last, none significantly: after the first
	// working one, three in a row did not beat it.
	reps := [][]float64{nil, {10, 11, 12}, {11, 12, 13}, {12, 13, 14}, {13, 14, 15}, {14, 15, 16}}
	res := runRepeats(t, Policy{Exhaustive: true, NoImproveLimit: 3}, reps, nil)
	if len(res.Attempts) != 5 || res.Best.Candidate != 1 || !strings.Contains(res.StopReason, "3 trials not significantly better") ||
		!strings.Contains(res.StopReason, "NO_IMPROVE_LIMIT=3") {
		t.Fatalf("%d attempts, best %+v, reason %q", len(res.Attempts), res.Best, res.StopReason)
	}
	// A significant improvement resets the count.
	reps = [][]float64{five(10), five(9), five(20), five(19), five(18), five(30)}
	res = runRepeats(t, Policy{Exhaustive: true, NoImproveLimit: 2}, reps, nil)
	if len(res.Attempts) != 5 || res.Best.Candidate != 2 {
		t.Fatalf("%d attempts, best %+v, reason %q", len(res.Attempts), res.Best, res.StopReason)
	}
}

func TestMeasurementErrorsAreNeverBest(t *testing.T) {
	// Candidate 1 is far faster but flagged: it is kept as an attempt, never best, and counts
	// as not improving; candidate 2 is the first valid working one.
	reps := [][]float64{nil, five(500), five(20), five(400), five(10), five(30)}
	res := runRepeats(t, Policy{Exhaustive: true, NoImproveLimit: 2}, reps, map[int]bool{1: true, 3: true})
	if len(res.Attempts) != 5 || res.Best == nil || res.Best.Candidate != 2 {
		t.Fatalf("%d attempts, best %+v", len(res.Attempts), res.Best)
	}
	if res.Attempts[1].Invalid == "" || !res.Attempts[1].Worked() || res.Attempts[1].Versus != nil {
		t.Fatalf("flagged attempt %+v", res.Attempts[1])
	}
	if !strings.Contains(res.StopReason, "2 trials") {
		t.Fatalf("reason %q", res.StopReason)
	}
	// Only flagged candidates: nothing is best. Without EXHAUSTIVE the sweep goes on past a
	// flagged one, which is not a usable first working candidate.
	res = runRepeats(t, Policy{}, [][]float64{five(500), five(20), five(30)}, map[int]bool{0: true})
	if len(res.Attempts) != 2 || res.Best.Candidate != 1 || !strings.Contains(res.StopReason, "first working candidate at 20.00") {
		t.Fatalf("%d attempts, best %+v, reason %q", len(res.Attempts), res.Best, res.StopReason)
	}
	res = runRepeats(t, Policy{Exhaustive: true}, [][]float64{five(500)}, map[int]bool{0: true})
	if res.Best != nil {
		t.Fatalf("best %+v", res.Best)
	}
}

func TestMeasurementRateAndRepeats(t *testing.T) {
	a := attempt(7, Measurement{Repeats: []float64{3, 0, math.NaN(), 1, math.Inf(1), 2}})
	if !reflect.DeepEqual(a.Repeats, []float64{3, 1, 2}) || a.TokensPerSec != 2 {
		t.Fatalf("%+v", a)
	}
	if a := attempt(7, Measurement{TokensPerSec: 4}); !reflect.DeepEqual(a.Repeats, []float64{4}) {
		t.Fatalf("a rate without repeats is one repeat: %+v", a)
	}
	if a := attempt(7, Measurement{Repeats: []float64{1, 2}, TokensPerSec: 1}); a.TokensPerSec != 1 {
		t.Fatalf("the row's rate is kept: %+v", a)
	}
	if a := attempt(7, Measurement{TokensPerSec: math.NaN()}); a.Worked() || a.TokensPerSec != 0 {
		t.Fatalf("%+v", a)
	}
}

func TestExhaustiveGuardsDisabled(t *testing.T) {
	res := run(t, Policy{Exhaustive: true}, []float64{0, 0, 0, 0, 5, 4, 3, 2, 1})
	if len(res.Attempts) != 9 || res.Best.Candidate != 4 || res.StopReason != "" {
		t.Fatalf("%+v", res)
	}
}

func TestEqualIsNotAnImprovement(t *testing.T) {
	res := run(t, Policy{Exhaustive: true, NoImproveLimit: 1}, []float64{10, 10, 30})
	if len(res.Attempts) != 2 || res.Best.Candidate != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestCancelStopsSweep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	res, err := Run(ctx, Policy{Exhaustive: true}, []int{1, 2, 3, 4}, func(_ context.Context, c int) Measurement {
		calls++
		if c == 2 {
			cancel()
		}
		return Measurement{Repeats: five(float64(10 * c))}
	})
	if err != context.Canceled || calls != 2 || len(res.Attempts) != 2 {
		t.Fatalf("err=%v calls=%d attempts=%d", err, calls, len(res.Attempts))
	}
	if res.Best == nil || res.Best.Candidate != 1 {
		t.Fatalf("the attempt cut short by the cancel must not become best: %+v", res.Best)
	}
}
