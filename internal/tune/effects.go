package tune

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/fuze-ai/fuze/internal/stats"
)

// Objective is one figure a configuration is judged by.
type Objective struct {
	Name string
	// HigherBetter: decode rate; lower is better for TTFT and J/token.
	HigherBetter bool
	// Of is the objective's per-repeat values of a candidate.
	Of func(decode, ttftMs, jPerToken []float64) []float64
}

// Objectives are what the search reports a best and effects for.
var Objectives = []Objective{
	{Name: "decode_tps", HigherBetter: true, Of: func(d, _, _ []float64) []float64 { return d }},
	{Name: "ttft_ms", Of: func(_, t, _ []float64) []float64 { return t }},
	{Name: "joules_per_token", Of: func(_, _, j []float64) []float64 { return j }},
}

// Effect is what changing one knob from its reference value to Value does to an objective:
// over every pair of measured candidates that differ in that knob only, the median of the
// pairs' ratios (value ÷ reference) of medians, with a percentile-bootstrap confidence
// interval (repeats resampled within each candidate, Resamples times, seeded).
type Effect struct {
	Objective string  `json:"objective"`
	Knob      string  `json:"knob"`
	Reference string  `json:"reference"`
	Value     string  `json:"value"`
	Pairs     int     `json:"pairs"`
	Ratio     float64 `json:"ratio"`
	Low       float64 `json:"ci_low"`
	High      float64 `json:"ci_high"`
	// Significant: the 95% interval excludes 1.
	Significant bool `json:"significant"`
	// Better: significant and in the objective's good direction.
	Better bool `json:"better"`
}

// Bootstrap settings: 2000 resamples give the 2.5% and 97.5% percentiles to about ±0.5%;
// the fixed seed makes a report reproducible from its data.
const (
	Resamples = 2000
	Seed      = 16
)

// Effects computes every knob's effect on every objective with data. settings gives each
// candidate's settings by name; a knob is a setting with more than one value among the
// candidates, its reference value the first one in the candidates' order (planners list the
// server's default first).
func Effects[C any](cs []Candidate[C], settings func(C) map[string]string) []Effect {
	sets := make([]map[string]string, len(cs))
	var names []string
	values := map[string][]string{}
	for i, c := range cs {
		sets[i] = settings(c.C)
		for k, v := range sets[i] {
			if _, ok := values[k]; !ok {
				names = append(names, k)
			}
			if !contains(values[k], v) {
				values[k] = append(values[k], v)
			}
		}
	}
	sort.Strings(names)
	var out []Effect
	for _, obj := range Objectives {
		for _, k := range names {
			vals := values[k]
			if len(vals) < 2 {
				continue
			}
			ref := vals[0] // values are in the order of first appearance
			for _, v := range vals {
				if v == ref {
					continue
				}
				var pairs [][2][]float64
				for a := range cs {
					if sets[a][k] != v {
						continue
					}
					b := partner(sets, a, k, ref)
					if b < 0 {
						continue
					}
					xa := obj.Of(cs[a].Decode, cs[a].TTFTms, cs[a].JPerToken)
					xb := obj.Of(cs[b].Decode, cs[b].TTFTms, cs[b].JPerToken)
					if len(xa) == 0 || len(xb) == 0 {
						continue
					}
					pairs = append(pairs, [2][]float64{xa, xb})
				}
				if len(pairs) == 0 {
					continue
				}
				e := PairedEffect(pairs, rand.New(rand.NewPCG(Seed, uint64(len(out)))))
				e.Objective, e.Knob, e.Reference, e.Value = obj.Name, k, ref, v
				e.Better = e.Significant && ((obj.HigherBetter && e.Ratio > 1) || (!obj.HigherBetter && e.Ratio < 1))
				out = append(out, e)
			}
		}
	}
	return out
}

// PairedEffect is the median over pairs of median(p[0]) ÷ median(p[1]), and its 95%
// percentile-bootstrap interval: each resample draws every sample of every pair with
// replacement and takes the same statistic.
func PairedEffect(pairs [][2][]float64, rng *rand.Rand) Effect {
	stat := func(draw func([]float64) []float64) float64 {
		ratios := make([]float64, 0, len(pairs))
		for _, p := range pairs {
			ratios = append(ratios, stats.Median(draw(p[0]))/stats.Median(draw(p[1])))
		}
		return stats.Median(ratios)
	}
	e := Effect{Pairs: len(pairs), Ratio: stat(func(x []float64) []float64 { return x })}
	boot := make([]float64, 0, Resamples)
	buf := make([]float64, 0, 64)
	for range Resamples {
		boot = append(boot, stat(func(x []float64) []float64 {
			buf = buf[:0]
			for range x {
				buf = append(buf, x[rng.IntN(len(x))])
			}
			return append([]float64(nil), buf...)
		}))
	}
	sort.Float64s(boot)
	e.Low, e.High = quantile(boot, 0.025), quantile(boot, 0.975)
	e.Significant = e.Low > 1 || e.High < 1
	return e
}

// quantile of sorted xs, linear interpolation between closest ranks (Hyndman–Fan type 7).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (pos-float64(lo))*(xs[hi]-xs[lo])
}

// partner is the candidate whose settings equal sets[a]'s except k = ref (-1: none).
func partner(sets []map[string]string, a int, k, ref string) int {
	for b, s := range sets {
		if b == a || s[k] != ref || len(s) != len(sets[a]) {
			continue
		}
		same := true
		for name, v := range sets[a] {
			if name != k && s[name] != v {
				same = false
				break
			}
		}
		if same {
			return b
		}
	}
	return -1
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// BestBy is the index of the best candidate for an objective by median (-1: no data), among
// valid candidates.
func BestBy[C any](cs []Candidate[C], obj Objective) int {
	best, bm := -1, 0.0
	for i := range cs {
		c := &cs[i]
		if c.Invalid != "" {
			continue
		}
		x := obj.Of(c.Decode, c.TTFTms, c.JPerToken)
		if len(x) == 0 {
			continue
		}
		m := stats.Median(x)
		if best < 0 || (obj.HigherBetter && m > bm) || (!obj.HigherBetter && m < bm) {
			best, bm = i, m
		}
	}
	return best
}
