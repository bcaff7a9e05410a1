// Package sweep holds the candidate strategies shared by every stack: try settings from the
// most promising (most GPU offload) down, and decide when to stop. A stack driver supplies the
// candidates and a measurement function; it never writes its own loop.
//
// # Which candidate is best
//
// A candidate is measured several times (BENCH_REPEAT); its repeats are the per-request decode
// rates. The first working candidate becomes the best; a later one replaces it only when a
// two-sided Mann–Whitney U test over the two candidates' repeats says it is faster at
// α = stats.DefaultAlpha (stats.Compare(later, best).Better). A higher median that the test
// does not confirm leaves the earlier candidate best: with 3 repeats or fewer per side nothing
// is ever significant, so the first working candidate stays best. A candidate whose
// measurement is flagged as an error (Measurement.Invalid, e.g. a rate above the GPU's
// memory-bandwidth roofline) is recorded but never becomes best.
package sweep

import (
	"context"
	"fmt"
	"math"

	"github.com/fuze-ai/fuze/internal/stats"
)

// Policy is how a sweep decides to stop (knobs EXHAUSTIVE, ZERO_TOKPS_BREAK, NO_IMPROVE_LIMIT).
type Policy struct {
	// Exhaustive tries every candidate (subject to the guards below); otherwise the sweep
	// stops at the first candidate that works and may become best (see Measurement.Invalid).
	Exhaustive bool
	// ZeroBreak stops an exhaustive sweep after this many consecutive failed candidates
	// (0 disables the guard).
	ZeroBreak int
	// NoImproveLimit stops an exhaustive sweep after this many consecutive candidates that did
	// not significantly beat the best so far, once there is a best (0 disables the guard).
	NoImproveLimit int
	// TuneRounds is the tuning search's most measurements per candidate (TUNE_ROUNDS;
	// internal/tune), used when the candidates vary more than the layer offload.
	TuneRounds int
}

// Measurement is what the measure function of Run reports for one candidate.
type Measurement struct {
	// Repeats are the decode tokens/sec of every successful request of the candidate; empty
	// when the candidate failed.
	Repeats []float64
	// TokensPerSec is the rate the candidate's row carries; 0 takes the median of Repeats.
	// With no Repeats, a TokensPerSec above 0 counts as a single repeat.
	TokensPerSec float64
	// Invalid says why the measurement cannot be trusted (e.g. "above the roofline"): the
	// attempt is kept but never becomes best. "" for a valid measurement.
	Invalid string
}

// Attempt is the result of measuring one candidate.
type Attempt[C any] struct {
	Candidate C
	// Repeats are the candidate's per-request decode rates (empty when it failed).
	Repeats []float64
	// TokensPerSec is the rate of the candidate's row (the median of Repeats unless the
	// measure function said otherwise); 0 when the attempt failed.
	TokensPerSec float64
	// Invalid says why the attempt may not become best ("" when it may).
	Invalid string
	// Versus is the comparison with the best at the time the attempt was measured (nil when
	// there was no best yet, or the attempt failed or is invalid).
	Versus *stats.Comparison
}

// Worked reports whether the attempt produced a measurement.
func (a Attempt[C]) Worked() bool { return len(a.Repeats) > 0 }

// Result summarises a sweep.
type Result[C any] struct {
	Attempts []Attempt[C]
	Best     *Attempt[C] // nil when no valid candidate worked
	// StopReason says why the sweep ended before the last candidate ("" when it ran out of
	// candidates or was exhaustive to the end).
	StopReason string
}

// Run measures candidates in order under policy p. measure returns the repeats of one
// candidate (none for a failed attempt; failures are data and the sweep goes on). The best is
// the first valid working candidate, replaced only by a later one that significantly beats it
// (see the package documentation); NoImproveLimit counts the candidates that did not. Run stops
// early when ctx is cancelled and returns ctx's error with the attempts made so far.
func Run[C any](ctx context.Context, p Policy, candidates []C, measure func(context.Context, C) Measurement) (Result[C], error) {
	var res Result[C]
	zeros, noImprove := 0, 0
	for i, c := range candidates {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		a := attempt(c, measure(ctx, c))
		res.Attempts = append(res.Attempts, a)
		if err := ctx.Err(); err != nil {
			// An attempt cut short by Ctrl-C is not a measurement of the candidate.
			return res, err
		}
		last := &res.Attempts[len(res.Attempts)-1]
		improved := false
		if last.Worked() && last.Invalid == "" {
			if res.Best == nil {
				improved = true
			} else {
				cmp := stats.Compare(last.Repeats, res.Best.Repeats, stats.DefaultAlpha)
				last.Versus = &cmp
				improved = cmp.Better
			}
		}
		switch {
		case improved:
			res.Best = last
			noImprove = 0
		case res.Best != nil:
			noImprove++
		}
		if last.Worked() {
			zeros = 0
		} else {
			zeros++
		}
		if i == len(candidates)-1 {
			break
		}
		if !p.Exhaustive {
			if improved {
				res.StopReason = fmt.Sprintf("first working candidate at %.2f tok/s (EXHAUSTIVE=0)", last.TokensPerSec)
				break
			}
			continue
		}
		if p.ZeroBreak > 0 && zeros >= p.ZeroBreak {
			res.StopReason = fmt.Sprintf("%d consecutive zero tok/s trials (ZERO_TOKPS_BREAK=%d)", zeros, p.ZeroBreak)
			break
		}
		if p.NoImproveLimit > 0 && res.Best != nil && noImprove >= p.NoImproveLimit {
			res.StopReason = fmt.Sprintf("%d trials not significantly better (p ≤ %g), best=%.2f tok/s (NO_IMPROVE_LIMIT=%d)",
				noImprove, stats.DefaultAlpha, res.Best.TokensPerSec, p.NoImproveLimit)
			break
		}
	}
	return res, nil
}

// attempt turns a measurement into an attempt: rates that are not finite and above 0 are
// dropped, the row's rate defaults to the median of the repeats.
func attempt[C any](c C, m Measurement) Attempt[C] {
	a := Attempt[C]{Candidate: c, Invalid: m.Invalid}
	for _, r := range m.Repeats {
		if r > 0 && !math.IsInf(r, 0) {
			a.Repeats = append(a.Repeats, r)
		}
	}
	tps := m.TokensPerSec
	if math.IsNaN(tps) || math.IsInf(tps, 0) || tps < 0 {
		tps = 0
	}
	switch {
	case len(a.Repeats) == 0 && tps > 0:
		a.Repeats = []float64{tps}
	case len(a.Repeats) == 0:
		tps = 0
	case tps == 0:
		tps = stats.Median(a.Repeats)
	}
	a.TokensPerSec = tps
	return a
}

// PercentOfLayers turns a layer count and a percent set into num_gpu candidates:
// ceil(layers × pct / 100), at least 1, duplicates dropped, order kept (high → low as given).
func PercentOfLayers(layers int, percents []float64) []int {
	var out []int
	seen := map[int]bool{}
	for _, pct := range percents {
		n := int(math.Ceil(float64(layers) * pct / 100))
		n = max(n, 1)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
