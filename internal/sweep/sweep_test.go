package sweep

import (
	"context"
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

func run(t *testing.T, p Policy, tps []float64) Result[int] {
	t.Helper()
	idx := make([]int, len(tps))
	for i := range idx {
		idx[i] = i
	}
	res, err := Run(context.Background(), p, idx, func(_ context.Context, i int) float64 { return tps[i] })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

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
	res := run(t, Policy{Exhaustive: true, ZeroBreak: 3, NoImproveLimit: 2}, []float64{10, 12, 11, 11.5, 99})
	if len(res.Attempts) != 4 || res.Best.Candidate != 1 || !strings.Contains(res.StopReason, "best=12.00") {
		t.Fatalf("%+v", res)
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
	res, err := Run(ctx, Policy{Exhaustive: true}, []int{1, 2, 3, 4}, func(_ context.Context, c int) float64 {
		calls++
		if c == 2 {
			cancel()
		}
		return float64(c)
	})
	if err != context.Canceled || calls != 2 || len(res.Attempts) != 2 {
		t.Fatalf("err=%v calls=%d attempts=%d", err, calls, len(res.Attempts))
	}
	if res.Best == nil || res.Best.Candidate != 1 {
		t.Fatalf("the attempt cut short by the cancel must not become best: %+v", res.Best)
	}
}
