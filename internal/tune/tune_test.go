package tune

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

type cand struct{ fa, threads string }

func key(c cand) string { return "fa=" + c.fa }

// script gives every candidate a queue of measurements (5 repeats each).
type script map[cand][][]float64

func (s script) measure(calls *[]cand) func(context.Context, int, cand) Measurement {
	return func(_ context.Context, _ int, c cand) Measurement {
		*calls = append(*calls, c)
		q := s[c]
		if len(q) == 0 {
			return Measurement{Error: "no scripted measurement"}
		}
		s[c] = q[1:]
		return Measurement{Decode: q[0], TTFTms: []float64{100, 100, 100, 100, 100}}
	}
}

func TestRunPrunesClearLosersAndGroupsServers(t *testing.T) {
	// The planner's order interleaves the server configurations (fa is the outer knob of
	// the product in a real planner only by accident): grouping must still start each once.
	cands := []cand{{"0", "1"}, {"1", "1"}, {"0", "2"}, {"1", "2"}}
	slow := [][]float64{{10, 10.2, 9.9, 10.1, 10}}
	s := script{
		{"0", "1"}: slow,
		{"1", "1"}: {{10.4, 10.5, 10.3, 10.6, 10.5}},
		// The two fast ones overlap: never separated, both survive to the last round.
		{"0", "2"}: {{20, 20.4, 19.8, 20.1, 20.3}, {20.2, 20, 19.9, 20.1, 20.5}, {20, 20.1, 20.2, 19.9, 20}},
		{"1", "2"}: {{20.1, 19.9, 20.3, 20.2, 20}, {20.3, 20.1, 20, 19.8, 20.2}, {20.1, 20, 20.3, 20.2, 19.9}},
	}
	var calls []cand
	var pruned []int
	res, err := Run(context.Background(), Policy{Rounds: 3}, cands, key, s.measure(&calls), func(e Event) {
		if e.Kind == "pruned" {
			pruned = append(pruned, e.Candidate)
			if e.P > 0.05 || e.Ratio >= 1 {
				t.Errorf("pruned %d with p=%g ratio=%g", e.Candidate, e.P, e.Ratio)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []cand{
		{"0", "1"}, {"0", "2"}, {"1", "1"}, {"1", "2"}, // round 1, grouped by server
		{"1", "2"}, {"0", "2"}, // round 2, groups walked back: fa=1 keeps its server
		{"0", "2"}, {"1", "2"}, // round 3
	}
	if !slices.Equal(calls, want) {
		t.Errorf("measured %v, want %v", calls, want)
	}
	if !slices.Equal(pruned, []int{0, 1}) {
		t.Errorf("pruned %v, want [0 1]", pruned)
	}
	if res.Rounds != 3 || res.Measurements != 8 || res.GridMeasurements != 12 {
		t.Errorf("rounds %d measurements %d grid %d", res.Rounds, res.Measurements, res.GridMeasurements)
	}
	// fa=0, fa=1 | fa=1 (kept), fa=0 | fa=0 (kept), fa=1.
	if res.ServerStarts != 4 || res.GridServerStarts != 12 || res.GroupedGridStarts != 4 {
		t.Errorf("starts %d, grid %d, grouped grid %d", res.ServerStarts, res.GridServerStarts, res.GroupedGridStarts)
	}
	if res.Best != 2 && res.Best != 3 {
		t.Errorf("best %d, want one of the fast ones", res.Best)
	}
	if len(res.Candidates[2].Decode) != 15 || res.Candidates[0].PrunedRound != 1 {
		t.Errorf("repeats %d, pruned round %d", len(res.Candidates[2].Decode), res.Candidates[0].PrunedRound)
	}
}

func TestRunStopsWithOneSurvivorAndExhaustiveKeepsAll(t *testing.T) {
	cands := []cand{{"0", "1"}, {"0", "2"}}
	mk := func() script {
		return script{
			{"0", "1"}: {{10, 10.1, 9.9, 10, 10.2}, {10, 10.1, 9.9, 10, 10.2}},
			{"0", "2"}: {{20, 20.1, 19.9, 20, 20.2}, {20, 20.1, 19.9, 20, 20.2}},
		}
	}
	var calls []cand
	res, _ := Run(context.Background(), Policy{Rounds: 3}, cands, key, mk().measure(&calls), nil)
	if len(calls) != 2 || res.Rounds != 1 || res.Best != 1 || res.ServerStarts != 1 {
		t.Errorf("halving: calls %v rounds %d best %d starts %d", calls, res.Rounds, res.Best, res.ServerStarts)
	}
	calls = nil
	res, _ = Run(context.Background(), Policy{Rounds: 2, Exhaustive: true}, cands, key, mk().measure(&calls), nil)
	if len(calls) != 4 || res.Candidates[0].PrunedRound != 0 || res.Best != 1 {
		t.Errorf("exhaustive: calls %v pruned %d best %d", calls, res.Candidates[0].PrunedRound, res.Best)
	}
}

func TestRunFailedCandidateIsNotRemeasured(t *testing.T) {
	cands := []cand{{"0", "1"}, {"0", "2"}, {"0", "3"}}
	s := script{
		{"0", "1"}: {{10, 10.1, 9.9, 10, 10.2}, {10, 10.1, 9.9, 10, 10.2}},
		{"0", "3"}: {{10, 10.1, 9.9, 10, 10.3}, {10, 10.1, 9.9, 10, 10.2}},
	}
	var calls []cand
	res, _ := Run(context.Background(), Policy{Rounds: 2}, cands, key, s.measure(&calls), nil)
	if len(calls) != 5 || res.Candidates[1].Error == "" || res.Candidates[1].Rounds != 1 {
		t.Errorf("calls %v, failed candidate %+v", calls, res.Candidates[1])
	}
}

func TestPairedEffectCI(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// A clear doubling: the interval sits around 2 and excludes 1.
	e := PairedEffect([][2][]float64{{{20, 20.5, 19.5, 20.2, 19.8}, {10, 10.2, 9.8, 10.1, 9.9}}}, rng)
	if e.Ratio < 1.95 || e.Ratio > 2.05 || !e.Significant || e.Low < 1.8 || e.High > 2.2 {
		t.Errorf("doubling: %+v", e)
	}
	// Overlapping noise: the interval covers 1.
	e = PairedEffect([][2][]float64{{{10, 12, 9, 11, 8}, {11, 9, 10, 12, 8.5}}}, rng)
	if e.Significant || e.Low > 1 || e.High < 1 {
		t.Errorf("noise: %+v", e)
	}
	// Seeded: the same data and seed give the same interval.
	a := PairedEffect([][2][]float64{{{10, 12, 9}, {11, 9, 10}}}, rand.New(rand.NewPCG(Seed, 0)))
	b := PairedEffect([][2][]float64{{{10, 12, 9}, {11, 9, 10}}}, rand.New(rand.NewPCG(Seed, 0)))
	if a != b {
		t.Errorf("not reproducible: %+v vs %+v", a, b)
	}
}

func TestEffectsPairsOnlyCandidatesDifferingInOneKnob(t *testing.T) {
	type c2 struct{ s map[string]string }
	mk := func(fa, th string, d ...float64) Candidate[c2] {
		return Candidate[c2]{C: c2{map[string]string{"fa": fa, "threads": th}}, Decode: d}
	}
	cs := []Candidate[c2]{
		mk("0", "2", 20, 20.1, 19.9, 20, 20.2),
		mk("0", "1", 10, 10.1, 9.9, 10, 10.2),
		mk("1", "2", 20, 20.3, 19.8, 20.1, 20.2),
		mk("1", "1", 10.1, 10, 9.9, 10.2, 10),
	}
	eff := Effects(cs, func(c c2) map[string]string { return c.s })
	var got []string
	for _, e := range eff {
		got = append(got, e.Objective+" "+e.Knob+" "+e.Reference+"→"+e.Value)
		switch e.Knob {
		case "threads":
			if e.Pairs != 2 || e.Ratio > 0.52 || !e.Significant || e.Better {
				t.Errorf("threads: %+v", e)
			}
		case "fa":
			if e.Pairs != 2 || e.Significant {
				t.Errorf("fa: %+v", e)
			}
		}
	}
	if !slices.Equal(got, []string{"decode_tps fa 0→1", "decode_tps threads 2→1"}) {
		t.Errorf("effects %v", got)
	}
}

// An interrupted search still says what the full grid of its begun rounds would have cost (a
// GPU run cut at its deadline printed "full grid: 0" before).
func TestRunInterruptedKeepsGridCost(t *testing.T) {
	cands := []cand{{"0", "1"}, {"1", "1"}, {"0", "2"}, {"1", "2"}}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := Run(ctx, Policy{Rounds: 3}, cands, key, func(context.Context, int, cand) Measurement {
		n++
		if n == 6 { // in round 2
			cancel()
		}
		return Measurement{Decode: []float64{10, 10, 10, 10, 10}}
	}, func(Event) {})
	if err == nil {
		t.Fatal("no error from an interrupted search")
	}
	if res.Rounds != 2 || res.Measurements != 5 || res.GridMeasurements != 8 || res.GridServerStarts != 8 || res.GroupedGridStarts != 3 {
		t.Errorf("rounds %d measurements %d grid %d grid starts %d grouped %d", res.Rounds, res.Measurements, res.GridMeasurements, res.GridServerStarts, res.GroupedGridStarts)
	}
}
