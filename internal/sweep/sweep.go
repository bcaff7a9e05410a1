// Package sweep holds the candidate strategies shared by every stack: try settings from the
// most promising (most GPU offload) down, and decide when to stop. A stack driver supplies the
// candidates and a measurement function; it never writes its own loop.
package sweep

import (
	"context"
	"fmt"
	"math"
)

// Policy is how a sweep decides to stop (knobs EXHAUSTIVE, ZERO_TOKPS_BREAK, NO_IMPROVE_LIMIT).
type Policy struct {
	// Exhaustive tries every candidate (subject to the guards below); otherwise the sweep
	// stops at the first candidate that works (tokens/sec > 0).
	Exhaustive bool
	// ZeroBreak stops an exhaustive sweep after this many consecutive failed candidates
	// (0 disables the guard).
	ZeroBreak int
	// NoImproveLimit stops an exhaustive sweep after this many consecutive candidates that did
	// not beat the best so far, once something worked (0 disables the guard).
	NoImproveLimit int
}

// Attempt is the result of measuring one candidate.
type Attempt[C any] struct {
	Candidate    C
	TokensPerSec float64 // 0 when the attempt failed
}

// Result summarises a sweep.
type Result[C any] struct {
	Attempts []Attempt[C]
	Best     *Attempt[C] // nil when nothing worked
	// StopReason says why the sweep ended before the last candidate ("" when it ran out of
	// candidates or was exhaustive to the end).
	StopReason string
}

// Run measures candidates in order under policy p. measure returns the decode tokens/sec of
// one candidate (0 for a failed attempt; failures are data and the sweep goes on). Run stops
// early when ctx is cancelled and returns ctx's error with the attempts made so far.
func Run[C any](ctx context.Context, p Policy, candidates []C, measure func(context.Context, C) float64) (Result[C], error) {
	var res Result[C]
	zeros, noImprove := 0, 0
	for i, c := range candidates {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		tps := measure(ctx, c)
		if math.IsNaN(tps) || math.IsInf(tps, 0) || tps < 0 {
			tps = 0
		}
		res.Attempts = append(res.Attempts, Attempt[C]{Candidate: c, TokensPerSec: tps})
		if err := ctx.Err(); err != nil {
			// An attempt cut short by Ctrl-C is not a measurement of the candidate.
			return res, err
		}
		last := &res.Attempts[len(res.Attempts)-1]
		if tps > 0 && (res.Best == nil || tps > res.Best.TokensPerSec) {
			res.Best = last
			noImprove = 0
		} else if res.Best != nil {
			noImprove++
		}
		if tps > 0 {
			zeros = 0
		} else {
			zeros++
		}
		if i == len(candidates)-1 {
			break
		}
		if !p.Exhaustive {
			if tps > 0 {
				res.StopReason = fmt.Sprintf("first working candidate at %.2f tok/s (EXHAUSTIVE=0)", tps)
				break
			}
			continue
		}
		if p.ZeroBreak > 0 && zeros >= p.ZeroBreak {
			res.StopReason = fmt.Sprintf("%d consecutive zero tok/s trials (ZERO_TOKPS_BREAK=%d)", zeros, p.ZeroBreak)
			break
		}
		if p.NoImproveLimit > 0 && res.Best != nil && noImprove >= p.NoImproveLimit {
			res.StopReason = fmt.Sprintf("%d non-improving trials, best=%.2f tok/s (NO_IMPROVE_LIMIT=%d)", noImprove, res.Best.TokensPerSec, p.NoImproveLimit)
			break
		}
	}
	return res, nil
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
